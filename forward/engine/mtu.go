package engine

import "github.com/uvs-project/uvs/forward/packet"

// Path MTU, for every forwarding method, as IPVS's ensure_mtu_is_adequate
// (net/netfilter/ipvs/ip_vs_xmit.c). The egress MTU of a real server is Real.MTU: the route's
// MTU metric if it has one, else the device's. For TUN the room is that less the outer header.
// A packet that does not fit:
//   - with DF, is dropped (too_big) and answered with ICMP fragmentation needed (RFC 1191)
//     whose next-hop MTU is the room, from the VIP to the hop the packet came from, so that the
//     client lowers its path MTU instead of retransmitting into a black hole. A NAT reply too
//     big for the client's side is answered likewise to the real server, from the director's
//     address on the real server's side (Iface.Addr), as the kernel's ip_forward would. The replies share
//     the worker's ICMP budget (icmpAllowed); a packet whose reply the budget suppresses is
//     counted under too_big_icmp_limited instead;
//   - without DF, leaves in fragments (emit, frag.go; TUN fragments the inner packet).
//
// A GSO super-frame is measured by what it puts on the wire: one segment, its IP and L4
// headers plus gso_size, as skb_gso_validate_network_len measures it; its total length says
// nothing. DR and NAT hand GSO frames to the kernel, which segments them at gso_size and could
// not fit them to a smaller MTU, so one without DF whose segments do not fit is dropped
// (too_big, no reply possible); TUN segments in software and cuts such a frame smaller instead.

// gsoHeaderLen returns the IP and L4 header length of the current GSO super-frame (frame as
// ParseL4 saw it), or 0 for a GSO type uvs does not segment or measure.
func (e *Engine) gsoHeaderLen(frame []byte) int {
	p := &e.p
	ihl := p.L4 - p.L3
	switch {
	case (e.vh.GSOType&^packet.VnetGSOECN == packet.VnetGSOTCPv4 || e.vh.GSOType&^packet.VnetGSOECN == packet.VnetGSOTCPv6) && p.Proto == packet.ProtoTCP:
		return ihl + int(frame[p.L4+12]>>4)*4
	case e.vh.GSOType == packet.VnetGSOUDPL4 && p.Proto == packet.ProtoUDP:
		return ihl + packet.UDPHdrLen
	}
	return 0
}

// exceeds reports whether the current packet is longer than room on the wire: its IP length,
// or for a GSO super-frame its headers plus one segment. A GSO frame whose headers uvs cannot
// measure does not.
func (e *Engine) exceeds(frame []byte, room int) bool {
	n := e.p.IPLen
	if e.vh.GSOType != packet.VnetGSONone {
		hl := e.gsoHeaderLen(frame)
		if hl == 0 {
			return false
		}
		n = hl + int(e.vh.GSOSize)
	}
	return n > room
}

// tooBig reports whether the current packet, with DF, does not fit room bytes of IP packet
// (for a GSO super-frame: one of its segments does not). It then drops the packet and answers
// with fragmentation needed carrying room, from address from (fragNeeded), and the caller
// sends nothing. A packet without DF, a GSO type uvs cannot measure, or room <= 0 (MTU
// unknown) is the caller's.
func (e *Engine) tooBig(frame []byte, rxIf, room int, from [4]byte) bool {
	if !e.p.DF || room <= 0 || !e.exceeds(frame, room) {
		return false
	}
	e.fragNeeded(frame, rxIf, room, from)
	return true
}

// ifAddr returns the director's IPv4 address on interface slot i, or zero.
func (e *Engine) ifAddr(i int) [4]byte {
	if i < len(e.snap.Ifaces) {
		return e.snap.Ifaces[i].Addr
	}
	return [4]byte{}
}

// gsoTooBig reports whether the current frame is a GSO super-frame whose segments do not fit
// mtu (DR and NAT, which cannot cut them smaller), counting the drop.
func (e *Engine) gsoTooBig(frame []byte, mtu int) bool {
	if e.vh.GSOType == packet.VnetGSONone || mtu <= 0 {
		return false
	}
	hl := e.gsoHeaderLen(frame)
	if hl == 0 || hl+int(e.vh.GSOSize) <= mtu {
		return false
	}
	e.Drop(DropTooBig)
	return true
}

// fragNeeded drops the current packet, too big for the egress, and answers it with ICMP
// fragmentation needed (RFC 1191) carrying mtu, sent from address from (the VIP for a
// client's packet) to the frame's source MAC on rxIf, within the worker's ICMP budget. Each
// packet is counted once: too_big (answered, or not answerable: RFC 1122 forbids it, or no
// source address), too_big_icmp_limited (the budget was spent), or the reason it could not be
// answered at all.
func (e *Engine) fragNeeded(frame []byte, rxIf int, mtu int, from [4]byte) {
	if rxIf >= len(e.snap.Ifaces) {
		e.Drop(DropEgress)
		return
	}
	if from == ([4]byte{}) {
		e.Drop(DropTooBig)
		return
	}
	if !e.icmpAllowed() { // also counted as ICMPLimited, with the other suppressed errors
		e.Drop(DropTooBigLimited)
		return
	}
	// The quote is the 20-byte header (ParseL4 refuses options) and 8 bytes.
	b := e.alloc(packet.VnetHdrLen + max(packet.EthHdrLen+packet.IPv4HdrLen+packet.ICMPHdrLen+packet.IPv4HdrLen+packet.ICMPQuoteL4, packet.MinFrameLen))
	if b == nil {
		e.Drop(DropScratchFull)
		return
	}
	e.Drop(DropTooBig)
	clear(b[:packet.VnetHdrLen])
	n := packet.BuildICMPError(b[packet.VnetHdrLen:], frame, &e.p, packet.ICMPDestUnreachable, packet.ICMPCodeFragNeeded,
		uint16(min(mtu, 0xffff)), from, [6]byte(frame[6:12]), e.snap.Ifaces[rxIf].MAC)
	if n == 0 {
		e.used -= len(b) // RFC 1122 forbids an error about this packet
		return
	}
	e.queue(rxIf, b[:packet.VnetHdrLen+n])
	bump64(&e.stats.ICMPSent, 1)
	bump64(&e.stats.FragNeeded, 1)
}
