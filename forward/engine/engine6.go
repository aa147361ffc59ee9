package engine

import (
	"encoding/binary"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/packet"
)

// The IPv6 path of Handle: the same steps as IPv4's (classify, connection lookup or
// schedule, forward by DR, NAT or TUN, NAT replies, ICMP errors relayed), with neighbour
// solicitations for VIPs answered as ARP requests are, the hop limit decremented on DR as
// ip6_forward does, and Packet Too Big instead of fragmentation (IPv6 routers never fragment;
// fragments are dropped, packet/ipv6.go).

// handle6 handles an IPv6 frame that ParseL3 classified.
func (e *Engine) handle6(buf, frame []byte, rxIf int) {
	p := &e.p
	if !e.snap.has6 {
		e.pend.ignored++ // no IPv6 service: the host's own traffic
		return
	}
	c := &e.snap.cls6
	l4 := packet.ParseL4(frame, p)
	if l4 == packet.FaultNone && p.Proto == packet.ProtoICMPv6 && p.ICMPType == packet.ICMPv6NeighborSolicit {
		e.nsIn(frame, rxIf)
		return
	}
	e.src, e.dst = p.Src6, p.Dst6
	if l4 == packet.FaultNone {
		if svc := c.service(&p.Dst6, p.Proto, p.DstPort); svc != nil {
			if e.snap.isStandby(e.dst) {
				e.Drop(DropVRRPBackup)
				return
			}
			e.request(buf, frame, rxIf, svc)
			return
		}
	}
	if c.isVIP(&p.Dst6) {
		if e.snap.isStandby(e.dst) {
			e.Drop(DropVRRPBackup)
			return
		}
		if l4 != packet.FaultNone {
			e.fault(l4)
			return
		}
		e.request(buf, frame, rxIf, nil)
		return
	}
	if l4 == packet.FaultNone && c.isNATAddr(&p.Src6) {
		if c.isNATReply(&p.Src6, p.SrcPort, p.Proto) {
			e.reply(buf, frame, rxIf)
			return
		}
		if p.Proto == packet.ProtoICMPv6 && e.icmp6FromReal(buf, frame) {
			return
		}
	}
	e.pend.ignored++
}

// nsIn answers a neighbour solicitation for a VIP from the receiving interface's MAC (IPv6's
// arpIn); others (the host's own addresses) are the kernel's.
func (e *Engine) nsIn(frame []byte, rxIf int) {
	if !packet.ParseNS(frame, &e.p, &e.ns) || !e.snap.cls6.isVIP(&e.ns.Target) ||
		rxIf >= len(e.snap.Ifaces) || e.snap.isStandby(e.ns.Target) {
		e.pend.ignored++
		return
	}
	b := e.alloc(packet.VnetHdrLen + 128)
	if b == nil {
		e.Drop(DropScratchFull)
		return
	}
	clear(b[:packet.VnetHdrLen])
	n := packet.BuildNAReply(b[packet.VnetHdrLen:], &e.ns, e.snap.Ifaces[rxIf].MAC)
	if n == 0 {
		return
	}
	e.queue(rxIf, b[:packet.VnetHdrLen+n])
	bump64(&e.stats.ARPReplies, 1)
}

// toReal6 is toReal for an IPv6 packet.
func (e *Engine) toReal6(buf, frame []byte, dest *Real, ent *conntrack.Entry, rxIf int, q *quote) bool {
	p := &e.p
	switch dest.Method {
	case config.DR, config.NAT:
		if e.tooBig6(frame, rxIf, dest.MTU, p.Dst6) || e.gsoTooBig(frame, dest.MTU) {
			return false
		}
	case config.TUN:
		return e.tunnel(frame, dest, rxIf)
	default:
		e.Drop(DropMethod)
		return false
	}
	if dest.Method == config.NAT {
		if q != nil {
			if !natICMP6(frame, p, q, ent.Real, ent.RPort, true) {
				e.fault(packet.FaultTTLExceeded)
				return false
			}
		} else if r := packet.RewriteDst6(frame, p, e.vh.Partial(), ent.Real, ent.RPort); r != packet.FaultNone {
			e.fault(r)
			return false
		}
	} else if r := packet.DecHopLimit(frame, p); r != packet.FaultNone {
		e.fault(r)
		return false
	}
	e.emit(buf, frame, dest.TxIf, dest.MTU, dest.DstMAC, dest.SrcMAC)
	return true
}

// tooBig6 is tooBig for IPv6: every IPv6 packet is DF (RFC 8200 section 5), so one larger
// than room is dropped and answered with Packet Too Big carrying room (at least 1280), from
// address from, within the ICMP budget.
func (e *Engine) tooBig6(frame []byte, rxIf, room int, from [16]byte) bool {
	if room <= 0 || !e.exceeds(frame, room) {
		return false
	}
	e.packetTooBig(frame, rxIf, room, from)
	return true
}

// packetTooBig drops the current IPv6 packet and answers it with ICMPv6 Packet Too Big
// (RFC 4443 section 3.2) as fragNeeded does for IPv4.
func (e *Engine) packetTooBig(frame []byte, rxIf, mtu int, from [16]byte) {
	if rxIf >= len(e.snap.Ifaces) {
		e.Drop(DropEgress)
		return
	}
	if from == ([16]byte{}) {
		e.Drop(DropTooBig)
		return
	}
	if !e.icmpAllowed() {
		e.Drop(DropTooBigLimited)
		return
	}
	b := e.alloc(packet.VnetHdrLen + packet.EthHdrLen + packet.ICMPv6MinMTU)
	if b == nil {
		e.Drop(DropScratchFull)
		return
	}
	e.Drop(DropTooBig)
	clear(b[:packet.VnetHdrLen])
	n := packet.BuildICMPv6Error(b[packet.VnetHdrLen:], frame, &e.p, packet.ICMPv6PacketTooBig, 0,
		uint32(mtu), from, [6]byte(frame[6:12]), e.snap.Ifaces[rxIf].MAC)
	if n == 0 {
		e.used -= len(b)
		return
	}
	e.queue(rxIf, b[:packet.VnetHdrLen+n])
	bump64(&e.stats.ICMPSent, 1)
	bump64(&e.stats.FragNeeded, 1)
}

// unreachable6 answers the current IPv6 packet with ICMPv6 port unreachable from its VIP
// (no real server), as unreachable does for IPv4; the caller took the ICMP token.
func (e *Engine) unreachable6(frame []byte, rxIf int) {
	b := e.alloc(packet.VnetHdrLen + packet.EthHdrLen + packet.ICMPv6MinMTU)
	if b == nil {
		e.Drop(DropScratchFull)
		return
	}
	clear(b[:packet.VnetHdrLen])
	n := packet.BuildICMPv6Error(b[packet.VnetHdrLen:], frame, &e.p, packet.ICMPv6DestUnreachable,
		packet.ICMPv6CodePortUnreachable, 0, e.p.Dst6, [6]byte(frame[6:12]), e.snap.Ifaces[rxIf].MAC)
	if n == 0 {
		e.used -= len(b)
		return
	}
	e.queue(rxIf, b[:packet.VnetHdrLen+n])
	bump64(&e.stats.ICMPSent, 1)
}

// sendRST6 is sendRST for IPv6: a RST from the VIP to the client, hop limit 64, the checksum
// over the IPv6 pseudo-header; the caller took the ICMP token.
func (e *Engine) sendRST6(frame []byte, rxIf int) {
	p := &e.p
	const n = packet.EthHdrLen + packet.IPv6HdrLen + packet.TCPHdrLen
	b := e.alloc(packet.VnetHdrLen + n)
	if b == nil {
		e.Drop(DropScratchFull)
		return
	}
	clear(b)
	f := b[packet.VnetHdrLen:]
	copy(f[0:6], frame[6:12])
	mac := e.snap.Ifaces[rxIf].MAC
	copy(f[6:12], mac[:])
	binary.BigEndian.PutUint16(f[12:], packet.EtherTypeIPv6)
	ip := f[packet.EthHdrLen : packet.EthHdrLen+packet.IPv6HdrLen]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], packet.TCPHdrLen)
	ip[6] = packet.ProtoTCP
	ip[7] = 64
	copy(ip[8:24], p.Dst6[:])
	copy(ip[24:40], p.Src6[:])
	tcp := f[packet.EthHdrLen+packet.IPv6HdrLen:]
	in := frame[p.L4:]
	binary.BigEndian.PutUint16(tcp[0:], p.DstPort)
	binary.BigEndian.PutUint16(tcp[2:], p.SrcPort)
	seg := uint32(p.L3 + p.IPLen - p.L4 - int(in[12]>>4)*4)
	if p.TCPFlags&packet.TCPSYN != 0 {
		seg++
	}
	if p.TCPFlags&packet.TCPFIN != 0 {
		seg++
	}
	if p.TCPFlags&packet.TCPACK != 0 {
		copy(tcp[4:8], in[8:12]) // RST with the sequence number the peer expects
		tcp[13] = packet.TCPRST
	} else {
		binary.BigEndian.PutUint32(tcp[8:], binary.BigEndian.Uint32(in[4:8])+seg)
		tcp[13] = packet.TCPRST | packet.TCPACK
	}
	tcp[12] = 5 << 4
	binary.BigEndian.PutUint16(tcp[16:], ^packet.Checksum(tcp, packet.PseudoHeaderSum6(p.Dst6, p.Src6, packet.ProtoTCP, packet.TCPHdrLen)))
	e.queue(rxIf, b)
	bump64(&e.stats.ICMPSent, 1)
}

// ifAddr6 returns the director's IPv6 address on interface slot i, or zero (no Packet Too
// Big can then be sent from it).
func (e *Engine) ifAddr6(i int) [16]byte {
	if i < len(e.snap.Ifaces) {
		return e.snap.Ifaces[i].Addr6
	}
	return [16]byte{}
}
