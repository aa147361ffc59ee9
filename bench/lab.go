package bench

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// Errors returned by NewLab, PrepareReals and the servers.
var (
	// ErrSpec reports an invalid LabSpec.
	ErrSpec = errors.New("bench: invalid lab spec")
	// ErrMethod reports a forwarding method the lab's topology cannot serve.
	ErrMethod = errors.New("bench: unsupported forwarding method")
	// ErrNoNode reports a node that is not a real server of the lab.
	ErrNoNode = errors.New("bench: no such real server")
	// ErrUnsupported reports that labs need Linux.
	ErrUnsupported = errors.New("bench: namespace labs need linux")
)

// Limits of a LabSpec. Real servers take host numbers .11 to .98 and extra
// clients .201 to .250 of their /24, which keeps .100 free for the VIP.
const (
	MaxReals   = 88
	MaxClients = 50
	// MaxDirectors bounds the directors of an ECMP lab: they take host numbers
	// .2 to .9 of segment B.
	MaxDirectors = 8
	maxPrefix    = 24
)

// LabSpec describes a lab. The zero value of each optional field means its
// default.
type LabSpec struct {
	// Prefix starts the name of every namespace of the lab. It must be
	// unique among concurrent runs and is best ended with "-" (for example
	// "uvt1234-") so that it is not a prefix of another run's prefix.
	// Letters, digits, '.', '_' and '-' only; at most 24 bytes.
	Prefix string
	// Topology is the layout; TopologyInvalid is rejected.
	Topology Topology
	// Reals is the number of real servers; 0 means 2.
	Reals int
	// Clients is the number of client namespaces; 0 means 1.
	Clients int
	// MTU of every lab link and bridge; 0 means 1500.
	MTU int
	// Directors is the number of directors of a TopologyECMP lab; 0 means 1.
	// Other topologies have one.
	Directors int
	// DirectorTxOff turns TX checksum offload off (ethtool -K DEV tx off) on
	// the director's links and their switch-side peers, so that frames the
	// director sends carry complete checksums.
	DirectorTxOff bool
	// DirectorQueues is the number of RX and TX queues of the director's veth links and
	// their peers (ip link ... numrxqueues N numtxqueues N); 0 means 1. With several, the
	// afxdp backend opens a socket per queue and worker.
	DirectorQueues int
	// IPv6 makes the lab dual-stack: every address also gets its IPv6 twin (see Six), added
	// with nodad, and the routes theirs. Off, the namespaces have IPv6 disabled.
	IPv6 bool
}

// Lab is a built lab. Its fields are set by NewLab and read-only afterwards.
type Lab struct {
	// Spec is the spec with defaults filled in.
	Spec LabSpec
	// Client is Clients[0].
	Client *Node
	// Clients are all client nodes: "client", "client2", ...
	Clients []*Node
	// Director is the namespace the director binary runs in (Directors[0]).
	Director *Node
	// Director2 is the second director of a VRRP pair (a config with [[vrrp]]); nil
	// otherwise.
	Director2 *Node
	// Directors are all directors: "director", "director2", ... (TopologyECMP).
	Directors []*Node
	// Router is the router between segments A and C (TopologyTUN), or in
	// front of the directors (TopologyECMP); nil otherwise.
	Router *Node
	// Reals are the real servers "rs1", "rs2", ...
	Reals []*Node
	// VIP is the virtual address. It is on-link on the clients' segment and
	// assigned nowhere, except on the real servers' lo after
	// PrepareReals("dr").
	VIP netip.Addr
	// DirectorIfaces are the director's interface names, inside its
	// namespace: ["eth0"], or ["eth0", "eth1"] for TopologyNAT.
	DirectorIfaces []string
	// RealAddrs are the real servers' addresses, in the order of Reals.
	RealAddrs []netip.Addr
	// VIP6 is the IPv6 twin of VIP in a dual-stack lab (LabSpec.IPv6); invalid otherwise.
	VIP6 netip.Addr
	// RealAddrs6 are the real servers' IPv6 addresses in a dual-stack lab, in the order of
	// Reals; nil otherwise.
	RealAddrs6 []netip.Addr

	switchNS string
	plan     plan
	created  []string // namespaces NewLab added, in order; Close deletes only these

	mu        sync.Mutex // guards servers, directors and closed
	servers   []*Servers
	directors []*Director
	closed    bool
}

// Node is one namespace of a lab.
type Node struct {
	// Name is the short role name: "client", "director", "router", "rs1".
	Name string
	// NS is the network namespace name (under /run/netns).
	NS string
	// Addr is the node's primary address: that of its eth0.
	Addr netip.Addr
	// Addr6 is the IPv6 address of its eth0 in a dual-stack lab; invalid otherwise.
	Addr6 netip.Addr
	// Ifaces are the node's lab interfaces, in order (eth0, eth1).
	Ifaces []Iface
}

// Iface is one lab interface of a node.
type Iface struct {
	// Name is the interface name inside the node's namespace.
	Name string
	// Prefix is the interface address with its on-link prefix length.
	Prefix netip.Prefix
	// Prefix6 is the IPv6 address and prefix length in a dual-stack lab; invalid otherwise.
	Prefix6 netip.Prefix
}

// String returns the node's name.
func (n *Node) String() string { return n.Name }

// AddrOn returns the node's address within p, if it has one.
func (n *Node) AddrOn(p netip.Prefix) (netip.Addr, bool) {
	for _, i := range n.Ifaces {
		if p.Contains(i.Prefix.Addr()) {
			return i.Prefix.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// withDefaults returns s with defaults filled in, or an ErrSpec error.
func (s LabSpec) withDefaults() (LabSpec, error) {
	if s.Reals == 0 {
		s.Reals = 2
	}
	if s.Clients == 0 {
		s.Clients = 1
	}
	if s.Directors == 0 {
		s.Directors = 1
	}
	if s.MTU == 0 {
		s.MTU = 1500
	}
	var errs []error
	if err := checkPrefix(s.Prefix); err != nil {
		errs = append(errs, err)
	}
	switch s.Topology {
	case TopologyDR, TopologyNAT, TopologyTUN:
		if s.Directors != 1 {
			errs = append(errs, fmt.Errorf("%w: %d directors: only an ecmp lab has several", ErrSpec, s.Directors))
		}
	case TopologyECMP:
		if s.Directors < 1 || s.Directors > MaxDirectors {
			errs = append(errs, fmt.Errorf("%w: directors %d not in [1, %d]", ErrSpec, s.Directors, MaxDirectors))
		}
	default:
		errs = append(errs, fmt.Errorf("%w: topology %v", ErrSpec, s.Topology))
	}
	if s.Reals < 1 || s.Reals > MaxReals {
		errs = append(errs, fmt.Errorf("%w: reals %d not in [1, %d]", ErrSpec, s.Reals, MaxReals))
	}
	if s.Clients < 1 || s.Clients > MaxClients {
		errs = append(errs, fmt.Errorf("%w: clients %d not in [1, %d]", ErrSpec, s.Clients, MaxClients))
	}
	// 68 is the IPv4 minimum (RFC 791); 65535 is the veth maximum.
	if s.MTU < 68 || s.MTU > 65535 {
		errs = append(errs, fmt.Errorf("%w: mtu %d not in [68, 65535]", ErrSpec, s.MTU))
	}
	return s, errors.Join(errs...)
}

func checkPrefix(p string) error {
	if p == "" || len(p) > maxPrefix {
		return fmt.Errorf("%w: prefix %q must have 1 to %d bytes", ErrSpec, p, maxPrefix)
	}
	for _, c := range []byte(p) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: prefix %q: only letters, digits, '.', '_' and '-'", ErrSpec, p)
		}
	}
	if p == "." || p == ".." {
		return fmt.Errorf("%w: prefix %q", ErrSpec, p)
	}
	return nil
}

// Nodes returns every node of l: clients, director, router (TUN), reals.
func (l *Lab) Nodes() []*Node {
	ns := append([]*Node(nil), l.Clients...)
	ns = append(ns, l.Directors...)
	if l.Director2 != nil {
		ns = append(ns, l.Director2)
	}
	if l.Router != nil {
		ns = append(ns, l.Router)
	}
	return append(ns, l.Reals...)
}

// layout returns the unbuilt lab for spec: its nodes, names and addresses.
func layout(spec LabSpec) (*Lab, error) {
	spec, err := spec.withDefaults()
	if err != nil {
		return nil, err
	}
	return labFromPlan(spec, newPlan(spec)), nil
}

// labFromPlan names the nodes, interfaces and addresses of plan p for spec.
func labFromPlan(spec LabSpec, p plan) *Lab {
	l := &Lab{Spec: spec, VIP: p.vip, switchNS: spec.Prefix + "switch", plan: p}
	for _, pn := range p.nodes {
		n := &Node{Name: pn.name, NS: spec.Prefix + pn.name}
		for _, pl := range pn.links {
			n.Ifaces = append(n.Ifaces, Iface{Name: pl.dev, Prefix: pl.prefix})
		}
		n.Addr = n.Ifaces[0].Prefix.Addr()
		switch pn.role {
		case roleClient:
			l.Clients = append(l.Clients, n)
		case roleDirector:
			l.Directors = append(l.Directors, n)
			if l.Director != nil {
				break
			}
			l.Director = n
			for _, i := range n.Ifaces {
				l.DirectorIfaces = append(l.DirectorIfaces, i.Name)
			}
		case roleDirector2:
			l.Director2 = n
		case roleRouter:
			l.Router = n
		case roleReal:
			l.Reals = append(l.Reals, n)
			l.RealAddrs = append(l.RealAddrs, n.Addr)
		}
	}
	l.Client = l.Clients[0]
	if spec.IPv6 {
		l.dualStack()
	}
	return l
}
