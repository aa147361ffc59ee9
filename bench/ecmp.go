package bench

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Segments of the ECMP lab and its VIP, which is on no segment: the router learns it from
// the directors over BGP.
var (
	segECMPA = netip.MustParsePrefix("198.18.9.0/24")
	segECMPB = netip.MustParsePrefix("198.18.10.0/24")
	ecmpVIP  = netip.MustParseAddr("198.18.11.100")
)

// ECMP lab AS numbers: the router's, and the directors' (one AS for all, so that their
// paths are equal and the router merges them).
const (
	ECMPRouterASN   = 65000
	ECMPDirectorASN = 65001
)

// newECMPPlan lays out TopologyECMP: clients on A with the router as their gateway; the
// router, the directors (.2, .3, ...) and the real servers on B, the real servers' gateway
// being the router.
func newECMPPlan(s LabSpec) plan {
	p := plan{vip: ecmpVIP, segments: []planSegment{{"br-a", segECMPA}, {"br-b", segECMPB}}}
	link := func(node, dev string, seg int, h int) planLink {
		return planLink{dev: dev, peer: node + "-" + dev, segment: seg, prefix: host(p.segments[seg].prefix, h)}
	}
	gwA, gwB := host(segECMPA, hostGateway).Addr(), host(segECMPB, hostGateway).Addr()
	for i := range s.Clients {
		name, h := "client", hostClient
		if i > 0 {
			name, h = fmt.Sprintf("client%d", i+1), hostClient2+i
		}
		p.nodes = append(p.nodes, planNode{name: name, role: roleClient,
			links: []planLink{link(name, "eth0", 0, h)}, routes: []planRoute{{via: gwA}}})
	}
	for i := range s.Directors {
		name := "director"
		if i > 0 {
			name = fmt.Sprintf("director%d", i+1)
		}
		p.nodes = append(p.nodes, planNode{name: name, role: roleDirector,
			links: []planLink{link(name, "eth0", 1, hostDirector+i)}, routes: []planRoute{{via: gwB}}})
	}
	p.nodes = append(p.nodes, planNode{name: "router", role: roleRouter, links: []planLink{
		link("router", "eth0", 0, hostGateway), link("router", "eth1", 1, hostGateway)}})
	for i := range s.Reals {
		name := fmt.Sprintf("rs%d", i+1)
		p.nodes = append(p.nodes, planNode{name: name, role: roleReal,
			links: []planLink{link(name, "eth0", 1, hostReal+i)}, routes: []planRoute{{via: gwB}}})
	}
	return p
}

// BirdConfig is the BIRD 2 configuration of an ECMP lab's router: a BGP session with each
// director (the router is passive: directors connect out), nothing exported to them, and
// the kernel table fed with multipath routes ("merge paths"), so that flows to a VIP are
// spread over every director that announces it. bfd turns BFD on for every session;
// password, when set, is the sessions' TCP MD5 key.
func (l *Lab) BirdConfig(hold time.Duration, bfd bool, password string) string {
	var b strings.Builder
	gw, _ := l.Router.AddrOn(segECMPB)
	fmt.Fprintf(&b, "router id %s;\n", gw)
	b.WriteString("protocol device {}\n")
	b.WriteString("protocol kernel {\n  ipv4 { export all; };\n  merge paths on;\n}\n")
	if bfd {
		b.WriteString("protocol bfd {}\n")
	}
	secs := max(int(hold/time.Second), 3)
	for i, d := range l.Directors {
		fmt.Fprintf(&b, "protocol bgp d%d {\n  local %s as %d;\n  neighbor %s as %d;\n  passive on;\n  hold time %d;\n  keepalive time %d;\n  connect retry time 1;\n  error wait time 1, 2;\n",
			i+1, gw, ECMPRouterASN, d.Addr, ECMPDirectorASN, secs, max(secs/3, 1))
		if bfd {
			b.WriteString("  bfd on;\n")
		}
		if password != "" {
			fmt.Fprintf(&b, "  password %q;\n", password)
		}
		b.WriteString("  ipv4 { import all; export none; };\n}\n")
	}
	return b.String()
}
