package control

import (
	"strings"
	"testing"

	"github.com/uvs-project/uvs/config"
)

// TestBGPNextHop6: next_hop6 is saved and diffed.
func TestBGPNextHop6(t *testing.T) {
	cur, err := config.Parse("a", []byte(bgpConf))
	if err != nil {
		t.Fatal(err)
	}
	next, err := config.Parse("b", []byte(strings.Replace(bgpConf, `drain_time = "3s"`, "drain_time = \"3s\"\nnext_hop6 = \"2001:2:0:c8::2\"", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(Diff(cur, next), "\n"), "~ bgp: next_hop6 (each session's address) -> 2001:2:0:c8::2 (IPv6 routes re-announced)"; got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(ConfigTOML(next), "next_hop6 = \"2001:2:0:c8::2\"\n") {
		t.Errorf("save lacks next_hop6:\n%s", ConfigTOML(next))
	}
}
