package bench

import (
	"fmt"
	"net/netip"

	"github.com/uvs-project/uvs/config"
)

// A configuration with [[vrrp]] instances is laid out as a director pair: a second
// director, "director2", with the same links as the director (its own host numbers), runs
// the same file with its own control socket; VRRP elects the master (the same priority on
// both: the higher address wins). NAT real servers then route through a floating gateway,
// an address of the nat segment that a [[vrrp]] instance owns, so that their replies follow
// the master.

// pairDirector2 is the second director's node name.
const pairDirector2 = "director2"

// isPair reports whether cfg lays out a director pair.
func isPair(cfg *config.Config) bool { return len(cfg.VRRP) > 0 }

// pairAddrs returns every address the [[vrrp]] instances own; the lab's own nodes must not
// take them.
func pairAddrs(cfg *config.Config) []netip.Addr {
	var out []netip.Addr
	for i := range cfg.VRRP {
		out = append(out, cfg.OwnedVIPs(i)...)
	}
	return out
}

// pairGateway returns the floating gateway of the nat segment: the first address a [[vrrp]]
// instance owns inside it.
func pairGateway(cfg *config.Config, natSeg netip.Prefix) (netip.Addr, error) {
	for _, a := range pairAddrs(cfg) {
		if natSeg.Contains(a) {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%w: a director pair with nat real servers needs a floating gateway: list an address of %s in the vips of a [[vrrp]] on %s (the real servers route through it)",
		ErrLayout, natSeg, natInterface(cfg))
}

func natInterface(cfg *config.Config) string {
	if len(cfg.Director.Interfaces) > 1 {
		return cfg.Director.Interfaces[1]
	}
	return "the second interface"
}

// pairNode returns director2's plan node: dir's links, on the same segments, with the
// given addresses, and dir's routes.
func pairNode(dir planNode, addrs []netip.Prefix) planNode {
	n := planNode{name: pairDirector2, role: roleDirector2, routes: dir.routes}
	for i, l := range dir.links {
		n.links = append(n.links, planLink{dev: l.dev, peer: fmt.Sprintf("%s-e%d", pairDirector2, i), segment: l.segment, prefix: addrs[i]})
	}
	return n
}
