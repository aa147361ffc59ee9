package packet

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// natCase is one NAT rewrite: frame before (in) and the frame gopacket
// builds directly with the new values and TTL-1 (out).
type natCase struct {
	name  string
	in    spec
	dir   string // "dst" or "src"
	addr  [4]byte
	port  uint16
	out   spec
	l3    int
	noUDP bool
}

func natCases() []natCase {
	var cs []natCase
	protos := []struct {
		name  string
		proto layers.IPProtocol
	}{{"tcp", layers.IPProtocolTCP}, {"udp", layers.IPProtocolUDP}, {"icmp", layers.IPProtocolICMPv4}}
	for _, pr := range protos {
		for _, n := range []int{0, 1, 33, 1400} {
			for _, vlan := range []bool{false, true} {
				in := defaultSpec(pr.proto, n)
				in.vlan, in.tci = vlan, 100
				in.pad = 3 * n % 5 // trailing padding must be ignored
				l3 := 14
				if vlan {
					l3 = 18
				}
				// Request: client -> VIP:80 becomes client -> real:8080.
				out := in
				out.dst, out.dport, out.ttl = realSrv, 8080, in.ttl-1
				if pr.proto == layers.IPProtocolICMPv4 {
					out.dport = in.dport
				}
				name := pr.name + "/" + itoa(n) + map[bool]string{false: "", true: "/vlan"}[vlan]
				cs = append(cs, natCase{name: name + "/dst", in: in, dir: "dst", addr: realSrv, port: 8080, out: out, l3: l3})
				// Reply: real:8080 -> client becomes VIP:80 -> client.
				in2 := in
				in2.src, in2.sport, in2.dst, in2.dport, in2.ttl = realSrv, 8080, client, 40000, 2
				out2 := in2
				out2.src, out2.sport, out2.ttl = vip, 80, 1
				if pr.proto == layers.IPProtocolICMPv4 {
					out2.sport = in2.sport
				}
				cs = append(cs, natCase{name: name + "/src", in: in2, dir: "src", addr: vip, port: 80, out: out2, l3: l3})
				if pr.proto == layers.IPProtocolUDP {
					in3, out3 := in, out
					in3.noCsum, out3.noCsum = true, true
					cs = append(cs, natCase{name: name + "/dst/nocsum", in: in3, dir: "dst", addr: realSrv, port: 8080, out: out3, l3: l3, noUDP: true})
				}
			}
		}
	}
	return cs
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func doRewrite(f []byte, p *Packet, dir string, partial bool, addr [4]byte, port uint16) Fault {
	if dir == "dst" {
		return RewriteDst(f, p, partial, addr, port)
	}
	return RewriteSrc(f, p, partial, addr, port)
}

// sameFrame compares frames, treating an L4 checksum of 0 and 0xffff as
// equal (RFC 1624 and gopacket may pick either form of zero).
func sameFrame(t *testing.T, got, want []byte, csumAt int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("length %d, want %d", len(got), len(want))
	}
	g := append([]byte(nil), got...)
	if csumAt > 0 && csumEqual(binary.BigEndian.Uint16(g[csumAt:]), binary.BigEndian.Uint16(want[csumAt:])) {
		copy(g[csumAt:csumAt+2], want[csumAt:csumAt+2])
	}
	if string(g) != string(want) {
		for i := range g {
			if g[i] != want[i] {
				t.Fatalf("first difference at byte %d: got %#02x want %#02x\n got %x\nwant %x", i, g[i], want[i], g, want)
			}
		}
	}
}

func l4CsumAt(proto layers.IPProtocol, l4 int) int {
	switch proto {
	case layers.IPProtocolTCP:
		return l4 + 16
	case layers.IPProtocolUDP:
		return l4 + 6
	}
	return l4 + 2
}

func TestRewriteFullChecksum(t *testing.T) {
	for _, tc := range natCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := build(t, tc.in)
			var p Packet
			ParseL3(f, &p)
			if r := ParseL4(f, &p); r != FaultNone {
				t.Fatal(r)
			}
			if r := doRewrite(f, &p, tc.dir, false, tc.addr, tc.port); r != FaultNone {
				t.Fatalf("rewrite: %v", r)
			}
			oracleChecks(t, f, tc.l3, tc.noUDP)
			sameFrame(t, f, build(t, tc.out), l4CsumAt(tc.in.proto, p.L4))
			var q Packet
			ParseL3(f, &q)
			if r := ParseL4(f, &q); r != FaultNone || q != p {
				t.Fatalf("reparse %v: %+v, rewrite left %+v", r, q, p)
			}
		})
	}
}

func TestRewritePartialChecksum(t *testing.T) {
	for _, tc := range natCases() {
		if tc.in.proto == layers.IPProtocolICMPv4 || tc.noUDP {
			continue // CHECKSUM_PARTIAL is a TCP/UDP offload
		}
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.partial = true
			f := build(t, in)
			var p Packet
			ParseL3(f, &p)
			if r := ParseL4(f, &p); r != FaultNone {
				t.Fatal(r)
			}
			vh := VnetHdr{Flags: VnetNeedsCsum, CsumStart: uint16(p.L4), CsumOffset: TCPCsumOff}
			if in.proto == layers.IPProtocolUDP {
				vh.CsumOffset = UDPCsumOff
			}
			if r := vh.Check(&p, len(f)); r != FaultNone {
				t.Fatalf("Check: %v", r)
			}
			if r := doRewrite(f, &p, tc.dir, vh.Partial(), tc.addr, tc.port); r != FaultNone {
				t.Fatalf("rewrite: %v", r)
			}
			// The seed must now be the pseudo-header sum of the new addresses.
			out := tc.out
			out.partial = true
			sameFrame(t, f, build(t, out), 0)
			if !FinishChecksum(f[:p.L3+p.IPLen], &vh) || vh.Partial() {
				t.Fatal("FinishChecksum failed")
			}
			oracleChecks(t, f, tc.l3, false)
			sameFrame(t, f, build(t, tc.out), l4CsumAt(tc.in.proto, p.L4))
		})
	}
}

func TestRewritePartialAfterVLANStrip(t *testing.T) {
	s := defaultSpec(layers.IPProtocolTCP, 100)
	s.vlan, s.partial = true, true
	f := build(t, s)
	var p Packet
	ParseL3(f, &p)
	if r := ParseL4(f, &p); r != FaultNone {
		t.Fatal(r)
	}
	vh := VnetHdr{Flags: VnetNeedsCsum, CsumStart: uint16(p.L4), CsumOffset: TCPCsumOff}
	off := SetEthernet(f, &p, macC, macD)
	vh.Shift(-off)
	g := f[off:]
	if vh.CsumStart != 34 || vh.Check(&p, len(g)) != FaultNone {
		t.Fatalf("vnet header after strip: %+v", vh)
	}
	if r := RewriteDst(g, &p, true, realSrv, 8080); r != FaultNone {
		t.Fatal(r)
	}
	if !FinishChecksum(g, &vh) {
		t.Fatal("FinishChecksum")
	}
	oracleChecks(t, g, 14, false)
	s.vlan, s.partial, s.dst, s.dport, s.ttl = false, false, realSrv, 8080, 63
	want := build(t, s)
	copy(want[0:6], macC[:])
	copy(want[6:12], macD[:])
	sameFrame(t, g, want, 34+16)
}

func TestRewriteTTL(t *testing.T) {
	for _, ttl := range []uint8{0, 1, 2, 255} {
		for _, partial := range []bool{false, true} {
			s := defaultSpec(layers.IPProtocolUDP, 8)
			s.ttl, s.partial = ttl, partial
			f := build(t, s)
			orig := append([]byte(nil), f...)
			var p Packet
			ParseL3(f, &p)
			if r := ParseL4(f, &p); r != FaultNone {
				t.Fatal(r)
			}
			for _, dir := range []string{"dst", "src"} {
				r := doRewrite(f, &p, dir, partial, realSrv, 1)
				if ttl <= 1 {
					if r != FaultTTLExceeded || string(f) != string(orig) {
						t.Fatalf("ttl %d: %v, frame changed: %v", ttl, r, string(f) != string(orig))
					}
					continue
				}
				if r != FaultNone || f[22] != ttl-1 || p.TTL != ttl-1 {
					t.Fatalf("ttl %d: %v ttl now %d", ttl, r, f[22])
				}
				copy(f, orig)
				ParseL3(f, &p)
				ParseL4(f, &p)
			}
		}
	}
}

func TestRewriteBadOffsets(t *testing.T) {
	f := build(t, defaultSpec(layers.IPProtocolTCP, 10))
	var good Packet
	ParseL3(f, &good)
	if r := ParseL4(f, &good); r != FaultNone {
		t.Fatal(r)
	}
	orig := append([]byte(nil), f...)
	bad := []struct {
		name string
		mut  func(p *Packet)
		want Fault
	}{
		{"negative l3", func(p *Packet) { p.L3 = -20; p.L4 = 0 }, FaultBadOffsets},
		{"l4 not after l3", func(p *Packet) { p.L4 = 40 }, FaultBadOffsets},
		{"iplen beyond frame", func(p *Packet) { p.IPLen = 51 }, FaultBadOffsets},
		{"iplen below header", func(p *Packet) { p.IPLen = 19 }, FaultBadOffsets},
		{"tcp header cut by iplen", func(p *Packet) { p.IPLen = 39 }, FaultBadOffsets},
		{"l3 beyond frame", func(p *Packet) { p.L3 = 1000; p.L4 = 1020 }, FaultBadOffsets},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			tt.mut(&p)
			defer copy(f, orig)
			if r := RewriteDst(f, &p, false, realSrv, 1); r != tt.want || string(f) != string(orig) {
				t.Fatalf("RewriteDst = %v, changed %v", r, string(f) != string(orig))
			}
		})
	}
	g := append([]byte(nil), f...)
	g[23] = 47
	if r := RewriteSrc(g, &good, false, vip, 1); r != FaultUnsupportedProto {
		t.Fatalf("gre: %v", r)
	}
}

func TestFinishChecksum(t *testing.T) {
	for _, proto := range []layers.IPProtocol{layers.IPProtocolTCP, layers.IPProtocolUDP} {
		for _, n := range []int{0, 1, 2, 3, 1401} {
			s := defaultSpec(proto, n)
			full := build(t, s)
			s.partial = true
			f := build(t, s)
			vh := VnetHdr{Flags: VnetNeedsCsum | VnetDataValid, CsumStart: 34, CsumOffset: uint16(l4CsumAt(proto, 0))}
			if !FinishChecksum(f, &vh) || vh != (VnetHdr{Flags: VnetDataValid}) {
				t.Fatalf("FinishChecksum: %+v", vh)
			}
			sameFrame(t, f, full, l4CsumAt(proto, 34))
			if !FinishChecksum(f, &vh) { // no longer partial: no-op
				t.Fatal("no-op failed")
			}
		}
	}
	f := make([]byte, 40)
	for _, vh := range []VnetHdr{
		{Flags: VnetNeedsCsum, CsumStart: 34, CsumOffset: 5},
		{Flags: VnetNeedsCsum, CsumStart: 39, CsumOffset: 0},
		{Flags: VnetNeedsCsum, CsumStart: 0xffff, CsumOffset: 0xffff},
	} {
		if FinishChecksum(f, &vh) || !vh.Partial() {
			t.Fatalf("out of bounds accepted: %+v", vh)
		}
	}
}

func TestEncapIPIP(t *testing.T) {
	for _, df := range []bool{false, true} {
		s := defaultSpec(layers.IPProtocolTCP, 300)
		s.df, s.tos = df, 0xb8
		s.pad = 7
		f := build(t, s)
		var p Packet
		ParseL3(f, &p)
		if r := ParseL4(f, &p); r != FaultNone {
			t.Fatal(r)
		}
		inner := f[p.L3 : p.L3+p.IPLen]
		dst := make([]byte, 2000)
		n := EncapIPIP(dst, inner, macC, macD, [4]byte{192, 0, 2, 1}, realSrv, 0xbeef)
		if n != 14+20+len(inner) {
			t.Fatalf("n = %d", n)
		}
		pkt := gopacket.NewPacket(dst[:n], layers.LayerTypeEthernet, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil {
			t.Fatalf("decode: %v", el.Error())
		}
		eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		var outer *layers.IPv4
		for _, l := range pkt.Layers() {
			if ip, ok := l.(*layers.IPv4); ok {
				outer = ip
				break
			}
		}
		if string(eth.DstMAC) != string(macC[:]) || string(eth.SrcMAC) != string(macD[:]) || eth.EthernetType != layers.EthernetTypeIPv4 {
			t.Fatalf("ethernet %+v", eth)
		}
		wantFlags := layers.IPv4Flag(0)
		if df {
			wantFlags = layers.IPv4DontFragment
		}
		if outer.Protocol != layers.IPProtocolIPv4 || outer.TTL != 64 || outer.Id != 0xbeef || outer.Flags != wantFlags ||
			outer.TOS != 0xb8 || int(outer.Length) != 20+len(inner) || !outer.SrcIP.Equal(net.IPv4(192, 0, 2, 1)) || !outer.DstIP.Equal(net.IPv4(10, 1, 2, 3)) {
			t.Fatalf("outer %+v", outer)
		}
		oracleChecks(t, dst[:n], 14, false)
		oracleChecks(t, dst[:n], 34, false)
		if string(dst[34:n]) != string(inner) {
			t.Fatal("inner not copied")
		}
		// In place: inner already at dst[34:], and overlapping moves.
		for _, at := range []int{34, 14, 0, 50} {
			buf := make([]byte, 2000)
			copy(buf[at:], inner)
			if m := EncapIPIP(buf, buf[at:at+len(inner)], macC, macD, [4]byte{192, 0, 2, 1}, realSrv, 0xbeef); m != n || string(buf[:m]) != string(dst[:n]) {
				t.Fatalf("in place at %d: differs", at)
			}
		}
		if EncapIPIP(dst[:n-1], inner, macC, macD, vip, realSrv, 1) != 0 || EncapIPIP(dst, inner[:19], macC, macD, vip, realSrv, 1) != 0 {
			t.Fatal("short buffers accepted")
		}
	}
	if EncapIPIP(make([]byte, 70000), make([]byte, 65516), macC, macD, vip, realSrv, 1) != 0 {
		t.Fatal("oversize accepted")
	}
}
