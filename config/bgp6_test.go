package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestBGPIPv6Neighbor(t *testing.T) {
	c := mustParse(t, head+"[bgp]\nasn = 65001\nrouter_id = \"198.18.0.2\"\nnext_hop6 = \"2001:2:0:c8::2\"\n"+
		"[[bgp.neighbor]]\naddress = \"198.18.0.1\"\nasn = 65000\n[[bgp.neighbor]]\naddress = \"2001:2:0:c8::1\"\nasn = 65000\n")
	if c.BGP.NextHop6 != netip.MustParseAddr("2001:2:0:c8::2") || !c.BGP.HasIPv6Neighbor() || c.BGP.Neighbors[1].Address != netip.MustParseAddr("2001:2:0:c8::1") {
		t.Fatalf("BGP = %+v", c.BGP)
	}
	if mustParse(t, bgpHead).BGP.HasIPv6Neighbor() {
		t.Fatal("IPv4 neighbour counted as IPv6")
	}
}

func TestBGPIPv6Problems(t *testing.T) {
	src := head + "[[service]]\nvip = \"2001:2:0:c8::100\"\nport = 80\nforward = \"dr\"\n" +
		"[bgp]\nasn = 65001\nrouter_id = \"198.18.0.2\"\nnext_hop6 = \"fe80::2\"\n" +
		"[[bgp.neighbor]]\naddress = \"fe80::1\"\nasn = 65000\n[[bgp.neighbor]]\naddress = \"2001:2:0:c8::100\"\nasn = 65000\n[[bgp.neighbor]]\naddress = \"::1\"\nasn = 65000\n"
	want := []string{
		`t.toml:10: bgp.next_hop6: must be a global unicast IPv6 address (or "" for each session's local address)`,
		`t.toml:12: bgp.neighbor[0].address: fe80::1 is link-local: use the neighbour's global IPv6 address on the link`,
		`t.toml:15: bgp.neighbor[1].address: 2001:2:0:c8::100 is a VIP of this director`,
		`t.toml:18: bgp.neighbor[2].address: must be a unicast IPv4 or IPv6 address`,
	}
	got := problems(t, src)
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", quoteLines(got), quoteLines(want))
	}
	got = problems(t, head+"[[service]]\nvip = \"2001:2:0:c8::100\"\nport = 80\nforward = \"dr\"\n[bgp]\nasn = 65001\nrouter_id = \"198.18.0.2\"\nnext_hop6 = \"2001:2:0:c8::100\"\n[[bgp.neighbor]]\naddress = \"2001:2:0:c8::1\"\nasn = 65000\n")
	if want := []string{`t.toml:10: bgp.next_hop6: 2001:2:0:c8::100 is a VIP: the router would send VIP traffic to itself; use the director's own address`}; !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", quoteLines(got), quoteLines(want))
	}
}

func TestBGPFamilyWarnings(t *testing.T) {
	src := head + "[conntrack]\nsloppy_tcp = true\n[[service]]\nvip = \"2001:2:0:c8::100\"\nport = 80\nscheduler = \"mh\"\nforward = \"dr\"\n" +
		"[bgp]\nasn = 65001\nrouter_id = \"198.18.0.2\"\n[[bgp.neighbor]]\naddress = \"198.18.0.1\"\nasn = 65000\n"
	ws := Warnings(mustParse(t, src))
	if len(ws) != 1 || !strings.Contains(ws[0].String(), "service[0].vip: warning: 2001:2:0:c8::100 is IPv6 and no [[bgp.neighbor]] is") {
		t.Errorf("warnings = %v", ws)
	}
	if ws := Warnings(mustParse(t, src+"[[bgp.neighbor]]\naddress = \"2001:2:0:c8::1\"\nasn = 65000\n")); len(ws) != 0 {
		t.Errorf("warnings with an IPv6 neighbour = %v", ws)
	}
}
