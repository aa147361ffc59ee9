package bench

import (
	"fmt"
	"net/netip"
)

// A dual-stack lab (LabSpec.IPv6) gives every IPv4 address of 198.18.0.0/15 an IPv6 twin in
// the benchmarking prefix 2001:2::/48 (RFC 5180), one /64 per /24 segment, written so that
// the numbers read the same: 198.18.S.H/24 is 2001:2:0:S::H/64 (198.19.S.H is
// 2001:2:0:1S::H with S in three digits), the VIP 198.18.1.100 is 2001:2:0:1::100. The
// addresses are added with nodad, and duplicate address detection is off for the link-local
// ones too, so no address is ever tentative: a test never waits for DAD or flakes on it.

// Six returns the IPv6 twin of a in a dual-stack lab, and false for an address outside
// 198.18.0.0/15.
func Six(a netip.Addr) (netip.Addr, bool) {
	if !a.Is4() {
		return netip.Addr{}, false
	}
	b := a.As4()
	var s string
	switch {
	case b[0] == 198 && b[1] == 18:
		s = fmt.Sprintf("2001:2:0:%d::%d", b[2], b[3])
	case b[0] == 198 && b[1] == 19:
		s = fmt.Sprintf("2001:2:0:1%03d::%d", b[2], b[3])
	default:
		return netip.Addr{}, false
	}
	return netip.MustParseAddr(s), true
}

// sixPrefix returns the twin of a /24 or /32 (a /64 or /128), and false where Six has none.
func sixPrefix(p netip.Prefix) (netip.Prefix, bool) {
	a, ok := Six(p.Addr())
	if !ok {
		return netip.Prefix{}, false
	}
	switch p.Bits() {
	case 24:
		return netip.PrefixFrom(a, 64), true
	case 32:
		return netip.PrefixFrom(a, 128), true
	}
	return netip.Prefix{}, false
}

// dualStack fills in the IPv6 twins of l's addresses (VIP6, RealAddrs6, each node's Addr6
// and each interface's Prefix6).
func (l *Lab) dualStack() {
	l.VIP6, _ = Six(l.VIP)
	for _, n := range l.Nodes() {
		for i := range n.Ifaces {
			n.Ifaces[i].Prefix6, _ = sixPrefix(n.Ifaces[i].Prefix)
		}
		n.Addr6, _ = Six(n.Addr)
	}
	l.RealAddrs6 = l.RealAddrs6[:0]
	for _, n := range l.Reals {
		l.RealAddrs6 = append(l.RealAddrs6, n.Addr6)
	}
}

// ipv6Lines returns the ip(8) batch lines that give node pn its IPv6 twins: an address per
// link (nodad) and a route per IPv4 route that has a twin.
func ipv6Lines(pn planNode) []string {
	var lines []string
	for _, pl := range pn.links {
		if p6, ok := sixPrefix(pl.prefix); ok {
			lines = append(lines, "addr add "+p6.String()+" dev "+pl.dev+" nodad")
		}
	}
	for _, r := range pn.routes {
		via, ok := Six(r.via)
		if !ok {
			continue
		}
		dst := "::/0" // ip -batch lines take no -6: the family comes from the addresses
		if r.dst.IsValid() {
			d, ok := sixPrefix(r.dst)
			if !ok {
				continue
			}
			dst = d.String()
		}
		lines = append(lines, "route replace "+dst+" via "+via.String())
	}
	return lines
}

// ipv6Sysctls are written in every namespace of a dual-stack lab instead of baseSysctls'
// disable_ipv6: IPv6 on, no duplicate address detection (link-local addresses are never
// tentative), no router solicitations or advertisements on the segments.
var ipv6Sysctls = map[string]string{
	"ipv6/conf/all/disable_ipv6":             "0",
	"ipv6/conf/default/disable_ipv6":         "0",
	"ipv6/conf/all/accept_dad":               "0",
	"ipv6/conf/default/accept_dad":           "0",
	"ipv6/conf/all/accept_ra":                "0",
	"ipv6/conf/default/accept_ra":            "0",
	"ipv6/conf/all/router_solicitations":     "0",
	"ipv6/conf/default/router_solicitations": "0",
}

// Four returns the IPv4 address whose twin a is (Six's inverse), and false if a is not of the
// form 2001:2:0:S::H with S and H written in decimal digits (S < 256, or 1000 + S for
// 198.19.S.H) and H < 256.
func Four(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return netip.Addr{}, false
	}
	b := a.As16()
	if b[0] != 0x20 || b[1] != 0x01 || b[2] != 0 || b[3] != 2 || b[4] != 0 || b[5] != 0 {
		return netip.Addr{}, false
	}
	for _, x := range b[8:14] {
		if x != 0 {
			return netip.Addr{}, false
		}
	}
	// dec reads a 16-bit group whose hex digits are a decimal number.
	dec := func(g uint16) (int, bool) {
		s := fmt.Sprintf("%x", g)
		n := 0
		for _, c := range s {
			if c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	seg, ok1 := dec(uint16(b[6])<<8 | uint16(b[7]))
	h, ok2 := dec(uint16(b[14])<<8 | uint16(b[15]))
	if !ok1 || !ok2 || h > 255 {
		return netip.Addr{}, false
	}
	second := byte(18)
	if seg >= 1000 {
		second, seg = 19, seg-1000
	}
	if seg > 255 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{198, second, byte(seg), byte(h)}), true
}

// layoutKey returns the IPv4 address that lays out a: a itself, or for an IPv6 address of a
// dual-stack lab its IPv4 twin (the node, segment and host number are the twin's).
func layoutKey(a netip.Addr) (netip.Addr, error) {
	if a.Is4() {
		return a, nil
	}
	f, ok := Four(a)
	if !ok {
		return netip.Addr{}, fmt.Errorf("%w: %s is not a lab IPv6 address: a dual-stack lab gives each node 2001:2:0:S::H, the twin of its 198.18.S.H (198.19.S.H is 2001:2:0:1S::H)", ErrLayout, a)
	}
	return f, nil
}
