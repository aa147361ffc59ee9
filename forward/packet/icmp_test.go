package packet

import (
	"encoding/binary"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestBuildICMPError(t *testing.T) {
	director := [4]byte{192, 0, 2, 1}
	tests := []struct {
		name      string
		s         spec
		typ, code uint8
		mtu       uint16
		quote     int
	}{
		{"frag needed tcp", defaultSpec(layers.IPProtocolTCP, 1400), ICMPDestUnreachable, ICMPCodeFragNeeded, 1480, 28},
		{"port unreachable udp", defaultSpec(layers.IPProtocolUDP, 3), ICMPDestUnreachable, ICMPCodePortUnreachable, 1480, 28},
		{"time exceeded echo", defaultSpec(layers.IPProtocolICMPv4, 0), ICMPTimeExceeded, 0, 0, 28},
		{"vlan udp", func() spec { s := defaultSpec(layers.IPProtocolUDP, 0); s.vlan = true; return s }(), 3, 3, 0, 28},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := build(t, tt.s)
			var p Packet
			ParseL3(f, &p)
			if r := ParseL4(f, &p); r != FaultNone {
				t.Fatal(r)
			}
			out := make([]byte, 200)
			n := BuildICMPError(out, f, &p, tt.typ, tt.code, tt.mtu, director, macC, macD)
			if n != 14+20+8+tt.quote {
				t.Fatalf("n = %d", n)
			}
			pkt := gopacket.NewPacket(out[:n], layers.LayerTypeEthernet, gopacket.Default)
			eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			ic := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			if string(eth.DstMAC) != string(macC[:]) || string(eth.SrcMAC) != string(macD[:]) {
				t.Fatalf("ethernet %+v", eth)
			}
			if ip.Protocol != layers.IPProtocolICMPv4 || ip.TTL != 64 || string(ip.SrcIP.To4()) != string(director[:]) ||
				string(ip.DstIP.To4()) != string(tt.s.src[:]) || int(ip.Length) != n-14 {
				t.Fatalf("ip %+v", ip)
			}
			if ic.TypeCode.Type() != tt.typ || ic.TypeCode.Code() != tt.code {
				t.Fatalf("icmp %+v", ic)
			}
			wantMTU := uint16(0)
			if tt.code == ICMPCodeFragNeeded {
				wantMTU = tt.mtu
			}
			if ic.Id != 0 || ic.Seq != wantMTU {
				t.Fatalf("unused/mtu word: %#x %#x", ic.Id, ic.Seq)
			}
			if string(ic.Payload) != string(f[p.L3:p.L3+tt.quote]) {
				t.Fatal("quote differs")
			}
			oracleChecks(t, out[:n], 14, false)
		})
	}
}

func TestBuildICMPErrorRefuses(t *testing.T) {
	base := func(t *testing.T, proto layers.IPProtocol) ([]byte, Packet) {
		f := build(t, defaultSpec(proto, 10))
		var p Packet
		ParseL3(f, &p)
		if r := ParseL4(f, &p); r != FaultNone {
			t.Fatal(r)
		}
		return f, p
	}
	ipMut := func(mut func(h []byte)) func(f []byte, p *Packet) {
		return func(f []byte, p *Packet) { mut(f[14:34]); fixIP(f, 14) }
	}
	tests := []struct {
		name  string
		proto layers.IPProtocol
		mut   func(f []byte, p *Packet)
		dst   int
	}{
		{"icmp error about icmp error", layers.IPProtocolICMPv4, func(f []byte, p *Packet) { f[34] = 3; fixL4(f[14:]) }, 200},
		{"link-layer broadcast", layers.IPProtocolUDP, func(f []byte, p *Packet) { f[0] = 0xff }, 200},
		{"multicast destination", layers.IPProtocolUDP, ipMut(func(h []byte) { h[16] = 239 }), 200},
		{"broadcast destination", layers.IPProtocolUDP, ipMut(func(h []byte) { copy(h[16:], []byte{255, 255, 255, 255}) }), 200},
		{"zero source", layers.IPProtocolUDP, ipMut(func(h []byte) { h[12] = 0 }), 200},
		{"loopback source", layers.IPProtocolTCP, ipMut(func(h []byte) { h[12] = 127 }), 200},
		{"non-initial fragment", layers.IPProtocolTCP, ipMut(func(h []byte) { binary.BigEndian.PutUint16(h[6:], 185) }), 200},
		{"dst too small", layers.IPProtocolTCP, func(f []byte, p *Packet) {}, 69},
		{"bad offsets", layers.IPProtocolTCP, func(f []byte, p *Packet) { p.IPLen = 1000 }, 200},
		{"l3 before ethernet end", layers.IPProtocolTCP, func(f []byte, p *Packet) { p.L3 = 2 }, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, p := base(t, tt.proto)
			tt.mut(f, &p)
			if n := BuildICMPError(make([]byte, tt.dst), f, &p, 3, 4, 1400, vip, macC, macD); n != 0 {
				t.Fatalf("built %d bytes", n)
			}
		})
	}
	f, p := base(t, layers.IPProtocolICMPv4) // echo request: allowed
	if BuildICMPError(make([]byte, 200), f, &p, 3, 4, 1400, vip, macC, macD) == 0 {
		t.Fatal("echo refused")
	}
}
