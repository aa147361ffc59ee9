package frametest

import (
	"encoding/binary"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// RefSum is the RFC 1071 sum, one 16-bit word at a time, folded, not inverted.
func RefSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return fold(s)
}

// fold folds the carries of s into 16 bits, as often as it takes.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// RefPseudo is the IPv4 pseudo-header sum, built as bytes.
func RefPseudo(src, dst [4]byte, proto uint8, n int) uint16 {
	var b [12]byte
	copy(b[0:4], src[:])
	copy(b[4:8], dst[:])
	b[9] = proto
	binary.BigEndian.PutUint16(b[10:], uint16(n))
	return RefSum(b[:])
}

// FixIP recomputes the IPv4 header checksum at f[l3:] with RefSum.
func FixIP(f []byte, l3 int) {
	ihl := int(f[l3]&0xf) * 4
	if ihl < 20 {
		ihl = 20
	}
	f[l3+10], f[l3+11] = 0, 0
	binary.BigEndian.PutUint16(f[l3+10:], ^RefSum(f[l3:l3+ihl]))
}

// CsumEqual treats 0 and 0xffff as the same ones'-complement value.
func CsumEqual(a, b uint16) bool {
	return a == b || (a == 0 || a == 0xffff) && (b == 0 || b == 0xffff)
}

// OracleChecks compares the IPv4 header checksum and the L4 checksum (TCP, UDP, ICMP) of
// the IPv4 packet at f[l3:] with the values gopacket computes, and verifies both with
// RefSum. A UDP checksum of 0 is only checked to be 0 if wantNoUDPCsum. It reads f and
// never writes it.
func OracleChecks(t testing.TB, f []byte, l3 int, wantNoUDPCsum bool) {
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
	if want := ip.Checksum; !CsumEqual(got, want) {
		t.Fatalf("ip checksum %#04x, oracle %#04x", got, want)
	}
	if RefSum(pkt[:20]) != 0xffff {
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
			if !CsumEqual(got, want) {
				t.Fatalf("tcp checksum %#04x, oracle %#04x", got, want)
			}
		}
		binary.BigEndian.PutUint16(l4[16:], got)
		if s := fold(uint32(RefPseudo(src, dst, 6, len(l4))) + uint32(RefSum(l4))); s != 0xffff {
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
		if want := udp.Checksum; !CsumEqual(got, want) {
			t.Fatalf("udp checksum %#04x, oracle %#04x", got, want)
		}
		if s := fold(uint32(RefPseudo(src, dst, 17, len(l4))) + uint32(RefSum(l4))); s != 0xffff {
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
		if want := ic.Checksum; !CsumEqual(got, want) {
			t.Fatalf("icmp checksum %#04x, oracle %#04x", got, want)
		}
		if RefSum(l4) != 0xffff {
			t.Fatalf("icmp checksum does not verify")
		}
	}
}

// FixL4 sets a correct full L4 checksum with RefSum (TCP, UDP unless its checksum is 0,
// ICMP) in the IPv4 packet pkt of IHL 5. A UDP checksum that sums to 0 is sent as 0xffff
// (RFC 768).
func FixL4(pkt []byte) {
	var src, dst [4]byte
	copy(src[:], pkt[12:16])
	copy(dst[:], pkt[16:20])
	l4 := pkt[20:]
	switch pkt[9] {
	case 6:
		l4[16], l4[17] = 0, 0
		binary.BigEndian.PutUint16(l4[16:], ^fold(uint32(RefPseudo(src, dst, 6, len(l4)))+uint32(RefSum(l4))))
	case 17:
		if l4[6] == 0 && l4[7] == 0 {
			return
		}
		l4[6], l4[7] = 0, 0
		c := ^fold(uint32(RefPseudo(src, dst, 17, len(l4))) + uint32(RefSum(l4)))
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(l4[6:], c)
	case 1:
		l4[2], l4[3] = 0, 0
		binary.BigEndian.PutUint16(l4[2:], ^RefSum(l4))
	}
}
