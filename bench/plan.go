package bench

import (
	"fmt"
	"net/netip"
)

// Segments of the labs. Each lab lives in its own namespaces, so labs running
// at the same time may reuse them.
var (
	segDR   = netip.MustParsePrefix("198.18.1.0/24")
	segNATA = netip.MustParsePrefix("198.18.2.0/24")
	segNATB = netip.MustParsePrefix("198.18.3.0/24")
	segTUNA = netip.MustParsePrefix("198.18.4.0/24")
	segTUNC = netip.MustParsePrefix("198.18.5.0/24")
)

// Host numbers within a segment.
const (
	hostGateway  = 1   // director (NAT segment B) or router
	hostDirector = 2   // director on the clients' segment
	hostClient   = 10  // first client
	hostReal     = 11  // first real server
	hostVIP      = 100 // VIP
	hostClient2  = 200 // extra client i (1-based) gets hostClient2+i
)

// plan is the pure description of a lab that NewLab carries out.
type plan struct {
	vip      netip.Addr
	segments []planSegment
	nodes    []planNode
}

type planSegment struct {
	bridge string
	prefix netip.Prefix
}

type planNode struct {
	name   string
	role   role
	links  []planLink
	routes []planRoute
}

type planLink struct {
	dev     string // inside the node
	peer    string // inside the switch namespace
	segment int    // index into plan.segments
	prefix  netip.Prefix
}

type planRoute struct {
	dst netip.Prefix // the zero Prefix means default
	via netip.Addr
}

type role uint8

const (
	roleInvalid role = iota
	roleClient
	roleDirector
	roleRouter
	roleReal
	roleDirector2 // the second director of a VRRP pair (labpair.go)
)

// host returns host number h of the /24 p, with p's length.
func host(p netip.Prefix, h int) netip.Prefix {
	a := p.Addr().As4()
	a[3] = byte(h)
	return netip.PrefixFrom(netip.AddrFrom4(a), p.Bits())
}

// newPlan lays out the lab for a spec that withDefaults accepted.
func newPlan(s LabSpec) plan {
	if s.Topology == TopologyECMP {
		return newECMPPlan(s)
	}
	var p plan
	var front, back netip.Prefix // clients' segment; real servers' segment
	switch s.Topology {
	case TopologyDR:
		front, back = segDR, segDR
		p.segments = []planSegment{{"br-a", segDR}}
	case TopologyNAT:
		front, back = segNATA, segNATB
		p.segments = []planSegment{{"br-a", segNATA}, {"br-b", segNATB}}
	case TopologyTUN:
		front, back = segTUNA, segTUNC
		p.segments = []planSegment{{"br-a", segTUNA}, {"br-c", segTUNC}}
	}
	p.vip = host(front, hostVIP).Addr()
	backSeg := len(p.segments) - 1
	link := func(node, dev string, seg int, h int) planLink {
		return planLink{dev: dev, peer: node + "-" + dev, segment: seg, prefix: host(p.segments[seg].prefix, h)}
	}
	// Clients reach the real servers' segment through the router (TUN); in
	// NAT only the director may reach it, and it is on-link there.
	var clientRoutes []planRoute
	if s.Topology == TopologyTUN {
		clientRoutes = []planRoute{{dst: back, via: host(front, hostGateway).Addr()}}
	}
	for i := range s.Clients {
		name, h := "client", hostClient
		if i > 0 {
			name, h = fmt.Sprintf("client%d", i+1), hostClient2+i
		}
		p.nodes = append(p.nodes, planNode{name: name, role: roleClient,
			links: []planLink{link(name, "eth0", 0, h)}, routes: clientRoutes})
	}
	dir := planNode{name: "director", role: roleDirector,
		links: []planLink{link("director", "eth0", 0, hostDirector)}}
	switch s.Topology {
	case TopologyNAT:
		dir.links = append(dir.links, link("director", "eth1", backSeg, hostGateway))
	case TopologyTUN:
		dir.routes = []planRoute{{dst: back, via: host(front, hostGateway).Addr()}}
	}
	p.nodes = append(p.nodes, dir)
	if s.Topology == TopologyTUN {
		p.nodes = append(p.nodes, planNode{name: "router", role: roleRouter, links: []planLink{
			link("router", "eth0", 0, hostGateway), link("router", "eth1", backSeg, hostGateway)}})
	}
	var realRoutes []planRoute
	if s.Topology != TopologyDR {
		realRoutes = []planRoute{{via: host(back, hostGateway).Addr()}}
	}
	for i := range s.Reals {
		name := fmt.Sprintf("rs%d", i+1)
		p.nodes = append(p.nodes, planNode{name: name, role: roleReal,
			links: []planLink{link(name, "eth0", backSeg, hostReal+i)}, routes: realRoutes})
	}
	return p
}

// director returns the director's plan; every plan has one.
func (p plan) director() planNode {
	for _, pn := range p.nodes {
		if pn.role == roleDirector {
			return pn
		}
	}
	panic("bench: plan without a director")
}
