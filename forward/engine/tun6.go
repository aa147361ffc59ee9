package engine

import "github.com/uvs-project/uvs/forward/packet"

// TUN with IPv6 on either side: 6in6 (RFC 2473), 4in6 (an IPv4 packet to an IPv6 real) and
// 6in4 (RFC 4213: an IPv6 packet to an IPv4 real), as IPVS's ip_vs_tunnel_xmit_v6 and its
// mixed-family tunnels. The outer source is the service's tunnel_source or the egress
// address of the outer family (Real.SrcIP6, Real.SrcIP).
//
// Sizes. No IPv6 packet is fragmented on the way, and the outer packets carry none: a packet
// too big for the tunnel is answered (Packet Too Big for an IPv6 inner packet, fragmentation
// needed for an IPv4 one with DF) and dropped; an IPv4 inner packet without DF too big for a
// 4in6 tunnel is dropped as too_big. GSO super-frames are not segmented for these tunnels
// yet: they are counted as gso_unsupported (the fanout sockets of a director with offloads
// on receive them; IPIP's software segmentation is tunnel.go's).

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
	if e.vh.GSOType != packet.VnetGSONone {
		bump64(&e.stats.Tunnel.UnsupGSOType, 1)
		e.fault(packet.FaultGSO)
		return false
	}
	pkt := frame[:p.L3+p.IPLen]
	if !packet.FinishChecksum(pkt, &e.vh) {
		e.fault(packet.FaultBadVnetHdr)
		return false
	}
	inner := pkt[p.L3:]
	if len(inner) > room { // IPv4 without DF
		e.Drop(DropTooBig)
		return false
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
