package packet

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// IPv6 test frames are built with gopacket (the oracle) and extension headers are inserted
// by hand, since gopacket serializes only some of them; they are not covered by the
// upper-layer checksum, so inserting them keeps the frame valid.

var (
	client6 = netip.MustParseAddr("2001:db8:1::7").As16()
	vip6    = netip.MustParseAddr("2001:db8:2::10").As16()
	real6   = netip.MustParseAddr("fd00::3").As16()
)

// spec6 describes an IPv6 test frame.
type spec6 struct {
	proto    layers.IPProtocol
	src, dst [16]byte
	sport    uint16
	dport    uint16
	hop      uint8
	tc       uint8
	flags    uint8
	icmpType uint8
	payload  []byte
	ext      [][]byte // extension headers in order; byte 0 (next header) is filled in
	extProto []uint8  // their protocol numbers
	vlan     bool
	mss      uint16 // TCP SYN MSS option
}

func defaultSpec6(proto layers.IPProtocol, n int) spec6 {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*5 + 1)
	}
	return spec6{proto: proto, src: client6, dst: vip6, sport: 40000, dport: 80, hop: 64, flags: 0x12, icmpType: 128, payload: p}
}

// refPseudo6 is the IPv6 pseudo-header sum, built as bytes.
func refPseudo6(src, dst [16]byte, proto uint8, n int) uint16 {
	var b [40]byte
	copy(b[0:16], src[:])
	copy(b[16:32], dst[:])
	binary.BigEndian.PutUint32(b[32:], uint32(n))
	b[39] = proto
	return refSum(b[:])
}

func build6(t testing.TB, s spec6) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(macA[:]), DstMAC: net.HardwareAddr(macB[:]), EthernetType: layers.EthernetTypeIPv6}
	ls := []gopacket.SerializableLayer{eth}
	if s.vlan {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 5, Type: layers.EthernetTypeIPv6})
	}
	ip := &layers.IPv6{Version: 6, TrafficClass: s.tc, HopLimit: s.hop, NextHeader: s.proto,
		SrcIP: net.IP(append([]byte(nil), s.src[:]...)), DstIP: net.IP(append([]byte(nil), s.dst[:]...))}
	ls = append(ls, ip)
	switch s.proto {
	case layers.IPProtocolTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport), Seq: 1000, Ack: 2000, Window: 512,
			SYN: s.flags&0x02 != 0, ACK: s.flags&0x10 != 0, FIN: s.flags&0x01 != 0}
		if s.mss != 0 {
			tcp.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
				{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: binary.BigEndian.AppendUint16(nil, s.mss)}}
		}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, tcp)
	case layers.IPProtocolUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(s.sport), DstPort: layers.UDPPort(s.dport)}
		udp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, udp)
	case layers.IPProtocolICMPv6:
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(s.icmpType, 0)}
		ic.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ic)
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
	f = f[:l3+40+int(binary.BigEndian.Uint16(f[l3+4:]))]
	if len(s.ext) == 0 {
		return f
	}
	// Insert the extension headers after the fixed header and chain them.
	var ext []byte
	for i, e := range s.ext {
		e = append([]byte(nil), e...)
		if i+1 < len(s.ext) {
			e[0] = s.extProto[i+1]
		} else {
			e[0] = uint8(s.proto)
		}
		ext = append(ext, e...)
	}
	out := append(append(append([]byte(nil), f[:l3+40]...), ext...), f[l3+40:]...)
	out[l3+6] = s.extProto[0]
	binary.BigEndian.PutUint16(out[l3+4:], uint16(len(out)-l3-40))
	return out
}

// Extension headers for build6 (next header byte left 0).
var (
	extHBH    = []byte{0, 0, 1, 4, 0, 0, 0, 0}                          // PadN of 4
	extDst    = []byte{0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // 16 bytes, PadN 12
	extRt0    = []byte{0, 0, 0, 0, 0, 0, 0, 0}                          // type 0, segments left 0
	extRt1    = []byte{0, 0, 0, 1, 0, 0, 0, 0}                          // segments left 1
	extFragA  = []byte{0, 0, 0, 0, 0, 0, 0, 9}                          // atomic fragment
	extFragM  = []byte{0, 0, 0, 1, 0, 0, 0, 9}                          // M set
	extFragO  = []byte{0, 0, 0, 8, 0, 0, 0, 9}                          // offset 1
	extAHdr   = []byte{0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2}              // AH, 12 bytes (payload len 1)
	extJumbo  = []byte{0, 0, 0xc2, 4, 0, 1, 0, 0}                       // jumbo payload option
	extBadTLV = []byte{0, 0, 1, 9, 0, 0, 0, 0}                          // PadN overrunning the header
)

// oracle6 verifies the upper-layer checksum of the IPv6 frame f (l3 at 14) with refSum and
// gopacket, and returns gopacket's decoded packet.
func oracle6(t testing.TB, f []byte, l3 int) gopacket.Packet {
	t.Helper()
	var p Packet
	if ParseL3(f, &p) != ClassIPv6 || ParseL4(f, &p) != FaultNone {
		t.Fatalf("does not parse: %x", f)
	}
	seg := f[p.L4 : p.L3+p.IPLen]
	if s := Fold32(uint32(refPseudo6(p.Src6, p.Dst6, p.Proto, len(seg))) + uint32(refSum(seg))); s != 0xffff {
		t.Fatalf("proto %d checksum does not verify (sum %#04x)", p.Proto, s)
	}
	gp := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if el := gp.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	ip, _ := gp.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if ip == nil || string(ip.SrcIP) != string(p.Src6[:]) || string(ip.DstIP) != string(p.Dst6[:]) || ip.HopLimit != p.TTL {
		t.Fatalf("gopacket disagrees on the IPv6 header: %v", ip)
	}
	switch p.Proto {
	case ProtoTCP:
		tcp, _ := gp.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil || uint16(tcp.SrcPort) != p.SrcPort || uint16(tcp.DstPort) != p.DstPort {
			t.Fatal("gopacket disagrees on TCP")
		}
		tcp.SetNetworkLayerForChecksum(ip)
		// Computed over the segment with its checksum in place, a valid one gives 0.
		if got, err := tcp.ComputeChecksum(); err != nil || got != 0 {
			t.Fatalf("tcp checksum %#04x does not verify with the oracle (%#04x) %v", tcp.Checksum, got, err)
		}
	case ProtoUDP:
		udp, _ := gp.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if udp == nil || uint16(udp.SrcPort) != p.SrcPort || uint16(udp.DstPort) != p.DstPort {
			t.Fatal("gopacket disagrees on UDP")
		}
	case ProtoICMPv6:
		ic, _ := gp.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		if ic == nil || ic.TypeCode.Type() != p.ICMPType {
			t.Fatal("gopacket disagrees on ICMPv6")
		}
	}
	return gp
}

func TestParseL4IPv6(t *testing.T) {
	type ext struct {
		h     []byte
		proto uint8
	}
	hbh, dst, rt0, rt1 := ext{extHBH, 0}, ext{extDst, 60}, ext{extRt0, 43}, ext{extRt1, 43}
	fa, fm, fo, ah := ext{extFragA, 44}, ext{extFragM, 44}, ext{extFragO, 44}, ext{extAHdr, 51}
	tests := []struct {
		name  string
		proto layers.IPProtocol
		exts  []ext
		mut   func(f []byte)
		want  Fault
	}{
		{"tcp", layers.IPProtocolTCP, nil, nil, FaultNone},
		{"udp", layers.IPProtocolUDP, nil, nil, FaultNone},
		{"icmpv6", layers.IPProtocolICMPv6, nil, nil, FaultNone},
		{"full chain", layers.IPProtocolTCP, []ext{hbh, dst, rt0, dst}, nil, FaultNone},
		{"atomic fragment", layers.IPProtocolTCP, []ext{hbh, fa, ah}, nil, FaultNone}, // gopacket stops at a fragment header
		{"ah", layers.IPProtocolTCP, []ext{ah}, nil, FaultNone},                       // gopacket does not decode TCP after AH
		{"hop limit 0 parses", layers.IPProtocolUDP, nil, func(f []byte) { f[21] = 0 }, FaultNone},
		{"fragment M", layers.IPProtocolUDP, []ext{fm}, nil, FaultFragment},
		{"fragment offset", layers.IPProtocolUDP, []ext{dst, fo}, nil, FaultFragment},
		{"hbh not first", layers.IPProtocolTCP, []ext{dst, hbh}, nil, FaultBadExtHeader},
		{"routing segments left", layers.IPProtocolTCP, []ext{rt1}, nil, FaultRoutingHeader},
		{"chain too long", layers.IPProtocolTCP, []ext{dst, dst, dst, dst, dst, dst, dst, dst, dst}, nil, FaultBadExtHeader},
		{"eight is fine", layers.IPProtocolTCP, []ext{dst, dst, dst, dst, dst, dst, dst, dst}, nil, FaultNone},
		{"jumbo option", layers.IPProtocolUDP, []ext{{extJumbo, 0}}, nil, FaultJumbogram},
		{"jumbogram", layers.IPProtocolUDP, []ext{{extJumbo, 0}}, func(f []byte) { f[18], f[19] = 0, 0 }, FaultJumbogram},
		{"empty payload", layers.IPProtocolUDP, nil, func(f []byte) { f[18], f[19] = 0, 0 }, FaultTruncatedL4},
		{"bad option tlv", layers.IPProtocolUDP, []ext{{extBadTLV, 0}}, nil, FaultBadExtHeader},
		{"ext length beyond payload", layers.IPProtocolUDP, []ext{dst}, func(f []byte) { f[55] = 200 }, FaultBadExtHeader},
		{"ext header truncated", layers.IPProtocolUDP, []ext{dst}, func(f []byte) { binary.BigEndian.PutUint16(f[18:], 4) }, FaultBadExtHeader},
		{"esp", layers.IPProtocolUDP, nil, func(f []byte) { f[20] = 50 }, FaultUnsupportedProto},
		{"no next header", layers.IPProtocolUDP, nil, func(f []byte) { f[20] = 59 }, FaultUnsupportedProto},
		{"payload beyond frame", layers.IPProtocolUDP, nil, func(f []byte) { f[18] = 0xff }, FaultTruncatedIP},
		{"version 4", layers.IPProtocolUDP, nil, func(f []byte) { f[14] = 0x40 }, FaultBadIPVersion},
		{"udp length", layers.IPProtocolUDP, nil, func(f []byte) { f[59]++ }, FaultBadUDPLength},
		{"tcp offset", layers.IPProtocolTCP, nil, func(f []byte) { f[66] = 0x40 }, FaultBadTCPOffset},
		{"truncated tcp", layers.IPProtocolTCP, nil, func(f []byte) { binary.BigEndian.PutUint16(f[18:], 10) }, FaultTruncatedL4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := defaultSpec6(tt.proto, 16)
			for _, e := range tt.exts {
				s.ext = append(s.ext, e.h)
				s.extProto = append(s.extProto, e.proto)
			}
			f := build6(t, s)
			if tt.mut != nil {
				tt.mut(f)
			}
			var p Packet
			if c := ParseL3(f, &p); c != ClassIPv6 || !p.V6 || p.Src6 != client6 || p.Dst6 != vip6 {
				t.Fatalf("ParseL3 = %v %+v", c, p)
			}
			if got := ParseL4(f, &p); got != tt.want {
				t.Fatalf("ParseL4 = %v, want %v", got, tt.want)
			}
			if tt.want != FaultNone {
				return
			}
			ext := 0
			for _, e := range tt.exts {
				ext += len(e.h)
			}
			if p.L4 != 14+40+ext || p.Proto != uint8(tt.proto) || p.IPLen != len(f)-14 {
				t.Fatalf("offsets %+v", p)
			}
			if tt.proto != layers.IPProtocolICMPv6 && (p.SrcPort != 40000 || p.DstPort != 80) {
				t.Fatalf("ports %+v", p)
			}
			if p.TTL == 64 && tt.name != "ah" && tt.name != "atomic fragment" {
				oracle6(t, f, 14)
			}
		})
	}
}

func TestParseL3IPv6VLANAndShort(t *testing.T) {
	s := defaultSpec6(layers.IPProtocolTCP, 0)
	s.vlan = true
	f := build6(t, s)
	var p Packet
	if ParseL3(f, &p) != ClassIPv6 || p.L3 != 18 || ParseL4(f, &p) != FaultNone || p.L4 != 58 {
		t.Fatalf("vlan: %+v", p)
	}
	if ParseL3(f[:18+39], &p) != ClassOther {
		t.Fatal("a 39-byte IPv6 header classified")
	}
	if ClassIPv6.String() != "ipv6" || FaultJumbogram.String() != "jumbogram" || FaultBadExtHeader.String() != "bad_ext_header" ||
		FaultRoutingHeader.String() != "routing_header" {
		t.Fatal("names")
	}
}

func TestPseudoHeaderSum6(t *testing.T) {
	if got, want := PseudoHeaderSum6(client6, vip6, 6, 1234), refPseudo6(client6, vip6, 6, 1234); got != want {
		t.Fatalf("%#04x != %#04x", got, want)
	}
	if got, want := PseudoHeaderSum6(real6, vip6, 17, 70000), refPseudo6(real6, vip6, 17, 70000); got != want {
		t.Fatalf("%#04x != %#04x", got, want)
	}
}

func TestRewrite6(t *testing.T) {
	for _, proto := range []layers.IPProtocol{layers.IPProtocolTCP, layers.IPProtocolUDP, layers.IPProtocolICMPv6} {
		for _, dir := range []string{"dst", "src"} {
			for _, exts := range []bool{false, true} {
				t.Run(proto.String()+"/"+dir, func(t *testing.T) {
					s := defaultSpec6(proto, 33)
					if exts {
						s.ext, s.extProto = [][]byte{extHBH, extDst}, []uint8{0, 60}
					}
					f := build6(t, s)
					orig := append([]byte(nil), f...)
					var p Packet
					ParseL3(f, &p)
					if ParseL4(f, &p) != FaultNone {
						t.Fatal("parse")
					}
					fn := RewriteDst6
					if dir == "src" {
						fn = RewriteSrc6
					}
					q := p
					if r := fn(f, &q, false, real6, 8080); r != FaultNone {
						t.Fatalf("rewrite %v", r)
					}
					gp := oracle6(t, f, 14)
					ip := gp.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
					addr := ip.DstIP
					if dir == "src" {
						addr = ip.SrcIP
					}
					if string(addr) != string(real6[:]) || ip.HopLimit != 63 || q.TTL != 63 {
						t.Fatalf("not rewritten: %v", ip)
					}
					var re Packet
					ParseL3(f, &re)
					if ParseL4(f, &re) != FaultNone || re != q {
						t.Fatalf("reparse %+v != %+v", re, q)
					}
					if proto == layers.IPProtocolICMPv6 {
						return
					}
					// The partial path, finished in software, gives the same frame.
					g := append([]byte(nil), orig...)
					csumAt := p.L4 + TCPCsumOff
					if proto == layers.IPProtocolUDP {
						csumAt = p.L4 + UDPCsumOff
					}
					binary.BigEndian.PutUint16(g[csumAt:], PseudoHeaderSum6(p.Src6, p.Dst6, p.Proto, uint32(p.L3+p.IPLen-p.L4)))
					vh := VnetHdr{Flags: VnetNeedsCsum, CsumStart: uint16(p.L4), CsumOffset: uint16(csumAt - p.L4)}
					if vh.Check(&p, len(g)) != FaultNone {
						t.Fatal("Check")
					}
					q = p
					if r := fn(g, &q, true, real6, 8080); r != FaultNone || !FinishChecksum(g, &vh) {
						t.Fatalf("partial rewrite %v", r)
					}
					if string(g) != string(f) {
						t.Fatalf("partial and full paths differ\n%x\n%x", g, f)
					}
				})
			}
		}
	}
}

func TestRewrite6HopLimit(t *testing.T) {
	for _, hop := range []uint8{0, 1} {
		f := build6(t, func() spec6 { s := defaultSpec6(layers.IPProtocolTCP, 0); s.hop = hop; return s }())
		orig := append([]byte(nil), f...)
		var p Packet
		ParseL3(f, &p)
		if ParseL4(f, &p) != FaultNone {
			t.Fatal("parse")
		}
		if RewriteDst6(f, &p, false, real6, 1) != FaultTTLExceeded || DecHopLimit(f, &p) != FaultTTLExceeded || string(f) != string(orig) {
			t.Fatalf("hop limit %d forwarded", hop)
		}
	}
	f := build6(t, defaultSpec6(layers.IPProtocolTCP, 0))
	var p Packet
	ParseL3(f, &p)
	ParseL4(f, &p)
	if DecHopLimit(f, &p) != FaultNone || f[21] != 63 || p.TTL != 63 {
		t.Fatal("DecHopLimit")
	}
	oracle6(t, f, 14) // no checksum covers the hop limit
	var v4 Packet
	if RewriteDst6(f, &v4, false, real6, 1) != FaultBadOffsets {
		t.Fatal("an IPv4 Packet was rewritten as IPv6")
	}
}

func TestEncap6(t *testing.T) {
	in6 := build6(t, defaultSpec6(layers.IPProtocolTCP, 50))
	s4 := defaultSpec(layers.IPProtocolUDP, 20)
	s4.tos = 0xb8
	in4 := build(t, s4)
	dir6 := netip.MustParseAddr("2001:db8:2::1").As16()
	out := make([]byte, 512)
	for _, tt := range []struct {
		name  string
		inner []byte
		next  layers.IPProtocol
	}{{"6in6", in6[14:], layers.IPProtocolIPv6}, {"4in6", in4[14:], layers.IPProtocolIPv4}} {
		n := EncapIP6(out, tt.inner, macC, macD, dir6, real6)
		if n != IP6IP6HdrLen+len(tt.inner) {
			t.Fatalf("%s: n = %d", tt.name, n)
		}
		gp := gopacket.NewPacket(out[:n], layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := gp.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if ip == nil || ip.NextHeader != tt.next || string(ip.SrcIP) != string(dir6[:]) || string(ip.DstIP) != string(real6[:]) ||
			int(ip.Length) != len(tt.inner) || ip.HopLimit != 64 || string(out[IP6IP6HdrLen:n]) != string(tt.inner) {
			t.Fatalf("%s: %+v", tt.name, ip)
		}
		if tt.name == "4in6" && ip.TrafficClass != 0xb8 {
			t.Fatalf("traffic class %#x", ip.TrafficClass)
		}
	}
	// In place, into headroom.
	g := make([]byte, IP6IP6HdrLen+len(in6)-14)
	copy(g[IP6IP6HdrLen:], in6[14:])
	if EncapIP6(g, g[IP6IP6HdrLen:], macC, macD, dir6, real6) != len(g) || string(g[IP6IP6HdrLen:]) != string(in6[14:]) {
		t.Fatal("in place")
	}
	n := Encap6in4(out, in6[14:], macC, macD, vip, realSrv, 7)
	gp := gopacket.NewPacket(out[:n], layers.LayerTypeEthernet, gopacket.Default)
	ip4, _ := gp.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if n != IPIPHdrLen+len(in6)-14 || ip4 == nil || ip4.Protocol != layers.IPProtocolIPv6 || ip4.Flags != layers.IPv4DontFragment ||
		string(out[IPIPHdrLen:n]) != string(in6[14:]) {
		t.Fatalf("6in4: %d %+v", n, ip4)
	}
	oracleChecksIPv4Header(t, out[14:34])
	if gp.Layer(layers.LayerTypeTCP) == nil {
		t.Fatal("6in4: gopacket finds no inner TCP")
	}
	if Encap6in4(out, in4[14:], macC, macD, vip, realSrv, 7) != 0 || EncapIP6(out[:60], in6[14:], macC, macD, dir6, real6) != 0 {
		t.Fatal("wrong inner or short buffer accepted")
	}
}

func oracleChecksIPv4Header(t *testing.T, h []byte) {
	t.Helper()
	if refSum(h) != 0xffff {
		t.Fatal("IPv4 header checksum")
	}
}

func TestBuildICMPv6Error(t *testing.T) {
	dir6 := netip.MustParseAddr("2001:db8:2::1").As16()
	big := build6(t, defaultSpec6(layers.IPProtocolTCP, 1400))
	var p Packet
	ParseL3(big, &p)
	if ParseL4(big, &p) != FaultNone {
		t.Fatal("parse")
	}
	out := make([]byte, 2048)
	n := BuildICMPv6Error(out, big, &p, ICMPv6PacketTooBig, 0, 1400, dir6, macA, macB)
	if n != 14+ICMPv6MinMTU {
		t.Fatalf("n = %d, want %d (the error fills the minimum MTU)", n, 14+ICMPv6MinMTU)
	}
	gp := oracle6(t, out[:n], 14)
	ic := gp.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if ic.TypeCode != layers.CreateICMPv6TypeCode(2, 0) || binary.BigEndian.Uint32(ic.Payload[:4]) != 1400 {
		t.Fatalf("%v %x", ic.TypeCode, ic.Payload[:4])
	}
	var ep Packet
	ParseL3(out[:n], &ep)
	ParseL4(out[:n], &ep)
	var q Quote6
	if !ParseQuote6(out[:n], &ep, &q) || q.Proto != ProtoTCP || q.Src != client6 || q.Dst != vip6 || q.SrcPort != 40000 || q.DstPort != 80 {
		t.Fatalf("quote %+v", q)
	}
	if ep.Dst6 != client6 || ep.Src6 != dir6 {
		t.Fatal("addresses")
	}
	// An MTU below 1280 is raised (RFC 8201 section 4).
	BuildICMPv6Error(out, big, &p, ICMPv6PacketTooBig, 0, 1000, dir6, macA, macB)
	if binary.BigEndian.Uint32(out[14+40+4:]) != ICMPv6MinMTU {
		t.Fatal("mtu below 1280")
	}
	// A small packet is quoted whole; the quote of a packet with extension headers parses.
	s := defaultSpec6(layers.IPProtocolUDP, 10)
	s.ext, s.extProto = [][]byte{extHBH, extFragA}, []uint8{0, 44}
	small := build6(t, s)
	ParseL3(small, &p)
	ParseL4(small, &p)
	n = BuildICMPv6Error(out, small, &p, ICMPv6DestUnreachable, ICMPv6CodePortUnreachable, 0, dir6, macA, macB)
	if n != len(small)+14+40+8-14 {
		t.Fatalf("n = %d", n)
	}
	oracle6(t, out[:n], 14)
	ParseL3(out[:n], &ep)
	ParseL4(out[:n], &ep)
	if !ParseQuote6(out[:n], &ep, &q) || q.Proto != ProtoUDP || q.DstPort != 80 {
		t.Fatalf("quote with extension headers %+v", q)
	}
	// Refusals (RFC 4443 section 2.4(e)).
	refuse := func(name string, f []byte, typ uint8) {
		var p Packet
		ParseL3(f, &p)
		ParseL4(f, &p)
		if BuildICMPv6Error(out, f, &p, typ, 0, 1280, dir6, macA, macB) != 0 {
			t.Fatalf("%s: error built", name)
		}
	}
	err := append([]byte(nil), out[:n]...) // an ICMPv6 error
	refuse("about an error", err, ICMPv6PacketTooBig)
	s = defaultSpec6(layers.IPProtocolUDP, 10)
	s.dst = netip.MustParseAddr("ff02::1").As16()
	mc := build6(t, s)
	refuse("to multicast", mc, ICMPv6DestUnreachable)
	ParseL3(mc, &p)
	ParseL4(mc, &p)
	if BuildICMPv6Error(out, mc, &p, ICMPv6PacketTooBig, 0, 1280, dir6, macA, macB) == 0 {
		t.Fatal("packet too big about a multicast packet refused")
	}
	s = defaultSpec6(layers.IPProtocolUDP, 10)
	s.src = [16]byte{}
	refuse("from unspecified", build6(t, s), ICMPv6PacketTooBig)
	if BuildICMPv6Error(out[:100], big, &p, ICMPv6PacketTooBig, 0, 1280, dir6, macA, macB) != 0 {
		t.Fatal("short buffer")
	}
}

func TestEchoReply6(t *testing.T) {
	f := build6(t, defaultSpec6(layers.IPProtocolICMPv6, 24))
	var p Packet
	ParseL3(f, &p)
	ParseL4(f, &p)
	if !EchoReply6(f, &p) {
		t.Fatal("refused")
	}
	gp := oracle6(t, f, 14)
	ic := gp.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if ic.TypeCode.Type() != ICMPv6EchoReply || p.Dst6 != client6 || p.Src6 != vip6 || string(f[0:6]) != string(macA[:]) {
		t.Fatal("not a reply")
	}
	if EchoReply6(f, &p) {
		t.Fatal("replied to a reply")
	}
}

func TestClampMSS6(t *testing.T) {
	s := defaultSpec6(layers.IPProtocolTCP, 0)
	s.flags, s.mss = TCPSYN, 1440
	s.ext, s.extProto = [][]byte{extDst}, []uint8{60}
	f := build6(t, s)
	var p Packet
	ParseL3(f, &p)
	if ParseL4(f, &p) != FaultNone || !ClampMSS(f, &p, false, 1200) {
		t.Fatal("not clamped")
	}
	gp := oracle6(t, f, 14)
	tcp := gp.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if binary.BigEndian.Uint16(tcp.Options[1].OptionData) != 1200 {
		t.Fatalf("mss %x", tcp.Options[1].OptionData)
	}
}

// ns builds a neighbour solicitation for target from src (with a source link-layer option
// unless src is unspecified).
func nsFrame(t testing.TB, src, target [16]byte) []byte {
	t.Helper()
	dst := SolicitedNode(target)
	dmac := MulticastMAC6(dst)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(macA[:]), DstMAC: net.HardwareAddr(dmac[:]), EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: net.IP(src[:]), DstIP: net.IP(dst[:])}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(135, 0)}
	ic.SetNetworkLayerForChecksum(ip)
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: net.IP(target[:])}
	if src != ([16]byte{}) {
		ns.Options = layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: macC[:]}}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, ic, ns); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func TestNDP(t *testing.T) {
	out := make([]byte, 128)
	for _, tt := range []struct {
		name    string
		src     [16]byte
		ethDst  [6]byte
		ipDst   [16]byte
		solicit bool
	}{
		{"unicast", client6, macC, client6, true},
		{"dad", [16]byte{}, MulticastMAC6(allNodes), allNodes, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := nsFrame(t, tt.src, vip6)
			var p Packet
			var ns NS
			if ParseL3(f, &p) != ClassIPv6 || ParseL4(f, &p) != FaultNone || !ParseNS(f, &p, &ns) || ns.Target != vip6 {
				t.Fatalf("ParseNS %+v", ns)
			}
			n := BuildNAReply(out, &ns, macD)
			gp := oracle6(t, out[:n], 14)
			na, _ := gp.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
			ip := gp.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			if na == nil || string(na.TargetAddress) != string(vip6[:]) || na.Solicited() != tt.solicit || !na.Override() || na.Router() ||
				string(out[0:6]) != string(tt.ethDst[:]) || string(ip.DstIP) != string(tt.ipDst[:]) || string(ip.SrcIP) != string(vip6[:]) ||
				ip.HopLimit != 255 || len(na.Options) != 1 || string(na.Options[0].Data) != string(macD[:]) {
				t.Fatalf("advertisement %+v %+v", na, ip)
			}
		})
	}
	n := BuildUnsolicitedNA(out, macD, vip6)
	gp := oracle6(t, out[:n], 14)
	na := gp.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if na.Solicited() || !na.Override() || string(out[0:6]) != "\x33\x33\x00\x00\x00\x01" {
		t.Fatal("unsolicited")
	}
	if sn := SolicitedNode(vip6); netip.AddrFrom16(sn).String() != "ff02::1:ff00:10" {
		t.Fatalf("solicited node %v", netip.AddrFrom16(sn))
	}
	// Invalid solicitations (RFC 4861 section 7.1.1).
	for _, tt := range []struct {
		name string
		mut  func(f []byte)
	}{
		{"hop limit", func(f []byte) { f[21] = 64 }},
		{"checksum", func(f []byte) { f[57] ^= 1 }},
		{"code", func(f []byte) { f[55] = 1 }},
		{"multicast target", func(f []byte) { f[62] = 0xff }},
		{"zero option length", func(f []byte) { f[79] = 0 }},
	} {
		f := nsFrame(t, client6, vip6)
		tt.mut(f)
		var p Packet
		var ns NS
		ParseL3(f, &p)
		if ParseL4(f, &p) == FaultNone && ParseNS(f, &p, &ns) {
			t.Fatalf("%s: accepted", tt.name)
		}
	}
}

func TestHotPathAllocs6(t *testing.T) {
	f := build6(t, defaultSpec6(layers.IPProtocolTCP, 1300))
	s := defaultSpec6(layers.IPProtocolUDP, 10)
	s.ext, s.extProto = [][]byte{extHBH, extDst, extFragA}, []uint8{0, 60, 44}
	ef := build6(t, s)
	nsf := nsFrame(t, client6, vip6)
	out := make([]byte, 2048)
	var p Packet
	var ns NS
	var q Quote6
	allocs := testing.AllocsPerRun(1000, func() {
		ParseL3(f, &p)
		ParseL4(f, &p)
		f[21] = 64
		RewriteDst6(f, &p, false, real6, 8080)
		RewriteSrc6(f, &p, false, vip6, 80)
		DecHopLimit(f, &p)
		EncapIP6(out, f[p.L3:p.L3+p.IPLen], macC, macD, vip6, real6)
		Encap6in4(out, f[p.L3:p.L3+p.IPLen], macC, macD, vip, realSrv, 1)
		n := BuildICMPv6Error(out, f, &p, ICMPv6PacketTooBig, 0, 1280, vip6, macC, macD)
		ParseL3(out[:n], &p)
		ParseL4(out[:n], &p)
		ParseQuote6(out[:n], &p, &q)
		ParseL3(ef, &p)
		ParseL4(ef, &p)
		ParseL3(nsf, &p)
		ParseL4(nsf, &p)
		ParseNS(nsf, &p, &ns)
		BuildNAReply(out, &ns, macD)
		BuildUnsolicitedNA(out, macD, vip6)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}
