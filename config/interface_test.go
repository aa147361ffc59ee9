package config

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestInterfaceDocKnowsEveryKey fails when docs/interface.md misses a key that the decoder
// knows: the document is the contract, and it must be complete. It decodes a file with every
// table and records the keys each table asks for.
func TestInterfaceDocKnowsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../docs/interface.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	keys := map[string][]string{}
	knownKeysHook = func(path string, known []string) {
		for _, k := range known {
			if !slices.Contains(keys[path], k) {
				keys[path] = append(keys[path], k)
			}
		}
	}
	defer func() { knownKeysHook = nil }()
	src := `[director]
interfaces = ["eth0"]
[conntrack]
[timeouts]
[lab]
[bench]
[sync]
interface = "eth0"
role = "master"
peers = ["198.18.0.2"]
[[service]]
vip = "198.18.1.100"
port = 80
  [service.check]
  type = "http"
  [[service.real]]
  address = "198.18.1.11"
    [service.real.check]
    type = "tcp"
[bgp]
asn = 65001
router_id = "198.18.1.2"
  [[bgp.neighbor]]
  address = "198.18.1.1"
  asn = 65000
`
	if _, err := Parse("all.toml", []byte(src)); err != nil {
		t.Fatal(err)
	}
	tables := 0
	for path, ks := range keys {
		if path == "" {
			continue // the root asks for the tables themselves
		}
		tables++
		for _, k := range ks {
			// Backquoted in a table, or as `key =` in a TOML example.
			inTOML := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(k) + ` =`)
			if !strings.Contains(doc, "`"+k+"`") && !inTOML.MatchString(doc) {
				t.Errorf("key %s.%s is not in docs/interface.md", path, k)
			}
		}
	}
	if tables < 8 {
		t.Errorf("only %d tables decoded: %v", tables, keys)
	}
}
