package engine

import (
	"net/netip"
	"sync/atomic"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/sched"
)

// Snapshot is the read-only state the workers forward by. The control side builds a new one
// for every change (config, weights, egress) and publishes it with an atomic pointer; a worker
// loads it once per block and never writes to it. Its pointers lead to objects that outlive
// snapshots (Loads and Counters), which workers update with atomics.
type Snapshot struct {
	Gen uint64

	// Addresses are 16 bytes for both families, IPv4 in its IPv4-mapped form, as in the
	// connection table (conntrack.Map4).
	vips       map[[16]byte]struct{}
	services   map[svcKey]*Service   // (VIP, protocol, port); port 0 = every port
	natReal    map[svcKey]struct{}   // (real, protocol, real port) of NAT reals: their replies
	natAddr    map[[16]byte]struct{} // addresses of NAT reals, checked before parsing L4
	byID       []*Service            // index = Service.ID; nil where free
	Ifaces     []Iface               // index = interface slot
	Sloppy     bool                  // create TCP connections on any packet, not only SYN
	AnswerPing bool                  // answer ICMP echo to VIPs (director.answer_ping)
	hasPort0   bool
	standby    map[[16]byte]struct{} // VIPs a VRRP backup holds back (vrrp.go); nil without VRRP
	cls        classifier            // the IPv4 keys of the maps above as one open-addressing table, for the hot path
	cls6       classifier6           // and the IPv6 ones (classify6.go)
	has6       bool                  // some VIP or NAT real is IPv6
}

type svcKey struct {
	addr  [16]byte
	port  uint16
	proto uint8
}

// Iface is one listened interface.
type Iface struct {
	Name  string
	Index int
	MAC   [6]byte
	MTU   int
	Addr  [4]byte  // first IPv4 address, if any (TUN outer source, ICMP source)
	Addr6 [16]byte // first global IPv6 address, if any (6in6 outer source, ICMPv6 source)
}

// Service is one virtual service in a snapshot.
type Service struct {
	ID    uint16
	Name  string
	VIP   [16]byte // IPv4-mapped for IPv4 (conntrack.Map4)
	Port  uint16
	Proto uint8
	V6    bool // VIP is IPv6

	Sched *sched.Table
	// Reals, Specs and Loads are indexed by slot. A slot keeps its real across reloads, so
	// connections (which store the slot) and load counts stay attached to the right server.
	// A removed real leaves a nil slot with weight 0 in Specs.
	Reals []*Real
	Specs []sched.RealSpec
	Loads []sched.Load

	OnePacket       bool                  // UDP one-packet scheduling (ipvsadm -o)
	ExpireQuiescent bool                  // templates stop sending new connections to a weight-0 real
	DeadReal        config.DeadRealPolicy // what happens to connections of a failed or removed real (resolved: never zero)

	PersistMs   uint32 // persistence timeout in ms, 0 = none
	PersistBits int    // persistence netmask length
	TplPort     uint16 // VPort of this service's templates: its port, or 0 for port-0 services

	MSSClamp uint16 // clamp the MSS option of SYNs to this (mss_clamp); 0 = off

	Stats []Counters // one per worker

	// Down is set while the service is below its quorum (keepalived's quorum and
	// hysteresis): its reals are quiesced, and its sorry server, if any, takes new
	// connections.
	Down bool

	liveWeight    int  // configured weight of the reals that are up, for the quorum log
	quorumChanged bool // Down differs from the last build's (or is set on the first): logged at publish
}

// Real is one real server of a service in a snapshot.
type Real struct {
	Slot   uint16
	Addr   [16]byte // IPv4-mapped for IPv4 (conntrack.Map4)
	V6     bool     // Addr is IPv6 (through a tunnel, of another family than the VIP)
	Port   uint16
	Method config.Forward
	Weight int32 // in effect: 0 while quiesced by a failed health check, scaled in slow start

	Removed      bool   // gone from the config; kept only while its connections drain
	ConfigWeight int32  // as configured
	Healthy      bool   // the health checker's view (true without a check)
	Reason       string // the last health failure
	Sorry        bool   // the service's sorry server, active because the service is Down

	Egress // resolved by the control side from routes and neighbours

	Stats []Counters // one per worker
}

// Egress is how frames to a real server leave the director: what package egress resolved
// (egress.Egress), mapped by the control side onto one of the engine's interface slots.
type Egress struct {
	TxIf   int // interface slot; -1 when unresolved
	SrcMAC [6]byte
	DstMAC [6]byte
	SrcIP  [4]byte  // outer IPv4 source for TUN: the egress address; a service's tunnel_source replaces it
	SrcIP6 [16]byte // outer IPv6 source for TUN (6in6, 4in6), likewise
	MTU    int      // the route's MTU metric if set, else the device's
}

// NoEgress is the Egress of a real server that cannot be reached (no interface slot).
var NoEgress = Egress{TxIf: -1}

// dead reports whether existing connections should leave r.
// LiveWeight is the configured weight of the service's real servers that are up, which its
// quorum is measured against.
func (s *Service) LiveWeight() int { return s.liveWeight }

// QuorumChanged reports that the service went below its quorum or back above it in the build
// of this snapshot.
func (s *Service) QuorumChanged() bool { return s.quorumChanged }

func (r *Real) dead() bool { return r.Removed || !r.Healthy }

// Counters are one worker's IPVS counters for a service or a real server. Only that worker
// writes them: it counts in pend (plain fields) and publishes once per block with atomic
// stores (no read-modify-write bus lock); the control side reads the atomics. 128 bytes, so
// workers never share a cache line.
type Counters struct {
	Conns    atomic.Uint64
	InPkts   atomic.Uint64
	InBytes  atomic.Uint64
	OutPkts  atomic.Uint64
	OutBytes atomic.Uint64
	pend     counterPend // the owning worker's counts not yet published
	_        [128 - 40 - 48]byte
}

// counterPend is what a worker counted on one Counters since it last published.
type counterPend struct {
	conns, inPkts, inBytes, outPkts, outBytes uint64
	dirty                                     bool // on the engine's dirty list
}

// lookupService finds the service for a packet to addr:port.
func (s *Snapshot) lookupService(addr [16]byte, proto uint8, port uint16) *Service {
	if svc := s.services[svcKey{addr, port, proto}]; svc != nil {
		return svc
	}
	if s.hasPort0 {
		return s.services[svcKey{addr, 0, proto}]
	}
	return nil
}

// isNATReply reports whether a packet from addr:port comes from a NAT real server's service
// port (port 0 in the set stands for a real that keeps the client's port on every port).
func (s *Snapshot) isNATReply(addr [16]byte, port uint16, proto uint8) bool {
	if _, ok := s.natReal[svcKey{addr, port, proto}]; ok {
		return true
	}
	_, ok := s.natReal[svcKey{addr, 0, proto}]
	return ok
}

func (s *Snapshot) service(id uint16) *Service {
	if int(id) < len(s.byID) {
		return s.byID[id]
	}
	return nil
}

// RealRef names a real server of a service the way the config does: the service's VIP,
// protocol and (first) port, and the real's address and port.
type RealRef struct {
	VIP      netip.Addr
	Protocol config.Protocol
	Port     uint16
	Addr     netip.Addr
	RPort    uint16
}

// Health is what the health checker says about a real server.
type Health struct {
	Up bool
	// Remove takes a failed real out of the service (on_failure = "remove") instead of
	// quiescing it with weight 0 (keepalived's inhibit_on_failure, the default).
	Remove bool
	// WeightPercent scales the configured weight during slow start: 1..100; 0 means 100.
	WeightPercent int
	// Reason is the last failure, for listings.
	Reason string
}

// NATReal names a NAT real server's service: the replies from Addr, transport protocol Proto
// and source port Port that the kernel shield (package shield) must keep from the kernel.
type NATReal struct {
	Addr  [4]byte
	Proto uint8
	Port  uint16
	// V6 marks an IPv6 real server, whose address is Addr6 (Addr is then unused).
	V6    bool
	Addr6 [16]byte
}
