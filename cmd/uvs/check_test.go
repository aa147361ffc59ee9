package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckNoServices: a valid file without services passes no check silently: uvs run would
// serve nothing.
func TestCheckNoServices(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.toml")
	if err := os.WriteFile(path, []byte("[director]\ninterfaces = [\"eth0\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"refused", []string{"--config", path}, 1},
		{"allowed", []string{"--allow-empty", "--config", path}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := cmdCheck(tt.args, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, stderr.String())
			}
			if want := path + ": WARNING: no services: uvs run with this file would serve nothing\n"; stderr.String() != want {
				t.Errorf("stderr %q, want %q", stderr.String(), want)
			}
			if ok := strings.Contains(stdout.String(), "ok (0 services"); ok != (tt.code == 0) {
				t.Errorf("stdout %q", stdout.String())
			}
		})
	}
}
