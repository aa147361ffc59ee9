package engine

import (
	"encoding/binary"

	"github.com/uvs-project/uvs/forward/packet"
)

// ICMPv6 for IPv6 VIPs, as icmprelay.go for IPv4: errors quoting a connection's packet are
// relayed to its real server (NAT: rewritten to the real and back), echo requests answered
// when director.answer_ping is on, the rest counted as icmp_unrelated.

// parseQuote6 reads the packet an ICMPv6 error quotes into q. A NAT rewrite needs the quoted
// L4 header right behind the fixed header; q.off is then its IPv6 header, else -1.
func parseQuote6(frame []byte, p *packet.Packet, q *quote) bool {
	var q6 packet.Quote6
	if !packet.ParseQuote6(frame, p, &q6) {
		return false
	}
	*q = quote{off: q6.Off, proto: q6.Proto, src: q6.Src, dst: q6.Dst, sport: q6.SrcPort, dport: q6.DstPort}
	if frame[q6.Off+6] != q6.Proto || q6.Off+packet.IPv6HdrLen+4 > p.L3+p.IPLen {
		q.off = -1
	}
	return true
}

// icmp6ToVIP handles ICMPv6 addressed to an IPv6 VIP.
func (e *Engine) icmp6ToVIP(buf, frame []byte, rxIf int) {
	p := &e.p
	switch {
	case p.ICMPType == packet.ICMPv6EchoRequest:
		if !e.snap.AnswerPing || rxIf >= len(e.snap.Ifaces) {
			e.Drop(DropICMPUnrelated)
			return
		}
		mac := [6]byte(frame[6:12])
		if !packet.EchoReply6(frame, p) {
			e.Drop(DropICMPUnrelated)
			return
		}
		e.emit(buf, frame, rxIf, 0, mac, e.snap.Ifaces[rxIf].MAC)
		bump64(&e.stats.ICMPSent, 1)
		return
	case !packet.ICMPv6IsError(p.ICMPType):
		e.Drop(DropICMPUnrelated)
		return
	}
	var q quote
	if !parseQuote6(frame, p, &q) || q.src != e.dst || e.vh.Partial() {
		e.Drop(DropICMPUnrelated)
		return
	}
	e.relayToReal(buf, frame, rxIf, &q)
}

// icmp6FromReal handles an ICMPv6 error from a NAT real server's host about a client packet:
// it goes to the client as if from the VIP.
func (e *Engine) icmp6FromReal(buf, frame []byte) bool {
	p := &e.p
	var q quote
	if !packet.ICMPv6IsError(p.ICMPType) || !parseQuote6(frame, p, &q) || q.dst != e.src || e.vh.Partial() {
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
	if !natICMP6(frame, p, &q, ent.Key.VIP, ent.Key.VPort, false) {
		e.fault(packet.FaultTTLExceeded)
		return true
	}
	e.emit(buf, frame, hop, 0, ent.HopMAC, e.snap.Ifaces[hop].MAC)
	bump64(&e.stats.ICMPRelayed, 1)
	return true
}

// natICMP6 rewrites an ICMPv6 error for NAT: toward the real (in), the outer destination and
// the quoted source address and port become the real's; from the real (!in), the outer
// source and the quoted destination address and port become the VIP's. It decrements the
// hop limit and recomputes the ICMPv6 checksum over the pseudo-header (errors are small and
// rare). It returns false, changing nothing, at hop limit 1 or 0 or for a quote whose L4
// header is not right behind its fixed header.
func natICMP6(frame []byte, p *packet.Packet, q *quote, addr [16]byte, port uint16, in bool) bool {
	ip := frame[p.L3 : p.L3+packet.IPv6HdrLen]
	if ip[7] <= 1 || q.off < 0 {
		return false
	}
	ip[7]--
	outer, inner, innerPort := 24, q.off+8, q.off+packet.IPv6HdrLen
	if !in {
		outer, inner, innerPort = 8, q.off+24, q.off+packet.IPv6HdrLen+2
	}
	copy(ip[outer:outer+16], addr[:])
	copy(frame[inner:inner+16], addr[:])
	binary.BigEndian.PutUint16(frame[innerPort:], port)
	if in {
		p.Dst6 = addr
	} else {
		p.Src6 = addr
	}
	m := frame[p.L4 : p.L3+p.IPLen]
	m[2], m[3] = 0, 0
	binary.BigEndian.PutUint16(m[2:], ^packet.Checksum(m, packet.PseudoHeaderSum6([16]byte(ip[8:24]), [16]byte(ip[24:40]), packet.ProtoICMPv6, uint32(len(m)))))
	return true
}
