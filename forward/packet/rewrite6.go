package packet

import "encoding/binary"

// Checksums, NAT rewrites and tunnels for IPv6.

// IP6IP6HdrLen is the Ethernet header plus the outer IPv6 header EncapIP6 writes.
const IP6IP6HdrLen = EthHdrLen + IPv6HdrLen

// PseudoHeaderSum6 returns the folded, un-inverted sum of the IPv6 upper-layer pseudo-header
// (RFC 8200 section 8.1): source, destination, the 32-bit upper-layer length, three zero
// bytes and the next header. TCP, UDP and ICMPv6 (RFC 4443 section 2.3) all cover it; it is
// the seed a CHECKSUM_PARTIAL IPv6 frame carries (csum_ipv6_magic, net/ipv6/ip6_checksum.c).
func PseudoHeaderSum6(src, dst [16]byte, proto uint8, length uint32) uint16 {
	var s uint64
	for i := 0; i < 16; i += 4 {
		s += uint64(binary.BigEndian.Uint32(src[i:]))
		s += uint64(binary.BigEndian.Uint32(dst[i:]))
	}
	s += uint64(length)
	s += uint64(proto)
	return fold64(s)
}

// add128 records a 128-bit field (an IPv6 address) changing from old to new.
func (d *csumDelta) add128(old, new [16]byte) {
	for i := 0; i < 16; i += 2 {
		d.add16(binary.BigEndian.Uint16(old[i:]), binary.BigEndian.Uint16(new[i:]))
	}
}

// RewriteDst6 is RewriteDst for an IPv6 frame ParseL4 accepted (p.V6): it rewrites the
// destination address and port, decrements the hop limit (IPv6 has no header checksum), and
// updates the upper-layer checksum incrementally (RFC 1624) for the address and port. Unlike
// ICMP, ICMPv6's checksum covers the pseudo-header (RFC 4443 section 2.3), so an ICMPv6
// frame gets the address folded into its checksum too. With partial=true only the address
// is folded into the pseudo-header seed. A UDP checksum of 0, which IPv6 forbids (RFC 8200
// section 8.1), is kept 0 for the receiver to drop. A hop limit <= 1 returns
// FaultTTLExceeded, offsets that do not fit FaultBadOffsets, changing nothing.
func RewriteDst6(frame []byte, p *Packet, partial bool, addr [16]byte, port uint16) Fault {
	return rewrite6(frame, p, partial, 24, l4DstPort, addr, port)
}

// RewriteSrc6 rewrites the source address and port of an IPv6 frame (the NAT reply
// direction); otherwise it behaves exactly like RewriteDst6.
func RewriteSrc6(frame []byte, p *Packet, partial bool, addr [16]byte, port uint16) Fault {
	return rewrite6(frame, p, partial, 8, l4SrcPort, addr, port)
}

// rewrite6 implements RewriteDst6 and RewriteSrc6; every bound is checked before the first
// write.
func rewrite6(frame []byte, p *Packet, partial bool, addrOff, portOff int, addr [16]byte, port uint16) Fault {
	l3 := p.L3
	if !p.V6 || l3 < 0 || p.L4 < l3+IPv6HdrLen || p.IPLen < IPv6HdrLen || l3 > len(frame) ||
		p.IPLen > len(frame)-l3 || p.L4 > l3+p.IPLen {
		return FaultBadOffsets
	}
	ip := frame[l3 : l3+IPv6HdrLen]
	seg := frame[p.L4 : l3+p.IPLen]
	csumOff := 0
	switch p.Proto {
	case ProtoTCP:
		if len(seg) < TCPHdrLen {
			return FaultBadOffsets
		}
		csumOff = TCPCsumOff
	case ProtoUDP:
		if len(seg) < UDPHdrLen {
			return FaultBadOffsets
		}
		csumOff = UDPCsumOff
	case ProtoICMPv6:
		if len(seg) < ICMPHdrLen {
			return FaultBadOffsets
		}
		csumOff = 2
	default:
		return FaultUnsupportedProto
	}
	hl := ip[7]
	if hl <= 1 {
		return FaultTTLExceeded
	}
	old := [16]byte(ip[addrOff : addrOff+16])
	ip[7] = hl - 1
	copy(ip[addrOff:addrOff+16], addr[:])
	p.TTL = hl - 1
	if addrOff == 24 {
		p.Dst6 = addr
	} else {
		p.Src6 = addr
	}

	var d csumDelta
	d.add128(old, addr)
	cs := binary.BigEndian.Uint16(seg[csumOff : csumOff+2])
	switch {
	case partial:
		cs = d.applySeed(cs)
	case p.Proto == ProtoUDP && cs == 0:
	default:
		if p.Proto != ProtoICMPv6 {
			d.add16(binary.BigEndian.Uint16(seg[portOff:portOff+2]), port)
		}
		cs = d.applyChecksum(cs)
		if cs == 0 && p.Proto == ProtoUDP {
			cs = 0xffff
		}
	}
	binary.BigEndian.PutUint16(seg[csumOff:csumOff+2], cs)
	if p.Proto == ProtoICMPv6 {
		return FaultNone
	}
	binary.BigEndian.PutUint16(seg[portOff:portOff+2], port)
	if portOff == l4DstPort {
		p.DstPort = port
	} else {
		p.SrcPort = port
	}
	return FaultNone
}

// DecHopLimit decrements the hop limit of the IPv6 frame parsed into p (the DR and TUN
// forward, as ip6_forward does), or returns FaultTTLExceeded, changing nothing, if it is
// <= 1 (RFC 8200 section 3). No checksum covers it.
func DecHopLimit(frame []byte, p *Packet) Fault {
	if !p.V6 || p.L3 < 0 || p.L3+IPv6HdrLen > len(frame) {
		return FaultBadOffsets
	}
	hl := frame[p.L3+7]
	if hl <= 1 {
		return FaultTTLExceeded
	}
	frame[p.L3+7] = hl - 1
	p.TTL = hl - 1
	return FaultNone
}

// trafficClass returns the IPv4 TOS or the IPv6 traffic class of an IP packet, DSCP and ECN
// both (copied to the outer header, the normal mode of RFC 6040 section 4.1).
func trafficClass(inner []byte) uint8 {
	if inner[0]>>4 == 6 {
		return inner[0]<<4 | inner[1]>>4
	}
	return inner[1]
}

// EncapIP6 writes into dst an Ethernet header (dstMAC, srcMAC, IPv6) and an outer IPv6 header
// from src to dstAddr (hop limit 64, traffic class copied from the inner packet, flow label
// 0) carrying inner, an IPv4 or IPv6 packet without L2 header: IPv6-in-IPv6 (RFC 2473, next
// header 41) or IPv4-in-IPv6 (next header 4), by inner's version nibble. It returns the bytes
// written, or 0 (writing nothing) if dst is too small, inner is shorter than its version's
// fixed header or is neither version, or the payload would exceed 65535 bytes (no
// jumbograms). inner may overlap dst (inner == dst[IP6IP6HdrLen:] in place). A
// CHECKSUM_PARTIAL inner packet must be finished first (FinishChecksum). No fragment is
// ever made: a too large packet is the caller's Packet Too Big (BuildICMPv6Error) or
// fragmentation needed.
func EncapIP6(dst []byte, inner []byte, dstMAC, srcMAC [6]byte, src, dstAddr [16]byte) int {
	if len(inner) < IPv4HdrLen || len(inner) > 0xffff || len(dst) < IP6IP6HdrLen+len(inner) {
		return 0
	}
	var next uint8
	switch inner[0] >> 4 {
	case 4:
		next = ProtoIPIP
	case 6:
		if len(inner) < IPv6HdrLen {
			return 0
		}
		next = ProtoIPv6
	default:
		return 0
	}
	tc := trafficClass(inner)
	copy(dst[IP6IP6HdrLen:], inner)
	e := dst[:IP6IP6HdrLen]
	copy(e[0:6], dstMAC[:])
	copy(e[6:12], srcMAC[:])
	binary.BigEndian.PutUint16(e[12:14], EtherTypeIPv6)
	h := e[EthHdrLen:]
	h[0] = 0x60 | tc>>4
	h[1] = tc << 4
	h[2], h[3] = 0, 0
	binary.BigEndian.PutUint16(h[4:6], uint16(len(inner)))
	h[6] = next
	h[7] = ipv6HopLimit
	copy(h[8:24], src[:])
	copy(h[24:40], dstAddr[:])
	return IP6IP6HdrLen + len(inner)
}

// Encap6in4 writes into dst an Ethernet header and an outer IPv4 header (protocol 41, RFC
// 4213) from src to dstAddr carrying inner, an IPv6 packet without L2 header: EncapIPIP's
// outer header (TTL 64, the given ID, checksum), with DF set as the kernel's sit tunnels do
// with path MTU discovery on (RFC 4213 section 3.2.2), since IPv6 must not be fragmented on
// the way. It returns the bytes written, or 0 (writing nothing) if dst is too small, inner
// is not IPv6 or the result exceeds 65535 bytes. inner may overlap dst (inner ==
// dst[IPIPHdrLen:]).
func Encap6in4(dst []byte, inner []byte, dstMAC, srcMAC [6]byte, src, dstAddr [4]byte, id uint16) int {
	tot := IPv4HdrLen + len(inner)
	if len(inner) < IPv6HdrLen || inner[0]>>4 != 6 || tot > 0xffff || len(dst) < EthHdrLen+tot {
		return 0
	}
	tos := trafficClass(inner)
	copy(dst[IPIPHdrLen:], inner)
	e := dst[:IPIPHdrLen]
	copy(e[0:6], dstMAC[:])
	copy(e[6:12], srcMAC[:])
	binary.BigEndian.PutUint16(e[12:14], EtherTypeIPv4)
	h := e[EthHdrLen:IPIPHdrLen]
	h[0] = 0x45
	h[1] = tos
	binary.BigEndian.PutUint16(h[2:4], uint16(tot))
	binary.BigEndian.PutUint16(h[4:6], id)
	binary.BigEndian.PutUint16(h[6:8], IPFlagDF)
	h[8] = ipipTTL
	h[9] = ProtoIPv6
	h[10], h[11] = 0, 0
	copy(h[12:16], src[:])
	copy(h[16:20], dstAddr[:])
	binary.BigEndian.PutUint16(h[10:12], ^Checksum(h, 0))
	return EthHdrLen + tot
}
