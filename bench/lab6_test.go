package bench

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/config"
)

func TestSix(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"198.18.1.100", "2001:2:0:1::100"},
		{"198.18.3.1", "2001:2:0:3::1"},
		{"198.18.255.254", "2001:2:0:255::254"},
		{"198.19.7.2", "2001:2:0:1007::2"},
		{"10.0.0.1", ""},
		{"2001:db8::1", ""},
	} {
		got, ok := Six(netip.MustParseAddr(tt.in))
		if tt.want == "" {
			if ok {
				t.Errorf("Six(%s) = %s, want none", tt.in, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(tt.want) {
			t.Errorf("Six(%s) = %s %v, want %s", tt.in, got, ok, tt.want)
		}
	}
}

// TestDualStackLayout checks the IPv6 twins of every lab topology: one /64 per segment, no
// address twice, the routes' twins, and a ConfigDual that config accepts.
func TestDualStackLayout(t *testing.T) {
	for _, topo := range []Topology{TopologyDR, TopologyNAT, TopologyTUN} {
		t.Run(topo.String(), func(t *testing.T) {
			l, err := layout(LabSpec{Prefix: "x-", Topology: topo, IPv6: true})
			if err != nil {
				t.Fatal(err)
			}
			if l.VIP6 != netip.MustParseAddr(map[Topology]string{TopologyDR: "2001:2:0:1::100", TopologyNAT: "2001:2:0:2::100", TopologyTUN: "2001:2:0:4::100"}[topo]) {
				t.Errorf("VIP6 %s", l.VIP6)
			}
			seen := map[netip.Addr]string{}
			for _, n := range l.Nodes() {
				if !n.Addr6.IsValid() {
					t.Errorf("%s has no IPv6 address", n.Name)
				}
				for _, i := range n.Ifaces {
					if i.Prefix6.Bits() != 64 {
						t.Errorf("%s %s: %s", n.Name, i.Name, i.Prefix6)
					}
					if o, dup := seen[i.Prefix6.Addr()]; dup {
						t.Errorf("%s on %s and %s", i.Prefix6.Addr(), o, n.Name)
					}
					seen[i.Prefix6.Addr()] = n.Name
				}
			}
			if len(l.RealAddrs6) != 2 || l.RealAddrs6[0] != l.Reals[0].Addr6 {
				t.Errorf("RealAddrs6 %v", l.RealAddrs6)
			}
			for i, pn := range l.plan.nodes {
				lines := ipv6Lines(pn)
				if len(lines) != len(pn.links)+len(pn.routes) {
					t.Errorf("%s: %d IPv6 lines for %d links and %d routes: %q", pn.name, len(lines), len(pn.links), len(pn.routes), lines)
				}
				for _, ln := range lines[:len(pn.links)] {
					if !strings.HasSuffix(ln, " nodad") {
						t.Errorf("%s: %q without nodad", l.Nodes()[i].Name, ln)
					}
				}
			}
			method := map[Topology]string{TopologyDR: "dr", TopologyNAT: "nat", TopologyTUN: "tun"}[topo]
			text := l.ConfigDual(method, "rr", 80, 80, t.TempDir())
			cfg, err := config.Parse("lab.toml", []byte(text))
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			if len(cfg.Services) != 4 || !cfg.Services[2].VIP.Is6() || !cfg.Services[2].Reals[0].Address.Is6() {
				t.Errorf("services %+v", cfg.Services)
			}
		})
	}
}

func TestFour(t *testing.T) {
	for _, s := range []string{"198.18.1.100", "198.18.0.1", "198.18.255.255", "198.19.7.2", "198.19.128.0"} {
		a := netip.MustParseAddr(s)
		six, ok := Six(a)
		if !ok {
			t.Fatal(s)
		}
		if back, ok := Four(six); !ok || back != a {
			t.Errorf("Four(Six(%s)) = %s %v", s, back, ok)
		}
	}
	for _, s := range []string{"2001:2:0:1::a", "2001:2:0:1::256", "2001:2:0:1:1::1", "2001:db8::1", "2001:2:0:2000::1", "::ffff:198.18.1.1", "198.18.1.1"} {
		if a, ok := Four(netip.MustParseAddr(s)); ok {
			t.Errorf("Four(%s) = %s, want none", s, a)
		}
	}
}

// TestLayoutConfigDualStack lays out a configuration with IPv6 services: IPv6 real servers
// share the namespace of their IPv4 twins (or get one of their own, by the twin's address),
// the lab becomes dual-stack, and an IPv6 address that is no lab twin is refused by key.
func TestLayoutConfigDualStack(t *testing.T) {
	src := labHead +
		svcTOML("198.18.1.100", "tcp", 80, "dr", "198.18.1.11", "198.18.1.12") +
		svcTOML("2001:2:0:1::100", "tcp", 80, "dr", "2001:2:0:1::11", "2001:2:0:1::12") +
		svcTOML("2001:2:0:1::101", "udp", 9000, "nat", "2001:2:0:3::11", "2001:2:0:3::12") +
		svcTOML("2001:2:0:1::102", "tcp", 80, "tun", "198.18.5.11")
	src = strings.Replace(src, "[lab]\n", "[lab]\nrouter = true\n", 1)
	lay, err := LayoutConfig(parse(t, src))
	if err != nil {
		t.Fatal(err)
	}
	l := lay.Lab
	if !l.Spec.IPv6 {
		t.Fatal("an IPv6 service did not make the lab dual-stack")
	}
	if len(l.Reals) != 5 {
		t.Errorf("%d real servers, want 5 (rs1, rs2 shared by both families)", len(l.Reals))
	}
	rs1 := lay.Reals[0]
	if rs1.Addr != netip.MustParseAddr("198.18.1.11") || len(rs1.VIPs) != 2 || rs1.VIPs[1] != netip.MustParseAddr("2001:2:0:1::100") {
		t.Errorf("rs1 = %+v", rs1)
	}
	for _, n := range l.Nodes() {
		if !n.Addr6.IsValid() {
			t.Errorf("%s has no IPv6 address", n.Name)
		}
	}
	if rs3 := l.Reals[2]; rs3.Addr6 != netip.MustParseAddr("2001:2:0:3::11") {
		t.Errorf("rs3 IPv6 %s", rs3.Addr6)
	}
	if got := lay.VIPs; len(got) != 4 || got[1] != netip.MustParseAddr("2001:2:0:1::100") {
		t.Errorf("VIPs %v", got)
	}
	if !strings.Contains(lay.Describe(), "2001:2:0:1::2/64") {
		t.Errorf("Describe lacks the director's IPv6 address:\n%s", lay.Describe())
	}

	bad := labHead + svcTOML("2001:db8::100", "tcp", 80, "dr", "2001:2:0:1::11")
	_, err = LayoutConfig(parse(t, bad))
	if err == nil || !strings.Contains(err.Error(), "service[0].vip") || !strings.Contains(err.Error(), "2001:db8::100") {
		t.Errorf("a non-lab IPv6 VIP: %v", err)
	}
}

// TestDemoConfigDual checks that the demo's dual-stack configuration validates and lays
// out: six real servers, each with both families, and the IPv6 VIPs on the reals' lo.
func TestDemoConfigDual(t *testing.T) {
	for _, withTUN := range []bool{false, true} {
		cfg := parse(t, DemoConfigDual("/run/uvs/x.sock", "d-", withTUN))
		lay, err := LayoutConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]int{false: 4, true: 6}[withTUN]
		if !lay.Lab.Spec.IPv6 || len(lay.Lab.Reals) != want {
			t.Errorf("withTUN %v: IPv6 %v, %d reals, want %d", withTUN, lay.Lab.Spec.IPv6, len(lay.Lab.Reals), want)
		}
		if r := lay.Reals[0]; !slices.Contains(r.VIPs, netip.MustParseAddr("2001:2:0:1::100")) {
			t.Errorf("rs1 VIPs %v", r.VIPs)
		}
	}
}

// TestIfaceJSONDualStack round-trips a dual-stack interface through the lab state's JSON
// (`uvs lab status` and `uvs bench` read it back), and an IPv4-only one without "prefix6".
func TestIfaceJSONDualStack(t *testing.T) {
	for _, in := range []Iface{
		{Name: "eth0", Prefix: netip.MustParsePrefix("198.18.1.10/24"), Prefix6: netip.MustParsePrefix("2001:2:0:1::10/64")},
		{Name: "eth1", Prefix: netip.MustParsePrefix("198.18.3.1/24")},
	} {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out Iface
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if out != in || !in.Prefix6.IsValid() && strings.Contains(string(b), "prefix6") {
			t.Errorf("%s: read back %+v from %s", in.Name, out, b)
		}
	}
}
