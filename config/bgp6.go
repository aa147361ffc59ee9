package config

import "fmt"

// IPv6 VIPs are announced as /128s (IPv6 unicast, AFI 2 SAFI 1) on sessions to IPv6
// neighbours; IPv4 VIPs as /32s on sessions to IPv4 neighbours. A dual-stack router gets one
// session per family, as bird and FRR are usually configured.

// bgpNextHop6 checks next_hop6: a global unicast IPv6 address (a link-local next hop needs
// the interface, which a BGP next hop cannot carry alone).
func (v *validator) bgpNextHop6(b *BGP) {
	a := b.NextHop6
	if !a.IsValid() {
		return
	}
	if !a.Is6() || a.Is4In6() || a.Zone() != "" || !a.IsGlobalUnicast() {
		v.problem("bgp.next_hop6", b.Line, "must be a global unicast IPv6 address (or \"\" for each session's local address)")
	}
}

// HasIPv6Neighbor reports whether any neighbour is IPv6: only those carry the /128s.
func (b *BGP) HasIPv6Neighbor() bool {
	for i := range b.Neighbors {
		if b.Neighbors[i].Address.Is6() {
			return true
		}
	}
	return false
}

// bgpFamilyWarnings warns about VIPs that no session can carry: an IPv6 VIP without an IPv6
// neighbour (or an IPv4 VIP without an IPv4 one) is announced to nobody.
func bgpFamilyWarnings(c *Config) []Problem {
	if !c.BGP.Present {
		return nil
	}
	has := map[bool]bool{}
	for i := range c.BGP.Neighbors {
		has[c.BGP.Neighbors[i].Address.Is6()] = true
	}
	var out []Problem
	warned := map[bool]bool{}
	for i := range c.Services {
		s := &c.Services[i]
		v6 := s.VIP.Is6()
		if !s.VIP.IsValid() || has[v6] || warned[v6] {
			continue
		}
		warned[v6] = true
		fam := "IPv4"
		if v6 {
			fam = "IPv6"
		}
		out = append(out, Problem{File: c.Source, Line: s.Line, Key: indexKey("service", i) + ".vip",
			Msg: fmt.Sprintf("warning: %s is %s and no [[bgp.neighbor]] is: each session carries its own family, so the %s VIPs are announced to nobody", s.VIP, fam, fam)})
	}
	return out
}
