package engine

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/internal/frametest"
	"github.com/uvs-project/uvs/forward/packet"
)

// testPlane is an engine with the registry that built its snapshot, so tests can reload.
type testPlane struct {
	t   testing.TB
	reg *Registry
	e   *Engine
	gen uint64
}

func newTestPlane(t testing.TB, src string) *testPlane {
	t.Helper()
	ct, err := conntrack.New(conntrack.Config{Capacity: 4096})
	if err != nil {
		t.Fatal(err)
	}
	tp := &testPlane{t: t, reg: NewRegistry(1), e: NewEngine(0, ct, 4096, 64<<10, 1)}
	tp.load(src)
	tp.e.Begin(tp.e.snap, 1e9)
	return tp
}

func (tp *testPlane) load(src string) {
	tp.t.Helper()
	cfg, err := config.Parse("test.toml", []byte(src))
	if err != nil {
		tp.t.Fatal(err)
	}
	tp.gen++
	s, err := tp.reg.Build(cfg, []Iface{{Name: "eth0", Index: 2, MAC: ifaceMAC, MTU: 1500}}, testEgress, tp.gen)
	if err != nil {
		tp.t.Fatal(err)
	}
	tp.reg.Commit(s)
	tp.e.snap = s
}

// send hands one frame to the engine and returns the real it went to (last octet of the
// destination MAC, which testEgress derives from the real's address), or 0 if none.
func (tp *testPlane) send(buf []byte) byte {
	e := tp.e
	e.Reset()
	e.Handle(buf, 0)
	if len(e.out) == 0 {
		return 0
	}
	return e.out[0].Frame[packet.VnetHdrLen+5]
}

func (tp *testPlane) at(ms int64) { tp.e.Begin(tp.e.snap, 1e9+ms*1e6) }

func udpFrame(t testing.TB, src [4]byte, sport, dport uint16) []byte {
	s := frametest.DefaultSpec(layers.IPProtocolUDP, 16)
	s.Src, s.SPort, s.DPort = src, sport, dport
	return withVnet(frametest.Build(t, s), false)
}

func tcpFrom(t testing.TB, src [4]byte, sport, dport uint16, flags uint8) []byte {
	s := frametest.DefaultSpec(layers.IPProtocolTCP, 0)
	s.Src, s.SPort, s.DPort, s.Flags = src, sport, dport, flags
	return withVnet(frametest.Build(t, s), false)
}

const policyConfig = `
[director]
interfaces = ["eth0"]
workers = 1
[[service]]
vip = "203.0.113.10"
protocol = "tcp"
ports = [80, 443]
scheduler = "rr"
persistence_timeout = "%ds"
persistence_netmask = "255.255.255.0"
%s
  [[service.real]]
  address = "10.1.2.3"
  weight = %d
  [[service.real]]
  address = "10.1.2.4"
[[service]]
vip = "203.0.113.10"
protocol = "udp"
port = 53
scheduler = "rr"
one_packet = true
  [[service.real]]
  address = "10.1.2.3"
  [[service.real]]
  address = "10.1.2.4"
`

func TestPersistenceAcrossPortsAndExpiry(t *testing.T) {
	tp := newTestPlane(t, fmt.Sprintf(policyConfig, 60, "", 1))
	first := tp.send(tcpFrom(t, frametest.Client, 1000, 80, 0x02))
	if first == 0 {
		t.Fatal("not forwarded")
	}
	for i := 0; i < 20; i++ {
		c := frametest.Client
		c[3] = byte(10 + i) // same /24
		port := uint16(80)
		if i%2 == 1 {
			port = 443
		}
		if got := tp.send(tcpFrom(t, c, uint16(2000+i), port, 0x02)); got != first {
			t.Fatalf("connection %d (%v:%d -> :%d) went to .%d, want .%d", i, c, 2000+i, port, got, first)
		}
	}
	// After the persistence timeout (and the connections' own timeouts) scheduling starts
	// afresh: rr moves on to the other real.
	// Templates outlive their connections, so sweep twice, a timeout apart.
	for _, at := range []int64{int64(conntrack.MaxTimeout) + 1, 2*int64(conntrack.MaxTimeout) + 2} {
		tp.at(at)
		for i := 0; i < 1000 && tp.e.ct.Len() > 0; i++ {
			tp.e.Expire()
		}
	}
	if n := tp.e.ct.Len(); n != 0 {
		t.Fatalf("%d entries left after expiry", n)
	}
	if got := tp.send(tcpFrom(t, frametest.Client, 5000, 80, 0x02)); got == first {
		t.Fatalf("after expiry still .%d", got)
	}
}

func TestQuiescentTemplate(t *testing.T) {
	for _, expire := range []bool{false, true} {
		t.Run(fmt.Sprintf("expire_quiescent_template=%v", expire), func(t *testing.T) {
			extra := ""
			if expire {
				extra = "expire_quiescent_template = true"
			}
			tp := newTestPlane(t, fmt.Sprintf(policyConfig, 300, extra, 1))
			first := tp.send(tcpFrom(t, frametest.Client, 1000, 80, 0x02))
			if first != 3 {
				t.Fatalf("first connection to .%d, want .3 (rr starts at the first real)", first)
			}
			tp.load(fmt.Sprintf(policyConfig, 300, extra, 0)) // real .3 quiesced
			got := tp.send(tcpFrom(t, frametest.Client, 1001, 80, 0x02))
			if want := byte(3); expire {
				if got == want {
					t.Fatal("template kept sending to the quiescent real")
				}
			} else if got != want {
				t.Fatalf("template went to .%d, want the quiescent .3 (IPVS default)", got)
			}
			// The established connection continues either way.
			if got := tp.send(tcpFrom(t, frametest.Client, 1000, 80, 0x10)); got != 3 {
				t.Fatalf("established connection moved to .%d", got)
			}
		})
	}
}

func TestOnePacketScheduling(t *testing.T) {
	tp := newTestPlane(t, fmt.Sprintf(policyConfig, 60, "", 1))
	a := tp.send(udpFrame(t, frametest.Client, 7000, 53))
	b := tp.send(udpFrame(t, frametest.Client, 7000, 53))
	if a == 0 || b == 0 || a == b {
		t.Fatalf("one-packet datagrams of one flow went to .%d and .%d, want both reals", a, b)
	}
}

func TestNoRealSendsPortUnreachable(t *testing.T) {
	src := `
[director]
interfaces = ["eth0"]
[[service]]
vip = "203.0.113.10"
protocol = "tcp"
port = 80
  [[service.real]]
  address = "10.1.2.3"
  weight = 0
`
	tp := newTestPlane(t, src)
	tp.e.Reset()
	tp.e.Handle(tcpFrom(t, frametest.Client, 1000, 80, 0x02), 0)
	if len(tp.e.out) != 1 {
		t.Fatalf("%d frames out, want an ICMP error", len(tp.e.out))
	}
	f := tp.e.out[0].Frame[packet.VnetHdrLen:]
	if f[23] != packet.ProtoICMP || f[34] != packet.ICMPDestUnreachable || f[35] != packet.ICMPCodePortUnreachable {
		t.Fatalf("not a port unreachable: proto %d type %d code %d", f[23], f[34], f[35])
	}
	if [4]byte(f[26:30]) != frametest.VIP || [4]byte(f[30:34]) != frametest.Client || [6]byte(f[0:6]) != frametest.MACA {
		t.Fatalf("ICMP from %v to %v via %x", f[26:30], f[30:34], f[0:6])
	}
	// Rate limited: a flood gets at most the burst.
	for i := 0; i < 1000; i++ {
		tp.e.Reset()
		tp.e.Handle(tcpFrom(t, frametest.Client, uint16(2000+i), 80, 0x02), 0)
	}
	if got := tp.e.stats.ICMPSent.Load(); got > icmpBurst+1 {
		t.Fatalf("%d ICMP errors sent, limit %d", got, icmpBurst)
	}
}

func TestDeadRealPolicies(t *testing.T) {
	const src = `
[director]
interfaces = ["eth0"]
[[service]]
vip = "203.0.113.10"
protocol = "%s"
port = 80
scheduler = "rr"
dead_real = "%s"
  [[service.real]]
  address = "10.1.2.3"
  [[service.real]]
  address = "10.1.2.4"
`
	down := func(tp *testPlane, proto config.Protocol) {
		tp.reg.health[healthKey(RealRef{VIP: netip.AddrFrom4(frametest.VIP), Protocol: proto, Port: 80,
			Addr: netip.MustParseAddr("10.1.2.3"), RPort: 80})] = Health{Up: false, Reason: "test"}
	}
	t.Run("udp expire reschedules within one packet", func(t *testing.T) {
		cfg := fmt.Sprintf(src, "udp", "expire")
		tp := newTestPlane(t, cfg)
		if got := tp.send(udpFrame(t, frametest.Client, 7000, 80)); got != 3 {
			t.Fatalf("first datagram to .%d", got)
		}
		down(tp, config.UDP)
		tp.load(cfg)
		if got := tp.send(udpFrame(t, frametest.Client, 7000, 80)); got != 4 {
			t.Fatalf("after the real failed: .%d, want .4", got)
		}
	})
	t.Run("tcp keep continues", func(t *testing.T) {
		cfg := fmt.Sprintf(src, "tcp", "keep")
		tp := newTestPlane(t, cfg)
		tp.send(tcpFrom(t, frametest.Client, 1000, 80, 0x02))
		down(tp, config.TCP)
		tp.load(cfg)
		if got := tp.send(tcpFrom(t, frametest.Client, 1000, 80, 0x10)); got != 3 {
			t.Fatalf("kept connection went to .%d", got)
		}
		if got := tp.send(tcpFrom(t, frametest.Client, 1001, 80, 0x02)); got != 4 {
			t.Fatalf("new connection went to .%d, want the healthy .4", got)
		}
	})
	t.Run("tcp reset", func(t *testing.T) {
		cfg := fmt.Sprintf(src, "tcp", "reset")
		tp := newTestPlane(t, cfg)
		tp.send(tcpFrom(t, frametest.Client, 1000, 80, 0x02))
		down(tp, config.TCP)
		tp.load(cfg)
		tp.e.Reset()
		tp.e.Handle(tcpFrom(t, frametest.Client, 1000, 80, 0x10), 0)
		if len(tp.e.out) != 1 {
			t.Fatalf("%d frames, want a RST", len(tp.e.out))
		}
		f := tp.e.out[0].Frame[packet.VnetHdrLen:]
		if f[23] != packet.ProtoTCP || f[47]&packet.TCPRST == 0 || [4]byte(f[26:30]) != frametest.VIP {
			t.Fatalf("not a RST from the VIP: %x", f[:60])
		}
		if binary.BigEndian.Uint16(f[34:]) != 80 || binary.BigEndian.Uint16(f[36:]) != 1000 {
			t.Fatal("RST ports")
		}
		frametest.OracleChecks(t, f, 14, false)
	})
	t.Run("removed real drains under keep", func(t *testing.T) {
		tp := newTestPlane(t, fmt.Sprintf(src, "tcp", "keep"))
		tp.send(tcpFrom(t, frametest.Client, 1000, 80, 0x02)) // to .3
		tp.load(`
[director]
interfaces = ["eth0"]
[[service]]
vip = "203.0.113.10"
protocol = "tcp"
port = 80
scheduler = "rr"
  [[service.real]]
  address = "10.1.2.4"
`)
		if got := tp.send(tcpFrom(t, frametest.Client, 1000, 80, 0x10)); got != 3 {
			t.Fatalf("draining connection went to .%d", got)
		}
		for i := 0; i < 4; i++ {
			if got := tp.send(tcpFrom(t, frametest.Client, uint16(2000+i), 80, 0x02)); got != 4 {
				t.Fatalf("new connection to removed real .%d", got)
			}
		}
	})
}
