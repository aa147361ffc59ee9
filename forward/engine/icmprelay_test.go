package engine

import (
	"encoding/binary"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/forward/packet"
)

// icmpErrorFrame builds, with the packet code's builder, the ICMP error a router at from sends
// about orig (an Ethernet frame) to orig's source.
func icmpErrorFrame(t *testing.T, orig []byte, typ, code uint8, mtu uint16, from [4]byte) []byte {
	t.Helper()
	var p packet.Packet
	if packet.ParseL3(orig, &p) != packet.ClassIPv4 || packet.ParseL4(orig, &p) != packet.FaultNone {
		t.Fatal("bad original")
	}
	b := make([]byte, 256)
	n := packet.BuildICMPError(b, orig, &p, typ, code, mtu, from, ifaceMAC, macD)
	if n == 0 {
		t.Fatal("no ICMP error built")
	}
	return withVnet(b[:n], false)
}

var router = [4]byte{198, 51, 100, 1}

func TestICMPFragNeededRelayedDR(t *testing.T) {
	e := newTestEngine(t, engineConfig(t, "dr", 80), 1024)
	e.one(t, tcpFrame(t, 40000, 0x02, false)) // connection to .3
	// The real answers VIP:80 -> client:40000; a router on the way says "too big".
	s := defaultSpec(layers.IPProtocolTCP, 1400)
	s.src, s.dst, s.sport, s.dport, s.flags = vip, client, 80, 40000, 0x10
	errFrame := icmpErrorFrame(t, build(t, s), 3, 4, 1400, router)
	out := e.one(t, errFrame)
	f := out[packet.VnetHdrLen:]
	if [6]byte(f[0:6]) != [6]byte{0x02, 0xee, 0, 0, 0, 3} {
		t.Fatalf("relayed to %x, want the real .3", f[0:6])
	}
	if string(f[12:]) != string(errFrame[packet.VnetHdrLen+12:]) {
		t.Fatal("DR relay changed the packet")
	}
	if e.stats.ICMPRelayed.Load() != 1 {
		t.Fatal("not counted")
	}
	// An error about no known connection is dropped.
	s.dport = 40001
	e.Reset()
	e.Handle(icmpErrorFrame(t, build(t, s), 3, 4, 1400, router), 0)
	if len(e.out) != 0 || e.dropSummary()["icmp_unrelated"] != 1 {
		t.Fatalf("unrelated error: out %d drops %v", len(e.out), e.dropSummary())
	}
}

func TestICMPRelayNAT(t *testing.T) {
	e := newTestEngine(t, engineConfig(t, "nat", 8080), 1024)
	e.one(t, tcpFrame(t, 40000, 0x02, false))
	// In: a router's frag-needed about a reply VIP:80 -> client goes to the real, rewritten.
	s := defaultSpec(layers.IPProtocolTCP, 1400)
	s.src, s.dst, s.sport, s.dport, s.flags = vip, client, 80, 40000, 0x10
	out := e.one(t, icmpErrorFrame(t, build(t, s), 3, 4, 1400, router))
	f := out[packet.VnetHdrLen:]
	dest := [4]byte{10, 1, 2, 3}
	if [4]byte(f[30:34]) != dest || [4]byte(f[14+28+12:14+28+16]) != dest ||
		binary.BigEndian.Uint16(f[14+28+20:]) != 8080 {
		t.Fatalf("not rewritten for the real: outer dst %v, quoted src %v:%d", f[30:34], f[14+28+12:14+28+16], binary.BigEndian.Uint16(f[14+28+20:]))
	}
	oracleChecks(t, f, 14, false)

	// Out: the real's host says port unreachable about client -> real:8080; the client must
	// see it from the VIP about client -> VIP:80.
	s = defaultSpec(layers.IPProtocolTCP, 20)
	s.src, s.dst, s.sport, s.dport, s.flags = client, dest, 40000, 8080, 0x10
	orig := build(t, s)
	var p packet.Packet
	packet.ParseL3(orig, &p)
	packet.ParseL4(orig, &p)
	b := make([]byte, 256)
	n := packet.BuildICMPError(b, orig, &p, 3, 3, 0, dest, ifaceMAC, realMAC)
	out = e.one(t, withVnet(b[:n], false))
	f = out[packet.VnetHdrLen:]
	if [4]byte(f[26:30]) != vip || [4]byte(f[14+28+16:14+28+20]) != vip || binary.BigEndian.Uint16(f[14+28+22:]) != 80 {
		t.Fatalf("not rewritten for the client: outer src %v, quoted dst %v:%d", f[26:30], f[14+28+16:14+28+20], binary.BigEndian.Uint16(f[14+28+22:]))
	}
	if [6]byte(f[0:6]) != macA {
		t.Fatalf("sent to %x, want the client's hop", f[0:6])
	}
	oracleChecks(t, f, 14, false)
}

func TestAnswerPing(t *testing.T) {
	e := newTestEngine(t, engineConfig(t, "dr", 80), 1024)
	s := defaultSpec(layers.IPProtocolICMPv4, 32)
	out := e.one(t, withVnet(build(t, s), false))
	f := out[packet.VnetHdrLen:]
	if f[34] != icmpEchoReply || [4]byte(f[26:30]) != vip || [4]byte(f[30:34]) != client || [6]byte(f[0:6]) != macA {
		t.Fatalf("echo reply: type %d from %v to %v via %x", f[34], f[26:30], f[30:34], f[0:6])
	}
	oracleChecks(t, f, 14, false)

	e.snap.AnswerPing = false
	e.Reset()
	e.Handle(withVnet(build(t, s), false), 0)
	if len(e.out) != 0 {
		t.Fatal("answered with answer_ping off")
	}
}
