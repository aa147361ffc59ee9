package packet

import (
	"encoding/binary"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// seedFrames6 are IPv6 frames of every kind, with extension-header chains, and the broken
// ones of the malformed-frame barrage (bad chains, truncated headers, a jumbogram, hop
// limit 0).
func seedFrames6(tb testing.TB) [][]byte {
	var out [][]byte
	for _, proto := range []layers.IPProtocol{layers.IPProtocolTCP, layers.IPProtocolUDP, layers.IPProtocolICMPv6} {
		s := defaultSpec6(proto, 20)
		out = append(out, build6(tb, s))
		s.ext, s.extProto = [][]byte{extHBH, extDst, extRt0, extFragA, extAHdr}, []uint8{0, 60, 43, 44, 51}
		s.vlan, s.hop = true, 1
		out = append(out, build6(tb, s))
	}
	s := defaultSpec6(layers.IPProtocolUDP, 8)
	s.ext, s.extProto = [][]byte{extJumbo}, []uint8{0}
	j := build6(tb, s)
	j[18], j[19] = 0, 0
	out = append(out, j)
	s = defaultSpec6(layers.IPProtocolTCP, 8)
	s.ext, s.extProto = [][]byte{extDst, extHBH}, []uint8{60, 0}
	out = append(out, build6(tb, s))
	s.ext, s.extProto = [][]byte{extFragO}, []uint8{44}
	out = append(out, build6(tb, s))
	s = defaultSpec6(layers.IPProtocolTCP, 0)
	s.hop, s.flags, s.mss = 0, TCPSYN, 1460
	out = append(out, build6(tb, s))
	f := build6(tb, defaultSpec6(layers.IPProtocolTCP, 0))
	out = append(out, f[:60])
	out = append(out, nsFrame(tb, client6, vip6), nsFrame(tb, [16]byte{}, vip6))
	big := build6(tb, defaultSpec6(layers.IPProtocolUDP, 1300))
	var p Packet
	ParseL3(big, &p)
	ParseL4(big, &p)
	e := make([]byte, 2048)
	n := BuildICMPv6Error(e, big, &p, ICMPv6PacketTooBig, 0, 1280, vip6, macC, macD)
	return append(out, e[:n])
}

// checkParsed6 asserts the invariants of an IPv6 frame: ParseL4 returns a known fault; what
// it accepts has consistent offsets and agrees with gopacket, and every builder given it
// produces a frame whose checksum verifies.
func checkParsed6(t *testing.T, data []byte, p *Packet) {
	t.Helper()
	if p.L3 != 14 && p.L3 != 18 || p.L3+IPv6HdrLen > len(data) || !p.V6 {
		t.Fatalf("L3 %d in %d bytes", p.L3, len(data))
	}
	r := ParseL4(data, p)
	if r >= NumFaults {
		t.Fatalf("reason %d", r)
	}
	if r != FaultNone {
		return
	}
	if p.L4 < p.L3+IPv6HdrLen || p.L4+8 > p.L3+p.IPLen || p.L3+p.IPLen > len(data) || p.Frag || data[p.L3]>>4 != 6 {
		t.Fatalf("inconsistent %+v for %d bytes", p, len(data))
	}
	seg := data[p.L4 : p.L3+p.IPLen]
	switch p.Proto {
	case ProtoTCP, ProtoUDP:
		if binary.BigEndian.Uint16(seg[0:]) != p.SrcPort || binary.BigEndian.Uint16(seg[2:]) != p.DstPort {
			t.Fatal("ports")
		}
	case ProtoICMPv6:
	default:
		t.Fatalf("accepted proto %d", p.Proto)
	}
	out := make([]byte, 2048)
	if n := BuildICMPv6Error(out, data, p, ICMPv6PacketTooBig, 0, 1400, vip6, macC, macD); n > 0 {
		verify6(t, out[:n])
		var ep Packet
		var q Quote6
		ParseL3(out[:n], &ep)
		if ParseL4(out[:n], &ep) != FaultNone {
			t.Fatal("error does not parse")
		}
		ParseQuote6(out[:n], &ep, &q)
	}
	inner := data[p.L3 : p.L3+p.IPLen]
	if n := EncapIP6(out, inner, macC, macD, vip6, real6); n != IP6IP6HdrLen+len(inner) || string(out[IP6IP6HdrLen:n]) != string(inner) {
		t.Fatalf("EncapIP6 = %d", n)
	}
	if n := Encap6in4(out, inner, macC, macD, vip, realSrv, 1); n != IPIPHdrLen+len(inner) || refSum(out[14:34]) != 0xffff {
		t.Fatalf("Encap6in4 = %d", n)
	}
	var ns NS
	if ParseNS(data, p, &ns) {
		n := BuildNAReply(out, &ns, macD)
		verify6(t, out[:n])
		gp := gopacket.NewPacket(out[:n], layers.LayerTypeEthernet, gopacket.Default)
		if gp.Layer(layers.LayerTypeICMPv6NeighborAdvertisement) == nil {
			t.Fatal("gopacket finds no advertisement")
		}
	}
	g := append([]byte(nil), data...)
	q := *p
	ClampMSS(g, &q, false, 1200)
}

// verify6 asserts that the IPv6 frame f parses and its upper-layer checksum verifies.
func verify6(t *testing.T, f []byte) {
	t.Helper()
	var p Packet
	if ParseL3(f, &p) != ClassIPv6 || ParseL4(f, &p) != FaultNone {
		t.Fatal("built frame does not parse")
	}
	seg := f[p.L4 : p.L3+p.IPLen]
	if s := Fold32(uint32(refPseudo6(p.Src6, p.Dst6, p.Proto, len(seg))) + uint32(refSum(seg))); s != 0xffff {
		t.Fatalf("checksum does not verify (sum %#04x)", s)
	}
}

// fixL4v6 sets a correct full upper-layer checksum in the IPv6 frame parsed into p.
func fixL4v6(f []byte, p *Packet) {
	seg := f[p.L4 : p.L3+p.IPLen]
	off := 2
	switch p.Proto {
	case ProtoTCP:
		off = TCPCsumOff
	case ProtoUDP:
		off = UDPCsumOff
	}
	seg[off], seg[off+1] = 0, 0
	c := ^Fold32(uint32(refPseudo6(p.Src6, p.Dst6, p.Proto, len(seg))) + uint32(refSum(seg)))
	if c == 0 && p.Proto == ProtoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(seg[off:], c)
}

// FuzzRewrite6: after RewriteDst6/RewriteSrc6 on an accepted frame with a valid checksum,
// the checksum verifies, only the hop limit, the address, the port and the checksum
// changed, and the CHECKSUM_PARTIAL path finished in software gives the same frame.
func FuzzRewrite6(f *testing.F) {
	for i, s := range seedFrames6(f) {
		f.Add(s, uint64(0x20010db8)<<32, uint64(i+1), uint16(8080+i), i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, data []byte, hi, lo uint64, port uint16, src bool) {
		frame := append([]byte(nil), data...)
		var p Packet
		if ParseL3(frame, &p) != ClassIPv6 || ParseL4(frame, &p) != FaultNone {
			return
		}
		fixL4v6(frame, &p)
		orig := append([]byte(nil), frame...)
		var addr [16]byte
		binary.BigEndian.PutUint64(addr[:8], hi)
		binary.BigEndian.PutUint64(addr[8:], lo)
		addrOff, portOff, fn := 24, l4DstPort, RewriteDst6
		if src {
			addrOff, portOff, fn = 8, l4SrcPort, RewriteSrc6
		}
		q := p
		r := fn(frame, &q, false, addr, port)
		if p.TTL <= 1 {
			if r != FaultTTLExceeded || string(frame) != string(orig) {
				t.Fatalf("hop limit %d: %v", p.TTL, r)
			}
			return
		}
		if r != FaultNone {
			t.Fatalf("rewrite %v", r)
		}
		verify6(t, frame)
		csumAt := p.L4 + 2
		switch p.Proto {
		case ProtoTCP:
			csumAt = p.L4 + TCPCsumOff
		case ProtoUDP:
			csumAt = p.L4 + UDPCsumOff
		}
		changed := map[int]bool{p.L3 + 7: true, csumAt: true, csumAt + 1: true}
		for i := 0; i < 16; i++ {
			changed[p.L3+addrOff+i] = true
		}
		if p.Proto != ProtoICMPv6 {
			changed[p.L4+portOff], changed[p.L4+portOff+1] = true, true
		}
		for i := range frame {
			if !changed[i] && frame[i] != orig[i] {
				t.Fatalf("byte %d changed", i)
			}
		}
		var re Packet
		ParseL3(frame, &re)
		if ParseL4(frame, &re) != FaultNone || re != q {
			t.Fatalf("reparse %+v != %+v", re, q)
		}
		if p.Proto == ProtoICMPv6 {
			return
		}
		g := append([]byte(nil), orig...)
		binary.BigEndian.PutUint16(g[csumAt:], refPseudo6(p.Src6, p.Dst6, p.Proto, p.L3+p.IPLen-p.L4))
		vh := VnetHdr{Flags: VnetNeedsCsum, CsumStart: uint16(p.L4), CsumOffset: uint16(csumAt - p.L4)}
		q = p
		if r := fn(g, &q, true, addr, port); r != FaultNone || !FinishChecksum(g[:p.L3+p.IPLen], &vh) {
			t.Fatalf("partial rewrite %v", r)
		}
		if !csumEqual(binary.BigEndian.Uint16(g[csumAt:]), binary.BigEndian.Uint16(frame[csumAt:])) {
			t.Fatal("partial and full checksums differ")
		}
		copy(g[csumAt:csumAt+2], frame[csumAt:csumAt+2])
		if string(g) != string(frame) {
			t.Fatal("partial and full paths differ")
		}
	})
}
