package packet

import "encoding/binary"

// Neighbour discovery (RFC 4861) for the VIPs: the director answers neighbour solicitations
// for them, as it answers ARP requests for IPv4 VIPs, and announces them with unsolicited
// neighbour advertisements.
const (
	ICMPv6NeighborSolicit = 135
	ICMPv6NeighborAdvert  = 136

	ndpMsgLen     = 24 // type, code, checksum, reserved or flags, target address
	ndpOptSrcLL   = 1  // source link-layer address option (RFC 4861 section 4.6.1)
	ndpOptTgtLL   = 2  // target link-layer address option
	ndpHopLimit   = 255
	naFrameLen    = EthHdrLen + IPv6HdrLen + ndpMsgLen + 8
	naFlagRouter  = 0x80
	naFlagSolicit = 0x40
	naFlagOverr   = 0x20
)

// NS holds what a neighbour solicitation asks (RFC 4861 section 4.3). It is a plain value
// owned by the caller.
type NS struct {
	// Src is the IPv6 source: the unspecified address for duplicate address detection.
	Src [16]byte
	// Target is the address whose link-layer address is asked for.
	Target [16]byte
	// SrcLL is the source link-layer address option, if HasSrcLL; else EthSrc, the
	// Ethernet source, is where a unicast answer goes.
	SrcLL, EthSrc [6]byte
	HasSrcLL      bool
}

// ParseNS reads the neighbour solicitation of a frame ParseL4 accepted into p as ICMPv6 type
// 135, with RFC 4861 section 7.1.1's validity checks: hop limit 255, code 0, a correct
// checksum, at least 24 bytes, a target that is not multicast, options of non-zero length
// within the message, and, from the unspecified address, a solicited-node multicast
// destination and no source link-layer option. It returns false for anything else.
func ParseNS(frame []byte, p *Packet, ns *NS) bool {
	if !p.V6 || p.Proto != ProtoICMPv6 || p.ICMPType != ICMPv6NeighborSolicit || p.ICMPCode != 0 ||
		p.TTL != ndpHopLimit || p.L3 < EthHdrLen || p.L4 < p.L3+IPv6HdrLen || p.L3+p.IPLen > len(frame) {
		return false
	}
	m := frame[p.L4 : p.L3+p.IPLen]
	if len(m) < ndpMsgLen {
		return false
	}
	if Checksum(m, PseudoHeaderSum6(p.Src6, p.Dst6, ProtoICMPv6, uint32(len(m)))) != 0xffff {
		return false
	}
	*ns = NS{Src: p.Src6, Target: [16]byte(m[8:24])}
	copy(ns.EthSrc[:], frame[6:12])
	if ns.Target[0] == 0xff {
		return false
	}
	for o := m[ndpMsgLen:]; len(o) > 0; {
		if len(o) < 2 || o[1] == 0 || int(o[1])*8 > len(o) {
			return false
		}
		n := int(o[1]) * 8
		if o[0] == ndpOptSrcLL && n == 8 {
			copy(ns.SrcLL[:], o[2:8])
			ns.HasSrcLL = true
		}
		o = o[n:]
	}
	if ns.Src == ([16]byte{}) {
		return !ns.HasSrcLL && p.Dst6 == SolicitedNode(ns.Target)
	}
	return true
}

// allNodes is ff02::1, the link-local all-nodes multicast address (RFC 4291 section 2.7.1).
var allNodes = [16]byte{0xff, 0x02, 15: 1}

// BuildNAReply writes into dst the neighbour advertisement answering ns with mac for
// ns.Target (RFC 4861 section 7.2.4): from the target, solicited and override set, to the
// soliciting host (its link-layer option, else its Ethernet source), or, for a duplicate
// address detection probe from the unspecified address, to all nodes with solicited clear.
// It returns the frame length, or 0 if dst is too short. Whether ns.Target is a VIP of this
// director is the caller's question.
func BuildNAReply(dst []byte, ns *NS, mac [6]byte) int {
	if ns.Src == ([16]byte{}) {
		return BuildNA(dst, MulticastMAC6(allNodes), mac, ns.Target, allNodes, ns.Target, naFlagOverr)
	}
	eth := ns.EthSrc
	if ns.HasSrcLL {
		eth = ns.SrcLL
	}
	return BuildNA(dst, eth, mac, ns.Target, ns.Src, ns.Target, naFlagSolicit|naFlagOverr)
}

// BuildUnsolicitedNA writes into dst an unsolicited neighbour advertisement announcing that
// target is at mac (RFC 4861 section 7.2.6): to all nodes, override set, solicited clear,
// with the target link-layer option; IPv6's gratuitous ARP. It returns the frame length, or
// 0 if dst is too short.
func BuildUnsolicitedNA(dst []byte, mac [6]byte, target [16]byte) int {
	return BuildNA(dst, MulticastMAC6(allNodes), mac, target, allNodes, target, naFlagOverr)
}

// BuildNA writes an Ethernet frame (ethDst, from mac) carrying an IPv6 neighbour
// advertisement from src to ipDst about target with the given flags byte and a target
// link-layer address option of mac; hop limit 255 and checksum as RFC 4861 section 4.4
// requires. It returns the frame length (86), or 0 if dst is too short.
func BuildNA(dst []byte, ethDst, mac [6]byte, src, ipDst, target [16]byte, flags uint8) int {
	if len(dst) < naFrameLen {
		return 0
	}
	f := dst[:naFrameLen]
	copy(f[0:6], ethDst[:])
	copy(f[6:12], mac[:])
	binary.BigEndian.PutUint16(f[12:14], EtherTypeIPv6)
	h := f[EthHdrLen : EthHdrLen+IPv6HdrLen]
	h[0], h[1], h[2], h[3] = 0x60, 0, 0, 0
	binary.BigEndian.PutUint16(h[4:6], ndpMsgLen+8)
	h[6] = ProtoICMPv6
	h[7] = ndpHopLimit
	copy(h[8:24], src[:])
	copy(h[24:40], ipDst[:])
	m := f[EthHdrLen+IPv6HdrLen:]
	m[0], m[1], m[2], m[3] = ICMPv6NeighborAdvert, 0, 0, 0
	m[4], m[5], m[6], m[7] = flags, 0, 0, 0
	copy(m[8:24], target[:])
	m[24], m[25] = ndpOptTgtLL, 1
	copy(m[26:32], mac[:])
	cs := ^Checksum(m, PseudoHeaderSum6(src, ipDst, ProtoICMPv6, uint32(len(m))))
	binary.BigEndian.PutUint16(m[2:4], cs)
	return naFrameLen
}

// SolicitedNode returns the solicited-node multicast address of a, ff02::1:ffXX:XXXX with
// a's low 24 bits (RFC 4291 section 2.7.1): where neighbour solicitations for a are sent.
func SolicitedNode(a [16]byte) [16]byte {
	return [16]byte{0xff, 0x02, 11: 0x01, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]}
}

// MulticastMAC6 returns the Ethernet address of the IPv6 multicast address a, 33:33 and a's
// low 32 bits (RFC 2464 section 7).
func MulticastMAC6(a [16]byte) [6]byte {
	return [6]byte{0x33, 0x33, a[12], a[13], a[14], a[15]}
}
