package engine

import (
	"encoding/binary"

	"github.com/uvs-project/uvs/forward/packet"
)

// TUN with IPv6 on either side: 6in6 (RFC 2473), 4in6 (an IPv4 packet to an IPv6 real) and
// 6in4 (RFC 4213: an IPv6 packet to an IPv4 real), as IPVS's ip_vs_tunnel_xmit_v6 and its
// mixed-family tunnels. The outer source is the service's tunnel_source or the egress
// address of the outer family (Real.SrcIP6, Real.SrcIP).
//
// Sizes. No IPv6 packet is fragmented on the way, and the outer packets carry none: a packet
// too big for the tunnel is answered (Packet Too Big for an IPv6 inner packet, fragmentation
// needed for an IPv4 one with DF) and dropped; an IPv4 inner packet without DF too big for a
// 4in6 tunnel is fragmented before encapsulation, as tunnelFragments does for IPIP. GSO super-frames (TCP over either family, UDP L4) are
// segmented in software as for IPIP (tunnelGSO6), each segment encapsulated with complete
// checksums.

// tunnel6 forwards the current packet to TUN real dest when either family is IPv6.
func (e *Engine) tunnel6(frame []byte, dest *Real, rxIf int) bool {
	p := &e.p
	over := packet.IPv4HdrLen
	if dest.V6 {
		over = packet.IPv6HdrLen
	}
	room := 0xffff - over
	if dest.MTU > 0 && dest.MTU-over < room {
		room = dest.MTU - over
	}
	if room < packet.IPv4HdrLen+8 {
		bump64(&e.stats.Tunnel.TooSmallMTU, 1)
		return false
	}
	if p.V6 {
		if e.tooBig6(frame, rxIf, room, p.Dst6) {
			return false
		}
	} else if e.tooBig(frame, rxIf, room, p.Dst) {
		return false
	}
	pkt := frame[:p.L3+p.IPLen]
	if e.vh.GSOType != packet.VnetGSONone {
		return e.tunnelGSO6(pkt, dest, room)
	}
	if !packet.FinishChecksum(pkt, &e.vh) {
		e.fault(packet.FaultBadVnetHdr)
		return false
	}
	inner := pkt[p.L3:]
	if len(inner) > room { // IPv4 without DF (a reassembled datagram, say): 4in6
		return e.tunnelFragments4in6(inner, dest, room)
	}
	b := e.alloc(packet.VnetHdrLen + packet.IP6IP6HdrLen + len(inner))
	if b == nil {
		e.Drop(DropScratchFull)
		return false
	}
	clear(b[:packet.VnetHdrLen])
	var n int
	if dest.V6 {
		n = packet.EncapIP6(b[packet.VnetHdrLen:], inner, dest.DstMAC, dest.SrcMAC, dest.SrcIP6, dest.Addr)
	} else {
		n = packet.Encap6in4(b[packet.VnetHdrLen:], inner, dest.DstMAC, dest.SrcMAC, dest.SrcIP, [4]byte(dest.Addr[12:]), e.nextID())
	}
	if n == 0 {
		e.used -= len(b)
		e.fault(packet.FaultBadOffsets)
		return false
	}
	e.queue(dest.TxIf, b[:packet.VnetHdrLen+n])
	bump64(&e.stats.Tunnel.Frames, 1)
	return true
}

// tunnelGSO6 is tunnelGSO for the tunnels of tunnel6: it segments the TCP or UDP GSO
// super-frame pkt (the frame up to the end of its IP packet, inner IPv4 or IPv6) by its
// gso_size, or smaller to fit room, and encapsulates each segment in the outer family of
// dest, with finished checksums. TCP flags and IPv4 IDs follow tcp_gso_segment and
// inet_gso_segment, as in tunnelGSO.
func (e *Engine) tunnelGSO6(pkt []byte, dest *Real, room int) bool {
	p := &e.p
	inner := pkt[p.L3:]
	hl := e.gsoHeaderLen(pkt) // IP (with extension headers) + L4 header length
	if hl == 0 {
		bump64(&e.stats.Tunnel.UnsupGSOType, 1)
		e.fault(packet.FaultGSO)
		return false
	}
	ihl := p.L4 - p.L3
	data := inner[hl:]
	mss := int(e.vh.GSOSize)
	if hl+mss > room {
		if mss = room - hl; mss < 8 {
			bump64(&e.stats.Tunnel.TooSmallMTU, 1)
			return false
		}
	}
	outer := packet.IPIPHdrLen // Ethernet and the outer header
	if dest.V6 {
		outer = packet.IP6IP6HdrLen
	}
	n := max(1, (len(data)+mss-1)/mss)
	if !e.fits(n, n*(packet.VnetHdrLen+outer+hl)+len(data)) {
		return false
	}
	var id uint16
	if !p.V6 {
		id = binary.BigEndian.Uint16(inner[4:6])
	}
	var seq uint32
	var flags uint8
	if p.Proto == packet.ProtoTCP {
		seq = binary.BigEndian.Uint32(inner[ihl+4:])
		flags = inner[ihl+13]
	}
	for i := 0; i < n; i++ {
		off := i * mss
		m := min(mss, len(data)-off)
		b := e.alloc(packet.VnetHdrLen + outer + hl + m)
		clear(b[:packet.VnetHdrLen])
		s := b[packet.VnetHdrLen+outer:]
		copy(s[:hl], inner[:hl])
		copy(s[hl:], data[off:off+m])
		if p.V6 {
			binary.BigEndian.PutUint16(s[4:6], uint16(hl-packet.IPv6HdrLen+m))
		} else {
			ip := s[:packet.IPv4HdrLen]
			binary.BigEndian.PutUint16(ip[2:4], uint16(hl+m))
			binary.BigEndian.PutUint16(ip[4:6], id+uint16(i))
			ip[10], ip[11] = 0, 0
			binary.BigEndian.PutUint16(ip[10:12], ^packet.Checksum(ip, 0))
		}
		l4 := s[ihl:]
		l4len := hl - ihl + m
		csumOff := segmentL4(l4, p.Proto, l4len, seq+uint32(off), flags, i == 0, i == n-1)
		var seed uint16
		if p.V6 {
			seed = packet.PseudoHeaderSum6(p.Src6, p.Dst6, p.Proto, uint32(l4len))
		} else {
			seed = packet.PseudoHeaderSum(p.Src, p.Dst, p.Proto, uint16(l4len))
		}
		cs := ^packet.Checksum(l4, seed)
		if cs == 0 && p.Proto == packet.ProtoUDP {
			cs = 0xffff // RFC 768, RFC 8200 section 8.1
		}
		binary.BigEndian.PutUint16(l4[csumOff:], cs)
		if dest.V6 {
			packet.EncapIP6(b[packet.VnetHdrLen:], s, dest.DstMAC, dest.SrcMAC, dest.SrcIP6, dest.Addr)
		} else {
			packet.Encap6in4(b[packet.VnetHdrLen:], s, dest.DstMAC, dest.SrcMAC, dest.SrcIP, [4]byte(dest.Addr[12:]), e.nextID())
		}
		e.queue(dest.TxIf, b)
	}
	bump64(&e.stats.Tunnel.Frames, uint64(n))
	bump64(&e.stats.Tunnel.Segmented, 1)
	return true
}

// tunnelFragments4in6 is tunnelFragments for a 4in6 tunnel: inner (an IPv4 packet without
// options and without DF) is split into fragments of at most room bytes, each carried in
// its own outer IPv6 packet.
func (e *Engine) tunnelFragments4in6(inner []byte, dest *Real, room int) bool {
	data := inner[packet.IPv4HdrLen:]
	step := (room - packet.IPv4HdrLen) &^ 7
	if step <= 0 {
		bump64(&e.stats.Tunnel.TooSmallMTU, 1)
		return false
	}
	n := (len(data) + step - 1) / step
	over := packet.VnetHdrLen + packet.IP6IP6HdrLen
	if !e.fits(n, n*(over+packet.IPv4HdrLen)+len(data)) {
		return false
	}
	for off := 0; off < len(data); off += step {
		m := min(step, len(data)-off)
		b := e.alloc(over + packet.IPv4HdrLen + m)
		clear(b[:packet.VnetHdrLen])
		f := b[over:]
		writeFragment4(f, inner, off, m)
		packet.EncapIP6(b[packet.VnetHdrLen:], f, dest.DstMAC, dest.SrcMAC, dest.SrcIP6, dest.Addr)
		e.queue(dest.TxIf, b)
	}
	bump64(&e.stats.Tunnel.Frames, uint64(n))
	bump64(&e.stats.Tunnel.Fragmented, 1)
	return true
}
