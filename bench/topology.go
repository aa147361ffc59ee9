package bench

import "strconv"

// Topology selects the layout of a lab.
type Topology uint8

const (
	// TopologyInvalid is the zero value and is rejected by NewLab.
	TopologyInvalid Topology = iota
	// TopologyDR puts the clients, the director and the real servers on one
	// L2 segment, as direct routing needs.
	TopologyDR
	// TopologyNAT puts the clients and the director's eth0 on segment A, and
	// the director's eth1 and the real servers on segment B. The real
	// servers' default route points at the director's segment-B address, so
	// replies pass through the director as masquerading needs.
	TopologyNAT
	// TopologyTUN puts the clients and the director on segment A and the real
	// servers on segment C behind a router namespace. The director reaches
	// the real servers through the router; the real servers answer the
	// clients through the router directly, never through the director.
	TopologyTUN
	// TopologyECMP puts the clients on segment A behind a router namespace, and
	// LabSpec.Directors directors with the DR real servers on segment B. The
	// directors announce the VIP to the router over BGP (see StartBird); the
	// router spreads flows over them by ECMP on the layer-4 hash. The real
	// servers answer through the router.
	TopologyECMP
)

// String returns the lower-case name of t.
func (t Topology) String() string {
	switch t {
	case TopologyDR:
		return "dr"
	case TopologyNAT:
		return "nat"
	case TopologyTUN:
		return "tun"
	case TopologyECMP:
		return "ecmp"
	}
	return "Topology(" + strconv.Itoa(int(t)) + ")"
}
