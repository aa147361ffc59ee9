package packet

import "encoding/binary"

// Offsets of the rewritten fields within the IPv4 header (RFC 791) and the
// TCP/UDP header (RFC 793, RFC 768).
const (
	ipSrcOff   = 12
	ipDstOff   = 16
	l4SrcPort  = 0
	l4DstPort  = 2
	ipipTTL    = 64 // outer TTL, the kernel's default ip_default_ttl
	IPIPHdrLen = EthHdrLen + IPv4HdrLen
)

// RewriteDst rewrites the destination address and port of a frame accepted
// by ParseL4 (the NAT request direction: VIP to real server), decrements the
// TTL and updates the IPv4 header checksum incrementally (RFC 1624).
//
// With partial=false the L4 checksum is a finished one and is updated for
// the address and port (RFC 1624); a UDP checksum of 0 (none, RFC 768) stays
// 0 and a computed 0 is sent as 0xffff. With partial=true the frame is
// CHECKSUM_PARTIAL (VnetHdr.Partial) and the L4 checksum field holds the
// pseudo-header seed: only the address is folded into it, since the port is
// covered by the checksum still to be computed over the segment.
//
// ICMP frames get the address and TTL rewrite only; port is ignored (the ICMP
// checksum does not cover the IP header). TTL <= 1 returns DropTTLExceeded,
// and p offsets that do not fit frame return DropBadOffsets, in both cases
// without changing anything. On success p is updated to the new values.
func RewriteDst(frame []byte, p *Packet, partial bool, addr [4]byte, port uint16) Fault {
	return rewrite(frame, p, partial, ipDstOff, l4DstPort, addr, port)
}

// RewriteSrc rewrites the source address and port of a frame accepted by
// ParseL4 (the NAT reply direction: real server to VIP). Otherwise it behaves
// exactly like RewriteDst.
func RewriteSrc(frame []byte, p *Packet, partial bool, addr [4]byte, port uint16) Fault {
	return rewrite(frame, p, partial, ipSrcOff, l4SrcPort, addr, port)
}

// rewrite implements RewriteDst and RewriteSrc. All bounds are checked before
// the first write, so a drop leaves the frame untouched.
func rewrite(frame []byte, p *Packet, partial bool, addrOff, portOff int, addr [4]byte, port uint16) Fault {
	l3 := p.L3
	if l3 < 0 || p.L4 != l3+IPv4HdrLen || p.IPLen < IPv4HdrLen || l3 > len(frame) || p.IPLen > len(frame)-l3 {
		return FaultBadOffsets
	}
	ip := frame[l3 : l3+IPv4HdrLen]
	seg := frame[p.L4 : l3+p.IPLen]
	proto := ip[9]
	csumOff := -1 // offset of the L4 checksum covering the pseudo-header
	switch proto {
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
	case ProtoICMP:
	default:
		return FaultUnsupportedProto
	}
	ttl := ip[8]
	if ttl <= 1 {
		return FaultTTLExceeded
	}
	var old [4]byte
	copy(old[:], ip[addrOff:addrOff+4])

	// IPv4 header: TTL (sharing a word with the protocol) and the address.
	var ipd csumDelta
	ipd.add16(uint16(ttl)<<8|uint16(proto), uint16(ttl-1)<<8|uint16(proto))
	ipd.add32(old, addr)
	ipCsum := ipd.applyChecksum(binary.BigEndian.Uint16(ip[10:12]))
	ip[8] = ttl - 1
	copy(ip[addrOff:addrOff+4], addr[:])
	binary.BigEndian.PutUint16(ip[10:12], ipCsum)
	p.TTL = ttl - 1
	if addrOff == ipDstOff {
		p.Dst = addr
	} else {
		p.Src = addr
	}
	if csumOff < 0 {
		return FaultNone
	}

	// TCP/UDP: pseudo-header address, and the port unless partial.
	var l4d csumDelta
	l4d.add32(old, addr)
	cs := binary.BigEndian.Uint16(seg[csumOff : csumOff+2])
	oldPort := binary.BigEndian.Uint16(seg[portOff : portOff+2])
	switch {
	case partial:
		cs = l4d.applySeed(cs)
	case proto == ProtoUDP && cs == 0:
		// No checksum was sent (RFC 768); keep it that way.
	default:
		l4d.add16(oldPort, port)
		cs = l4d.applyChecksum(cs)
		if cs == 0 && proto == ProtoUDP {
			cs = 0xffff // RFC 768: a computed 0 is sent as all ones
		}
	}
	binary.BigEndian.PutUint16(seg[csumOff:csumOff+2], cs)
	binary.BigEndian.PutUint16(seg[portOff:portOff+2], port)
	if portOff == l4DstPort {
		p.DstPort = port
	} else {
		p.SrcPort = port
	}
	return FaultNone
}

// FinishChecksum completes the L4 checksum of a CHECKSUM_PARTIAL frame in
// software, as skb_checksum_help (net/core/dev.c) does: the ones'-complement sum
// from vh.CsumStart to the end of frame (the field holding the seed
// included) is complemented into the field at CsumStart+CsumOffset, a result
// of 0 being stored as 0xffff. Offsets are relative to the start of frame,
// which must end where the IP packet ends: pass frame[:p.L3+p.IPLen] if it
// may carry Ethernet padding. It is needed before IPIP encapsulation. On
// success it clears VnetNeedsCsum and the offsets in vh; a vh without
// VnetNeedsCsum is left alone. It returns false, changing nothing, if the
// offsets do not fit frame.
func FinishChecksum(frame []byte, vh *VnetHdr) bool {
	if vh.Flags&VnetNeedsCsum == 0 {
		return true
	}
	start := int(vh.CsumStart)
	off := start + int(vh.CsumOffset)
	if off+2 > len(frame) {
		return false
	}
	cs := ^Checksum(frame[start:], 0)
	if cs == 0 {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(frame[off:off+2], cs)
	vh.Flags &^= VnetNeedsCsum
	vh.CsumStart = 0
	vh.CsumOffset = 0
	return true
}

// EncapIPIP writes into dst an Ethernet header (dstMAC, srcMAC, IPv4) and an
// outer IPv4 header (RFC 2003: protocol 4, src to dstAddr, TTL 64, DF and
// TOS copied from the inner header, ECN included as in the normal mode of
// RFC 6040 section 4.1, the given ID, correct checksum), followed by
// a copy of inner, an IPv4 packet without L2 header of at least 20 bytes. It
// returns the number of bytes written, or 0 (writing nothing) if dst is too
// small, inner is too short, or the result would exceed the IPv4 maximum.
// inner may overlap dst, e.g. inner == dst[34:] for in-place encapsulation
// into headroom; it is moved before the headers are written. A
// CHECKSUM_PARTIAL inner packet must be finished first (FinishChecksum),
// and GSO frames cannot be encapsulated (VnetHdr.Check). Fragmentation
// needed errors for the path MTU are the caller's job (BuildICMPError).
func EncapIPIP(dst []byte, inner []byte, dstMAC, srcMAC [6]byte, src, dstAddr [4]byte, id uint16) int {
	tot := IPv4HdrLen + len(inner)
	if len(inner) < IPv4HdrLen || tot > 0xffff || len(dst) < EthHdrLen+tot {
		return 0
	}
	tos := inner[1]
	df := binary.BigEndian.Uint16(inner[6:8]) & IPFlagDF
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
	binary.BigEndian.PutUint16(h[6:8], df)
	h[8] = ipipTTL
	h[9] = ProtoIPIP
	h[10], h[11] = 0, 0
	copy(h[12:16], src[:])
	copy(h[16:20], dstAddr[:])
	binary.BigEndian.PutUint16(h[10:12], ^Checksum(h, 0))
	return EthHdrLen + tot
}
