package config

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
