package bench

import (
	"fmt"
	"net/netip"
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

// BirdConfig is the BIRD 2 configuration of an ECMP lab's router (see birdConfig): a
// session with each director. bfd turns BFD on for every session; password, when set, is
// the sessions' TCP MD5 key.
func (l *Lab) BirdConfig(hold time.Duration, bfd bool, password string) string {
	gw, _ := l.Router.AddrOn(segECMPB)
	p := BirdPeers{RouterID: gw, RouterASN: ECMPRouterASN, DirectorASN: ECMPDirectorASN, Hold: hold, BFD: bfd, Password: password}
	for _, d := range l.Directors {
		p.Directors = append(p.Directors, d.Addr)
	}
	return birdConfig(p)
}
