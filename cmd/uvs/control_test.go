package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoDirector: every client command names the socket in one line and exits 1.
func TestNoDirector(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{
		{"list", "--socket", sock},
		{"list", "--conns", "--json", "--socket", sock},
		{"edit", "-Z", "--socket", sock},
		{"save", "--socket", sock},
		{"reload", "--socket", sock},
		{"trace", "--client", "198.19.0.1:1", "-t", "198.18.0.100:80", "--socket", sock},
	} {
		t.Run(args[0], func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(args, &out, &errb); code != 1 {
				t.Errorf("exit %d", code)
			}
			lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "uvs: no director at "+sock+": ") {
				t.Errorf("stderr %q", errb.String())
			}
		})
	}
}

func TestEditFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"edit", "-t", "198.18.0.100:80"}, "give one of"},
		{[]string{"edit", "-A", "-E", "-t", "198.18.0.100:80"}, "give one of"},
		{[]string{"edit", "-a", "-r", "198.18.1.1"}, "service (-t VIP:PORT or -u VIP:PORT) is required"},
		{[]string{"edit", "-a", "-t", "198.18.0.100:80", "-u", "198.18.0.100:80"}, "cannot both"},
		{[]string{"edit", "-a", "-t", "198.18.0.100:80", "-g", "-m"}, "exclude each other"},
		{[]string{"list", "--stats", "--rate"}, "exclude each other"},
	} {
		var out, errb bytes.Buffer
		if code := run(tt.args, &out, &errb); code != 1 || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, errb.String(), tt.want)
		}
	}
}

func TestIPVSAdmShort(t *testing.T) {
	got := strings.Join(ipvsadmShort([]string{"-Lnc", "--stats", "-ln", "-t", "198.18.0.1:80", "-n", "-L"}), " ")
	if want := "-n --conns --stats -n -t 198.18.0.1:80 -n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
