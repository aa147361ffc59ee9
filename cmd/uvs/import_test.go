package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/config"
)

func TestImportCLI(t *testing.T) {
	dir := t.TempDir()
	ka := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(ka, []byte("include conf.d/*.conf\nvirtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf.d", "b.conf"), []byte("virtual_server 10.0.0.2 80 {\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ipt := filepath.Join(dir, "iptables.rules")
	if err := os.WriteFile(ipt, []byte("*mangle\n-A PREROUTING -d 10.0.0.5/32 -p tcp -m multiport --dports 80,443 -j MARK --set-xmark 0x1/0xffffffff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1\n"
	tests := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		services int      // Services in the output, when code is 0.
		stderr   []string // Exact stderr lines.
	}{
		{"ipvsadm stdin", []string{"ipvsadm", "-"}, good, 0, 1, nil},
		{"fwmark flag", []string{"ipvsadm", "--fwmark", "1=10.0.0.5:80,443", "-"}, "-A -f 1 -s rr\n-a -f 1 -r 10.0.1.1 -m\n", 0, 1,
			[]string{`uvs import: 1 setting(s) not carried over; see the "# uvs import:" comments`}},
		{"flag after file", []string{"ipvsadm", "-", "--fwmark", "1=10.0.0.5:80"}, "-A -f 1\n", 0, 1, []string{`uvs import: 1 setting(s) not carried over; see the "# uvs import:" comments`}},
		{"keepalived file", []string{"keepalived", ka}, "", 0, 2, []string{`uvs import: 1 setting(s) not carried over; see the "# uvs import:" comments`}},
		{"iptables flag", []string{"ipvsadm", "--iptables", ipt, "-"}, "-A -f 1 -s rr\n-a -f 1 -r 10.0.1.1 -m\n", 0, 1,
			[]string{`uvs import: 1 setting(s) not carried over; see the "# uvs import:" comments`}},
		{"bad input", []string{"ipvsadm", "-"}, "-A -t www:80\n-a -t 10.0.0.1:80 -r 10.0.1.1\n", 1, 0, []string{
			`stdin:1: service address "www:80": "www" is a host name; uvs import resolves nothing: save with ipvsadm-save -n (or ipvsadm -Sn)`,
			`stdin:2: no virtual service -t 10.0.0.1:80 (add it with -A first)`,
		}},
		{"bad keepalived", []string{"keepalived", "-"}, "virtual_server 10.0.0.1 80 {\n", 1, 0, []string{"stdin:1: virtual_server block is not closed: missing }"}},
		{"missing file", []string{"ipvsadm", filepath.Join(dir, "none")}, "", 1, 0, []string{"uvs: import: open " + filepath.Join(dir, "none") + ": no such file or directory"}},
		{"no file", []string{"ipvsadm"}, "", 1, 0, []string{"uvs: import ipvsadm needs exactly one FILE (or - for stdin)"}},
		{"bad fwmark", []string{"ipvsadm", "--fwmark", "x", "-"}, "", 1, 0, nil},
		{"unknown kind", []string{"haproxy", "-"}, "", 1, 0, nil},
		// Nothing carried over: the file is written (its stubs are where to start), the exit
		// status says that it serves nothing.
		{"nothing carried over", []string{"keepalived", "-"}, "virtual_server fwmark 4 {\n}\n", 1, 0, []string{
			`uvs import: 1 setting(s) not carried over; see the "# uvs import:" comments`,
			"uvs import: WARNING: no service was carried over (fwmark-only services are written commented out): this configuration serves nothing",
		}},
		{"nothing carried over, allowed", []string{"keepalived", "--allow-empty", "-"}, "virtual_server fwmark 4 {\n}\n", 0, 0, nil},
	}
	// Output written although the exit status is 1.
	written := map[string]bool{"nothing carried over": true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cmdImport(tt.args, strings.NewReader(tt.stdin), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if tt.stderr != nil {
				if got := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(tt.stderr, "\n") {
					t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), strings.Join(tt.stderr, "\n"))
				}
			}
			if code != 0 {
				if written[tt.name] != (stdout.Len() > 0) {
					t.Errorf("output on failure:\n%s", stdout.String())
				}
				return
			}
			c, err := config.Parse("out.toml", stdout.Bytes())
			if err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, stdout.String())
			}
			if len(c.Services) != tt.services {
				t.Errorf("%d services, want %d", len(c.Services), tt.services)
			}
		})
	}
}

func TestImportCLIOut(t *testing.T) {
	out := filepath.Join(t.TempDir(), "uvs.toml")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"import", "ipvsadm", "--allow-empty", "-o", out, os.DevNull}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if _, err := config.Load(out); err != nil {
		t.Fatal(err)
	}
}
