package config

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"
)

// Defaults and limits of the [bgp] table.
const (
	DefaultBGPDrainTime   = 5 * time.Second  // DefaultBGPDrainTime is bgp.drain_time's default.
	DefaultBGPHoldTime    = 90 * time.Second // DefaultBGPHoldTime is bgp.neighbor.hold_time's default, RFC 4271 section 10.
	MinBGPHoldTime        = 3 * time.Second  // MinBGPHoldTime is the least hold time RFC 4271 section 4.2 allows (0 is refused: no keepalives).
	MaxBGPHoldTime        = 65535 * time.Second
	MaxBGPDrainTime       = 10 * time.Minute
	DefaultBGPMaxPrefixes = 100     // DefaultBGPMaxPrefixes is bgp.max_prefixes' default: uvs accepts no route, so a neighbour that sends many is misconfigured.
	MaxBGPMaxPrefixes     = 1000000 // MaxBGPMaxPrefixes bounds bgp.max_prefixes.
	MaxBGPPasswordBytes   = 80      // MaxBGPPasswordBytes is TCP_MD5SIG_MAXKEYLEN (include/uapi/linux/tcp.h).
	maxBGPNeighbors       = 64      // bound on [[bgp.neighbor]] entries
	maxASN                = math.MaxUint32
)

// BGP is the [bgp] table: the embedded BGP speaker that announces the VIPs (scale-out over
// ECMP). Present is false when the file has no [bgp]; the other fields are then zero.
type BGP struct {
	Present     bool
	ASN         uint32        // Key asn: local AS.
	RouterID    netip.Addr    // Key router_id: IPv4.
	NextHop     netip.Addr    // Key next_hop: the next hop announced with every IPv4 VIP; defaults to RouterID.
	NextHop6    netip.Addr    // Key next_hop6: the next hop of the IPv6 VIPs (/128s) to IPv6 neighbours; invalid = each session's local address.
	DrainTime   time.Duration // Key drain_time: forwarding goes on this long after the routes are withdrawn.
	Passive     bool          // Key passive: also accept sessions on port 179 (needs CAP_NET_BIND_SERVICE).
	MaxPrefixes int           // Key max_prefixes: a neighbour that sends more is shut down.
	Neighbors   []Neighbor    // [[bgp.neighbor]].
	Line        int           // Line of the [bgp] header; 0 if unknown.
}

// Neighbor is one [[bgp.neighbor]]: a BGP peer, usually the router in front of the directors.
type Neighbor struct {
	Address  netip.Addr    // Key address: IPv4 (carries the /32s) or global IPv6 (carries the /128s).
	ASN      uint32        // Key asn: the neighbour's AS.
	HoldTime time.Duration // Key hold_time: proposed hold time; keepalives every third of it.
	// Password (key password) or PasswordFile (key password_file, read by the speaker at
	// every apply) turns on TCP MD5 signatures (RFC 2385). Neither is ever printed.
	Password     string
	PasswordFile string
	BFD          bool // Key bfd: RFC 5880 liveness detection (GoBGP's single-hop BFD).
	Line         int  // Line of the [[bgp.neighbor]] header; 0 if unknown.
}

// NextHopOrRouterID returns the next hop to announce.
func (b *BGP) NextHopOrRouterID() netip.Addr {
	if b.NextHop.IsValid() {
		return b.NextHop
	}
	return b.RouterID
}

func (d *decoder) bgp(t *table, b *BGP, present bool) {
	*b = BGP{}
	if !present {
		t.done()
		return
	}
	*b = BGP{Present: true, DrainTime: DefaultBGPDrainTime, MaxPrefixes: DefaultBGPMaxPrefixes, Line: d.lines.line("bgp")}
	var n int64
	if t.integer("asn", 1, maxASN, &n) {
		b.ASN = uint32(n)
	}
	t.addr("router_id", &b.RouterID)
	var nh string
	if t.str("next_hop", &nh) && nh != "" {
		a, err := netip.ParseAddr(nh)
		if err != nil {
			t.d.problem(t.key("next_hop"), "invalid IP address %q", nh)
		} else {
			b.NextHop = a
		}
	}
	if t.str("next_hop6", &nh) && nh != "" {
		a, err := netip.ParseAddr(nh)
		if err != nil {
			t.d.problem(t.key("next_hop6"), "invalid IP address %q", nh)
		} else {
			b.NextHop6 = a
		}
	}
	t.duration("drain_time", &b.DrainTime)
	t.boolean("passive", &b.Passive)
	t.int("max_prefixes", &b.MaxPrefixes)
	for _, nt := range t.tables("neighbor") {
		nb := Neighbor{HoldTime: DefaultBGPHoldTime, Line: d.lines.line(nt.path)}
		if nt.integer("asn", 1, maxASN, &n) {
			nb.ASN = uint32(n)
		}
		nt.addr("address", &nb.Address)
		nt.duration("hold_time", &nb.HoldTime)
		nt.str("password", &nb.Password)
		nt.str("password_file", &nb.PasswordFile)
		nt.boolean("bfd", &nb.BFD)
		nt.done()
		b.Neighbors = append(b.Neighbors, nb)
	}
	t.done()
}

func (v *validator) bgp(c *Config) {
	b := &c.BGP
	if !b.Present {
		return
	}
	if b.ASN == 0 {
		v.problem("bgp.asn", b.Line, "required: the local AS number")
	}
	if !b.RouterID.IsValid() {
		v.problem("bgp.router_id", b.Line, "required: an IPv4 address, usually the director's own address towards the router")
	} else if !b.RouterID.Is4() {
		v.problem("bgp.router_id", b.Line, "must be an IPv4 address")
	}
	if b.NextHop.IsValid() && (!b.NextHop.Is4() || b.NextHop.IsUnspecified()) {
		v.problem("bgp.next_hop", b.Line, "must be an IPv4 address (or \"\" for router_id)")
	}
	v.bgpNextHop6(b)
	if b.DrainTime < 0 || b.DrainTime > MaxBGPDrainTime {
		v.problem("bgp.drain_time", b.Line, "%s is out of range 0s..%s", b.DrainTime, MaxBGPDrainTime)
	}
	if b.MaxPrefixes < 1 || b.MaxPrefixes > MaxBGPMaxPrefixes {
		v.problem("bgp.max_prefixes", b.Line, "%d is out of range 1..%d", b.MaxPrefixes, MaxBGPMaxPrefixes)
	}
	if len(c.VRRP) > 0 {
		// ECMP spreads a VIP over every director while VRRP gives it to one: the two models
		// exclude each other (docs/operations.md).
		v.problem("bgp", b.Line, "cannot be combined with [[vrrp]]: BGP spreads a VIP over every director, VRRP gives it to one")
	}
	if len(b.Neighbors) == 0 {
		v.problem("bgp.neighbor", b.Line, "required: at least one [[bgp.neighbor]]")
	}
	if len(b.Neighbors) > maxBGPNeighbors {
		v.problem("bgp.neighbor", b.Line, "%d neighbours; at most %d", len(b.Neighbors), maxBGPNeighbors)
	}
	for i := range b.Neighbors {
		n := &b.Neighbors[i]
		k := indexKey("bgp.neighbor", i)
		switch {
		case !n.Address.IsValid():
			v.problem(k+".address", n.Line, "required: the neighbour's IPv4 or IPv6 address")
		case n.Address.Is4In6() || n.Address.Zone() != "" || n.Address.IsUnspecified() || n.Address.IsMulticast() || n.Address.IsLoopback():
			v.problem(k+".address", n.Line, "must be a unicast IPv4 or IPv6 address")
		case n.Address.IsLinkLocalUnicast():
			v.problem(k+".address", n.Line, "%s is link-local: use the neighbour's global IPv6 address on the link", n.Address)
		case slices.IndexFunc(b.Neighbors, func(o Neighbor) bool { return o.Address == n.Address }) < i:
			v.problem(k+".address", n.Line, "duplicate neighbour %s", n.Address)
		}
		if n.ASN == 0 {
			v.problem(k+".asn", n.Line, "required: the neighbour's AS number")
		}
		if n.HoldTime < MinBGPHoldTime || n.HoldTime > MaxBGPHoldTime || n.HoldTime%time.Second != 0 {
			v.problem(k+".hold_time", n.Line, "%s: want whole seconds in %d..%d (RFC 4271)", n.HoldTime, MinBGPHoldTime/time.Second, MaxBGPHoldTime/time.Second)
		}
		if n.Password != "" && n.PasswordFile != "" {
			v.problem(k+".password", n.Line, "give password or password_file, not both")
		}
		if len(n.Password) > MaxBGPPasswordBytes {
			v.problem(k+".password", n.Line, "longer than the %d bytes TCP MD5 allows", MaxBGPPasswordBytes)
		}
	}
	// The shield drops every packet to a VIP before the kernel sees it: BGP to or from a VIP
	// address would never reach the speaker.
	isVIP := func(a netip.Addr) bool {
		return slices.ContainsFunc(c.Services, func(s Service) bool { return s.VIP == a })
	}
	if isVIP(b.RouterID) {
		v.problem("bgp.router_id", b.Line, "%s is a VIP: the director drops traffic to its VIPs before its kernel sees it, BGP included; use the director's own address", b.RouterID)
	}
	if isVIP(b.NextHop6) {
		v.problem("bgp.next_hop6", b.Line, "%s is a VIP: the router would send VIP traffic to itself; use the director's own address", b.NextHop6)
	}
	if isVIP(b.NextHop) {
		v.problem("bgp.next_hop", b.Line, "%s is a VIP: the router would send VIP traffic to itself; use the director's own address", b.NextHop)
	}
	for i := range b.Neighbors {
		if n := &b.Neighbors[i]; isVIP(n.Address) {
			v.problem(indexKey("bgp.neighbor", i)+".address", n.Line, "%s is a VIP of this director", n.Address)
		}
	}
	for i := range c.Services {
		s := &c.Services[i]
		nat := s.Forward == NAT
		for j := range s.Reals {
			nat = nat || s.Reals[j].Forward == NAT
		}
		if nat {
			v.problem(indexKey("service", i)+".forward", s.Line,
				"nat cannot be used with [bgp]: a router spreads flows over several directors, and a real server's replies go to the one director it routes through, not the one holding the translation; use dr or tun")
		}
	}
}

// Warnings returns what is valid but probably wrong in c, in the same form as problems.
// uvs check prints them; they do not make the file invalid.
func Warnings(c *Config) []Problem {
	var out []Problem
	if c.BGP.Present && !c.Conntrack.SloppyTCP {
		out = append(out, Problem{File: c.Source, Line: c.BGP.Line, Key: "conntrack.sloppy_tcp",
			Msg: "warning: [bgp] without sloppy_tcp = true: when the router moves a flow to another director, that director drops its mid-flow packets instead of picking the connection up"})
	}
	out = append(out, bgpFamilyWarnings(c)...)
	if c.BGP.Present {
		for i := range c.Services {
			s := &c.Services[i]
			switch s.Scheduler {
			case "mh", "sh", "dh":
				continue
			}
			out = append(out, Problem{File: c.Source, Line: s.Line, Key: indexKey("service", i) + ".scheduler",
				Msg: fmt.Sprintf("warning: %s with [bgp]: a director that picks up a flow moved by the router schedules it afresh, usually to another real server, which resets it; use mh (consistent hashing, the same choice on every director)", s.Scheduler)})
		}
	}
	return out
}

// String describes n without its password.
func (n *Neighbor) String() string {
	return fmt.Sprintf("%s AS%d", n.Address, n.ASN)
}
