package config

// RXRing is the AF_PACKET receive ring layout of the afpacket backend
// (director.rx_ring). The zero value is invalid.
type RXRing uint8

// Receive rings.
const (
	// RXRingV2 is TPACKET_V2: one slot per frame, and the worker is woken
	// for each frame, so a lone request is forwarded at once (libpcap's
	// immediate mode uses V2 for this reason).
	RXRingV2 RXRing = iota + 1
	// RXRingV3 is TPACKET_V3: frames packed into blocks, and the worker
	// is woken when a block is full or its retire timer (1 ms at least)
	// fires. Fewer wakeups under saturation; up to a millisecond more
	// latency at low rates.
	RXRingV3
)

var rxRingNames = []string{RXRingV2: "v2", RXRingV3: "v3"}

// String returns "v2" or "v3".
func (r RXRing) String() string { return enumString("RXRing", rxRingNames, r) }

// ParseRXRing parses "v2" or "v3".
func ParseRXRing(s string) (RXRing, error) { return parseEnum[RXRing]("rx_ring", rxRingNames, s) }

// ShieldMode is how the director keeps its own kernel from handling VIP
// traffic and NAT replies (director.shield). The zero value is invalid.
type ShieldMode uint8

// Shield modes.
const (
	// ShieldAuto is tcx where the kernel has it (Linux 6.6+), nftables
	// otherwise.
	ShieldAuto ShieldMode = iota + 1
	// ShieldTCX is an eBPF program on the tcx ingress hook.
	ShieldTCX
	// ShieldNftables is a netdev-family nftables table with an ingress
	// chain per interface.
	ShieldNftables
)

var shieldModeNames = []string{ShieldAuto: "auto", ShieldTCX: "tcx", ShieldNftables: "nftables"}

// String returns "auto", "tcx" or "nftables".
func (m ShieldMode) String() string { return enumString("ShieldMode", shieldModeNames, m) }

// ParseShieldMode parses "auto", "tcx" or "nftables".
func ParseShieldMode(s string) (ShieldMode, error) {
	return parseEnum[ShieldMode]("shield", shieldModeNames, s)
}

// DefaultRXRing is director.rx_ring's default: V2, chosen by measurement (docs/benchmarks.md,
// "Receive rings: V2 and V3"): V3 adds up to a millisecond to every lone request, V2 tens of
// microseconds, for a few hundred nanoseconds more CPU per packet under saturation.
const DefaultRXRing = RXRingV2
