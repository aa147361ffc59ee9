package packet

import "encoding/binary"

// TCP option kinds (RFC 793 section 3.1).
const (
	tcpOptEnd    = 0
	tcpOptNOP    = 1
	TCPOptMSS    = 2
	tcpOptMSSLen = 4
)

// ClampMSS lowers the maximum segment size option of a TCP SYN that ParseL4 accepted into p to
// mss, if it is larger, and reports whether it changed the frame. A finished checksum is
// updated incrementally (RFC 1624) over the 16-bit words the option value touches, which are
// two when the option starts at an odd offset; a CHECKSUM_PARTIAL frame (partial) carries only
// the pseudo-header seed, which does not cover options, so it is left alone. A SYN without an
// MSS option is left alone too: its peer assumes 536 (RFC 879), below every allowed clamp.
// Malformed options end the walk without a change. Clamping is per service, for every
// forwarding method, which the kernel's iptables TCPMSS target cannot express for IPVS.
func ClampMSS(frame []byte, p *Packet, partial bool, mss uint16) bool {
	if p.Proto != ProtoTCP || p.TCPFlags&TCPSYN == 0 || p.L4 <= 0 || p.L4+TCPHdrLen > len(frame) {
		return false
	}
	tcp := frame[p.L4:]
	thl := int(tcp[12]>>4) * 4
	if thl > len(tcp) || p.L3+p.IPLen < p.L4+thl {
		return false
	}
	for i := TCPHdrLen; i < thl; {
		switch tcp[i] {
		case tcpOptEnd:
			return false
		case tcpOptNOP:
			i++
			continue
		}
		if i+1 >= thl {
			return false
		}
		n := int(tcp[i+1])
		if n < 2 || i+n > thl {
			return false
		}
		if tcp[i] != TCPOptMSS {
			i += n
			continue
		}
		if n != tcpOptMSSLen {
			return false
		}
		v := i + 2 // offset of the value in the TCP header
		if binary.BigEndian.Uint16(tcp[v:]) <= mss {
			return false
		}
		// The aligned words covering bytes v and v+1: one if v is even, two otherwise.
		w0 := v &^ 1
		w1 := (v + 1) &^ 1
		var d csumDelta
		old0, old1 := binary.BigEndian.Uint16(tcp[w0:]), binary.BigEndian.Uint16(tcp[w1:])
		binary.BigEndian.PutUint16(tcp[v:], mss)
		d.add16(old0, binary.BigEndian.Uint16(tcp[w0:]))
		if w1 != w0 {
			d.add16(old1, binary.BigEndian.Uint16(tcp[w1:]))
		}
		if !partial {
			cs := binary.BigEndian.Uint16(tcp[TCPCsumOff:])
			binary.BigEndian.PutUint16(tcp[TCPCsumOff:], d.applyChecksum(cs))
		}
		return true
	}
	return false
}
