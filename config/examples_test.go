package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExamples parses every shipped example (examples/*.toml) as uvs check does: each must be
// valid and serve something. The README and docs point at them.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"dr.toml": false, "nat.toml": false, "tun.toml": false, "lab.toml": false, "bench.toml": false, "pair.toml": false, "bgp.toml": false}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(f, data)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Services) == 0 {
				t.Error("no services")
			}
		})
		want[filepath.Base(f)] = true
	}
	for name, found := range want {
		if !found {
			t.Errorf("examples/%s is missing", name)
		}
	}
}
