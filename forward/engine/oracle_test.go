package engine

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/forward/packet"
)

// The engine tests' copy of package packet's oracle_test.go (test files cannot be shared
// between packages); keep the two alike.
//
// Test helpers: frames are built with gopacket and checked against gopacket
// (the oracle) and against refSum, a slow, obviously-right RFC 1071 sum.

var (
	macA    = [6]byte{0x02, 0, 0, 0, 0, 0x0a}
	macB    = [6]byte{0x02, 0, 0, 0, 0, 0x0b}
	macD    = [6]byte{0x02, 0, 0, 0, 0, 0x0d}
	client  = [4]byte{198, 51, 100, 7}
	vip     = [4]byte{203, 0, 113, 10}
	realSrv = [4]byte{10, 1, 2, 3}
)

// refSum is the RFC 1071 sum, one 16-bit word at a time, folded, not inverted.
func refSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// refPseudo is the IPv4 pseudo-header sum, built as bytes.
func refPseudo(src, dst [4]byte, proto uint8, n int) uint16 {
	var b [12]byte
	copy(b[0:4], src[:])
	copy(b[4:8], dst[:])
	b[9] = proto
	binary.BigEndian.PutUint16(b[10:], uint16(n))
	return refSum(b[:])
}

// spec describes a test frame.
type spec struct {
	vlan     bool
	tci      uint16
	proto    layers.IPProtocol
	src, dst [4]byte
	sport    uint16
	dport    uint16
	ttl      uint8
	df       bool
	tos      uint8
	id       uint16
	flags    uint8 // TCP: SYN=0x02, ACK=0x10
	options  bool  // one IPv4 option (router alert)
	payload  []byte
	noCsum   bool // UDP checksum 0
	partial  bool // L4 checksum field holds the pseudo-header seed
	pad      int  // trailing Ethernet padding
	icmpType uint8
}

func defaultSpec(proto layers.IPProtocol, n int) spec {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return spec{proto: proto, src: client, dst: vip, sport: 40000, dport: 80, ttl: 64, df: true, id: 0x1234, flags: 0x12, payload: p, icmpType: 8}
}

// build serializes s with gopacket. Checksums and lengths are computed by
// gopacket, then adjusted for noCsum/partial.
func build(t testing.TB, s spec) []byte {
	t.Helper()
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(macA[:]), DstMAC: net.HardwareAddr(macB[:]), EthernetType: layers.EthernetTypeIPv4}
	ls = append(ls, eth)
	if s.vlan {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{Priority: uint8(s.tci >> 13), VLANIdentifier: s.tci & 0xfff, Type: layers.EthernetTypeIPv4})
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TOS: s.tos, Id: s.id, TTL: s.ttl, Protocol: s.proto,
		SrcIP: net.IP(append([]byte(nil), s.src[:]...)), DstIP: net.IP(append([]byte(nil), s.dst[:]...))}
	if s.df {
		ip.Flags = layers.IPv4DontFragment
	}
	if s.options {
		ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
	}
	ls = append(ls, ip)
	switch s.proto {
	case layers.IPProtocolTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport), Seq: 1000, Ack: 2000, Window: 512,
			SYN: s.flags&0x02 != 0, ACK: s.flags&0x10 != 0, FIN: s.flags&0x01 != 0, PSH: s.flags&0x08 != 0}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, tcp)
	case layers.IPProtocolUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(s.sport), DstPort: layers.UDPPort(s.dport)}
		udp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, udp)
	case layers.IPProtocolICMPv4:
		ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(s.icmpType, 0), Id: 7, Seq: 9})
	}
	ls = append(ls, gopacket.Payload(s.payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	f := append([]byte(nil), buf.Bytes()...)
	l3 := 14
	if s.vlan {
		l3 = 18
	}
	l4 := l3 + int(f[l3]&0xf)*4
	f = f[:l3+int(binary.BigEndian.Uint16(f[l3+2:]))] // drop gopacket's padding to 60
	switch {
	case s.proto == layers.IPProtocolUDP && s.noCsum:
		f[l4+6], f[l4+7] = 0, 0
	case s.partial && s.proto == layers.IPProtocolTCP:
		binary.BigEndian.PutUint16(f[l4+16:], refPseudo(s.src, s.dst, 6, len(f)-l4))
	case s.partial && s.proto == layers.IPProtocolUDP:
		binary.BigEndian.PutUint16(f[l4+6:], refPseudo(s.src, s.dst, 17, len(f)-l4))
	}
	return append(f, make([]byte, s.pad)...)
}

// fixIP recomputes the IPv4 header checksum at l3 with refSum.
func fixIP(f []byte, l3 int) {
	ihl := int(f[l3]&0xf) * 4
	if ihl < 20 {
		ihl = 20
	}
	f[l3+10], f[l3+11] = 0, 0
	binary.BigEndian.PutUint16(f[l3+10:], ^refSum(f[l3:l3+ihl]))
}

// csumEqual treats 0 and 0xffff as the same ones'-complement value.
func csumEqual(a, b uint16) bool {
	return a == b || (a == 0 || a == 0xffff) && (b == 0 || b == 0xffff)
}

// oracleChecks compares the IPv4 header checksum and the L4 checksum of the
// IPv4 packet at f[l3:] with the values gopacket computes, and verifies both
// with refSum. A UDP checksum of 0 is only checked to be 0 if wantNoUDPCsum.
func oracleChecks(t testing.TB, f []byte, l3 int, wantNoUDPCsum bool) {
	t.Helper()
	pkt := append([]byte(nil), f[l3:]...)
	var ip layers.IPv4
	if err := ip.DecodeFromBytes(pkt, gopacket.NilDecodeFeedback); err != nil {
		t.Fatalf("oracle: decode ipv4: %v", err)
	}
	got := ip.Checksum
	ob := gopacket.NewSerializeBuffer()
	if err := ip.SerializeTo(ob, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
		t.Fatalf("oracle: serialize ipv4: %v", err)
	}
	if want := ip.Checksum; !csumEqual(got, want) {
		t.Fatalf("ip checksum %#04x, oracle %#04x", got, want)
	}
	if refSum(pkt[:20]) != 0xffff {
		t.Fatalf("ip header does not verify")
	}
	l4 := append([]byte(nil), pkt[int(ip.IHL)*4:ip.Length]...)
	var src, dst [4]byte
	copy(src[:], ip.SrcIP.To4())
	copy(dst[:], ip.DstIP.To4())
	switch ip.Protocol {
	case layers.IPProtocolTCP:
		got := binary.BigEndian.Uint16(l4[16:])
		l4[16], l4[17] = 0, 0
		var tcp layers.TCP
		if err := tcp.DecodeFromBytes(l4, gopacket.NilDecodeFeedback); err == nil {
			tcp.SetNetworkLayerForChecksum(&ip)
			want, err := tcp.ComputeChecksum()
			if err != nil {
				t.Fatalf("oracle: tcp checksum: %v", err)
			}
			if !csumEqual(got, want) {
				t.Fatalf("tcp checksum %#04x, oracle %#04x", got, want)
			}
		}
		binary.BigEndian.PutUint16(l4[16:], got)
		if s := packet.Fold32(uint32(refPseudo(src, dst, 6, len(l4))) + uint32(refSum(l4))); s != 0xffff {
			t.Fatalf("tcp checksum does not verify (sum %#04x)", s)
		}
	case layers.IPProtocolUDP:
		got := binary.BigEndian.Uint16(l4[6:])
		if got == 0 {
			if !wantNoUDPCsum {
				t.Fatalf("udp checksum 0")
			}
			return
		}
		if wantNoUDPCsum {
			t.Fatalf("udp checksum %#04x, want 0", got)
		}
		var udp layers.UDP
		if err := udp.DecodeFromBytes(l4, gopacket.NilDecodeFeedback); err != nil {
			t.Fatalf("oracle: decode udp: %v", err)
		}
		udp.SetNetworkLayerForChecksum(&ip)
		ub := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(ub, gopacket.SerializeOptions{ComputeChecksums: true}, &udp, gopacket.Payload(udp.Payload)); err != nil {
			t.Fatalf("oracle: serialize udp: %v", err)
		}
		if want := udp.Checksum; !csumEqual(got, want) {
			t.Fatalf("udp checksum %#04x, oracle %#04x", got, want)
		}
		if s := packet.Fold32(uint32(refPseudo(src, dst, 17, len(l4))) + uint32(refSum(l4))); s != 0xffff {
			t.Fatalf("udp checksum does not verify")
		}
	case layers.IPProtocolICMPv4:
		var ic layers.ICMPv4
		if err := ic.DecodeFromBytes(l4, gopacket.NilDecodeFeedback); err != nil {
			t.Fatalf("oracle: decode icmp: %v", err)
		}
		got := ic.Checksum
		ib := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(ib, gopacket.SerializeOptions{ComputeChecksums: true}, &ic, gopacket.Payload(ic.Payload)); err != nil {
			t.Fatalf("oracle: serialize icmp: %v", err)
		}
		if want := ic.Checksum; !csumEqual(got, want) {
			t.Fatalf("icmp checksum %#04x, oracle %#04x", got, want)
		}
		if refSum(l4) != 0xffff {
			t.Fatalf("icmp checksum does not verify")
		}
	}
}

// fixL4 sets a correct full L4 checksum with refSum (TCP, UDP unless its
// checksum is 0, ICMP) in the IPv4 packet pkt of IHL 5.
func fixL4(pkt []byte) {
	var src, dst [4]byte
	copy(src[:], pkt[12:16])
	copy(dst[:], pkt[16:20])
	l4 := pkt[20:]
	switch pkt[9] {
	case 6:
		l4[16], l4[17] = 0, 0
		binary.BigEndian.PutUint16(l4[16:], ^packet.Fold32(uint32(refPseudo(src, dst, 6, len(l4)))+uint32(refSum(l4))))
	case 17:
		if l4[6] == 0 && l4[7] == 0 {
			return
		}
		l4[6], l4[7] = 0, 0
		c := ^packet.Fold32(uint32(refPseudo(src, dst, 17, len(l4))) + uint32(refSum(l4)))
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(l4[6:], c)
	case 1:
		l4[2], l4[3] = 0, 0
		binary.BigEndian.PutUint16(l4[2:], ^refSum(l4))
	}
}
