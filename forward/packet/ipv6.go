package packet

import "encoding/binary"

// IPv6 (RFC 8200): the fixed header, the extension-header chain, and the upper-layer header.
//
// Fragments. IPv6 routers never fragment, so a fragment reaching the director was split by
// the client itself. The policy is IPv4's: the fanout group's PACKET_FANOUT_FLAG_DEFRAG
// reassembles IPv4 only, so IPv6 fragments (a fragment header with a non-zero offset or the
// M flag) are dropped under "fragment": ports are only in the first fragment, and the
// others could not be scheduled consistently. An atomic fragment (offset 0, M clear; RFC
// 6946) is a whole packet and is forwarded as one.

// Wire constants of IPv6 (RFC 8200), ICMPv6 (RFC 4443) and the tunnels that carry IPv6.
const (
	EtherTypeIPv6 = 0x86dd
	IPv6HdrLen    = 40 // the fixed header; extension headers follow it
	ProtoIPv6     = 41 // IPv6 encapsulated in IPv4 (RFC 4213) or IPv6 (RFC 2473)
	ProtoICMPv6   = 58

	extHopByHop = 0
	extRouting  = 43
	extFragment = 44
	extAH       = 51
	extDstOpts  = 60

	// maxExtHeaders bounds the walk of the extension-header chain. RFC 8200 section 4.1
	// recommends an order in which a packet carries at most six (hop-by-hop, destination
	// options twice, routing, fragment, AH); eight leaves room without letting a chain of
	// tiny headers cost more than a few cache lines.
	maxExtHeaders = 8

	optPad1      = 0
	optJumbo     = 0xc2 // jumbo payload (RFC 2675)
	ipv6HopLimit = 64   // outer hop limit and ICMPv6 hop limit, the kernel's default
)

// parseL4v6 implements ParseL4 for an IPv6 frame: version 6, the payload length within the
// frame (0 is a jumbogram or an empty packet, neither forwarded), the extension-header chain
// walked to the upper-layer header (see the policy above; ESP, "no next header" and any
// other protocol are FaultUnsupportedProto), then TCP, UDP or ICMPv6 as ParseL4 checks them
// for IPv4. The hop limit is read into p.TTL and checked by the rewrites, as the TTL is.
func parseL4v6(frame []byte, p *Packet) Fault {
	l3 := p.L3
	if l3 < 0 || l3 > len(frame) || len(frame)-l3 < IPv6HdrLen {
		return FaultTruncatedIP
	}
	b := frame[l3:]
	h := b[:IPv6HdrLen]
	if h[0]>>4 != 6 {
		return FaultBadIPVersion
	}
	plen := int(binary.BigEndian.Uint16(h[4:6]))
	tot := IPv6HdrLen + plen
	if tot > len(b) {
		return FaultTruncatedIP
	}
	p.IPLen = tot
	p.TTL = h[7]
	copy(p.Src6[:], h[8:24])
	copy(p.Dst6[:], h[24:40])
	next := h[6]
	if plen == 0 {
		if next == extHopByHop {
			return FaultJumbogram
		}
		return FaultTruncatedL4
	}
	off := IPv6HdrLen
	for i := 0; ; i++ {
		switch next {
		case ProtoTCP, ProtoUDP, ProtoICMPv6:
			p.Proto = next
			return parseUpper(b[off:tot], p, l3+off)
		case extHopByHop:
			if i != 0 {
				return FaultBadExtHeader
			}
		case extRouting, extFragment, extAH, extDstOpts:
		default:
			p.Proto = next
			return FaultUnsupportedProto
		}
		if i == maxExtHeaders || tot-off < 8 {
			return FaultBadExtHeader
		}
		e := b[off:tot]
		var n int
		switch next {
		case extFragment:
			n = 8
			fo := binary.BigEndian.Uint16(e[2:4])
			if fo&0xfff9 != 0 { // offset (13 bits) or M; the 2 reserved bits are ignored
				p.Frag = true
				return FaultFragment
			}
		case extAH:
			n = (int(e[1]) + 2) * 4 // RFC 4302 section 2.2: in 4-byte units, minus 2
		default:
			n = (int(e[1]) + 1) * 8
		}
		if n > len(e) {
			return FaultBadExtHeader
		}
		switch next {
		case extHopByHop, extDstOpts:
			if f := checkOptions(e[2:n]); f != FaultNone {
				return f
			}
		case extRouting:
			if e[3] != 0 {
				return FaultRoutingHeader
			}
		}
		next = e[0]
		off += n
	}
}

// checkOptions walks the TLV options of a hop-by-hop or destination options header (RFC 8200
// section 4.2): each must fit, and a jumbo payload option is refused. Unknown options are
// the final destination's business (the real server's), so they are not interpreted.
func checkOptions(o []byte) Fault {
	for i := 0; i < len(o); {
		if o[i] == optPad1 {
			i++
			continue
		}
		if i+2 > len(o) || i+2+int(o[i+1]) > len(o) {
			return FaultBadExtHeader
		}
		if o[i] == optJumbo {
			return FaultJumbogram
		}
		i += 2 + int(o[i+1])
	}
	return FaultNone
}

// parseUpper reads the TCP, UDP or ICMPv6 header l4 (the rest of the IPv6 payload) at frame
// offset off into p, with ParseL4's IPv4 checks.
func parseUpper(l4 []byte, p *Packet, off int) Fault {
	p.L4 = off
	switch p.Proto {
	case ProtoTCP:
		if len(l4) < TCPHdrLen {
			return FaultTruncatedL4
		}
		doff := int(l4[12]>>4) * 4
		if doff < TCPHdrLen || doff > len(l4) {
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
	default: // ProtoICMPv6
		if len(l4) < ICMPHdrLen {
			return FaultTruncatedL4
		}
		p.ICMPType = l4[0]
		p.ICMPCode = l4[1]
	}
	return FaultNone
}

// Quote6 is the upper-layer identity of an IPv6 packet quoted by an ICMPv6 error (RFC 4443
// section 2.4(c)): what the ICMP relay needs to find the connection.
type Quote6 struct {
	// Off is the offset of the quoted IPv6 header in the frame.
	Off      int
	Proto    uint8
	Src, Dst [16]byte
	SrcPort  uint16
	DstPort  uint16
}

// ParseQuote6 reads the IPv6 packet quoted by the ICMPv6 error that ParseL4 accepted into p
// (an error type, ICMPv6IsError): its fixed header, its extension headers within the quote
// (bounded as for a received packet), and the ports of a TCP or UDP header. It returns
// false if the quote is too short to hold them, is not IPv6, or quotes another protocol
// or a non-initial fragment.
func ParseQuote6(frame []byte, p *Packet, q *Quote6) bool {
	end := p.L3 + p.IPLen
	q.Off = p.L4 + ICMPHdrLen
	if !p.V6 || end > len(frame) || q.Off < 0 || q.Off+IPv6HdrLen > end {
		return false
	}
	b := frame[q.Off:end]
	if b[0]>>4 != 6 {
		return false
	}
	copy(q.Src[:], b[8:24])
	copy(q.Dst[:], b[24:40])
	next, off := b[6], IPv6HdrLen
	for i := 0; i <= maxExtHeaders; i++ {
		switch next {
		case ProtoTCP, ProtoUDP:
			if off+4 > len(b) {
				return false
			}
			q.Proto = next
			q.SrcPort = binary.BigEndian.Uint16(b[off:])
			q.DstPort = binary.BigEndian.Uint16(b[off+2:])
			return true
		case extHopByHop, extRouting, extDstOpts, extFragment, extAH:
		default:
			return false
		}
		if off+8 > len(b) {
			return false
		}
		e := b[off:]
		switch next {
		case extFragment:
			if binary.BigEndian.Uint16(e[2:4])&0xfff8 != 0 {
				return false
			}
			off += 8
		case extAH:
			off += (int(e[1]) + 2) * 4
		default:
			off += (int(e[1]) + 1) * 8
		}
		next = e[0]
	}
	return false
}

// IsUnicast6 reports whether a is an address a host may send from and be answered at: not
// unspecified, loopback or multicast (RFC 4291 section 2.5.2, 2.5.3, 2.7).
func IsUnicast6(a [16]byte) bool {
	if a[0] == 0xff {
		return false
	}
	var z [15]byte
	if [15]byte(a[:15]) == z {
		return a[15] > 1 // :: and ::1
	}
	return true
}
