package packet

import "encoding/binary"

// ICMP types and codes the director sends (RFC 792, RFC 1191).
const (
	ICMPDestUnreachable = 3
	ICMPTimeExceeded    = 11
	// ICMPCodePortUnreachable is code 3 of ICMPDestUnreachable.
	ICMPCodePortUnreachable = 3
	// ICMPCodeFragNeeded is code 4 of ICMPDestUnreachable; the next-hop
	// MTU goes in the low 16 bits of the second word (RFC 1191 section 4).
	ICMPCodeFragNeeded = 4

	ICMPQuoteL4 = 8    // RFC 792: the IP header plus 64 bits of data
	icmpTOS     = 0xc0 // IPTOS_PREC_INTERNETCONTROL, as the kernel's icmp_send
)

// BuildICMPError writes into dst an Ethernet frame (dstMAC, srcMAC) carrying
// an ICMP error of type typ and code about orig, a frame accepted by ParseL4
// into p. The IPv4 header goes from src to the original source with TTL 64
// and DF; the ICMP message quotes the original IP header and the first 8
// bytes of its payload (RFC 792), as they are in orig now. mtu is written
// only for type 3 code 4 (RFC 1191). Both checksums are computed.
//
// It returns the frame length, or 0 without writing if dst is too small, p
// does not fit orig, or RFC 1122 section 3.2.2 forbids the error: orig is
// itself an ICMP error, was sent to a link-layer or IP broadcast or
// multicast, is a non-initial fragment, or its source is not a unicast host
// address (0/8, 127/8, 224/4 and above).
func BuildICMPError(dst []byte, orig []byte, p *Packet, typ, code uint8, mtu uint16, src [4]byte, dstMAC, srcMAC [6]byte) int {
	l3 := p.L3
	if l3 < EthHdrLen || p.IPLen < IPv4HdrLen || l3 > len(orig) || p.IPLen > len(orig)-l3 {
		return 0
	}
	ihl := int(orig[l3]&0x0f) * 4
	if ihl < IPv4HdrLen || ihl > p.IPLen {
		return 0
	}
	q := min(p.IPLen, ihl+ICMPQuoteL4)
	quote := orig[l3 : l3+q]
	if !icmpErrorAllowed(orig, quote, ihl) {
		return 0
	}
	tot := IPv4HdrLen + ICMPHdrLen + q
	n := EthHdrLen + tot
	if len(dst) < max(n, MinFrameLen) {
		return 0
	}
	f := dst[:max(n, MinFrameLen)]
	copy(f[EthHdrLen+IPv4HdrLen+ICMPHdrLen:n], quote)
	clear(f[n:])

	copy(f[0:6], dstMAC[:])
	copy(f[6:12], srcMAC[:])
	binary.BigEndian.PutUint16(f[12:14], EtherTypeIPv4)

	h := f[EthHdrLen : EthHdrLen+IPv4HdrLen]
	h[0] = 0x45
	h[1] = icmpTOS
	binary.BigEndian.PutUint16(h[2:4], uint16(tot))
	binary.BigEndian.PutUint16(h[4:6], 0) // atomic datagram, RFC 6864
	binary.BigEndian.PutUint16(h[6:8], IPFlagDF)
	h[8] = ipipTTL
	h[9] = ProtoICMP
	h[10], h[11] = 0, 0
	copy(h[12:16], src[:])
	copy(h[16:20], quote[12:16])
	binary.BigEndian.PutUint16(h[10:12], ^Checksum(h, 0))

	m := f[EthHdrLen+IPv4HdrLen : n]
	m[0] = typ
	m[1] = code
	m[2], m[3], m[4], m[5], m[6], m[7] = 0, 0, 0, 0, 0, 0
	if typ == ICMPDestUnreachable && code == ICMPCodeFragNeeded {
		binary.BigEndian.PutUint16(m[6:8], mtu)
	}
	binary.BigEndian.PutUint16(m[2:4], ^Checksum(m, 0))
	return len(f)
}

// icmpErrorAllowed applies RFC 1122 section 3.2.2 (and RFC 1812 4.3.2.7) to
// the frame orig whose IP header and quoted bytes are quote.
func icmpErrorAllowed(orig, quote []byte, ihl int) bool {
	if orig[0]&1 != 0 { // link-layer group address
		return false
	}
	if binary.BigEndian.Uint16(quote[6:8])&IPFragOffMask != 0 {
		return false
	}
	s, d := quote[12], quote[16]
	if s == 0 || s == 127 || s >= 224 || d >= 224 {
		return false // also covers the limited broadcast 255.255.255.255
	}
	if quote[9] == ProtoICMP {
		if len(quote) <= ihl {
			return false // cannot tell whether it is an error
		}
		switch quote[ihl] {
		case 0, 8, 13, 14, 15, 16, 17, 18: // echo, timestamp, info, mask
		default:
			return false
		}
	}
	return true
}

// ICMPIsError reports whether t is an ICMP error type whose quoted header names the
// connection it belongs to (RFC 792): destination unreachable (fragmentation needed among
// them), time exceeded, parameter problem.
func ICMPIsError(t uint8) bool { return t == 3 || t == 11 || t == 12 }
