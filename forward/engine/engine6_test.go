package engine

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/forward/internal/frametest"
	"github.com/uvs-project/uvs/forward/packet"
	"github.com/uvs-project/uvs/lvssync"
)

// IPv6 engine tests: frames built with gopacket (the oracle), driven through Handle, the
// output checked field by field and its checksums verified over the IPv6 pseudo-header.
// engineConfig has an IPv6 TCP service on vip6:80 with reals real6a and real6b.

var (
	// testSrc6 is the director's IPv6 egress address in tests (6in6 and 4in6 outer source).
	testSrc6 = netip.MustParseAddr("2001:2:0:10::1").As16()
	client6  = netip.MustParseAddr("2001:2:0:20::7").As16()
	vip6     = netip.MustParseAddr("2001:2:0:10::10").As16()
	real6a   = netip.MustParseAddr("2001:2:0:10::3").As16()
	real6b   = netip.MustParseAddr("2001:2:0:10::4").As16()
)

// spec6 is an IPv6 test frame: TCP (flags) or UDP, or ICMPv6 when icmp is set.
type spec6 struct {
	src, dst     [16]byte
	sport, dport uint16
	flags        uint8
	udp          bool
	hop          uint8
	payload      int
	dstOpts      bool // a destination options header before the upper layer
}

func tcp6(src, dst [16]byte, sport, dport uint16, flags uint8) spec6 {
	return spec6{src: src, dst: dst, sport: sport, dport: dport, flags: flags, hop: 64, payload: 32}
}

// frame6 builds s as an Ethernet frame from MACA to MACB, without a virtio_net_hdr.
func frame6(t testing.TB, s spec6) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(frametest.MACA[:]), DstMAC: net.HardwareAddr(frametest.MACB[:]), EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: s.hop, SrcIP: net.IP(append([]byte(nil), s.src[:]...)), DstIP: net.IP(append([]byte(nil), s.dst[:]...))}
	pl := make([]byte, s.payload)
	for i := range pl {
		pl[i] = byte(i*3 + 1)
	}
	var l4 gopacket.SerializableLayer
	ip.NextHeader = layers.IPProtocolTCP
	if s.udp {
		ip.NextHeader = layers.IPProtocolUDP
		l4 = frametest.UDP(s.sport, s.dport, ip)
	} else {
		l4 = frametest.TCP(s.sport, s.dport, s.flags, ip)
	}
	f := frametest.Serialize(t, eth, ip, l4, gopacket.Payload(pl))
	f = f[:14+40+int(binary.BigEndian.Uint16(f[18:20]))]
	if s.dstOpts {
		// Insert an 8-byte destination options header (PadN); the upper-layer checksum does
		// not cover it.
		ext := []byte{f[20], 0, 1, 4, 0, 0, 0, 0}
		f[20] = 60
		binary.BigEndian.PutUint16(f[18:20], binary.BigEndian.Uint16(f[18:20])+8)
		f = append(f[:54:54], append(ext, f[54:]...)...)
	}
	return f
}

// l4Sum6 verifies the upper-layer checksum of an IPv6 packet at ip (no extension headers).
func l4Sum6(t testing.TB, ip []byte) {
	t.Helper()
	n := int(binary.BigEndian.Uint16(ip[4:6]))
	l4 := ip[40 : 40+n]
	if packet.Checksum(l4, packet.PseudoHeaderSum6([16]byte(ip[8:24]), [16]byte(ip[24:40]), ip[6], uint32(n))) != 0xffff {
		t.Fatalf("bad checksum of next header %d", ip[6])
	}
}

func engine6(t testing.TB, forward string, realPort int) *Engine {
	t.Helper()
	return newTestEngine(t, engineConfig(t, forward, realPort), 1<<12)
}

func TestEngine6DR(t *testing.T) {
	e := engine6(t, "dr", 80)
	f := e.one(t, withVnet(frame6(t, tcp6(client6, vip6, 40000, 80, 0x02)), false))[packet.VnetHdrLen:]
	ip := f[14:]
	if [6]byte(f[0:6]) != realMAC6(real6a) || [6]byte(f[6:12]) != ifaceMAC || [16]byte(ip[24:40]) != vip6 || ip[7] != 63 {
		t.Fatalf("DR frame: dst MAC %x src %x dst %x hop %d", f[0:6], f[6:12], ip[24:40], ip[7])
	}
	l4Sum6(t, ip)
	// The next packet of the connection goes to the same real.
	f = e.one(t, withVnet(frame6(t, tcp6(client6, vip6, 40000, 80, 0x10)), false))[packet.VnetHdrLen:]
	if [6]byte(f[0:6]) != realMAC6(real6a) {
		t.Fatal("established packet went elsewhere")
	}
	// A new connection goes to the other real (rr).
	f = e.one(t, withVnet(frame6(t, tcp6(client6, vip6, 40001, 80, 0x02)), false))[packet.VnetHdrLen:]
	if [6]byte(f[0:6]) != realMAC6(real6b) {
		t.Fatal("rr did not move on")
	}
}

// realMAC6 is testEgress's MAC for an IPv6 real.
func realMAC6(a [16]byte) [6]byte { return testEgress(a).DstMAC }

func TestEngine6NAT(t *testing.T) {
	for _, partial := range []bool{false, true} {
		e := engine6(t, "nat", 8080)
		syn := withVnet(frame6(t, tcp6(client6, vip6, 40000, 80, 0x02)), false)
		if partial {
			setPartial6(syn)
		}
		f := e.one(t, syn)[packet.VnetHdrLen:]
		ip := f[14:]
		if [16]byte(ip[24:40]) != real6a || binary.BigEndian.Uint16(ip[42:]) != 8080 || [16]byte(ip[8:24]) != client6 || ip[7] != 63 {
			t.Fatalf("NAT in: dst %x port %d", ip[24:40], binary.BigEndian.Uint16(ip[42:]))
		}
		if !partial {
			l4Sum6(t, ip)
		}
		// The reply from real:8080 goes back from vip:80.
		rep := e.one(t, withVnet(frame6(t, tcp6(real6a, client6, 8080, 40000, 0x12)), false))[packet.VnetHdrLen:]
		ip = rep[14:]
		if [16]byte(ip[8:24]) != vip6 || binary.BigEndian.Uint16(ip[40:]) != 80 || [6]byte(rep[0:6]) != frametest.MACA {
			t.Fatalf("NAT out: src %x port %d to %x", ip[8:24], binary.BigEndian.Uint16(ip[40:]), rep[0:6])
		}
		l4Sum6(t, ip)
		if e.stats.Replies.Load() != 1 {
			t.Fatalf("replies %d", e.stats.Replies.Load())
		}
	}
}

// setPartial6 turns a TCP frame (IPv6, no extension headers) behind a virtio_net_hdr into a
// CHECKSUM_PARTIAL one: NEEDS_CSUM and the pseudo-header seed in the checksum field.
func setPartial6(b []byte) {
	f := b[packet.VnetHdrLen:]
	ip := f[14:]
	n := binary.BigEndian.Uint16(ip[4:6])
	binary.BigEndian.PutUint16(ip[40+16:], packet.PseudoHeaderSum6([16]byte(ip[8:24]), [16]byte(ip[24:40]), 6, uint32(n)))
	h := packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: 54, CsumOffset: packet.TCPCsumOff}
	h.Encode(b)
}

func TestEngine6TUN(t *testing.T) {
	// 6in6: the IPv6 service of engineConfig with forward = "tun".
	e := engine6(t, "tun", 80)
	in := frame6(t, tcp6(client6, vip6, 40000, 80, 0x02))
	f := e.one(t, withVnet(in, false))[packet.VnetHdrLen:]
	outer := f[14:]
	if binary.BigEndian.Uint16(f[12:14]) != packet.EtherTypeIPv6 || outer[6] != packet.ProtoIPv6 ||
		[16]byte(outer[8:24]) != testSrc6 || [16]byte(outer[24:40]) != real6a || string(outer[40:]) != string(in[14:]) {
		t.Fatalf("6in6: next %d src %x dst %x", outer[6], outer[8:24], outer[24:40])
	}
	// 4in6 and 6in4: a real of the other family.
	for _, tt := range []struct {
		name, vip, real string
		v6in            bool
	}{
		{"4in6", "203.0.113.10", "2001:2:0:10::3", false},
		{"6in4", "2001:2:0:10::10", "10.1.2.3", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("t.toml", []byte(`[director]
interfaces = ["eth0"]
[[service]]
vip = "`+tt.vip+`"
port = 80
forward = "tun"
[[service.real]]
address = "`+tt.real+`"
`))
			if err != nil {
				t.Fatal(err)
			}
			e := newTestEngine(t, cfg, 1<<10)
			var in []byte
			if tt.v6in {
				in = frame6(t, tcp6(client6, vip6, 40000, 80, 0x02))
			} else {
				in = frametest.Build(t, frametest.DefaultSpec(layers.IPProtocolTCP, 32))
			}
			f := e.one(t, withVnet(in, false))[packet.VnetHdrLen:]
			outer := f[14:]
			if tt.v6in {
				if outer[0]>>4 != 4 || outer[9] != packet.ProtoIPv6 || [4]byte(outer[16:20]) != [4]byte{10, 1, 2, 3} ||
					[4]byte(outer[12:16]) != [4]byte{10, 1, 2, 1} || string(outer[20:]) != string(in[14:]) ||
					packet.Checksum(outer[:20], 0) != 0xffff {
					t.Fatalf("6in4 outer %x", outer[:20])
				}
				return
			}
			if outer[0]>>4 != 6 || outer[6] != packet.ProtoIPIP || [16]byte(outer[24:40]) != real6a ||
				[16]byte(outer[8:24]) != testSrc6 || string(outer[40:]) != string(in[14:]) {
				t.Fatalf("4in6 outer %x", outer[:40])
			}
		})
	}
}

func TestEngine6NeighbourSolicitation(t *testing.T) {
	e := engine6(t, "dr", 80)
	ns := nsFrame(t, vip6)
	f := e.one(t, withVnet(ns, false))[packet.VnetHdrLen:]
	var p packet.Packet
	if packet.ParseL3(f, &p) != packet.ClassIPv6 || packet.ParseL4(f, &p) != packet.FaultNone ||
		p.ICMPType != packet.ICMPv6NeighborAdvert || [16]byte(f[14+40+8:14+40+24]) != vip6 ||
		p.Dst6 != client6 || [6]byte(f[0:6]) != frametest.MACA || [6]byte(f[6:12]) != ifaceMAC {
		t.Fatalf("NA %x", f)
	}
	l4Sum6(t, f[14:])
	// Not a VIP: the kernel's.
	e.Reset()
	e.Handle(withVnet(nsFrame(t, real6a), false), 0)
	e.Publish()
	if len(e.out) != 0 || e.stats.Ignored.Load() != 1 {
		t.Fatalf("NS for a non-VIP: %d frames out", len(e.out))
	}
}

// nsFrame builds a neighbour solicitation from client6 for target, to its solicited-node
// group, with a source link-layer option.
func nsFrame(t testing.TB, target [16]byte) []byte {
	sn := packet.SolicitedNode(target)
	mac := packet.MulticastMAC6(sn)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(frametest.MACA[:]), DstMAC: net.HardwareAddr(mac[:]), EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: net.IP(client6[:]), DstIP: net.IP(sn[:])}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	_ = icmp.SetNetworkLayerForChecksum(ip)
	body := &layers.ICMPv6NeighborSolicitation{TargetAddress: net.IP(target[:]),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: frametest.MACA[:]}}}
	return frametest.Serialize(t, eth, ip, icmp, body)
}

func TestEngine6HopLimit(t *testing.T) {
	for _, hop := range []uint8{0, 1} {
		e := engine6(t, "dr", 80)
		s := tcp6(client6, vip6, 40000, 80, 0x02)
		s.hop = hop
		e.Handle(withVnet(frame6(t, s), false), 0)
		e.Publish()
		if len(e.out) != 0 || e.stats.Faults[packet.FaultTTLExceeded].Load() != 1 {
			t.Fatalf("hop limit %d: %d frames out, drops %v", hop, len(e.out), e.dropSummary())
		}
	}
}

func TestEngine6ExtensionHeaders(t *testing.T) {
	e := engine6(t, "dr", 80)
	s := tcp6(client6, vip6, 40000, 80, 0x02)
	s.dstOpts = true
	in := frame6(t, s)
	f := e.one(t, withVnet(in, false))[packet.VnetHdrLen:]
	if f[14+6] != 60 || string(f[14+8:]) != string(in[14+8:]) {
		t.Fatal("destination options header not carried through")
	}
	// A truncated extension header is a counted fault.
	bad := append([]byte(nil), in[:14+40+4]...)
	binary.BigEndian.PutUint16(bad[18:20], 4)
	e.Reset()
	e.Handle(withVnet(bad, false), 0)
	e.Publish()
	if len(e.out) != 0 || e.stats.Faults[packet.FaultBadExtHeader].Load() != 1 {
		t.Fatalf("truncated extension header: drops %v", e.dropSummary())
	}
	// Fragments, by the documented policy: a first fragment (M set) is dropped under
	// "fragment"; an atomic fragment (offset 0, M clear, RFC 6946) is a whole packet.
	for _, tt := range []struct {
		name  string
		fo    uint16
		drops bool
	}{{"first fragment", 1, true}, {"atomic fragment", 0, false}} {
		f := frame6(t, tcp6(client6, vip6, 40100, 80, 0x02))
		ext := []byte{f[20], 0, byte(tt.fo >> 8), byte(tt.fo), 0, 0, 0, 9}
		f[20] = 44
		binary.BigEndian.PutUint16(f[18:20], binary.BigEndian.Uint16(f[18:20])+8)
		f = append(f[:54:54], append(ext, f[54:]...)...)
		e.Reset()
		before := e.stats.Faults[packet.FaultFragment].Load()
		e.Handle(withVnet(f, false), 0)
		e.Publish()
		if got := e.stats.Faults[packet.FaultFragment].Load() - before; tt.drops != (got == 1) || tt.drops == (len(e.out) == 1) {
			t.Fatalf("%s: %d frames out, fragment drops %d", tt.name, len(e.out), got)
		}
	}
}

func TestEngine6PacketTooBig(t *testing.T) {
	e := engine6(t, "dr", 80)
	for _, svc := range e.snap.byID {
		if svc != nil && svc.V6 {
			for _, r := range svc.Reals {
				if r != nil {
					r.MTU = 1280
				}
			}
		}
	}
	s := tcp6(client6, vip6, 40000, 80, 0x02)
	s.payload = 1400
	in := frame6(t, s)
	f := e.one(t, withVnet(in, false))[packet.VnetHdrLen:]
	var p packet.Packet
	if packet.ParseL3(f, &p) != packet.ClassIPv6 || packet.ParseL4(f, &p) != packet.FaultNone ||
		p.ICMPType != packet.ICMPv6PacketTooBig || binary.BigEndian.Uint32(f[14+40+4:]) != 1280 ||
		p.Src6 != vip6 || p.Dst6 != client6 || p.IPLen > 1280 {
		t.Fatalf("PTB: type %d mtu %d src %x len %d", p.ICMPType, binary.BigEndian.Uint32(f[14+40+4:]), p.Src6, p.IPLen)
	}
	l4Sum6(t, f[14:])
	if e.stats.Drops[DropTooBig].Load() != 1 {
		t.Fatalf("drops %v", e.dropSummary())
	}
}

// TestEngine6ICMPRelay relays a Packet Too Big about a connection's packet (VIP -> client)
// to the connection's real: as it is for DR, rewritten to the real for NAT.
func TestEngine6ICMPRelay(t *testing.T) {
	for _, method := range []string{"dr", "nat"} {
		t.Run(method, func(t *testing.T) {
			port := 80
			if method == "nat" {
				port = 8080
			}
			e := engine6(t, method, port)
			e.one(t, withVnet(frame6(t, tcp6(client6, vip6, 40000, 80, 0x02)), false))
			// The client's router says the VIP's reply was too big.
			orig := frame6(t, tcp6(vip6, client6, 80, 40000, 0x10))
			ptb := ptbFrame(t, orig, netip.MustParseAddr("2001:2:0:20::1").As16(), vip6)
			f := e.one(t, withVnet(ptb, false))[packet.VnetHdrLen:]
			ip := f[14:]
			if [6]byte(f[0:6]) != realMAC6(real6a) || e.stats.ICMPRelayed.Load() != 1 {
				t.Fatalf("relayed to %x", f[0:6])
			}
			if method == "nat" {
				q := ip[48:]
				if [16]byte(ip[24:40]) != real6a || [16]byte(q[8:24]) != real6a || binary.BigEndian.Uint16(q[40:]) != 8080 {
					t.Fatalf("NAT relay: dst %x quoted src %x port %d", ip[24:40], q[8:24], binary.BigEndian.Uint16(q[40:]))
				}
				l4Sum6(t, ip)
			}
		})
	}
}

// ptbFrame builds a Packet Too Big (MTU 1280) from src to dst quoting orig's IP packet.
func ptbFrame(t testing.TB, orig []byte, src, dst [16]byte) []byte {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(frametest.MACA[:]), DstMAC: net.HardwareAddr(frametest.MACB[:]), EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: net.IP(src[:]), DstIP: net.IP(dst[:])}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypePacketTooBig, 0)}
	_ = icmp.SetNetworkLayerForChecksum(ip)
	body := append([]byte{0, 0, 5, 0}, orig[14:]...)
	return frametest.Serialize(t, eth, ip, icmp, gopacket.Payload(body))
}

// TestEngine6Persistence: with persistence_netmask 64, two clients of one /64 share a real,
// a client of another /64 is scheduled afresh.
func TestEngine6Persistence(t *testing.T) {
	cfg, err := config.Parse("t.toml", []byte(`[director]
interfaces = ["eth0"]
[[service]]
vip = "2001:2:0:10::10"
port = 80
scheduler = "rr"
persistence_timeout = "300s"
persistence_netmask = 64
[[service.real]]
address = "2001:2:0:10::3"
[[service.real]]
address = "2001:2:0:10::4"
`))
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEngine(t, cfg, 1<<10)
	to := func(src [16]byte, sport uint16) [6]byte {
		f := e.one(t, withVnet(frame6(t, tcp6(src, vip6, sport, 80, 0x02)), false))[packet.VnetHdrLen:]
		return [6]byte(f[0:6])
	}
	a := to(client6, 1000)
	same := client6
	same[15] = 0x99 // same /64
	other := client6
	other[7] ^= 1 // another /64
	if to(same, 1001) != a || to(client6, 1002) != a {
		t.Fatal("a client of the same /64 moved")
	}
	if to(other, 1003) == a {
		t.Fatal("a client of another /64 followed the template")
	}
}

// hotPaths6 are the IPv6 cases of TestEngineAllocs and BenchmarkEngine: an established flow
// for each method and a NAT reply, beside IPv4's.
func hotPaths6() []hotPath {
	var paths []hotPath
	for _, method := range []string{"dr", "nat", "tun"} {
		paths = append(paths, hotPath{name: "ipv6/" + method + "/established", method: method,
			setup: func(tb testing.TB, e *Engine) func(int) {
				e.Handle(withVnet(frame6(tb, tcp6(client6, vip6, 40000, 80, 0x02)), false), 0)
				ack := withVnet(frame6(tb, tcp6(client6, vip6, 40000, 80, 0x10)), false)
				work := make([]byte, len(ack))
				return func(int) { copy(work, ack); e.Handle(work, 0) }
			},
			moved: func(e *Engine) uint64 { return e.stats.Forwarded.Load() }})
	}
	paths = append(paths,
		hotPath{name: "ipv6/nat/reply", method: "nat",
			setup: func(tb testing.TB, e *Engine) func(int) {
				e.Handle(withVnet(frame6(tb, tcp6(client6, vip6, 40000, 80, 0x02)), false), 0)
				rep := withVnet(frame6(tb, tcp6(real6a, client6, 80, 40000, 0x10)), false)
				work := make([]byte, len(rep))
				return func(int) { copy(work, rep); e.Handle(work, 0) }
			},
			moved: func(e *Engine) uint64 { return e.stats.Replies.Load() }},
		hotPath{name: "ipv6/ns", method: "dr",
			setup: func(tb testing.TB, e *Engine) func(int) {
				ns := withVnet(nsFrame(tb, vip6), false)
				work := make([]byte, len(ns))
				return func(int) { copy(work, ns); e.Handle(work, 0) }
			},
			moved: func(e *Engine) uint64 { return e.stats.ARPReplies.Load() }},
	)
	return paths
}

// TestEngine6NoReal answers a SYN to an IPv6 service without an available real with ICMPv6
// port unreachable from the VIP, as IPVS's ip_vs_leave.
func TestEngine6NoReal(t *testing.T) {
	cfg, err := config.Parse("t.toml", []byte(`[director]
interfaces = ["eth0"]
[[service]]
vip = "2001:2:0:10::10"
port = 80
[[service.real]]
address = "2001:2:0:10::3"
weight = 0
`))
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEngine(t, cfg, 1<<10)
	f := e.one(t, withVnet(frame6(t, tcp6(client6, vip6, 40000, 80, 0x02)), false))[packet.VnetHdrLen:]
	var p packet.Packet
	if packet.ParseL3(f, &p) != packet.ClassIPv6 || packet.ParseL4(f, &p) != packet.FaultNone ||
		p.ICMPType != packet.ICMPv6DestUnreachable || p.ICMPCode != packet.ICMPv6CodePortUnreachable || p.Src6 != vip6 || p.Dst6 != client6 {
		t.Fatalf("unreachable: %+v", p)
	}
	l4Sum6(t, f[14:])
	if e.stats.Drops[DropNoReal].Load() != 1 {
		t.Fatalf("drops %v", e.dropSummary())
	}
}

const syncSrc6 = `
[director]
interfaces = ["eth0"]
workers = 1
[[service]]
vip = "2001:2:0:10::10"
protocol = "tcp"
port = 80
scheduler = "rr"
forward = "nat"
persistence_timeout = "300s"
  [[service.real]]
  address = "2001:2:0:10::3"
  port = 8080
  [[service.real]]
  address = "2001:2:0:10::4"
  port = 8080
`

// TestSync6MasterToBackup: an IPv6 connection and its template leave the master as IPv6
// records (lvssync's v1 IPv6 form) and a backup installs them: the client's next packet goes
// to the same real, translated.
func TestSync6MasterToBackup(t *testing.T) {
	a := newTestPlane(t, syncSrc6)
	out := lvssync.NewRing(64)
	a.e.SetSync(out, nil, 3, 50)
	first := a.send(withVnet(frame6(t, tcp6(client6, vip6, 1000, 80, packet.TCPSYN)), false))
	a.send(withVnet(frame6(t, tcp6(client6, vip6, 1000, 80, packet.TCPACK)), false))
	recs := drainAll(out)
	if len(recs) != 2 || !recs[0].Template() || recs[1].Template() {
		t.Fatalf("want template then connection, got %+v", recs)
	}
	c := recs[1]
	if !c.Client.Is6() || c.Client.As16() != client6 || c.VIP.As16() != vip6 || !c.Real.Is6() || c.DPort != 8080 {
		t.Fatalf("connection record %+v", c)
	}
	// The wire takes them (three addresses of one family).
	bld := lvssync.NewBuilder(1500, 1, false)
	for i := range recs {
		if !bld.Add(&recs[i]) {
			t.Fatalf("the sync message refused %+v", recs[i])
		}
	}
	b := newTestPlane(t, syncSrc6)
	in := lvssync.NewRing(64)
	b.e.SetSync(nil, in, 3, 50)
	for i := range recs {
		in.Put(&recs[i])
	}
	b.e.DrainSync()
	if st := b.e.SyncStats(); st.Installed.Load() != 2 {
		t.Fatalf("installed %d (no service %d, no real %d)", st.Installed.Load(), st.NoService.Load(), st.NoReal.Load())
	}
	if got := b.send(withVnet(frame6(t, tcp6(client6, vip6, 1000, 80, packet.TCPACK)), false)); got != first {
		t.Fatalf("backup sent the connection to %d, master to %d", got, first)
	}
}

// TestEngine6DeadRealReset: with dead_real = "reset", a segment of a connection whose real
// failed is answered with an IPv6 RST from the VIP.
func TestEngine6DeadRealReset(t *testing.T) {
	const src = `
[director]
interfaces = ["eth0"]
[[service]]
vip = "2001:2:0:10::10"
port = 80
scheduler = "rr"
dead_real = "reset"
  [[service.real]]
  address = "2001:2:0:10::3"
  [[service.real]]
  address = "2001:2:0:10::4"
`
	tp := newTestPlane(t, src)
	if got := tp.send(withVnet(frame6(t, tcp6(client6, vip6, 1000, 80, packet.TCPSYN)), false)); got != 3 {
		t.Fatalf("SYN to ::%d", got)
	}
	tp.reg.health[healthKey(RealRef{VIP: netip.AddrFrom16(vip6), Protocol: config.TCP, Port: 80,
		Addr: netip.AddrFrom16(real6a), RPort: 80})] = Health{Up: false, Reason: "test"}
	tp.load(src)
	tp.e.Reset()
	tp.e.Handle(withVnet(frame6(t, tcp6(client6, vip6, 1000, 80, packet.TCPACK)), false), 0)
	if len(tp.e.out) != 1 {
		t.Fatalf("%d frames out, want the RST", len(tp.e.out))
	}
	f := tp.e.out[0].Frame[packet.VnetHdrLen:]
	var p packet.Packet
	if packet.ParseL3(f, &p) != packet.ClassIPv6 || packet.ParseL4(f, &p) != packet.FaultNone ||
		p.Proto != packet.ProtoTCP || p.TCPFlags != packet.TCPRST || p.Src6 != vip6 || p.Dst6 != client6 ||
		p.SrcPort != 80 || p.DstPort != 1000 || binary.BigEndian.Uint32(f[14+40+4:]) != 2000 {
		t.Fatalf("RST %+v", p)
	}
	l4Sum6(t, f[14:])
}

// TestEngine6TUNSegmentsGSO: a TCP-over-IPv6 GSO super-frame to a 6in6 real leaves as
// segments of gso_size, each in its own outer IPv6 header, with sequence numbers, lengths and
// checksums of their own and FIN on the last only.
func TestEngine6TUNSegmentsGSO(t *testing.T) {
	e := engine6(t, "tun", 80)
	e.one(t, withVnet(frame6(t, tcp6(client6, vip6, 40000, 80, 0x02)), false))
	e.Reset()
	const payload, mss = 5000, 1400
	s := tcp6(client6, vip6, 40000, 80, 0x10|packet.TCPFIN)
	s.payload = payload
	in := withVnet(frame6(t, s), false)
	setPartial6(in)
	vh := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.VnetGSOTCPv6, GSOSize: mss, HdrLen: 74, CsumStart: 54, CsumOffset: packet.TCPCsumOff}
	vh.Encode(in)
	orig := append([]byte(nil), in[packet.VnetHdrLen+14+60:]...)
	e.Handle(in, 0)
	n := (payload + mss - 1) / mss
	if len(e.out) != n {
		t.Fatalf("%d segments, want %d (drops %v)", len(e.out), n, e.dropSummary())
	}
	var data []byte
	for i, o := range e.out {
		f := o.Frame[packet.VnetHdrLen:]
		outer := f[14:]
		if outer[6] != packet.ProtoIPv6 || [16]byte(outer[24:40]) != real6a || int(binary.BigEndian.Uint16(outer[4:6])) != len(outer)-40 {
			t.Fatalf("segment %d outer %x", i, outer[:40])
		}
		ip := outer[40:]
		want := min(mss, payload-i*mss)
		if int(binary.BigEndian.Uint16(ip[4:6])) != 20+want || len(ip) != 60+want {
			t.Fatalf("segment %d: payload length %d, want %d", i, binary.BigEndian.Uint16(ip[4:6]), 20+want)
		}
		l4Sum6(t, ip)
		tcp := ip[40:]
		if binary.BigEndian.Uint32(tcp[4:]) != 1000+uint32(i*mss) || (tcp[13]&packet.TCPFIN != 0) != (i == n-1) {
			t.Fatalf("segment %d: seq %d flags %#x", i, binary.BigEndian.Uint32(tcp[4:]), tcp[13])
		}
		data = append(data, tcp[20:]...)
	}
	if string(data) != string(orig) {
		t.Fatal("segments do not carry the super-frame's payload")
	}
}

// TestEngine6TUN4in6Fragments: an IPv4 datagram without DF too big for a 4in6 tunnel is
// fragmented before encapsulation, each fragment in its own outer IPv6 packet.
func TestEngine6TUN4in6Fragments(t *testing.T) {
	cfg, err := config.Parse("t.toml", []byte(`[director]
interfaces = ["eth0"]
[[service]]
vip = "203.0.113.10"
protocol = "udp"
port = 53
forward = "tun"
[[service.real]]
address = "2001:2:0:10::3"
`))
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEngine(t, cfg, 1<<10)
	for _, svc := range e.snap.byID {
		if svc != nil {
			svc.Reals[0].MTU = 1280
		}
	}
	s := frametest.DefaultSpec(layers.IPProtocolUDP, 3000)
	s.DPort, s.DF = 53, false
	in := frametest.Build(t, s)
	e.Handle(withVnet(in, false), 0)
	e.Publish()
	const step = (1280 - 40 - 20) &^ 7
	n := (3008 + step - 1) / step
	if len(e.out) != n {
		t.Fatalf("%d frames out, want %d fragments (drops %v)", len(e.out), n, e.dropSummary())
	}
	var data []byte
	for i, o := range e.out {
		outer := o.Frame[packet.VnetHdrLen+14:]
		ip := outer[40:]
		if outer[6] != packet.ProtoIPIP || [16]byte(outer[24:40]) != real6a || len(outer) > 1280 ||
			packet.Checksum(ip[:20], 0) != 0xffff || int(binary.BigEndian.Uint16(ip[6:8])&0x1fff)*8 != len(data) ||
			(binary.BigEndian.Uint16(ip[6:8])&packet.IPFlagMF != 0) != (i < n-1) {
			t.Fatalf("fragment %d: outer %x inner %x", i, outer[:8], ip[:20])
		}
		data = append(data, ip[20:binary.BigEndian.Uint16(ip[2:4])]...)
	}
	if string(data) != string(in[14+20:]) {
		t.Fatal("fragments do not carry the datagram")
	}
}

// TestEngine6MSSClamp: an IPv6 SYN through a service with mss_clamp leaves with its MSS option
// lowered and its checksum over the IPv6 pseudo-header still right; a SYN whose MSS is already
// below the clamp is left alone.
func TestEngine6MSSClamp(t *testing.T) {
	cfg := engineConfig(t, "dr", 80)
	n := 0
	for i := range cfg.Services {
		if cfg.Services[i].VIP == netip.AddrFrom16(vip6) && cfg.Services[i].Protocol == config.TCP {
			cfg.Services[i].MSSClamp = 1200
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d IPv6 TCP services in the test config", n)
	}
	e := newTestEngine(t, cfg, 1<<12)
	for _, tc := range []struct {
		sport   uint16
		mss     uint16
		want    uint16
		clamped uint64
	}{{40000, 1440, 1200, 1}, {40001, 1000, 1000, 1}} {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(frametest.MACA[:]), DstMAC: net.HardwareAddr(frametest.MACB[:]), EthernetType: layers.EthernetTypeIPv6}
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: net.IP(client6[:]), DstIP: net.IP(vip6[:])}
		tcp := frametest.TCP(tc.sport, 80, 0x02, ip)
		tcp.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(tc.mss >> 8), byte(tc.mss)}}}
		f := e.one(t, withVnet(frametest.Serialize(t, eth, ip, tcp), false))[packet.VnetHdrLen:]
		out := f[14:]
		l4Sum6(t, out)
		th := out[40:]
		if th[20] != 2 || th[21] != 4 || binary.BigEndian.Uint16(th[22:]) != tc.want {
			t.Fatalf("MSS %d: option % x, want MSS %d", tc.mss, th[20:24], tc.want)
		}
		if got := e.stats.MSSClamped.Load(); got != tc.clamped {
			t.Fatalf("MSS %d: mss_clamped %d, want %d", tc.mss, got, tc.clamped)
		}
	}
}
