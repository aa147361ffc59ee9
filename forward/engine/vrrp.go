package engine

import (
	"net/netip"
	"slices"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
)

// SetVRRPActive records the addresses that VRRP instances in master own, for the next
// Build. It reports whether anything changed. Without [[vrrp]] in the config it has no
// effect: the director owns every VIP.
func (g *Registry) SetVRRPActive(active []netip.Addr) bool {
	next := make(map[[16]byte]struct{}, len(active))
	for _, a := range active {
		if a.IsValid() {
			next[a.Unmap().As16()] = struct{}{}
		}
	}
	if g.vrrpActive != nil && len(next) == len(g.vrrpActive) {
		same := true
		for a := range next {
			if _, ok := g.vrrpActive[a]; !ok {
				same = false
				break
			}
		}
		if same {
			return false
		}
	}
	g.vrrpActive = next
	return true
}

// applyVRRP makes the addresses of every [[vrrp]] instance VIPs of s (so that ARP and echo
// requests for a non-service address, a NAT gateway say, are answered, and the shield's set
// never changes on a transition), and marks those that no master instance owns as standby:
// a standby address gets no ARP reply, no echo reply and no forwarding.
func (s *Snapshot) applyVRRP(cfg *config.Config, active map[[16]byte]struct{}) {
	if len(cfg.VRRP) == 0 {
		return
	}
	for i := range cfg.VRRP {
		for _, a := range cfg.OwnedVIPs(i) {
			v := a.Unmap().As16()
			s.vips[v] = struct{}{}
			if _, ok := active[v]; !ok {
				if s.standby == nil {
					s.standby = map[[16]byte]struct{}{}
				}
				s.standby[v] = struct{}{}
			}
		}
	}
}

// Standby lists the VIPs this director holds back because a VRRP backup (or fault) owns
// them, sorted.
func (s *Snapshot) Standby() []netip.Addr {
	out := make([]netip.Addr, 0, len(s.standby))
	for v := range s.standby {
		out = append(out, conntrack.Addr(v))
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// isStandby reports whether dst is a VIP held back by VRRP; one nil-map test when VRRP is off.
func (s *Snapshot) isStandby(dst [16]byte) bool {
	if s.standby == nil {
		return false
	}
	_, ok := s.standby[dst]
	return ok
}
