package packet

import "encoding/binary"

// ICMPv6 types and codes the director sends or relays (RFC 4443).
const (
	ICMPv6DestUnreachable = 1
	ICMPv6PacketTooBig    = 2
	ICMPv6TimeExceeded    = 3
	ICMPv6ParamProblem    = 4
	ICMPv6EchoRequest     = 128
	ICMPv6EchoReply       = 129
	// ICMPv6CodePortUnreachable is code 4 of ICMPv6DestUnreachable.
	ICMPv6CodePortUnreachable = 4
	icmpv6Redirect            = 137

	// ICMPv6MinMTU is the IPv6 minimum link MTU (RFC 8200 section 5). An ICMPv6 error
	// quotes as much of the invoking packet as fits in it (RFC 4443 section 2.4(c)), and
	// no Packet Too Big may announce less.
	ICMPv6MinMTU = 1280
)

// ICMPv6IsError reports whether t is an ICMPv6 error message (RFC 4443 section 2.1: types
// 0 to 127); the four defined ones quote the packet that caused them.
func ICMPv6IsError(t uint8) bool { return t >= 1 && t <= 4 }

// BuildICMPv6Error writes into dst an Ethernet frame (dstMAC, srcMAC) carrying an ICMPv6
// error of type typ and code about orig, a frame whose IPv6 header ParseL4 read into p (its
// upper layer parsed or not). The IPv6 header goes from src to the original source with hop
// limit 64; the message quotes as much of the original packet, as it is in orig now, as
// fits in the 1280-byte minimum MTU (RFC 4443 section 2.4(c)). param is the MTU of a Packet
// Too Big (raised to 1280 if lower, RFC 8201 section 4) or the pointer of a parameter
// problem; other types write 0 there. The checksum covers the pseudo-header.
//
// It returns the frame length, or 0 without writing if dst is too small, p does not fit
// orig, or RFC 4443 section 2.4(e) forbids the error: orig is an ICMPv6 error or redirect, or
// was sent to a multicast address (link layer or IPv6; Packet Too Big and parameter problem
// code 2 excepted), or its source is unspecified, loopback or multicast.
func BuildICMPv6Error(dst []byte, orig []byte, p *Packet, typ, code uint8, param uint32, src [16]byte, dstMAC, srcMAC [6]byte) int {
	l3 := p.L3
	if !p.V6 || l3 < EthHdrLen || p.IPLen < IPv6HdrLen || l3 > len(orig) || p.IPLen > len(orig)-l3 {
		return 0
	}
	ip := orig[l3 : l3+p.IPLen]
	osrc := [16]byte(ip[8:24])
	if !IsUnicast6(osrc) {
		return 0
	}
	mcastOK := typ == ICMPv6PacketTooBig || (typ == ICMPv6ParamProblem && code == 2)
	if !mcastOK && (orig[0]&1 != 0 || ip[24] == 0xff) {
		return 0
	}
	if p.Proto == ProtoICMPv6 {
		if p.L4 <= l3 || p.L4 >= l3+p.IPLen {
			return 0 // cannot tell whether it is an error
		}
		if t := orig[p.L4]; t < 128 || t == icmpv6Redirect {
			return 0
		}
	}
	if typ == ICMPv6PacketTooBig {
		param = max(param, ICMPv6MinMTU)
	}
	q := min(len(ip), ICMPv6MinMTU-IPv6HdrLen-ICMPHdrLen)
	plen := ICMPHdrLen + q
	n := EthHdrLen + IPv6HdrLen + plen
	if len(dst) < n {
		return 0
	}
	f := dst[:n]
	copy(f[EthHdrLen+IPv6HdrLen+ICMPHdrLen:], ip[:q])
	copy(f[0:6], dstMAC[:])
	copy(f[6:12], srcMAC[:])
	binary.BigEndian.PutUint16(f[12:14], EtherTypeIPv6)
	h := f[EthHdrLen : EthHdrLen+IPv6HdrLen]
	h[0], h[1], h[2], h[3] = 0x60, 0, 0, 0
	binary.BigEndian.PutUint16(h[4:6], uint16(plen))
	h[6] = ProtoICMPv6
	h[7] = ipv6HopLimit
	copy(h[8:24], src[:])
	copy(h[24:40], osrc[:])
	m := f[EthHdrLen+IPv6HdrLen:]
	m[0], m[1], m[2], m[3] = typ, code, 0, 0
	binary.BigEndian.PutUint32(m[4:8], param)
	cs := ^Checksum(m, PseudoHeaderSum6(src, osrc, ProtoICMPv6, uint32(plen)))
	binary.BigEndian.PutUint16(m[2:4], cs)
	return n
}

// EchoReply6 turns the ICMPv6 echo request that ParseL4 accepted into p into its reply in
// place (RFC 4443 section 4.2): addresses swapped, type 129, hop limit 64, the Ethernet
// addresses swapped, the checksum updated incrementally (the pseudo-header sum does not
// change when source and destination swap). It returns false, changing nothing, if p is
// not an echo request to a unicast address from a unicast source.
func EchoReply6(frame []byte, p *Packet) bool {
	if !p.V6 || p.Proto != ProtoICMPv6 || p.ICMPType != ICMPv6EchoRequest || p.L3 < EthHdrLen ||
		p.L4+ICMPHdrLen > len(frame) || !IsUnicast6(p.Src6) || !IsUnicast6(p.Dst6) || p.L4 < p.L3+IPv6HdrLen {
		return false
	}
	var srcMAC [6]byte
	copy(srcMAC[:], frame[6:12])
	copy(frame[6:12], frame[0:6])
	copy(frame[0:6], srcMAC[:])
	h := frame[p.L3 : p.L3+IPv6HdrLen]
	copy(h[8:24], p.Dst6[:])
	copy(h[24:40], p.Src6[:])
	h[7] = ipv6HopLimit
	p.Src6, p.Dst6 = p.Dst6, p.Src6
	m := frame[p.L4:]
	var d csumDelta
	d.add16(uint16(m[0])<<8|uint16(m[1]), uint16(ICMPv6EchoReply)<<8|uint16(m[1]))
	m[0] = ICMPv6EchoReply
	binary.BigEndian.PutUint16(m[2:4], d.applyChecksum(binary.BigEndian.Uint16(m[2:4])))
	p.ICMPType = ICMPv6EchoReply
	return true
}
