package bench

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/uvs-project/uvs/config"
)

// layoutBGP lays out the lab of a config with [bgp]: lab.directors directors and the DR
// real servers on one /24 (the segment of bgp.router_id, the first director's address,
// and of the first neighbour, the router's address there), the clients on a /24 of their
// own behind the router, which runs BIRD with ECMP (see StartBird). The other directors
// take the host numbers after the first. VIPs are on no segment: the router learns them
// over BGP.
func layoutBGP(cfg *config.Config, reals []LabReal, vips []netip.Addr) (*ConfigLayout, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrLayout, fmt.Sprintf(format, args...)))
	}
	b := &cfg.BGP
	s24 := func(a netip.Addr) netip.Prefix { p, _ := a.Prefix(24); return p }
	back := s24(b.RouterID)
	router := b.Neighbors[0].Address
	if !back.Contains(router) {
		bad("bgp.neighbor[0].address %s is not in %s, the segment of bgp.router_id: the lab puts the router and the directors on one /24", router, back)
	}
	if len(b.Neighbors) > 1 {
		bad("%d bgp neighbours; the lab has one router", len(b.Neighbors))
	}
	for _, r := range reals {
		switch {
		case r.Forward != config.DR:
			bad("real server %s is forwarded by %s; the lab lays out [bgp] with dr real servers only", r.Addr, r.Forward)
		case s24(r.Addr) != back:
			bad("dr real server %s is not on the directors' segment %s", r.Addr, back)
		}
	}
	if n := len(cfg.Director.Interfaces); n != 1 {
		bad("director.interfaces has %d names; the lab gives each director 1 link: write interfaces = [\"eth0\"]", n)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	used := map[int]bool{0: true, 255: true, int(router.As4()[3]): true}
	for _, r := range reals {
		used[int(r.Addr.As4()[3])] = true
	}
	for _, v := range vips {
		if back.Contains(v) {
			used[int(v.As4()[3])] = true
		}
	}
	dirs := []netip.Addr{b.RouterID}
	for h := int(b.RouterID.As4()[3]) + 1; len(dirs) < cfg.Lab.Directors && h < 255; h++ {
		if !used[h] {
			a := back.Addr().As4()
			a[3] = byte(h)
			dirs = append(dirs, netip.AddrFrom4(a))
		}
	}
	if len(dirs) < cfg.Lab.Directors {
		bad("no room for %d directors after bgp.router_id %s in %s", cfg.Lab.Directors, b.RouterID, back)
	}
	// The clients' segment: the first /24 after the directors' that holds no VIP.
	front := back
	for {
		a := front.Addr().As4()
		a[2]++
		if a[2] == 0 {
			a[1]++
		}
		front = netip.PrefixFrom(netip.AddrFrom4(a), 24)
		if !slices.ContainsFunc(vips, front.Contains) {
			break
		}
	}
	if !netip.MustParsePrefix("198.18.0.0/15").Contains(front.Addr()) {
		bad("no free /24 for the clients in 198.18.0.0/15 after %s", back)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	spec := LabSpec{Prefix: cfg.Lab.Prefix, Topology: TopologyECMP, Reals: len(reals), Clients: cfg.Lab.Clients,
		MTU: cfg.Lab.MTU, Directors: len(dirs), DirectorTxOff: !cfg.Lab.TXOffload}
	p := plan{vip: vips[0], segments: []planSegment{{"br-a", front}, {"br-b", back}}}
	mk := func(node string, dev string, seg int, a netip.Addr) planLink {
		return planLink{dev: dev, peer: node + "-" + dev, segment: seg, prefix: netip.PrefixFrom(a, 24)}
	}
	gwA := host(front, hostGateway).Addr()
	for i := range spec.Clients {
		name, h := "client", hostClient
		if i > 0 {
			name, h = fmt.Sprintf("client%d", i+1), hostClient2+i
		}
		p.nodes = append(p.nodes, planNode{name: name, role: roleClient,
			links: []planLink{mk(name, "eth0", 0, host(front, h).Addr())}, routes: []planRoute{{via: gwA}}})
	}
	for i, a := range dirs {
		name := "director"
		if i > 0 {
			name = fmt.Sprintf("director%d", i+1)
		}
		p.nodes = append(p.nodes, planNode{name: name, role: roleDirector,
			links: []planLink{mk(name, cfg.Director.Interfaces[0], 1, a)}, routes: []planRoute{{via: router}}})
	}
	p.nodes = append(p.nodes, planNode{name: "router", role: roleRouter,
		links: []planLink{mk("router", "eth0", 0, gwA), mk("router", "eth1", 1, router)}})
	for _, r := range reals {
		p.nodes = append(p.nodes, planNode{name: r.Node, role: roleReal,
			links: []planLink{mk(r.Node, "eth0", 1, r.Addr)}, routes: []planRoute{{via: router}}})
	}
	if _, err := spec.withDefaults(); err != nil {
		return nil, err
	}
	return &ConfigLayout{Lab: labFromPlan(spec, p), Reals: reals, VIPs: vips}, nil
}

// BirdPeers describes the router side of an ECMP lab's BGP sessions.
type BirdPeers struct {
	RouterID    netip.Addr   // the router's address towards the directors
	RouterASN   uint32       // the router's AS
	DirectorASN uint32       // the directors' AS
	Directors   []netip.Addr // one session each
	Hold        time.Duration
	BFD         bool
	Password    string // TCP MD5 key; "" for none
}

// birdConfig renders BIRD 2's configuration for p: one passive session per director,
// nothing exported to them, every route they announce into the kernel table as one
// multipath route ("merge paths").
func birdConfig(p BirdPeers) string {
	var b strings.Builder
	fmt.Fprintf(&b, "router id %s;\n", p.RouterID)
	b.WriteString("protocol device {}\n")
	b.WriteString("protocol kernel {\n  ipv4 { export all; };\n  merge paths on;\n}\n")
	if p.BFD {
		b.WriteString("protocol bfd {}\n")
	}
	secs := max(int(p.Hold/time.Second), 3)
	for i, d := range p.Directors {
		fmt.Fprintf(&b, "protocol bgp d%d {\n  local %s as %d;\n  neighbor %s as %d;\n  passive on;\n  hold time %d;\n  keepalive time %d;\n  connect retry time 1;\n  error wait time 1, 2;\n",
			i+1, p.RouterID, p.RouterASN, d, p.DirectorASN, secs, max(secs/3, 1))
		if p.BFD {
			b.WriteString("  bfd on;\n")
		}
		if p.Password != "" {
			fmt.Fprintf(&b, "  password %q;\n", p.Password)
		}
		b.WriteString("  ipv4 { import all; export none; };\n}\n")
	}
	return b.String()
}
