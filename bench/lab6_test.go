package bench

import (
	"net/netip"
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
