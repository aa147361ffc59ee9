package packet

import (
	"encoding/binary"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// seedFrames are valid frames of every kind plus a few broken ones.
func seedFrames(tb testing.TB) [][]byte {
	var out [][]byte
	for _, proto := range []layers.IPProtocol{layers.IPProtocolTCP, layers.IPProtocolUDP, layers.IPProtocolICMPv4} {
		for _, n := range []int{0, 1, 64} {
			s := defaultSpec(proto, n)
			out = append(out, build(tb, s))
			s.vlan, s.pad, s.ttl = true, 4, 1
			out = append(out, build(tb, s))
		}
	}
	s := defaultSpec(layers.IPProtocolUDP, 9)
	s.noCsum = true
	out = append(out, build(tb, s))
	s = defaultSpec(layers.IPProtocolTCP, 9)
	s.options = true
	out = append(out, build(tb, s))
	frag := build(tb, defaultSpec(layers.IPProtocolUDP, 20))
	frag[20] |= 0x20
	fixIP(frag, 14)
	out = append(out, frag)
	arp := make([]byte, 60)
	BuildGratuitousARP(arp, macA, vip)
	out = append(out, arp, arp[:41])
	var a ARP
	var p Packet
	ParseL3(arp, &p)
	ParseARP(arp, &p, &a)
	reply := make([]byte, 60)
	BuildARPReply(reply, &a, macB)
	out = append(out, reply)
	return append(out, seedFrames6(tb)...)
}

// FuzzParse: no panic; accepted packets have offsets and lengths consistent
// with the frame and gopacket; ARP and ICMP builders accept whatever the
// parsers accept.
func FuzzParse(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var vh VnetHdr
		vh.Decode(data)
		if len(data) >= VnetHdrLen {
			var b [VnetHdrLen]byte
			vh.Encode(b[:])
			if string(b[:]) != string(data[:VnetHdrLen]) {
				t.Fatalf("vnet round trip %x != %x", b, data[:VnetHdrLen])
			}
		}
		if len(data) > VnetHdrLen {
			// An arbitrary header against the rest as frame.
			g := append([]byte(nil), data[VnetHdrLen:]...)
			h := vh
			if FinishChecksum(g, &h) && h.Partial() {
				t.Fatal("FinishChecksum left NEEDS_CSUM set")
			}
		}
		var p Packet
		switch ParseL3(data, &p) {
		case ClassARP:
			var a ARP
			if ParseARP(data, &p, &a) && p.L3+arpLen > len(data) {
				t.Fatal("ARP beyond frame")
			}
		case ClassIPv4:
			if p.L3 != 14 && p.L3 != 18 || p.L3+IPv4HdrLen > len(data) {
				t.Fatalf("L3 %d in %d bytes", p.L3, len(data))
			}
			r := ParseL4(data, &p)
			if r >= NumFaults {
				t.Fatalf("reason %d", r)
			}
			if r != FaultNone {
				return
			}
			checkAccepted(t, data, &p)
			_ = vh.Check(&p, len(data))
			out := make([]byte, 128)
			if n := BuildICMPError(out, data, &p, 3, 4, 1400, vip, macC, macD); n > 0 {
				oracleChecks(t, out[:n], 14, false)
			}
			if n := EncapIPIP(out[:0:0], data[p.L3:p.L3+p.IPLen], macC, macD, vip, realSrv, 1); n != 0 {
				t.Fatal("EncapIPIP wrote into an empty buffer")
			}
			big := make([]byte, IPIPHdrLen+p.IPLen)
			if n := EncapIPIP(big, data[p.L3:p.L3+p.IPLen], macC, macD, vip, realSrv, 1); n != len(big) {
				t.Fatalf("EncapIPIP = %d, want %d", n, len(big))
			}
			oracleChecks(t, big, 14, false)
			g := append([]byte(nil), data...)
			q := p
			off := SetEthernet(g, &q, macC, macD)
			if off < 0 || ParseL4(g[off:], &q) != FaultNone {
				t.Fatalf("SetEthernet broke the frame (off %d)", off)
			}
		case ClassIPv6:
			checkParsed6(t, data, &p)
		case ClassOther:
		default:
			t.Fatal("ParseL3 returned ClassInvalid")
		}
	})
}

// checkAccepted asserts the invariants of a frame ParseL4 accepted.
func checkAccepted(t *testing.T, data []byte, p *Packet) {
	t.Helper()
	if p.L4 != p.L3+IPv4HdrLen || p.IPLen < IPv4HdrLen || p.L3+p.IPLen > len(data) || p.Frag {
		t.Fatalf("inconsistent %+v for %d bytes", p, len(data))
	}
	ip := data[p.L3 : p.L3+p.IPLen]
	if refSum(ip[:20]) != 0xffff || ip[0] != 0x45 || ip[9] != p.Proto || ip[8] != p.TTL {
		t.Fatalf("accepted a bad header %x", ip[:20])
	}
	l4 := ip[20:]
	var min int
	switch p.Proto {
	case ProtoTCP:
		min = int(l4[12]>>4) * 4
	case ProtoUDP:
		min = int(binary.BigEndian.Uint16(l4[4:6]))
		if min != len(l4) {
			t.Fatal("udp length")
		}
	case ProtoICMP:
		min = 8
	default:
		t.Fatalf("accepted proto %d", p.Proto)
	}
	if min > len(l4) || min < 8 {
		t.Fatalf("l4 header %d in %d bytes", min, len(l4))
	}
	if p.Proto != ProtoICMP && (binary.BigEndian.Uint16(l4[0:]) != p.SrcPort || binary.BigEndian.Uint16(l4[2:]) != p.DstPort) {
		t.Fatal("ports")
	}
	var gip layers.IPv4
	if err := gip.DecodeFromBytes(ip, gopacket.NilDecodeFeedback); err != nil || int(gip.Length) != p.IPLen ||
		uint8(gip.Protocol) != p.Proto || string(gip.SrcIP.To4()) != string(p.Src[:]) || string(gip.DstIP.To4()) != string(p.Dst[:]) {
		t.Fatalf("gopacket disagrees: %v %+v", err, gip)
	}
}

// FuzzRewrite: after RewriteDst/RewriteSrc on an accepted frame given
// full checksums, both checksums verify with the oracle, the length and all
// other bytes are unchanged, and the CHECKSUM_PARTIAL path followed by
// FinishChecksum gives the same frame.
func FuzzRewrite(f *testing.F) {
	for i, s := range seedFrames(f) {
		f.Add(s, uint32(0x0a010203)*uint32(i+1), uint16(8080+i), i%2 == 0)
	}
	f.Add(seedFrames(f)[0], uint32(0), uint16(0), true)
	f.Add(seedFrames(f)[2], uint32(0xffffffff), uint16(0xffff), false)
	f.Fuzz(func(t *testing.T, data []byte, addr32 uint32, port uint16, src bool) {
		frame := append([]byte(nil), data...)
		var p Packet
		if ParseL3(frame, &p) != ClassIPv4 {
			return
		}
		// Make the IP header checksum right so that mutated header fields
		// reach the rewrite instead of stopping at bad_ip_checksum.
		frame[p.L3+10], frame[p.L3+11] = 0, 0
		binary.BigEndian.PutUint16(frame[p.L3+10:], ^refSum(frame[p.L3:p.L3+IPv4HdrLen]))
		if ParseL4(frame, &p) != FaultNone {
			return
		}
		fixL4(frame[p.L3 : p.L3+p.IPLen])
		orig := append([]byte(nil), frame...)
		var addr [4]byte
		binary.BigEndian.PutUint32(addr[:], addr32)
		addrOff, portOff, fn := ipDstOff, l4DstPort, RewriteDst
		if src {
			addrOff, portOff, fn = ipSrcOff, l4SrcPort, RewriteSrc
		}
		q := p
		r := fn(frame, &q, false, addr, port)
		if p.TTL <= 1 {
			if r != FaultTTLExceeded || string(frame) != string(orig) {
				t.Fatalf("ttl %d: %v", p.TTL, r)
			}
			return
		}
		if r != FaultNone || len(frame) != len(orig) {
			t.Fatalf("rewrite %v", r)
		}
		udp0 := p.Proto == ProtoUDP && orig[p.L4+6] == 0 && orig[p.L4+7] == 0
		oracleChecks(t, frame, p.L3, udp0)

		// Only TTL, IP checksum, the address, and (TCP/UDP) port and
		// checksum may change.
		changed := map[int]bool{p.L3 + 8: true, p.L3 + 10: true, p.L3 + 11: true}
		for i := 0; i < 4; i++ {
			changed[p.L3+addrOff+i] = true
		}
		csumAt := -1
		switch p.Proto {
		case ProtoTCP:
			csumAt = p.L4 + TCPCsumOff
		case ProtoUDP:
			csumAt = p.L4 + UDPCsumOff
		}
		if csumAt >= 0 {
			changed[csumAt], changed[csumAt+1] = true, true
			changed[p.L4+portOff], changed[p.L4+portOff+1] = true, true
		}
		for i := range frame {
			if !changed[i] && frame[i] != orig[i] {
				t.Fatalf("byte %d changed", i)
			}
		}
		if frame[p.L3+8] != p.TTL-1 || string(frame[p.L3+addrOff:p.L3+addrOff+4]) != string(addr[:]) ||
			csumAt >= 0 && binary.BigEndian.Uint16(frame[p.L4+portOff:]) != port {
			t.Fatal("fields not rewritten")
		}
		var re Packet
		ParseL3(frame, &re)
		if ParseL4(frame, &re) != FaultNone || re != q {
			t.Fatalf("reparse %+v != %+v", re, q)
		}

		if csumAt < 0 || udp0 {
			return
		}
		// CHECKSUM_PARTIAL path: seed from the old addresses.
		g := append([]byte(nil), orig...)
		var s, d [4]byte
		copy(s[:], g[p.L3+12:])
		copy(d[:], g[p.L3+16:])
		binary.BigEndian.PutUint16(g[csumAt:], refPseudo(s, d, p.Proto, p.IPLen-20))
		vh := VnetHdr{Flags: VnetNeedsCsum, CsumStart: uint16(p.L4), CsumOffset: uint16(csumAt - p.L4)}
		if vh.Check(&p, len(g)) != FaultNone {
			t.Fatal("Check refused a consistent header")
		}
		q = p
		if r := fn(g, &q, true, addr, port); r != FaultNone {
			t.Fatalf("partial rewrite %v", r)
		}
		if !FinishChecksum(g[:p.L3+p.IPLen], &vh) {
			t.Fatal("FinishChecksum")
		}
		if !csumEqual(binary.BigEndian.Uint16(g[csumAt:]), binary.BigEndian.Uint16(frame[csumAt:])) {
			t.Fatalf("partial %#04x != full %#04x", binary.BigEndian.Uint16(g[csumAt:]), binary.BigEndian.Uint16(frame[csumAt:]))
		}
		copy(g[csumAt:csumAt+2], frame[csumAt:csumAt+2])
		if string(g) != string(frame) {
			t.Fatal("partial and full paths differ")
		}
	})
}

// FuzzARP: ParseARP never reads out of bounds, and what it accepts can be
// answered with a reply that parses back with the roles swapped.
func FuzzARP(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s, uint64(0x020000000001), 0)
	}
	f.Fuzz(func(t *testing.T, data []byte, mac64 uint64, l3 int) {
		var p Packet
		var a ARP
		ParseARP(data, &Packet{L3: l3}, &a) // arbitrary offsets must not panic
		if ParseL3(data, &p) != ClassARP || !ParseARP(data, &p, &a) {
			return
		}
		var mac [6]byte
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], mac64)
		copy(mac[:], b[2:])
		out := make([]byte, 64)
		if n := BuildARPReply(out, &a, mac); n != MinFrameLen {
			t.Fatalf("n = %d", n)
		}
		var rp Packet
		var r ARP
		if ParseL3(out, &rp) != ClassARP || !ParseARP(out, &rp, &r) {
			t.Fatal("reply does not parse")
		}
		if r != (ARP{Op: ARPReply, SenderMAC: mac, SenderIP: a.TargetIP, TargetMAC: a.SenderMAC, TargetIP: a.SenderIP}) ||
			string(out[0:6]) != string(a.SenderMAC[:]) || string(out[6:12]) != string(mac[:]) {
			t.Fatalf("reply %+v to %+v", r, a)
		}
		gp := gopacket.NewPacket(out[:MinFrameLen], layers.LayerTypeEthernet, gopacket.Default)
		ga, ok := gp.Layer(layers.LayerTypeARP).(*layers.ARP)
		if !ok || string(ga.SourceProtAddress) != string(a.TargetIP[:]) || string(ga.DstHwAddress) != string(a.SenderMAC[:]) {
			t.Fatal("gopacket disagrees")
		}
		if BuildGratuitousARP(out, mac, a.SenderIP) != MinFrameLen || ParseL3(out, &rp) != ClassARP || !ParseARP(out, &rp, &r) ||
			r.SenderIP != a.SenderIP || r.TargetIP != a.SenderIP || r.Op != ARPRequest {
			t.Fatal("garp does not parse")
		}
	})
}
