package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"github.com/uvs-project/uvs/conntrack"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/forward/internal/frametest"
	"github.com/uvs-project/uvs/forward/packet"
)

// tunEngine is a TUN engine whose scratch is sized as the director sizes it.
func tunEngine(t testing.TB) *Engine {
	t.Helper()
	e := newTestEngine(t, engineConfig(t, "tun", 80), 1024)
	e.scratch = make([]byte, 256<<10)
	return e
}

// outer checks the Ethernet and outer IPv4 header of an IPIP frame (after the virtio_net_hdr)
// and returns the inner packet.
func checkOuter(t *testing.T, out []byte, wantSrc, wantDst [4]byte, wantDF bool, mtu int) []byte {
	t.Helper()
	var vh packet.VnetHdr
	vh.Decode(out)
	if vh != (packet.VnetHdr{}) {
		t.Fatalf("IPIP frame with offloads: %+v", vh)
	}
	f := out[packet.VnetHdrLen:]
	if binary.BigEndian.Uint16(f[12:14]) != packet.EtherTypeIPv4 || [6]byte(f[6:12]) != ifaceMAC || f[0] != realMAC[0] || f[1] != realMAC[1] {
		t.Fatalf("ethernet %x", f[:14])
	}
	h := f[14:34]
	if h[0] != 0x45 || h[8] != 64 || h[9] != packet.ProtoIPIP || [4]byte(h[12:16]) != wantSrc || [4]byte(h[16:20]) != wantDst {
		t.Fatalf("outer header %x", h)
	}
	if df := binary.BigEndian.Uint16(h[6:8])&packet.IPFlagDF != 0; df != wantDF {
		t.Fatalf("outer DF %v, want %v", df, wantDF)
	}
	if tot := int(binary.BigEndian.Uint16(h[2:4])); tot != len(f)-14 || tot > mtu {
		t.Fatalf("outer length %d, frame %d, mtu %d", tot, len(f)-14, mtu)
	}
	frametest.OracleChecks(t, f, 14, false) // outer header checksum
	frametest.OracleChecks(t, f, 34, false) // inner checksums
	return f[34:]
}

func TestTunnelEncapsulatesFullAndPartial(t *testing.T) {
	for _, partial := range []bool{false, true} {
		t.Run(fmt.Sprintf("partial=%v", partial), func(t *testing.T) {
			e := tunEngine(t)
			in := tcpFrame(t, 40000, 0x02, partial)
			orig := append([]byte(nil), in[packet.VnetHdrLen+14:]...)
			inner := checkOuter(t, e.one(t, in), [4]byte{10, 1, 2, 1}, frametest.RealSrv, true, 1500)
			if !partial && !bytes.Equal(inner, orig) {
				t.Fatal("inner packet changed")
			}
			// Only the checksum may differ from a partial frame's.
			if partial && (!bytes.Equal(inner[:36], orig[:36]) || !bytes.Equal(inner[38:], orig[38:])) {
				t.Fatal("inner packet changed beyond its checksum")
			}
			// A second packet gets a different outer ID.
			e2 := e.one(t, tcpFrame(t, 40000, 0x10, partial))
			e.Reset()
			if e.stats.Tunnel.Frames.Load() != 2 || e.stats.Forwarded.Load() != 2 {
				t.Fatalf("frames %d forwarded %d", e.stats.Tunnel.Frames.Load(), e.stats.Forwarded.Load())
			}
			_ = e2
		})
	}
}

func TestTunnelSourceAndIDs(t *testing.T) {
	src := `
[director]
interfaces = ["eth0"]
[[service]]
vip = "203.0.113.10"
port = 80
scheduler = "rr"
forward = "tun"
mss_clamp = 1200
tunnel_source = "192.0.2.7"
  [[service.real]]
  address = "10.1.2.3"
`
	cfg, err := config.Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEngine(t, cfg, 64)
	svc := e.snap.lookupService(conntrack.Map4(frametest.VIP), packet.ProtoTCP, 80)
	if svc.MSSClamp != 1200 || svc.Reals[0].SrcIP != [4]byte{192, 0, 2, 7} {
		t.Fatalf("mss_clamp %d, outer source %v", svc.MSSClamp, svc.Reals[0].SrcIP)
	}
	a := append([]byte(nil), e.one(t, tcpFrame(t, 40000, 0x02, false))...)
	b := e.one(t, tcpFrame(t, 40000, 0x10, false))
	checkOuter(t, a, [4]byte{192, 0, 2, 7}, frametest.RealSrv, true, 1500)
	if binary.BigEndian.Uint16(a[packet.VnetHdrLen+18:]) == binary.BigEndian.Uint16(b[packet.VnetHdrLen+18:]) {
		t.Fatal("outer IP ID repeated")
	}
}

// gsoFrame is a TCP super-frame of payload bytes from the client, CHECKSUM_PARTIAL, with GSO
// segment size mss and the given TCP flags.
func gsoFrame(t testing.TB, payload, mss int, flags uint8) []byte {
	s := frametest.DefaultSpec(layers.IPProtocolTCP, payload)
	s.Flags, s.Partial = 0x10, true
	b := withVnet(frametest.Build(t, s), true)
	b[packet.VnetHdrLen+14+20+13] = flags // partial: the seed does not cover the flags
	vh := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.VnetGSOTCPv4, GSOSize: uint16(mss), HdrLen: 54, CsumStart: 34, CsumOffset: packet.TCPCsumOff}
	vh.Encode(b)
	return b
}

func TestTunnelSegmentsGSO(t *testing.T) {
	tests := []struct {
		name    string
		payload int
		mss     int
		flags   uint8
	}{
		{"64KiB", 65000, 1440, 0x10 | tcpPSH | packet.TCPFIN | tcpCWR},
		{"uneven", 5000, 1400, 0x10 | tcpPSH},
		{"one segment", 1000, 1400, 0x10 | packet.TCPFIN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tunEngine(t)
			e.one(t, tcpFrame(t, 40000, 0x02, false))
			e.Reset()
			in := gsoFrame(t, tt.payload, tt.mss, tt.flags)
			orig := append([]byte(nil), in[packet.VnetHdrLen+14:]...)
			e.Handle(in, 0)
			n := (tt.payload + tt.mss - 1) / tt.mss
			if len(e.out) != n {
				t.Fatalf("%d segments, want %d (drops %v)", len(e.out), n, e.dropSummary())
			}
			var data []byte
			for i, o := range e.out {
				inner := checkOuter(t, o.Frame, [4]byte{10, 1, 2, 1}, frametest.RealSrv, true, 1500)
				pkt := gopacket.NewPacket(o.Frame[packet.VnetHdrLen:], layers.LayerTypeEthernet, gopacket.Default)
				ls := pkt.Layers()
				if len(ls) < 4 || ls[1].LayerType() != layers.LayerTypeIPv4 || ls[2].LayerType() != layers.LayerTypeIPv4 || ls[3].LayerType() != layers.LayerTypeTCP {
					t.Fatalf("segment %d layers %v", i, ls)
				}
				ip, tcp := ls[2].(*layers.IPv4), ls[3].(*layers.TCP)
				last := i == n-1
				wantLen := min(tt.mss, tt.payload-i*tt.mss)
				if int(ip.Length) != 40+wantLen || len(tcp.Payload) != wantLen || len(inner) != 40+wantLen {
					t.Fatalf("segment %d: ip length %d, payload %d, want %d", i, ip.Length, len(tcp.Payload), wantLen)
				}
				if ip.Id != 0x1234+uint16(i) || ip.Flags != layers.IPv4DontFragment || ip.TTL != 64 {
					t.Fatalf("segment %d: id %#x flags %v ttl %d", i, ip.Id, ip.Flags, ip.TTL)
				}
				if tcp.Seq != 1000+uint32(i*tt.mss) || tcp.Ack != 2000 || !tcp.ACK {
					t.Fatalf("segment %d: seq %d ack %d", i, tcp.Seq, tcp.Ack)
				}
				if tcp.FIN != (last && tt.flags&packet.TCPFIN != 0) || tcp.PSH != (last && tt.flags&tcpPSH != 0) ||
					tcp.CWR != (i == 0 && tt.flags&tcpCWR != 0) {
					t.Fatalf("segment %d: FIN %v PSH %v CWR %v", i, tcp.FIN, tcp.PSH, tcp.CWR)
				}
				data = append(data, tcp.Payload...)
			}
			if !bytes.Equal(data, orig[40:]) {
				t.Fatal("segments do not carry the super-frame's payload")
			}
			if n > 1 && e.stats.Tunnel.Segmented.Load() != 1 {
				t.Fatalf("segmented %d", e.stats.Tunnel.Segmented.Load())
			}
		})
	}
}

func TestTunnelGSOUDP(t *testing.T) {
	e := tunEngine(t)
	s := frametest.DefaultSpec(layers.IPProtocolUDP, 3000)
	s.DPort, s.Partial = 53, true
	in := withVnet(frametest.Build(t, s), true)
	vh := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.VnetGSOUDPL4, GSOSize: 1200, HdrLen: 42, CsumStart: 34, CsumOffset: packet.UDPCsumOff}
	vh.Encode(in)
	e.Handle(in, 0)
	if len(e.out) != 3 {
		t.Fatalf("%d segments (drops %v)", len(e.out), e.dropSummary())
	}
	for _, o := range e.out {
		inner := checkOuter(t, o.Frame, [4]byte{10, 1, 2, 1}, frametest.RealSrv, true, 1500)
		if int(binary.BigEndian.Uint16(inner[24:26])) != len(inner)-20 {
			t.Fatal("udp length")
		}
	}
}

// TestTunnelGSONeedsScratch: a 64 KiB arena cannot hold a segmented 64 KiB frame (the
// director's keeps maxFrameScratch free before every frame); the drop is counted, nothing sent.
func TestTunnelGSONeedsScratch(t *testing.T) {
	e := newTestEngine(t, engineConfig(t, "tun", 80), 1024)
	e.one(t, tcpFrame(t, 40000, 0x02, false))
	e.Reset()
	e.Handle(gsoFrame(t, 65000, 1440, 0x10), 0)
	if len(e.out) != 0 || e.dropSummary()["scratch_full"] != 1 {
		t.Fatalf("out %d drops %v", len(e.out), e.dropSummary())
	}
}

func bigFrame(t testing.TB, payload int, df bool) []byte {
	s := frametest.DefaultSpec(layers.IPProtocolTCP, payload)
	s.Flags, s.DF = 0x10, df
	return withVnet(frametest.Build(t, s), false)
}

func TestTunnelFragNeeded(t *testing.T) {
	e := tunEngine(t)
	e.one(t, tcpFrame(t, 40000, 0x02, false))
	e.Reset()
	// 1481 bytes inner: one more than a 1500 MTU leaves.
	in := bigFrame(t, 1481-40, true)
	orig := append([]byte(nil), in[packet.VnetHdrLen:]...)
	out := e.one(t, in)
	f := out[packet.VnetHdrLen:]
	if [6]byte(f[0:6]) != frametest.MACA || [6]byte(f[6:12]) != ifaceMAC {
		t.Fatalf("ICMP MACs %x %x", f[0:6], f[6:12])
	}
	if [4]byte(f[26:30]) != frametest.VIP || [4]byte(f[30:34]) != frametest.Client || f[23] != packet.ProtoICMP {
		t.Fatalf("ICMP header %x", f[14:34])
	}
	m := f[34:]
	if m[0] != packet.ICMPDestUnreachable || m[1] != packet.ICMPCodeFragNeeded || binary.BigEndian.Uint16(m[6:8]) != 1480 {
		t.Fatalf("ICMP %d/%d mtu %d", m[0], m[1], binary.BigEndian.Uint16(m[6:8]))
	}
	if !bytes.Equal(m[8:36], orig[14:42]) {
		t.Fatal("quote is not the original header and 8 bytes")
	}
	frametest.OracleChecks(t, f, 14, false)
	// 1480 fits.
	checkOuter(t, e.one(t, bigFrame(t, 1480-40, true)), [4]byte{10, 1, 2, 1}, frametest.RealSrv, true, 1500)

	// A GSO frame whose segments would not fit gets the same answer.
	svc := e.snap.lookupService(conntrack.Map4(frametest.VIP), packet.ProtoTCP, 80)
	svc.Reals[0].MTU, svc.Reals[1].MTU = 1400, 1400
	out = e.one(t, gsoFrame(t, 5000, 1448, 0x10))
	if m := out[packet.VnetHdrLen+34:]; m[0] != packet.ICMPDestUnreachable || binary.BigEndian.Uint16(m[6:8]) != 1380 {
		t.Fatalf("GSO: ICMP %d mtu %d", m[0], binary.BigEndian.Uint16(m[6:8]))
	}
}

func TestTunnelFragNeededRateLimit(t *testing.T) {
	e := tunEngine(t)
	e.one(t, tcpFrame(t, 40000, 0x02, false))
	e.Reset()
	big := bigFrame(t, 1500, true)
	work := make([]byte, len(big))
	send := func(n int) int {
		e.Reset()
		for i := 0; i < n; i++ {
			copy(work, big)
			e.Handle(work, 0)
		}
		return len(e.out)
	}
	if got := send(icmpBurst + 10); got != icmpBurst {
		t.Fatalf("burst: %d ICMP, want %d", got, icmpBurst)
	}
	if got := e.stats.ICMPLimited.Load(); got != 10 {
		t.Fatalf("rate limited %d, want 10", got)
	}
	e.Begin(e.snap, e.nowNs+7e6) // 7 ms: 7 tokens at 1000/s
	if got := send(20); got != 7 {
		t.Fatalf("after 7 ms: %d ICMP, want 7", got)
	}
	e.Begin(e.snap, e.nowNs+3600e9) // an hour: the bucket is full, not more
	if got := send(icmpBurst + 50); got != icmpBurst {
		t.Fatalf("after an hour: %d ICMP, want %d", got, icmpBurst)
	}
	if e.stats.FragNeeded.Load() != 2*icmpBurst+7 || e.stats.ICMPSent.Load() != 2*icmpBurst+7 {
		t.Fatalf("frag needed %d, ICMP sent %d", e.stats.FragNeeded.Load(), e.stats.ICMPSent.Load())
	}
}

func TestTunnelFragmentsWithoutDF(t *testing.T) {
	e := tunEngine(t)
	e.one(t, tcpFrame(t, 40000, 0x02, false))
	e.Reset()
	in := bigFrame(t, 3000, false)
	orig := append([]byte(nil), in[packet.VnetHdrLen+14:]...)
	e.Handle(in, 0)
	if len(e.out) != 3 {
		t.Fatalf("%d fragments (drops %v)", len(e.out), e.dropSummary())
	}
	data := make([]byte, len(orig)-20)
	seen := 0
	for i, o := range e.out {
		f := o.Frame[packet.VnetHdrLen:]
		inner := f[34:]
		frametest.OracleChecks(t, f, 14, false)
		if frametest.RefSum(inner[:20]) != 0xffff {
			t.Fatalf("fragment %d: inner header checksum", i)
		}
		if len(f)-14 > 1500 || binary.BigEndian.Uint16(f[20:22])&packet.IPFlagDF != 0 {
			t.Fatalf("fragment %d: outer %d bytes, flags %#x", i, len(f)-14, f[20])
		}
		fo := binary.BigEndian.Uint16(inner[6:8])
		if mf := fo&packet.IPFlagMF != 0; mf == (i == len(e.out)-1) {
			t.Fatalf("fragment %d: MF %v", i, mf)
		}
		off := int(fo&packet.IPFragOffMask) * 8
		n := int(binary.BigEndian.Uint16(inner[2:4])) - 20
		if binary.BigEndian.Uint16(inner[4:6]) != 0x1234 || n != len(inner)-20 || (i < 2 && n%8 != 0) {
			t.Fatalf("fragment %d: id %#x len %d", i, binary.BigEndian.Uint16(inner[4:6]), n)
		}
		copy(data[off:], inner[20:])
		seen += n
	}
	if seen != len(data) || !bytes.Equal(data, orig[20:]) {
		t.Fatal("fragments do not reassemble to the packet")
	}
}

// synWithMSS builds a SYN carrying an MSS option, after a NOP when odd (the value then starts
// at an odd offset and spans two checksum words).
func synWithMSS(t testing.TB, mss uint16, odd, partial bool) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
		SrcIP: net.IP(frametest.Client[:]), DstIP: net.IP(frametest.VIP[:])}
	opts := []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: binary.BigEndian.AppendUint16(nil, mss)},
		{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2}}
	if odd {
		opts = append([]layers.TCPOption{{OptionType: layers.TCPOptionKindNop, OptionLength: 1}}, opts...)
	}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1, SYN: true, Window: 64240, Options: opts}
	tcp.SetNetworkLayerForChecksum(ip)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(frametest.MACA[:]), DstMAC: net.HardwareAddr(frametest.MACB[:]), EthernetType: layers.EthernetTypeIPv4}
	f := frametest.Serialize(t, eth, ip, tcp)
	f = f[:14+int(binary.BigEndian.Uint16(f[16:18]))]
	if partial {
		binary.BigEndian.PutUint16(f[34+16:], frametest.RefPseudo(frametest.Client, frametest.VIP, 6, len(f)-34))
	}
	return withVnet(f, partial)
}

func mssOf(t *testing.T, ipPkt []byte) uint16 {
	t.Helper()
	var tcp layers.TCP
	if err := tcp.DecodeFromBytes(ipPkt[20:], gopacket.NilDecodeFeedback); err != nil {
		t.Fatal(err)
	}
	for _, o := range tcp.Options {
		if o.OptionType == layers.TCPOptionKindMSS {
			return binary.BigEndian.Uint16(o.OptionData)
		}
	}
	t.Fatal("no MSS option")
	return 0
}

func TestClampMSS(t *testing.T) {
	for _, odd := range []bool{false, true} {
		for _, partial := range []bool{false, true} {
			t.Run(fmt.Sprintf("odd=%v/partial=%v", odd, partial), func(t *testing.T) {
				b := synWithMSS(t, 1460, odd, partial)
				f := b[packet.VnetHdrLen:]
				var p packet.Packet
				if packet.ParseL3(f, &p) != packet.ClassIPv4 || packet.ParseL4(f, &p) != packet.FaultNone {
					t.Fatal("parse")
				}
				if packet.ClampMSS(f, &p, partial, 1460) || packet.ClampMSS(f, &p, partial, 1500) {
					t.Fatal("raised or kept MSS reported as a change")
				}
				if !packet.ClampMSS(f, &p, partial, 1200) {
					t.Fatal("not clamped")
				}
				if got := mssOf(t, f[14:]); got != 1200 {
					t.Fatalf("mss %d", got)
				}
				if partial {
					var vh packet.VnetHdr
					vh.Decode(b)
					if !packet.FinishChecksum(f, &vh) {
						t.Fatal("finish")
					}
				}
				frametest.OracleChecks(t, f, 14, false)
			})
		}
	}
}

func TestEngineMSSClampAllMethods(t *testing.T) {
	for _, method := range []string{"dr", "nat", "tun"} {
		t.Run(method, func(t *testing.T) {
			e := newTestEngine(t, engineConfig(t, method, 80), 64)
			e.snap.lookupService(conntrack.Map4(frametest.VIP), packet.ProtoTCP, 80).MSSClamp = 1300
			out := e.one(t, synWithMSS(t, 1460, true, false))
			l3 := packet.VnetHdrLen + 14
			if method == "tun" {
				l3 += 20
			}
			if got := mssOf(t, out[l3:]); got != 1300 {
				t.Fatalf("mss %d", got)
			}
			frametest.OracleChecks(t, out[l3-14:], 14, false)
			if e.stats.MSSClamped.Load() != 1 {
				t.Fatal("not counted")
			}
		})
	}
}

func TestTunnelGSOAllocs(t *testing.T) {
	e := tunEngine(t)
	e.one(t, tcpFrame(t, 40000, 0x02, false))
	in := gsoFrame(t, 20000, 1440, 0x10|tcpPSH)
	big := bigFrame(t, 3000, false)
	df := bigFrame(t, 1500, true)
	work := make([]byte, len(in))
	allocs := testing.AllocsPerRun(200, func() {
		e.Reset()
		copy(work, in)
		e.Handle(work, 0)
		copy(work, big)
		e.Handle(work[:len(big)], 0)
		copy(work, df)
		e.Handle(work[:len(df)], 0)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations", allocs)
	}
}

// BenchmarkTunnelGSO measures segmenting and encapsulating a 64 KiB super-frame.
func BenchmarkTunnelGSO(b *testing.B) {
	e := tunEngine(b)
	e.Handle(tcpFrame(b, 40000, 0x02, false), 0)
	in := gsoFrame(b, 65000, 1440, 0x10)
	work := make([]byte, len(in))
	b.SetBytes(int64(len(in) - packet.VnetHdrLen))
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		copy(work, in)
		e.Handle(work, 0)
	}
	if d := e.dropSummary(); len(d) != 0 {
		b.Fatalf("drops %v", d)
	}
}

// FuzzTunnel feeds arbitrary frames and virtio_net_hdrs to a TUN engine that already holds
// the flow. Invariants: no panic; every IPIP frame fits the MTU and has a valid outer header;
// every ICMP error is a valid fragmentation needed.
func FuzzTunnel(f *testing.F) {
	f.Add(gsoFrame(f, 5000, 1400, 0x10|packet.TCPFIN))
	f.Add(bigFrame(f, 3000, false))
	f.Add(bigFrame(f, 1500, true))
	f.Add(synWithMSS(f, 1460, true, true))
	f.Fuzz(func(t *testing.T, in []byte) {
		e := tunEngine(t)
		e.snap.lookupService(conntrack.Map4(frametest.VIP), packet.ProtoTCP, 80).MSSClamp = 1200
		e.Handle(tcpFrame(t, 40000, 0x02, false), 0)
		e.Reset()
		e.Handle(in, 0)
		for _, o := range e.out {
			fr := o.Frame[packet.VnetHdrLen:]
			if len(fr) < 34 || frametest.RefSum(fr[14:34]) != 0xffff {
				t.Fatalf("bad outer header %x", fr)
			}
			switch fr[23] {
			case packet.ProtoIPIP:
				if len(fr)-14 > 1500 || int(binary.BigEndian.Uint16(fr[16:18])) != len(fr)-14 {
					t.Fatalf("IPIP frame of %d bytes", len(fr))
				}
			case packet.ProtoICMP:
				if fr[34] != packet.ICMPDestUnreachable || fr[35] != packet.ICMPCodeFragNeeded {
					t.Fatalf("ICMP %d/%d", fr[34], fr[35])
				}
			default:
				t.Fatalf("protocol %d", fr[23])
			}
		}
	})
}

// FuzzClampMSS writes arbitrary bytes over the options of a SYN (data offset 15, so 40 bytes
// of options) with a valid checksum. Invariants: no panic; the checksum still verifies; an MSS
// reported as clamped reads as the clamp.
func FuzzClampMSS(f *testing.F) {
	f.Add([]byte{1, 2, 4, 5, 0xb4, 4, 2}, uint16(1200))
	f.Add([]byte{2, 4, 0xff, 0xff}, uint16(536))
	f.Add([]byte{3, 0, 2, 4, 9, 0}, uint16(1000)) // a zero option length ends the walk
	f.Fuzz(func(t *testing.T, opts []byte, mss uint16) {
		s := frametest.DefaultSpec(layers.IPProtocolTCP, 40+16)
		s.Flags = packet.TCPSYN
		fr := frametest.Build(t, s)
		tcp := fr[34:]
		tcp[12] = 15 << 4 // the first 40 payload bytes become options
		copy(tcp[20:60], opts)
		frametest.FixL4(fr[14:])
		var p packet.Packet
		if packet.ParseL3(fr, &p) != packet.ClassIPv4 || packet.ParseL4(fr, &p) != packet.FaultNone {
			t.Fatal("parse")
		}
		changed := packet.ClampMSS(fr, &p, false, mss)
		if s := packet.Fold32(uint32(frametest.RefPseudo(frametest.Client, frametest.VIP, 6, len(tcp))) + uint32(frametest.RefSum(tcp))); s != 0xffff {
			t.Fatalf("checksum does not verify after clamp (changed %v)", changed)
		}
		if changed {
			found := false
			for i := 20; i+3 < 60; i++ {
				if tcp[i] == packet.TCPOptMSS && tcp[i+1] == 4 && binary.BigEndian.Uint16(tcp[i+2:]) == mss {
					found = true
				}
			}
			if !found {
				t.Fatal("clamped, but no MSS option holds the clamp")
			}
		}
	})
}
