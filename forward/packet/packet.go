package packet

import "encoding/binary"

// Wire constants of Ethernet (IEEE 802.3, 802.1Q) and IPv4 (RFC 791).
const (
	EthHdrLen     = 14 // dst MAC, src MAC, EtherType
	vlanTagLen    = 4  // TPID 0x8100 + TCI, inline after the source MAC
	EtherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeVLAN = 0x8100
	IPv4HdrLen    = 20 // IHL 5; uvs drops packets with IP options
	ProtoICMP     = 1
	ProtoIPIP     = 4
	ProtoTCP      = 6
	ProtoUDP      = 17
	TCPHdrLen     = 20
	UDPHdrLen     = 8
	ICMPHdrLen    = 8
	TCPCsumOff    = 16 // checksum offset within the TCP header (RFC 793)
	UDPCsumOff    = 6  // checksum offset within the UDP header (RFC 768)
	IPFlagDF      = 0x4000
	IPFlagMF      = 0x2000
	IPFragOffMask = 0x1fff
	// MinFrameLen is the minimum Ethernet frame without FCS; shorter frames
	// are padded with zeros (IEEE 802.3 clause 3.2.8).
	MinFrameLen = 60
)

// Class is what ParseL3 found in a frame.
type Class uint8

// Frame classes.
const (
	// ClassInvalid is the zero value; ParseL3 never returns it.
	ClassInvalid Class = iota
	// ClassOther is anything uvs does not handle (not IPv4 or ARP, more than
	// one VLAN tag, or too short to classify); it is left to the kernel.
	ClassOther
	// ClassARP is an ARP frame; see ParseARP.
	ClassARP
	// ClassIPv4 is an IPv4 packet whose fixed header fields (protocol,
	// source, destination) are present; see ParseL4.
	ClassIPv4
	// ClassIPv6 is an IPv6 packet whose fixed header (first next header,
	// source, destination) is present; see ParseL4 and ipv6.go.
	ClassIPv6
)

var classNames = [...]string{"invalid", "other", "arp", "ipv4", "ipv6"}

// String returns the lowercase name of c.
func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "invalid"
}

// Fault is what the packet checks found wrong with a frame (malformed, or of a kind uvs does
// not forward), so that it was dropped; the engine's own decisions are engine.Drop. The
// worker counts faults in arrays indexed by Fault, so it is small and dense.
type Fault uint8

// Faults. String gives each its metric label (the reason label of the drop counter).
const (
	// FaultNone means the frame passed.
	FaultNone Fault = iota
	// FaultTruncatedIP: the frame ends before the IPv4 header or before the
	// IPv4 total length (the kernel's IPSTATS_MIB_INTRUNCATEDPKTS).
	FaultTruncatedIP
	// FaultBadIPVersion: the IP version nibble is not 4.
	FaultBadIPVersion
	// FaultBadIHL: IHL below 5 (RFC 791).
	FaultBadIHL
	// FaultBadIPLength: IPv4 total length shorter than the header.
	FaultBadIPLength
	// FaultBadIPChecksum: the IPv4 header checksum does not verify.
	FaultBadIPChecksum
	// FaultIPOptions: IHL above 5. Policy, as in Katran: options are rare,
	// mostly abused, and would move every L4 offset.
	FaultIPOptions
	// FaultFragment: MF set or fragment offset non-zero. L4 ports are only in
	// the first fragment, so fragments cannot be scheduled consistently.
	FaultFragment
	// FaultTruncatedL4: the IP payload is shorter than the fixed TCP, UDP or
	// ICMP header.
	FaultTruncatedL4
	// FaultBadUDPLength: the UDP length field is below 8 or differs from the
	// IP payload length.
	FaultBadUDPLength
	// FaultBadTCPOffset: TCP data offset below 5 or beyond the IP payload.
	FaultBadTCPOffset
	// FaultTTLExceeded: TTL would reach 0 on forwarding (RFC 1812 5.3.1).
	FaultTTLExceeded
	// FaultUnsupportedProto: an IPv4 protocol other than TCP, UDP or ICMP, or an IPv6
	// upper-layer header other than TCP, UDP or ICMPv6 (ESP and "no next header" included).
	FaultUnsupportedProto
	// FaultBadVnetHdr: the virtio_net_hdr is inconsistent with the frame.
	FaultBadVnetHdr
	// FaultGSO: a GSO frame the caller chooses not to forward.
	FaultGSO
	// FaultBadOffsets: a Packet whose offsets do not fit the frame was passed
	// to a rewrite; a caller bug, never expected.
	FaultBadOffsets
	// FaultBadExtHeader: an IPv6 extension header is truncated, malformed
	// (option TLVs overrunning it), out of place (hop-by-hop not first,
	// RFC 8200 section 4.1), or the chain is longer than maxExtHeaders.
	FaultBadExtHeader
	// FaultJumbogram: an IPv6 payload length of 0 with a jumbo payload
	// option (RFC 2675), or that option anywhere. Ethernet cannot carry one.
	FaultJumbogram
	// FaultRoutingHeader: an IPv6 routing header with segments left above 0:
	// the VIP is not the packet's final destination (RFC 8200 section 4.4).
	FaultRoutingHeader
	// NumFaults is the number of faults, for counter arrays.
	NumFaults
)

var faultNames = [NumFaults]string{
	FaultNone:             "none",
	FaultTruncatedIP:      "truncated_ip",
	FaultBadIPVersion:     "bad_ip_version",
	FaultBadIHL:           "bad_ihl",
	FaultBadIPLength:      "bad_ip_length",
	FaultBadIPChecksum:    "bad_ip_checksum",
	FaultIPOptions:        "ip_options",
	FaultFragment:         "fragment",
	FaultTruncatedL4:      "truncated_l4",
	FaultBadUDPLength:     "bad_udp_length",
	FaultBadTCPOffset:     "bad_tcp_offset",
	FaultTTLExceeded:      "ttl_exceeded",
	FaultUnsupportedProto: "unsupported_proto",
	FaultBadVnetHdr:       "bad_vnet_hdr",
	FaultGSO:              "gso_unsupported",
	FaultBadOffsets:       "bad_offsets",
	FaultBadExtHeader:     "bad_ext_header",
	FaultJumbogram:        "jumbogram",
	FaultRoutingHeader:    "routing_header",
}

// String returns the snake_case metric label of r.
func (r Fault) String() string {
	if r < NumFaults {
		return faultNames[r]
	}
	return "unknown"
}

// Packet holds the offsets and header fields of one parsed frame. It is a
// plain value without pointers, owned and reused by the worker; ParseL3
// resets it. Offsets are relative to the start of the frame slice passed to
// ParseL3 (SetEthernet adjusts them when it moves the frame start).
type Packet struct {
	// VLAN reports an inline 802.1Q tag at offset 12; VLANTCI is its TCI.
	VLAN    bool
	VLANTCI uint16
	// L3 and L4 are the offsets of the IPv4 (or ARP) header and of the
	// TCP/UDP/ICMP header. L4 is set by ParseL4.
	L3, L4 int
	// IPLen is the IPv4 total length; bytes past L3+IPLen are padding.
	IPLen int
	Proto uint8
	TTL   uint8
	Src   [4]byte
	Dst   [4]byte
	// SrcPort and DstPort are the TCP or UDP ports; zero for ICMP.
	SrcPort, DstPort uint16
	// ICMPType and ICMPCode are set for ICMP (RFC 792).
	ICMPType, ICMPCode uint8
	// TCPFlags is byte 13 of the TCP header (CWR ECE URG ACK PSH RST SYN FIN).
	TCPFlags uint8
	// Frag reports MF set or a non-zero fragment offset; DF the DF bit.
	Frag bool
	DF   bool
	// V6 reports an IPv6 packet (ClassIPv6). Its addresses are then in Src6
	// and Dst6 (Src and Dst stay zero), TTL is the hop limit, IPLen is the
	// fixed header plus the payload length, and L4 follows the extension
	// headers; Proto is the upper-layer protocol once ParseL4 walked them.
	V6         bool
	Src6, Dst6 [16]byte
}

// ParseL3 resets p and reads the Ethernet header (at most one inline
// 802.1Q tag) and, for IPv4, the fixed fields needed to classify the packet:
// protocol, source and destination. It validates nothing else; frames it
// cannot classify are ClassOther. ARP frames are ClassARP with p.L3 set and
// are checked by ParseARP.
func ParseL3(frame []byte, p *Packet) Class {
	*p = Packet{}
	if len(frame) < EthHdrLen {
		return ClassOther
	}
	l3 := EthHdrLen
	et := binary.BigEndian.Uint16(frame[12:14])
	if et == etherTypeVLAN {
		if len(frame) < EthHdrLen+vlanTagLen {
			return ClassOther
		}
		p.VLAN = true
		p.VLANTCI = binary.BigEndian.Uint16(frame[14:16])
		et = binary.BigEndian.Uint16(frame[16:18])
		l3 += vlanTagLen
	}
	p.L3 = l3
	switch et {
	case etherTypeARP:
		return ClassARP
	case EtherTypeIPv4:
		if len(frame)-l3 < IPv4HdrLen {
			return ClassOther
		}
		h := frame[l3 : l3+IPv4HdrLen]
		p.Proto = h[9]
		copy(p.Src[:], h[12:16])
		copy(p.Dst[:], h[16:20])
		return ClassIPv4
	case EtherTypeIPv6:
		if len(frame)-l3 < IPv6HdrLen {
			return ClassOther
		}
		h := frame[l3 : l3+IPv6HdrLen]
		p.V6 = true
		p.Proto = h[6]
		copy(p.Src6[:], h[8:24])
		copy(p.Dst6[:], h[24:40])
		return ClassIPv6
	}
	return ClassOther
}

// ParseL4 validates the IPv4 header of a ClassIPv4 frame parsed by ParseL3
// and reads its TCP, UDP or ICMP header. Checks, in order: version 4, IHL
// at least 5, no options (DropIPOptions), total length within the frame and
// at least the header, header checksum, no fragment, then the L4 header
// within the IP total length (UDP length must equal the IP payload length;
// TCP data offset at least 5 and within it). The frame may carry Ethernet
// padding beyond p.L3+p.IPLen. L4 checksums are not verified: they are
// updated incrementally, so a bad one stays bad for the receiver to drop.
// A ClassIPv6 frame (p.V6) is checked by the IPv6 rules of parseL4v6.
func ParseL4(frame []byte, p *Packet) Fault {
	if p.V6 {
		return parseL4v6(frame, p)
	}
	l3 := p.L3
	if l3 < 0 || l3 > len(frame) || len(frame)-l3 < IPv4HdrLen {
		return FaultTruncatedIP
	}
	b := frame[l3:]
	h := b[:IPv4HdrLen]
	if h[0]>>4 != 4 {
		return FaultBadIPVersion
	}
	ihl := int(h[0]&0x0f) * 4
	if ihl < IPv4HdrLen {
		return FaultBadIHL
	}
	if ihl > IPv4HdrLen {
		return FaultIPOptions
	}
	tot := int(binary.BigEndian.Uint16(h[2:4]))
	if tot > len(b) {
		return FaultTruncatedIP
	}
	if tot < IPv4HdrLen {
		return FaultBadIPLength
	}
	if Checksum(h, 0) != 0xffff {
		return FaultBadIPChecksum
	}
	p.IPLen = tot
	p.Proto = h[9]
	p.TTL = h[8]
	copy(p.Src[:], h[12:16])
	copy(p.Dst[:], h[16:20])
	fo := binary.BigEndian.Uint16(h[6:8])
	p.DF = fo&IPFlagDF != 0
	p.Frag = fo&(IPFlagMF|IPFragOffMask) != 0
	if p.Frag {
		return FaultFragment
	}
	p.L4 = l3 + IPv4HdrLen
	l4 := b[IPv4HdrLen:tot]
	switch p.Proto {
	case ProtoTCP:
		if len(l4) < TCPHdrLen {
			return FaultTruncatedL4
		}
		off := int(l4[12]>>4) * 4
		if off < TCPHdrLen || off > len(l4) {
			return FaultBadTCPOffset
		}
		p.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		p.DstPort = binary.BigEndian.Uint16(l4[2:4])
		p.TCPFlags = l4[13]
	case ProtoUDP:
		if len(l4) < UDPHdrLen {
			return FaultTruncatedL4
		}
		if int(binary.BigEndian.Uint16(l4[4:6])) != len(l4) {
			return FaultBadUDPLength
		}
		p.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		p.DstPort = binary.BigEndian.Uint16(l4[2:4])
	case ProtoICMP:
		if len(l4) < ICMPHdrLen {
			return FaultTruncatedL4
		}
		p.ICMPType = l4[0]
		p.ICMPCode = l4[1]
	default:
		return FaultUnsupportedProto
	}
	return FaultNone
}

// SetEthernet writes the destination and source MACs of a frame parsed by
// ParseL3 (the DR rewrite). If p.VLAN is set it removes the inline tag by
// writing the MACs 4 bytes further on, over the old source MAC and tag, and
// returns 4: the frame now starts at frame[4:], and p's offsets are adjusted
// to it (VLAN cleared). Otherwise it returns 0. The frame's VnetHdr must be
// moved too (VnetHdr.Shift(-off)). Tags the NIC stripped arrive in
// tp_vlan_tci instead and are not seen here. It returns
// -1 and writes nothing if the frame is too short, which ParseL3 rules out.
func SetEthernet(frame []byte, p *Packet, dst, src [6]byte) int {
	off := 0
	if p.VLAN {
		off = vlanTagLen
	}
	if len(frame) < EthHdrLen+off {
		return -1
	}
	copy(frame[off:off+6], dst[:])
	copy(frame[off+6:off+12], src[:])
	if off != 0 {
		p.VLAN = false
		p.VLANTCI = 0
		p.L3 -= off
		if p.L4 != 0 {
			p.L4 -= off
		}
	}
	return off
}

// TCP flags (RFC 793).
const (
	TCPFIN = 0x01
	TCPSYN = 0x02
	TCPRST = 0x04
	TCPACK = 0x10
)
