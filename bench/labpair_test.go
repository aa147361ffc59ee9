package bench

import (
	"errors"
	"strings"
	"testing"
)

// TestLayoutPair: a config with [[vrrp]] gets a second director with the same links, and
// NAT real servers route through the floating gateway.
func TestLayoutPair(t *testing.T) {
	vrrp := "[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\n" +
		"[[vrrp]]\nname = \"VI_2\"\ninterface = \"eth1\"\nvirtual_router_id = 52\nvips = [\"198.18.3.1\"]\n" +
		"[[vrrp_sync_group]]\nname = \"G\"\ninstances = [\"VI_1\", \"VI_2\"]\n"
	src := labHead +
		svcTOML("198.18.1.100", "tcp", 80, "dr", "198.18.1.11") +
		svcTOML("198.18.1.101", "tcp", 80, "nat", "198.18.3.11") + vrrp
	lay, err := LayoutConfig(parse(t, src))
	if err != nil {
		t.Fatal(err)
	}
	l := lay.Lab
	if l.Director2 == nil {
		t.Fatal("no director2")
	}
	got := map[string]string{}
	for _, n := range l.Nodes() {
		var s []string
		for _, i := range n.Ifaces {
			s = append(s, i.Name+" "+i.Prefix.String())
		}
		got[n.Name] = strings.Join(s, ", ")
	}
	// The gateway 198.18.3.1 floats: the directors take other host numbers.
	for name, want := range map[string]string{
		"director":  "eth0 198.18.1.2/24, eth1 198.18.3.2/24",
		"director2": "eth0 198.18.1.3/24, eth1 198.18.3.3/24",
	} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}
	for _, pn := range l.plan.nodes {
		if pn.name == "rs2" && (len(pn.routes) != 1 || pn.routes[0].via.String() != "198.18.3.1") {
			t.Errorf("nat real's routes %+v, want default via the floating gateway 198.18.3.1", pn.routes)
		}
	}

	// Without a floating gateway, NAT through a pair cannot work.
	src = labHead + svcTOML("198.18.1.101", "tcp", 80, "nat", "198.18.3.11") +
		"[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\n"
	if _, err := LayoutConfig(parse(t, src)); !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), "floating gateway") {
		t.Fatalf("LayoutConfig = %v, want a floating gateway error", err)
	}
}
