package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const bgpHead = head + "[bgp]\nasn = 65001\nrouter_id = \"198.18.0.2\"\n[[bgp.neighbor]]\naddress = \"198.18.0.1\"\nasn = 65000\n"

func TestBGPDefaults(t *testing.T) {
	c := mustParse(t, bgpHead)
	b := c.BGP
	if !b.Present || b.ASN != 65001 || b.DrainTime != DefaultBGPDrainTime || b.MaxPrefixes != DefaultBGPMaxPrefixes || b.Passive {
		t.Fatalf("bgp = %+v", b)
	}
	if nh := b.NextHopOrRouterID(); nh.String() != "198.18.0.2" {
		t.Errorf("next hop %s, want router_id", nh)
	}
	if len(b.Neighbors) != 1 || b.Neighbors[0].HoldTime != DefaultBGPHoldTime || b.Neighbors[0].Line != 6 {
		t.Errorf("neighbour = %+v", b.Neighbors)
	}
	if c := mustParse(t, head); c.BGP.Present {
		t.Error("no [bgp] but Present")
	}
	c = mustParse(t, bgpHead+"hold_time = 3\npassword_file = \"/etc/uvs/bgp.key\"\nbfd = true\n")
	if n := c.BGP.Neighbors[0]; n.HoldTime != 3*time.Second || n.PasswordFile != "/etc/uvs/bgp.key" || !n.BFD {
		t.Errorf("neighbour = %+v", n)
	}
}

func TestBGPProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"required", head + "[bgp]\n", []string{
			`t.toml:3: bgp.asn: required: the local AS number`,
			`t.toml:3: bgp.router_id: required: an IPv4 address, usually the director's own address towards the router`,
			`t.toml:3: bgp.neighbor: required: at least one [[bgp.neighbor]]`,
		}},
		{"ranges", head + "[bgp]\nasn = 0\nrouter_id = \"::1\"\nnext_hop = \"x\"\ndrain_time = \"-1s\"\nmax_prefixes = 0\n[[bgp.neighbor]]\naddress = \"224.0.0.1\"\nasn = 65000\nhold_time = \"2s\"\npassword = \"a\"\npassword_file = \"/k\"\n[[bgp.neighbor]]\nasn = 1\nport = 179\n", []string{
			`t.toml:4: bgp.asn: 0 is out of range 1..4294967295`,
			`t.toml:5: bgp.router_id: must be an IPv4 address`,
			`t.toml:6: bgp.next_hop: invalid IP address "x"`,
			`t.toml:7: bgp.drain_time: -1s is out of range 0s..10m0s`,
			`t.toml:8: bgp.max_prefixes: 0 is out of range 1..1000000`,
			`t.toml:10: bgp.neighbor[0].address: must be a unicast IPv4 or IPv6 address`,
			`t.toml:12: bgp.neighbor[0].hold_time: 2s: want whole seconds in 3..65535 (RFC 4271)`,
			`t.toml:13: bgp.neighbor[0].password: give password or password_file, not both`,
			`t.toml:15: bgp.neighbor[1].address: required: the neighbour's IPv4 or IPv6 address`,
			`t.toml:17: bgp.neighbor[1].port: unknown key`,
		}},
		{"vip addresses", head + "[[service]]\nvip = \"198.18.0.2\"\nport = 80\nscheduler = \"mh\"\n[bgp]\nasn = 65001\nrouter_id = \"198.18.0.2\"\nnext_hop = \"198.18.0.2\"\n[[bgp.neighbor]]\naddress = \"198.18.0.2\"\nasn = 65000\n", []string{
			`t.toml:9: bgp.router_id: 198.18.0.2 is a VIP: the director drops traffic to its VIPs before its kernel sees it, BGP included; use the director's own address`,
			`t.toml:10: bgp.next_hop: 198.18.0.2 is a VIP: the router would send VIP traffic to itself; use the director's own address`,
			`t.toml:12: bgp.neighbor[0].address: 198.18.0.2 is a VIP of this director`,
		}},
		{"nat", bgpHead + "[[service]]\nvip = \"198.18.0.10\"\nport = 80\n[[service.real]]\naddress = \"198.18.1.2\"\nforward = \"nat\"\n", []string{
			`t.toml:9: service[0].forward: nat cannot be used with [bgp]: a router spreads flows over several directors, and a real server's replies go to the one director it routes through, not the one holding the translation; use dr or tun`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.src)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", quoteLines(got), quoteLines(tt.want))
			}
		})
	}
}

func TestBGPWarnings(t *testing.T) {
	ws := Warnings(mustParse(t, bgpHead))
	if len(ws) != 1 || !strings.Contains(ws[0].String(), "conntrack.sloppy_tcp: warning:") {
		t.Errorf("warnings = %v", ws)
	}
	svcs := "[[service]]\nvip = \"198.18.0.10\"\nport = 80\nscheduler = \"mh\"\n[[service]]\nvip = \"198.18.0.10\"\nport = 81\nscheduler = \"rr\"\n"
	ws = Warnings(mustParse(t, bgpHead+"[conntrack]\nsloppy_tcp = true\n"+svcs))
	if len(ws) != 1 || !strings.Contains(ws[0].String(), "service[1].scheduler: warning: rr with [bgp]") {
		t.Errorf("warnings with sloppy_tcp and rr = %v", ws)
	}
	if ws := Warnings(mustParse(t, bgpHead+"[conntrack]\nsloppy_tcp = true\n")); len(ws) != 0 {
		t.Errorf("warnings with sloppy_tcp = %v", ws)
	}
}

func TestBGPWithVRRPRefused(t *testing.T) {
	src := `
[director]
interfaces = ["eth0"]
[[service]]
vip = "198.18.0.10"
port = 80
scheduler = "mh"
  [[service.real]]
  address = "198.18.1.11"
[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
[bgp]
asn = 65001
router_id = "198.18.1.2"
  [[bgp.neighbor]]
  address = "198.18.1.1"
  asn = 65000
`
	_, err := Parse("t.toml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "cannot be combined with [[vrrp]]") {
		t.Fatalf("Parse: %v, want the [bgp] with [[vrrp]] refusal", err)
	}
}
