package engine

import (
	"encoding/binary"

	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/packet"
)

// ICMP handling for VIPs (IPVS's ip_vs_in_icmp and ip_vs_out_icmp): errors whose quoted header
// belongs to a connection are relayed to that connection's real server, so path MTU discovery
// works for DR, TUN and NAT services; echo requests are answered when director.answer_ping is
// on; anything else is counted and dropped.

const (
	icmpEchoReply   = 0
	icmpEchoRequest = 8
	quoteMin        = 8 + packet.IPv4HdrLen + 8 // ICMP header, quoted IPv4 header, 8 bytes of L4
)

// quote is the header an ICMP error quotes.
type quote struct {
	off          int // offset of the quoted IPv4 or IPv6 header in the frame
	proto        uint8
	src, dst     [16]byte // in key form: IPv6, or IPv4-mapped
	sport, dport uint16
}

// parseQuote reads the quoted IPv4 header of the ICMP error in frame (p from ParseL4).
func parseQuote(frame []byte, p *packet.Packet, q *quote) bool {
	q.off = p.L4 + 8
	end := p.L3 + p.IPLen
	if end > len(frame) || q.off+packet.IPv4HdrLen+8 > end {
		return false
	}
	h := frame[q.off:]
	if h[0] != 0x45 { // version 4, no options (uvs forwarded none)
		return false
	}
	q.proto = h[9]
	q.src = conntrack.Map4([4]byte(h[12:16]))
	q.dst = conntrack.Map4([4]byte(h[16:20]))
	q.sport = binary.BigEndian.Uint16(h[20:])
	q.dport = binary.BigEndian.Uint16(h[22:])
	return q.proto == packet.ProtoTCP || q.proto == packet.ProtoUDP
}

// icmpToVIP handles ICMP addressed to a VIP.
func (e *Engine) icmpToVIP(buf, frame []byte, rxIf int) {
	p := &e.p
	switch {
	case p.ICMPType == icmpEchoRequest:
		if !e.snap.AnswerPing || rxIf >= len(e.snap.Ifaces) || !echoReply(frame, p) {
			e.Drop(DropICMPUnrelated)
			return
		}
		e.emit(buf, frame, rxIf, 0, [6]byte(frame[6:12]), e.snap.Ifaces[rxIf].MAC)
		bump64(&e.stats.ICMPSent, 1)
		return
	case !packet.ICMPIsError(p.ICMPType):
		e.Drop(DropICMPUnrelated)
		return
	}
	var q quote
	if !parseQuote(frame, p, &q) || q.src != e.dst || e.vh.Partial() {
		e.Drop(DropICMPUnrelated)
		return
	}
	e.relayToReal(buf, frame, rxIf, &q)
}

// relayToReal sends an ICMP or ICMPv6 error about a packet the VIP sent (quoted in q) to the
// real server of its connection, or drops it, counted.
func (e *Engine) relayToReal(buf, frame []byte, rxIf int, q *quote) {
	// The quoted packet went VIP -> client: the connection is keyed the other way round.
	key := conntrack.Key{Client: q.dst, VIP: q.src, CPort: q.dport, VPort: q.sport, Proto: q.proto}
	ent := e.ct.Lookup(&key)
	if ent == nil {
		e.Drop(DropICMPUnrelated)
		return
	}
	svc := e.snap.service(ent.Service)
	if svc == nil {
		e.Drop(DropICMPUnrelated)
		return
	}
	dest := e.connReal(svc, ent)
	if dest == nil || dest.TxIf < 0 {
		e.Drop(DropEgress)
		return
	}
	if e.toReal(buf, frame, dest, ent, rxIf, q) {
		bump64(&e.stats.ICMPRelayed, 1)
	}
}

// icmpFromReal handles an ICMP error from a NAT real server's host about a client packet
// (the quoted packet went client -> real): it goes to the client as if from the VIP.
func (e *Engine) icmpFromReal(buf, frame []byte) bool {
	p := &e.p
	var q quote
	if !packet.ICMPIsError(p.ICMPType) || !parseQuote(frame, p, &q) || q.dst != e.src || e.vh.Partial() {
		return false
	}
	ent := e.ct.LookupReply(q.proto, q.src, q.sport, q.dst, q.dport)
	if ent == nil {
		return false
	}
	hop := int(ent.HopIf)
	if hop >= len(e.snap.Ifaces) {
		e.Drop(DropEgress)
		return true
	}
	if !natICMPOut(frame, p, &q, [4]byte(ent.Key.VIP[12:]), ent.Key.VPort) {
		e.fault(packet.FaultTTLExceeded)
		return true
	}
	e.emit(buf, frame, hop, 0, ent.HopMAC, e.snap.Ifaces[hop].MAC)
	bump64(&e.stats.ICMPRelayed, 1)
	return true
}

// natICMPIn rewrites an ICMP error to a VIP for a NAT real server: the outer destination and
// the quoted source become the real's, the quoted source port the real's port.
func natICMPIn(frame []byte, p *packet.Packet, q *quote, dest [4]byte, rport uint16) bool {
	return natICMP(frame, p, 16, q.off+12, q.off+20, dest, rport)
}

// natICMPOut rewrites an ICMP error from a NAT real server's host to come from the VIP: the
// outer source and the quoted destination become the VIP's, the quoted port the VIP's port.
func natICMPOut(frame []byte, p *packet.Packet, q *quote, vip [4]byte, vport uint16) bool {
	return natICMP(frame, p, 12, q.off+16, q.off+22, vip, vport)
}

// natICMP writes addr at outer offset outerAddr (from L3) and at quoted offsets innerAddr and
// innerPort, decrements the TTL, and recomputes the three checksums it touched (outer IP,
// quoted IP, ICMP). ICMP errors are small and rare, so full sums are simpler than updates.
// The quoted L4 checksum is left alone, as IPVS does: the quote is often cut before it.
func natICMP(frame []byte, p *packet.Packet, outerAddr, innerAddr, innerPort int, addr [4]byte, port uint16) bool {
	ip := frame[p.L3 : p.L3+packet.IPv4HdrLen]
	if ip[8] <= 1 {
		return false
	}
	ip[8]--
	copy(ip[outerAddr:outerAddr+4], addr[:])
	copy(frame[innerAddr:innerAddr+4], addr[:])
	binary.BigEndian.PutUint16(frame[innerPort:], port)
	qh := frame[p.L4+8 : p.L4+8+packet.IPv4HdrLen]
	qh[10], qh[11] = 0, 0
	binary.BigEndian.PutUint16(qh[10:], ^packet.Checksum(qh, 0))
	icmp := frame[p.L4 : p.L3+p.IPLen]
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[2:], ^packet.Checksum(icmp, 0))
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^packet.Checksum(ip, 0))
	return true
}

// echoReply turns an echo request into its reply in place: addresses swapped, type 0, a fresh
// TTL, checksums updated.
func echoReply(frame []byte, p *packet.Packet) bool {
	end := p.L3 + p.IPLen
	if p.Frag || end > len(frame) || p.L4+8 > end {
		return false
	}
	ip := frame[p.L3 : p.L3+packet.IPv4HdrLen]
	copy(ip[12:16], p.Dst[:])
	copy(ip[16:20], p.Src[:])
	ip[8] = 64
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^packet.Checksum(ip, 0))
	icmp := frame[p.L4:end]
	icmp[0] = icmpEchoReply
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[2:], ^packet.Checksum(icmp, 0))
	return true
}
