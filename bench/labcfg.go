package bench

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/uvs-project/uvs/config"
)

// ErrLayout reports a configuration whose services and real servers cannot
// be laid out as a namespace lab.
var ErrLayout = errors.New("bench: lab layout")

// LabReal is a real server of a lab built from a configuration: what it
// must be prepared for and which test servers it runs.
type LabReal struct {
	Node     string         // Node name: "rs1", ...
	Addr     netip.Addr     // Its address, from the file.
	Forward  config.Forward // How the director reaches it; one per address.
	VIPs     []netip.Addr   // VIPs it serves (dr and tun put them on lo).
	TCPPorts []int          // Test HTTP servers.
	UDPPorts []int          // Test UDP echo servers.
}

// ConfigLayout is the lab that a configuration describes, before it is built.
type ConfigLayout struct {
	Lab   *Lab
	Reals []LabReal // In the order of Lab.Reals.
	VIPs  []netip.Addr
}

// allPortsHTTP is the test server port of an all-ports (port 0) service.
const allPortsHTTP = 80

// LayoutConfig lays out the lab for the services of cfg, with cfg.Lab's
// options: the clients' segment is the /24 of the DR real servers (or, with
// none, of the first VIP); NAT real servers get a second segment behind the
// director, whose second interface is the real servers' gateway; TUN real
// servers get a segment behind a router. Every address comes from the file;
// the director, clients and router take free host numbers. An error wraps
// ErrLayout and lists every problem.
func LayoutConfig(cfg *config.Config) (*ConfigLayout, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrLayout, fmt.Sprintf(format, args...)))
	}
	if len(cfg.Services) == 0 {
		bad("no [[service]]: the lab is laid out from the services and their real servers")
		return nil, errors.Join(errs...)
	}
	vips := []netip.Addr{} // laid out by their IPv4 twins (layoutKey); cfgVIPs as written
	var cfgVIPs []netip.Addr
	realIdx := map[netip.Addr]int{}
	var reals []LabReal
	dual := false // an IPv6 address makes the lab dual-stack (lab6.go)
	for i, s := range cfg.Services {
		vk, err := layoutKey(s.VIP)
		if err != nil {
			errs = append(errs, fmt.Errorf("service[%d].vip: %w", i, err))
			continue
		}
		dual = dual || s.VIP.Is6()
		if !slices.Contains(vips, vk) {
			vips = append(vips, vk)
		}
		if !slices.Contains(cfgVIPs, s.VIP) {
			cfgVIPs = append(cfgVIPs, s.VIP)
		}
		tcp, udp := s.Protocol == config.TCP, s.Protocol == config.UDP
		for j, r := range s.Reals {
			key, err := layoutKey(r.Address)
			if err != nil {
				errs = append(errs, fmt.Errorf("service[%d].real[%d].address: %w", i, j, err))
				continue
			}
			dual = dual || r.Address.Is6()
			k, ok := realIdx[key]
			if !ok {
				k = len(reals)
				realIdx[key] = k
				reals = append(reals, LabReal{Node: fmt.Sprintf("rs%d", k+1), Addr: key, Forward: r.Forward})
			}
			lr := &reals[k]
			if lr.Forward != r.Forward {
				bad("service[%d].real[%d]: %s is forwarded by %s here and by %s in another service; the lab gives each real server one method", i, j, r.Address, r.Forward, lr.Forward)
			}
			if !slices.Contains(lr.VIPs, s.VIP) {
				lr.VIPs = append(lr.VIPs, s.VIP)
			}
			ports := []uint16{r.Port}
			if len(s.Ports) > 0 && r.Forward != config.NAT || r.Port == 0 && len(s.Ports) > 0 {
				ports = s.Ports
			}
			for _, p := range ports {
				pp := int(p)
				if pp == 0 {
					pp = allPortsHTTP
				}
				if tcp && !slices.Contains(lr.TCPPorts, pp) {
					lr.TCPPorts = append(lr.TCPPorts, pp)
				}
				if udp && !slices.Contains(lr.UDPPorts, pp) {
					lr.UDPPorts = append(lr.UDPPorts, pp)
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, v := range vips {
		if _, ok := realIdx[v]; ok {
			bad("%s is both a VIP and a real server", v)
		}
	}
	if len(reals) > MaxReals {
		bad("%d real servers; the lab holds at most %d", len(reals), MaxReals)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.BGP.Present {
		if dual {
			return nil, fmt.Errorf("%w: a lab with [bgp] is IPv4 only", ErrLayout)
		}
		return layoutBGP(cfg, reals, vips)
	}
	if cfg.Lab.Directors > 1 {
		return nil, fmt.Errorf("%w: lab.directors = %d needs [bgp]: several directors share the traffic only behind a router that spreads it", ErrLayout, cfg.Lab.Directors)
	}
	s24 := func(a netip.Addr) netip.Prefix { p, _ := a.Prefix(24); return p }
	// The clients' segment.
	front := s24(vips[0])
	for _, r := range reals {
		if r.Forward == config.DR {
			front = s24(r.Addr)
			break
		}
	}
	var natSeg, tunSeg netip.Prefix
	for _, r := range reals {
		seg := s24(r.Addr)
		switch r.Forward {
		case config.DR:
			if seg != front {
				bad("dr real server %s is not on the clients' segment %s: direct routing rewrites only the MAC, so every dr real server must share one /24", r.Addr, front)
			}
		case config.NAT:
			switch {
			case seg == front:
				bad("nat real server %s is on the clients' segment %s: its replies would bypass the director; put nat real servers in another /24", r.Addr, front)
			case natSeg.IsValid() && seg != natSeg:
				bad("nat real servers %s and %s are in different /24s; the lab gives the director one nat segment", r.Addr, natSeg.Addr())
			default:
				natSeg = seg
			}
		case config.TUN:
			switch {
			case seg == front:
				// On-link: the director tunnels to it directly.
			case seg == natSeg:
				bad("tun real server %s shares a /24 with nat real servers; put it in its own /24 behind the router", r.Addr)
			case tunSeg.IsValid() && seg != tunSeg:
				bad("tun real servers %s and %s are in different /24s; the lab has one router segment", r.Addr, tunSeg.Addr())
			default:
				tunSeg = seg
			}
		}
	}
	if tunSeg.IsValid() && tunSeg == natSeg {
		bad("tun and nat real servers share %s", tunSeg)
	}
	if tunSeg.IsValid() && !cfg.Lab.Router {
		bad("tun real servers in %s need the router (lab.router = true)", tunSeg)
	}
	wantIfaces := 1
	if natSeg.IsValid() {
		wantIfaces = 2
	}
	if n := len(cfg.Director.Interfaces); n != wantIfaces {
		if wantIfaces == 2 {
			bad("director.interfaces has %d names; the lab gives the director 2 links, the clients' segment %s and the nat segment %s: write interfaces = [\"eth0\", \"eth1\"]", n, front, natSeg)
		} else {
			bad("director.interfaces has %d names; the lab gives the director 1 link (on %s, no nat real servers): write interfaces = [\"eth0\"]", n, front)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// Host numbers in use per segment.
	used := map[netip.Prefix]map[int]bool{}
	mark := func(a netip.Addr) {
		p := s24(a)
		if used[p] == nil {
			used[p] = map[int]bool{0: true, 255: true}
		}
		used[p][int(a.As4()[3])] = true
	}
	for _, v := range vips {
		mark(v)
	}
	for _, r := range reals {
		mark(r.Addr)
	}
	for _, a := range pairAddrs(cfg) {
		mark(a)
	}
	take := func(seg netip.Prefix, prefer ...int) (netip.Prefix, bool) {
		if used[seg] == nil {
			used[seg] = map[int]bool{0: true, 255: true}
		}
		cands := append(prefer, []int{}...)
		for h := 1; h < 255; h++ {
			cands = append(cands, h)
		}
		for _, h := range cands {
			if !used[seg][h] {
				used[seg][h] = true
				return host(seg, h), true
			}
		}
		bad("segment %s has no free host number left for the lab's own nodes", seg)
		return netip.Prefix{}, false
	}

	spec := LabSpec{Prefix: cfg.Lab.Prefix, Topology: TopologyDR, Reals: len(reals), Clients: cfg.Lab.Clients,
		MTU: cfg.Lab.MTU, DirectorTxOff: !cfg.Lab.TXOffload, IPv6: dual}
	var p plan
	p.vip = vips[0]
	p.segments = []planSegment{{"br-a", front}}
	natIdx, tunIdx := -1, -1
	if natSeg.IsValid() {
		spec.Topology = TopologyNAT
		natIdx = len(p.segments)
		p.segments = append(p.segments, planSegment{"br-b", natSeg})
	}
	if tunSeg.IsValid() {
		if spec.Topology == TopologyDR {
			spec.Topology = TopologyTUN
		}
		tunIdx = len(p.segments)
		p.segments = append(p.segments, planSegment{"br-c", tunSeg})
	}
	mk := func(node string, n int, dev string, seg int, pre netip.Prefix) planLink {
		return planLink{dev: dev, peer: fmt.Sprintf("%s-e%d", node, n), segment: seg, prefix: pre}
	}
	dirFront, _ := take(front, hostDirector)
	var routerFront, routerTun netip.Prefix
	if tunSeg.IsValid() {
		routerFront, _ = take(front, hostGateway)
		routerTun, _ = take(tunSeg, hostGateway)
	}
	var clientRoutes []planRoute
	for _, v := range vips {
		if !front.Contains(v) {
			clientRoutes = append(clientRoutes, planRoute{dst: netip.PrefixFrom(v, 32), via: dirFront.Addr()})
		}
	}
	if tunSeg.IsValid() {
		clientRoutes = append(clientRoutes, planRoute{dst: tunSeg, via: routerFront.Addr()})
	}
	for i := range spec.Clients {
		name, h := "client", hostClient
		if i > 0 {
			name, h = fmt.Sprintf("client%d", i+1), hostClient2+i
		}
		a, _ := take(front, h)
		p.nodes = append(p.nodes, planNode{name: name, role: roleClient,
			links: []planLink{mk(name, 0, "eth0", 0, a)}, routes: clientRoutes})
	}
	dir := planNode{name: "director", role: roleDirector,
		links: []planLink{mk("director", 0, cfg.Director.Interfaces[0], 0, dirFront)}}
	var dirNat netip.Prefix
	if natSeg.IsValid() {
		dirNat, _ = take(natSeg, hostGateway)
		dir.links = append(dir.links, mk("director", 1, cfg.Director.Interfaces[1], natIdx, dirNat))
	}
	if tunSeg.IsValid() {
		dir.routes = []planRoute{{dst: tunSeg, via: routerFront.Addr()}}
	}
	p.nodes = append(p.nodes, dir)
	natGateway := dirNat.Addr()
	if isPair(cfg) {
		var addrs []netip.Prefix
		for _, l := range dir.links {
			a, _ := take(s24(l.prefix.Addr()), hostDirector+1)
			addrs = append(addrs, a)
		}
		p.nodes = append(p.nodes, pairNode(dir, addrs))
		if natSeg.IsValid() {
			gw, err := pairGateway(cfg, natSeg)
			if err != nil {
				errs = append(errs, err)
			}
			natGateway = gw
		}
		for _, v := range vips {
			if !front.Contains(v) {
				bad("vip %s is not on the clients' segment %s: a director pair needs its VIPs on-link, where VRRP moves them", v, front)
			}
		}
	}
	if tunSeg.IsValid() {
		p.nodes = append(p.nodes, planNode{name: "router", role: roleRouter, links: []planLink{
			mk("router", 0, "eth0", 0, routerFront), mk("router", 1, "eth1", tunIdx, routerTun)}})
	}
	for _, r := range reals {
		seg, segIdx := s24(r.Addr), 0
		var routes []planRoute
		switch {
		case r.Forward == config.NAT:
			segIdx = natIdx
			routes = []planRoute{{via: natGateway}}
		case seg == tunSeg:
			segIdx = tunIdx
			routes = []planRoute{{via: routerTun.Addr()}}
		}
		p.nodes = append(p.nodes, planNode{name: r.Node, role: roleReal,
			links: []planLink{mk(r.Node, 0, "eth0", segIdx, netip.PrefixFrom(r.Addr, 24))}, routes: routes})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if _, err := spec.withDefaults(); err != nil {
		return nil, err
	}
	l := labFromPlan(spec, p)
	return &ConfigLayout{Lab: l, Reals: reals, VIPs: cfgVIPs}, nil
}

// Describe returns one line per node: name, namespace and addresses.
func (c *ConfigLayout) Describe() string {
	var b strings.Builder
	for _, n := range c.Lab.Nodes() {
		fmt.Fprintf(&b, "%-9s %-22s", n.Name, n.NS)
		for _, i := range n.Ifaces {
			fmt.Fprintf(&b, " %s %s", i.Name, i.Prefix)
			if i.Prefix6.IsValid() {
				fmt.Fprintf(&b, " %s", i.Prefix6)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
