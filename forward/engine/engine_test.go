package engine

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"syscall"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/internal/frametest"
	"github.com/uvs-project/uvs/forward/packet"
)

// Engine tests drive the per-packet logic with frames in memory: no sockets, no root.

var (
	ifaceMAC = [6]byte{0x02, 0xd1, 0, 0, 0, 0x01}
	realMAC  = [6]byte{0x02, 0xee, 0, 0, 0, 0x01}
)

func engineConfig(t testing.TB, forward string, realPort int) *config.Config {
	t.Helper()
	src := fmt.Sprintf(`
[director]
interfaces = ["eth0"]
workers = 1

[[service]]
vip = "203.0.113.10"
protocol = "tcp"
port = 80
scheduler = "rr"
forward = %q
  [[service.real]]
  address = "10.1.2.3"
  port = %d
  [[service.real]]
  address = "10.1.2.4"
  port = %d

[[service]]
vip = "203.0.113.10"
protocol = "udp"
port = 53
scheduler = "rr"
forward = %q
  [[service.real]]
  address = "10.1.2.3"
  port = 53

[[service]]
vip = "2001:2:0:10::10"
protocol = "tcp"
port = 80
scheduler = "rr"
forward = %q
  [[service.real]]
  address = "2001:2:0:10::3"
  port = %d
  [[service.real]]
  address = "2001:2:0:10::4"
  port = %d
`, forward, realPort, realPort, forward, forward, realPort, realPort)
	cfg, err := config.Parse("test.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func testEgress(addr [16]byte) Egress {
	m := realMAC
	m[5] = addr[15]
	return Egress{TxIf: 0, SrcMAC: ifaceMAC, DstMAC: m, SrcIP: [4]byte{10, 1, 2, 1}, SrcIP6: testSrc6, MTU: 1500}
}

func newTestEngine(t testing.TB, cfg *config.Config, capacity int) *Engine {
	t.Helper()
	reg := NewRegistry(1)
	s, err := reg.Build(cfg, []Iface{{Name: "eth0", Index: 2, MAC: ifaceMAC, MTU: 1500}}, testEgress, 1)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := conntrack.New(conntrack.Config{Capacity: capacity})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(0, ct, 4096, 64<<10, 1)
	e.Begin(s, 1e9)
	return e
}

// withVnet prefixes a frame with a virtio_net_hdr; partial frames get NEEDS_CSUM.
func withVnet(f []byte, partial bool) []byte {
	b := make([]byte, packet.VnetHdrLen+len(f))
	copy(b[packet.VnetHdrLen:], f)
	if partial {
		l4 := 14 + int(f[14]&0xf)*4
		h := packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: uint16(l4), CsumOffset: packet.TCPCsumOff}
		if f[14+9] == packet.ProtoUDP {
			h.CsumOffset = packet.UDPCsumOff
		}
		h.Encode(b)
	}
	return b
}

func tcpFrame(t testing.TB, sport uint16, flags uint8, partial bool) []byte {
	s := frametest.DefaultSpec(layers.IPProtocolTCP, 32)
	s.SPort, s.Flags, s.Partial = sport, flags, partial
	return withVnet(frametest.Build(t, s), partial)
}

func (e *Engine) one(t testing.TB, buf []byte) []byte {
	t.Helper()
	e.Reset()
	e.Handle(buf, 0)
	e.Publish()
	if len(e.out) != 1 {
		t.Fatalf("got %d frames out, want 1 (drops %v)", len(e.out), e.dropSummary())
	}
	return e.out[0].Frame
}

func (e *Engine) dropSummary() map[string]uint64 {
	e.Publish()
	m := map[string]uint64{}
	for r := packet.Fault(1); r < packet.NumFaults; r++ {
		if v := e.stats.Faults[r].Load(); v != 0 {
			m[r.String()] = v
		}
	}
	for r := Drop(1); r < numDrops; r++ {
		if v := e.stats.Drops[r].Load(); v != 0 {
			m[r.String()] = v
		}
	}
	return m
}

func TestEngineDR(t *testing.T) {
	e := newTestEngine(t, engineConfig(t, "dr", 80), 1024)
	in := tcpFrame(t, 40000, 0x02, false)
	orig := append([]byte(nil), in...)
	out := e.one(t, in)
	frame := out[packet.VnetHdrLen:]
	if [6]byte(frame[0:6]) != [6]byte{0x02, 0xee, 0, 0, 0, 3} || [6]byte(frame[6:12]) != ifaceMAC {
		t.Fatalf("MACs %x %x", frame[0:6], frame[6:12])
	}
	if string(frame[12:]) != string(orig[packet.VnetHdrLen+12:]) {
		t.Fatal("DR changed the IP packet")
	}
	// The next packet of the flow goes to the same real; a new flow to the other (rr).
	out = e.one(t, tcpFrame(t, 40000, 0x10, false))
	if out[packet.VnetHdrLen+5] != 3 {
		t.Fatalf("established packet went to .%d", out[packet.VnetHdrLen+5])
	}
	out = e.one(t, tcpFrame(t, 40001, 0x02, false))
	if out[packet.VnetHdrLen+5] != 4 {
		t.Fatalf("second flow went to .%d, want .4", out[packet.VnetHdrLen+5])
	}
	svc := e.snap.lookupService(conntrack.Map4(frametest.VIP), packet.ProtoTCP, 80)
	if got := svc.Loads[0].Inactive() + svc.Loads[0].Active() + svc.Loads[1].Inactive() + svc.Loads[1].Active(); got != 2 {
		t.Fatalf("loads count %d connections, want 2", got)
	}
}

func TestEngineNATBothChecksumPaths(t *testing.T) {
	for _, partial := range []bool{false, true} {
		t.Run(fmt.Sprintf("partial=%v", partial), func(t *testing.T) {
			e := newTestEngine(t, engineConfig(t, "nat", 8080), 1024)
			out := e.one(t, tcpFrame(t, 40000, 0x02, partial))
			frame := out[packet.VnetHdrLen:]
			if [4]byte(frame[30:34]) != [4]byte{10, 1, 2, 3} || binary.BigEndian.Uint16(frame[36:]) != 8080 {
				t.Fatalf("NAT request: dst %v:%d", frame[30:34], binary.BigEndian.Uint16(frame[36:]))
			}
			if frame[22] != 63 {
				t.Fatalf("TTL %d, want 63", frame[22])
			}
			var vh packet.VnetHdr
			vh.Decode(out)
			if partial {
				if !vh.Partial() || !packet.FinishChecksum(frame, &vh) {
					t.Fatal("partial state lost")
				}
			}
			frametest.OracleChecks(t, frame, 14, false)

			// The reply from 10.1.2.3:8080 goes back as VIP:80 to the client's MAC.
			s := frametest.DefaultSpec(layers.IPProtocolTCP, 32)
			s.Src, s.Dst, s.SPort, s.DPort, s.Flags, s.Partial = [4]byte{10, 1, 2, 3}, frametest.Client, 8080, 40000, 0x12, partial
			rep := frametest.Build(t, s)
			copy(rep[0:6], ifaceMAC[:])
			copy(rep[6:12], realMAC[:])
			out = e.one(t, withVnet(rep, partial))
			frame = out[packet.VnetHdrLen:]
			if [4]byte(frame[26:30]) != frametest.VIP || binary.BigEndian.Uint16(frame[34:]) != 80 {
				t.Fatalf("NAT reply: src %v:%d", frame[26:30], binary.BigEndian.Uint16(frame[34:]))
			}
			if [6]byte(frame[0:6]) != frametest.MACA || [6]byte(frame[6:12]) != ifaceMAC {
				t.Fatalf("reply MACs %x %x, want client hop %x", frame[0:6], frame[6:12], frametest.MACA)
			}
			vh.Decode(out)
			if partial && !packet.FinishChecksum(frame, &vh) {
				t.Fatal("partial state lost on reply")
			}
			frametest.OracleChecks(t, frame, 14, false)
			if e.stats.Replies.Load() != 1 {
				t.Fatalf("replies %d", e.stats.Replies.Load())
			}
		})
	}
}

func TestEngineARP(t *testing.T) {
	e := newTestEngine(t, engineConfig(t, "dr", 80), 1024)
	req := make([]byte, 64)
	n := packet.BuildARP(req, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, &packet.ARP{Op: packet.ARPRequest, SenderMAC: frametest.MACA, SenderIP: frametest.Client, TargetIP: frametest.VIP})
	out := e.one(t, withVnet(req[:n], false))
	var p packet.Packet
	var a packet.ARP
	if packet.ParseL3(out[packet.VnetHdrLen:], &p) != packet.ClassARP || !packet.ParseARP(out[packet.VnetHdrLen:], &p, &a) {
		t.Fatal("reply is not ARP")
	}
	if a.Op != packet.ARPReply || a.SenderIP != frametest.VIP || a.SenderMAC != ifaceMAC || a.TargetMAC != frametest.MACA {
		t.Fatalf("reply %+v", a)
	}
	// A request for another address is not ours.
	n = packet.BuildARP(req, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, &packet.ARP{Op: packet.ARPRequest, SenderMAC: frametest.MACA, SenderIP: frametest.Client, TargetIP: [4]byte{203, 0, 113, 11}})
	e.Reset()
	e.Handle(withVnet(req[:n], false), 0)
	if len(e.out) != 0 {
		t.Fatal("answered ARP for a non-VIP")
	}
}

func TestEngineDrops(t *testing.T) {
	tests := []struct {
		name  string
		frame func(t *testing.T) []byte
		want  string
	}{
		{"ack without connection", func(t *testing.T) []byte { return tcpFrame(t, 40000, 0x10, false) }, "tcp_no_conn"},
		{"port without service", func(t *testing.T) []byte {
			s := frametest.DefaultSpec(layers.IPProtocolTCP, 8)
			s.DPort = 81
			return withVnet(frametest.Build(t, s), false)
		}, "no_service"},
		{"ip options", func(t *testing.T) []byte {
			s := frametest.DefaultSpec(layers.IPProtocolTCP, 8)
			s.Options = true
			return withVnet(frametest.Build(t, s), false)
		}, "ip_options"},
		{"truncated", func(t *testing.T) []byte { return tcpFrame(t, 40000, 0x02, false)[:packet.VnetHdrLen+14+20+10] }, "truncated_ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEngine(t, engineConfig(t, "dr", 80), 1024)
			e.Handle(tt.frame(t), 0)
			if len(e.out) != 0 {
				t.Fatal("frame was forwarded")
			}
			if got := e.dropSummary(); got[tt.want] != 1 {
				t.Fatalf("drops %v, want %s", got, tt.want)
			}
		})
	}
}

func TestEngineLeavesOtherTrafficToKernel(t *testing.T) {
	e := newTestEngine(t, engineConfig(t, "nat", 8080), 1024)
	s := frametest.DefaultSpec(layers.IPProtocolTCP, 8)
	s.Dst = [4]byte{203, 0, 113, 99}
	e.Handle(withVnet(frametest.Build(t, s), false), 0)
	e.Publish()
	if len(e.out) != 0 || e.stats.Ignored.Load() != 1 || len(e.dropSummary()) != 0 {
		t.Fatalf("out %d ignored %d drops %v", len(e.out), e.stats.Ignored.Load(), e.dropSummary())
	}
}

func TestEngineExpiryReleasesLoad(t *testing.T) {
	e := newTestEngine(t, engineConfig(t, "dr", 80), 1024)
	e.one(t, tcpFrame(t, 40000, 0x02, false))
	svc := e.snap.lookupService(conntrack.Map4(frametest.VIP), packet.ProtoTCP, 80)
	if svc.Loads[0].Inactive()+svc.Loads[0].Active() != 1 {
		t.Fatal("connection not counted")
	}
	e.Begin(e.snap, 1e9+int64(conntrack.MaxTimeout)*1e6)
	for i := 0; i < 100 && e.ct.Len() > 0; i++ {
		e.Expire()
	}
	if e.ct.Len() != 0 || svc.Loads[0].Inactive()+svc.Loads[0].Active() != 0 {
		t.Fatalf("after expiry: %d entries, load %d/%d", e.ct.Len(), svc.Loads[0].Active(), svc.Loads[0].Inactive())
	}
}

// hotPath is one per-packet path of the engine, as TestEngineAllocs and BenchmarkEngine drive
// it: setup prepares the engine, step handles one frame (or, for expiry, one block's sweep),
// and moved reports the counter that must advance by one per step.
type hotPath struct {
	name   string
	method string
	setup  func(tb testing.TB, e *Engine) func(i int)
	moved  func(e *Engine) uint64
}

// natReply is a reply from the NAT real 10.1.2.3:80 to the client's port sport.
func natReply(tb testing.TB, sport uint16) []byte {
	s := frametest.DefaultSpec(layers.IPProtocolTCP, 32)
	s.Src, s.Dst, s.SPort, s.DPort, s.Flags = [4]byte{10, 1, 2, 3}, frametest.Client, 80, sport, 0x10
	rep := frametest.Build(tb, s)
	copy(rep[0:6], ifaceMAC[:])
	copy(rep[6:12], realMAC[:])
	return withVnet(rep, false)
}

func hotPaths() []hotPath {
	var paths []hotPath
	for _, method := range []string{"dr", "nat", "tun"} {
		paths = append(paths,
			hotPath{name: method + "/established", method: method,
				setup: func(tb testing.TB, e *Engine) func(int) {
					e.Handle(tcpFrame(tb, 40000, 0x02, false), 0)
					ack := tcpFrame(tb, 40000, 0x10, false)
					work := make([]byte, len(ack))
					return func(int) { copy(work, ack); e.Handle(work, 0) }
				},
				moved: func(e *Engine) uint64 { return e.stats.Forwarded.Load() }},
			hotPath{name: method + "/new", method: method,
				setup: func(tb testing.TB, e *Engine) func(int) {
					syn := tcpFrame(tb, 40000, 0x02, false)
					work := make([]byte, len(syn))
					return func(i int) {
						copy(work, syn)
						binary.BigEndian.PutUint32(work[packet.VnetHdrLen+26:], uint32(0xc6120000)|uint32(i>>16))
						binary.BigEndian.PutUint16(work[packet.VnetHdrLen+34:], uint16(i))
						frametest.FixIP(work[packet.VnetHdrLen:], 14)
						e.Handle(work, 0)
					}
				},
				moved: func(e *Engine) uint64 { return e.stats.Forwarded.Load() }})
	}
	paths = append(paths,
		hotPath{name: "nat/reply", method: "nat",
			setup: func(tb testing.TB, e *Engine) func(int) {
				e.Handle(tcpFrame(tb, 40000, 0x02, false), 0)
				rep := natReply(tb, 40000)
				work := make([]byte, len(rep))
				return func(int) { copy(work, rep); e.Handle(work, 0) }
			},
			moved: func(e *Engine) uint64 { return e.stats.Replies.Load() }},
		hotPath{name: "arp", method: "dr",
			setup: func(tb testing.TB, e *Engine) func(int) {
				req := make([]byte, 64)
				n := packet.BuildARP(req, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, &packet.ARP{Op: packet.ARPRequest, SenderMAC: frametest.MACA, SenderIP: frametest.Client, TargetIP: frametest.VIP})
				frame := withVnet(req[:n], false)
				work := make([]byte, len(frame))
				return func(int) { copy(work, frame); e.Handle(work, 0) }
			},
			moved: func(e *Engine) uint64 { return e.stats.ARPReplies.Load() }},
		// One block's sweep that retires one connection: each step opens a connection, lets the
		// clock pass its SYN_RECV timeout and expires the previous one.
		hotPath{name: "expiry", method: "dr",
			setup: func(tb testing.TB, e *Engine) func(int) {
				syn := tcpFrame(tb, 40000, 0x02, false)
				work := make([]byte, len(syn))
				now := int64(1e9)
				return func(i int) {
					copy(work, syn)
					binary.BigEndian.PutUint16(work[packet.VnetHdrLen+34:], uint16(i))
					frametest.FixIP(work[packet.VnetHdrLen:], 14)
					now += 61e9
					e.Begin(e.snap, now)
					e.Handle(work, 0)
					e.Expire()
				}
			},
			moved: func(e *Engine) uint64 {
				var n uint64
				for _, s := range e.snap.byID {
					if s != nil {
						n += s.Stats[0].Conns.Load()
					}
				}
				return n - uint64(e.ct.Len()) // connections opened and already expired
			}},
	)
	return append(paths, hotPaths6()...)
}

// TestEngineAllocs fails on any allocation in the per-packet paths it names (new and
// established connections for DR, NAT and TUN, NAT replies, ARP, a sweep that expires), and
// checks that each step moved its counter, so a path that silently drops does not pass.
func TestEngineAllocs(t *testing.T) {
	for _, hp := range hotPaths() {
		t.Run(hp.name, func(t *testing.T) {
			e := newTestEngine(t, engineConfig(t, hp.method, 80), 1<<16)
			step := hp.setup(t, e)
			e.Publish()
			before := hp.moved(e)
			i := 0
			allocs := testing.AllocsPerRun(1000, func() {
				e.Reset()
				step(i)
				i++
			})
			if allocs != 0 {
				t.Errorf("%.1f allocations per step", allocs)
			}
			e.Expire() // publishes; the expiry path has swept already
			if got := hp.moved(e) - before; hp.name != "expiry" && got != uint64(i) || hp.name == "expiry" && got != uint64(i-1) {
				t.Errorf("counter moved %d in %d steps (drops %v)", got, i, e.dropSummary())
			}
		})
	}
}

// BenchmarkEngine measures the per-packet paths of TestEngineAllocs: parse, classification,
// connection lookup, scheduling (new flows), rewrite and queueing for TX; NAT replies; ARP; a
// sweep that expires a connection. Counters are published once per simulated block (as the
// worker does), and the benchmark fails unless the path's counter moved once per op.
func BenchmarkEngine(b *testing.B) {
	for _, hp := range hotPaths() {
		b.Run(hp.name, func(b *testing.B) {
			e := newTestEngine(b, engineConfig(b, hp.method, 80), max(b.N+1024, 1<<16))
			step := hp.setup(b, e)
			e.Publish()
			before := hp.moved(e)
			b.ReportAllocs()
			// On a shared machine wall time per op includes waiting for a CPU; the
			// benchmark also reports this thread's CPU time per op.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step(i)
				// A flush per block: when the batch or (TUN) the scratch is full.
				if len(e.out) == cap(e.out) || e.used+2048 > len(e.scratch) {
					e.Publish()
					e.Reset()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			e.Publish()
			if d := e.dropSummary(); len(d) != 0 {
				b.Fatalf("drops: %v", d)
			}
			want := uint64(b.N)
			if hp.name == "expiry" {
				want--
			}
			if got := hp.moved(e) - before; got != want {
				b.Fatalf("counter moved %d in %d ops", got, b.N)
			}
		})
	}
}

// threadCPU is the calling thread's CPU time (user + system) in nanoseconds.
func threadCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
