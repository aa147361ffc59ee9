package packet

import (
	"encoding/binary"
	"testing"

	"github.com/google/gopacket/layers"
)

func TestParseValid(t *testing.T) {
	tcp := defaultSpec(layers.IPProtocolTCP, 10)
	udp := defaultSpec(layers.IPProtocolUDP, 5)
	icmp := defaultSpec(layers.IPProtocolICMPv4, 4)
	vlan := defaultSpec(layers.IPProtocolTCP, 10)
	vlan.vlan, vlan.tci = true, 0x2064
	padded := defaultSpec(layers.IPProtocolUDP, 1)
	padded.pad, padded.df = 60-14-20-8-1, false
	tests := []struct {
		name string
		s    spec
		want Packet
	}{
		{"tcp", tcp, Packet{L3: 14, L4: 34, IPLen: 50, Proto: 6, TTL: 64, Src: client, Dst: vip, SrcPort: 40000, DstPort: 80, TCPFlags: 0x12, DF: true}},
		{"udp", udp, Packet{L3: 14, L4: 34, IPLen: 33, Proto: 17, TTL: 64, Src: client, Dst: vip, SrcPort: 40000, DstPort: 80, DF: true}},
		{"icmp", icmp, Packet{L3: 14, L4: 34, IPLen: 32, Proto: 1, TTL: 64, Src: client, Dst: vip, ICMPType: 8, DF: true}},
		{"vlan tcp", vlan, Packet{VLAN: true, VLANTCI: 0x2064, L3: 18, L4: 38, IPLen: 50, Proto: 6, TTL: 64, Src: client, Dst: vip, SrcPort: 40000, DstPort: 80, TCPFlags: 0x12, DF: true}},
		{"udp with ethernet padding", padded, Packet{L3: 14, L4: 34, IPLen: 29, Proto: 17, TTL: 64, Src: client, Dst: vip, SrcPort: 40000, DstPort: 80}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := build(t, tt.s)
			p := Packet{Proto: 99, L4: 77} // stale values must be reset
			if c := ParseL3(f, &p); c != ClassIPv4 {
				t.Fatalf("ParseL3 = %v, want ipv4", c)
			}
			if r := ParseL4(f, &p); r != FaultNone {
				t.Fatalf("ParseL4 = %v", r)
			}
			if p != tt.want {
				t.Fatalf("got  %+v\nwant %+v", p, tt.want)
			}
		})
	}
}

func TestParseL3Class(t *testing.T) {
	arp := make([]byte, 60)
	BuildGratuitousARP(arp, macA, vip)
	vlanARP := append(append(append([]byte(nil), arp[:12]...), 0x81, 0x00, 0x00, 0x05), arp[12:]...)
	ipv6 := build(t, defaultSpec(layers.IPProtocolTCP, 0))
	ipv6[12], ipv6[13] = 0x86, 0xdd
	qinq := build(t, spec{vlan: true, proto: layers.IPProtocolUDP, ttl: 3})
	qinq[16], qinq[17] = 0x81, 0x00 // a second tag
	short := build(t, defaultSpec(layers.IPProtocolTCP, 0))[:14+19]
	tests := []struct {
		name  string
		frame []byte
		want  Class
		l3    int
		vlan  bool
	}{
		{"arp", arp, ClassARP, 14, false},
		{"vlan arp", vlanARP, ClassARP, 18, true},
		{"ipv6 ethertype (version checked by ParseL4)", ipv6, ClassIPv6, 14, false},
		{"two vlan tags", qinq, ClassOther, 18, true},
		{"ipv4 shorter than its fixed header", short, ClassOther, 14, false},
		{"shorter than ethernet", arp[:13], ClassOther, 0, false},
		{"vlan tag cut", vlanARP[:17], ClassOther, 0, false},
		{"empty", nil, ClassOther, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			if c := ParseL3(tt.frame, &p); c != tt.want || p.L3 != tt.l3 || p.VLAN != tt.vlan {
				t.Fatalf("ParseL3 = %v L3=%d VLAN=%v, want %v L3=%d VLAN=%v", c, p.L3, p.VLAN, tt.want, tt.l3, tt.vlan)
			}
			if tt.want == ClassARP {
				var a ARP
				if !ParseARP(tt.frame, &p, &a) || a.SenderIP != vip || a.TargetIP != vip || a.SenderMAC != macA || a.Op != ARPRequest {
					t.Fatalf("ParseARP: %+v", a)
				}
			}
		})
	}
}

func TestParseDrops(t *testing.T) {
	tcp := func(t *testing.T) []byte { return build(t, defaultSpec(layers.IPProtocolTCP, 10)) }
	udp := func(t *testing.T) []byte { return build(t, defaultSpec(layers.IPProtocolUDP, 10)) }
	// ip applies mut to the IPv4 header and fixes its checksum.
	ip := func(base func(*testing.T) []byte, mut func(h []byte)) func(*testing.T) []byte {
		return func(t *testing.T) []byte {
			f := base(t)
			mut(f[14:34])
			fixIP(f, 14)
			return f
		}
	}
	setLen := func(n int) func(h []byte) { return func(h []byte) { binary.BigEndian.PutUint16(h[2:], uint16(n)) } }
	tests := []struct {
		name  string
		frame func(*testing.T) []byte
		want  Fault
	}{
		{"total length beyond frame", func(t *testing.T) []byte { f := tcp(t); return f[:len(f)-1] }, FaultTruncatedIP},
		{"version 6", ip(tcp, func(h []byte) { h[0] = 0x65 }), FaultBadIPVersion},
		{"ihl 4", ip(tcp, func(h []byte) { h[0] = 0x44 }), FaultBadIHL},
		{"ip options", func(t *testing.T) []byte {
			s := defaultSpec(layers.IPProtocolTCP, 10)
			s.options = true
			return build(t, s)
		}, FaultIPOptions},
		{"total length below header", ip(tcp, setLen(19)), FaultBadIPLength},
		{"bad ip checksum", func(t *testing.T) []byte { f := tcp(t); f[24] ^= 1; return f }, FaultBadIPChecksum},
		{"more fragments", ip(tcp, func(h []byte) { h[6] |= 0x20 }), FaultFragment},
		{"fragment offset", ip(udp, func(h []byte) { h[7] = 1 }), FaultFragment},
		{"tcp shorter than 20", ip(tcp, setLen(20+19)), FaultTruncatedL4},
		{"udp shorter than 8", ip(udp, setLen(20+7)), FaultTruncatedL4},
		{"icmp shorter than 8", func(t *testing.T) []byte {
			f := build(t, defaultSpec(layers.IPProtocolICMPv4, 0))
			binary.BigEndian.PutUint16(f[16:], 27)
			fixIP(f, 14)
			return f
		}, FaultTruncatedL4},
		{"udp length 7", func(t *testing.T) []byte { f := udp(t); f[34+5] = 7; return f }, FaultBadUDPLength},
		{"udp length beyond ip", func(t *testing.T) []byte { f := udp(t); f[34+5]++; return f }, FaultBadUDPLength},
		{"udp length short of ip", func(t *testing.T) []byte { f := udp(t); f[34+5]--; return f }, FaultBadUDPLength},
		{"tcp offset 4", func(t *testing.T) []byte { f := tcp(t); f[34+12] = 0x40; return f }, FaultBadTCPOffset},
		{"tcp offset beyond ip", func(t *testing.T) []byte { f := tcp(t); f[34+12] = 0x80; return f }, FaultBadTCPOffset},
		{"gre", ip(tcp, func(h []byte) { h[9] = 47 }), FaultUnsupportedProto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.frame(t)
			var p Packet
			if c := ParseL3(f, &p); c != ClassIPv4 {
				t.Fatalf("ParseL3 = %v", c)
			}
			if r := ParseL4(f, &p); r != tt.want {
				t.Fatalf("ParseL4 = %v, want %v", r, tt.want)
			}
		})
	}
	t.Run("offset beyond frame", func(t *testing.T) {
		p := Packet{L3: 100}
		if r := ParseL4(make([]byte, 110), &p); r != FaultTruncatedIP {
			t.Fatalf("ParseL4 = %v", r)
		}
		p.L3 = -1
		if r := ParseL4(make([]byte, 110), &p); r != FaultTruncatedIP {
			t.Fatalf("ParseL4 = %v", r)
		}
	})
}

func TestFaultString(t *testing.T) {
	seen := map[string]bool{}
	for r := FaultNone; r < NumFaults; r++ {
		s := r.String()
		if s == "" || s == "unknown" || seen[s] {
			t.Fatalf("Fault(%d).String() = %q", r, s)
		}
		for _, c := range s {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
				t.Fatalf("%q is not snake_case", s)
			}
		}
		seen[s] = true
	}
	if NumFaults.String() != "unknown" || Class(9).String() != "invalid" || ClassARP.String() != "arp" {
		t.Fatal("out-of-range names")
	}
}

func TestSetEthernet(t *testing.T) {
	for _, vlan := range []bool{false, true} {
		s := defaultSpec(layers.IPProtocolTCP, 20)
		s.vlan, s.tci = vlan, 7
		f := build(t, s)
		var p Packet
		ParseL3(f, &p)
		if r := ParseL4(f, &p); r != FaultNone {
			t.Fatal(r)
		}
		off := SetEthernet(f, &p, macC, macD)
		s.vlan = false
		want := build(t, s)
		copy(want[0:6], macC[:])
		copy(want[6:12], macD[:])
		if vlan != (off == 4) || string(f[off:]) != string(want) {
			t.Fatalf("vlan=%v: off %d\n got %x\nwant %x", vlan, off, f[off:], want)
		}
		if p.VLAN || p.L3 != 14 || p.L4 != 34 {
			t.Fatalf("p not adjusted: %+v", p)
		}
		if r := ParseL4(f[off:], &p); r != FaultNone {
			t.Fatalf("reparse after SetEthernet: %v", r)
		}
	}
	p := Packet{VLAN: true}
	if SetEthernet(make([]byte, 17), &p, macC, macD) != -1 {
		t.Fatal("short frame accepted")
	}
}
