package config

// The sync transport is one family, as the kernel's sync daemon (an IPv4 or an IPv6
// multicast group): unicast peers all IPv4 or all IPv6, or without peers the group's family.
// Either family carries IPv4 and IPv6 connection records.

// IPv6 reports whether the sync socket is IPv6: its peers are, or without peers its group.
func (s *Sync) IPv6() bool {
	if len(s.Peers) > 0 {
		return s.Peers[0].Addr().Is6()
	}
	return s.Group.Is6()
}

// syncFamily checks the group (a multicast address of either family) and that every peer is
// of the first one's family.
func (v *validator) syncFamily(s *Sync) {
	if !s.Group.IsMulticast() || s.Group.Is4In6() || s.Group.Zone() != "" {
		v.problem("sync.group", s.Line, "%s is not an IPv4 or IPv6 multicast address", s.Group)
	}
	for i, p := range s.Peers {
		if p.Addr().Is6() != s.Peers[0].Addr().Is6() {
			v.problem(indexKey("sync.peers", i), s.Line, "%s is not of the first peer's family: the sync socket is one family (IPv4 or IPv6; either carries IPv6 connections)", p.Addr())
		}
	}
}
