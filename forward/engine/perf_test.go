package engine

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/internal/frametest"
	"github.com/uvs-project/uvs/forward/packet"
)

// synFrom is a SYN to the TCP service from client port sport and client address low byte c.
func synFrom(t testing.TB, c byte, sport uint16) []byte {
	s := frametest.DefaultSpec(0x06, 8)
	s.Src = [4]byte{198, 51, 100, c}
	s.SPort, s.Flags = sport, 0x02
	return withVnet(frametest.Build(t, s), false)
}

// TestEngineFloodedTableAdmitsAtOnce is issue 13 bug 2 through the engine: a table full of
// expired SYN_RECV entries (a flood that stopped) forwards new SYNs at once, and every
// reclaimed entry gives its real's load count back.
func TestEngineFloodedTableAdmitsAtOnce(t *testing.T) {
	const capacity = 1024
	e := newTestEngine(t, engineConfig(t, "dr", 80), capacity)
	svc := e.snap.cls.service(frametest.VIP, packet.ProtoTCP, 80)
	for i := 0; i < capacity; i++ {
		e.Reset()
		e.Handle(synFrom(t, byte(i>>8), uint16(1000+i)), 0)
	}
	e.Publish()
	if e.ct.Len() != capacity || e.stats.Forwarded.Load() != capacity {
		t.Fatalf("flood: %d entries, %d forwarded", e.ct.Len(), e.stats.Forwarded.Load())
	}
	// Past SYN_RECV's 60 s: every entry has expired, none was swept.
	e.Begin(e.snap, 1e9+61e9)
	for i := 0; i < 500; i++ {
		e.Reset()
		e.Handle(synFrom(t, 200, uint16(20000+i)), 0)
	}
	e.Expire()
	if got := e.stats.Forwarded.Load() - capacity; got != 500 {
		t.Fatalf("after the flood, %d of 500 new SYNs forwarded (drops %v)", got, e.dropSummary())
	}
	var load int32
	for i := range svc.Loads {
		load += svc.Loads[i].Active() + svc.Loads[i].Inactive()
	}
	if int(load) != e.ct.Len() {
		t.Fatalf("loads count %d connections, the table holds %d", load, e.ct.Len())
	}
}

// TestEngineLoadsSurviveGrowingRebuild is issue 13 bug 3: a rebuild that grows a service's
// load array while a worker still forwards on the previous snapshot loses no count.
func TestEngineLoadsSurviveGrowingRebuild(t *testing.T) {
	conf := func(reals int) *config.Config {
		var b strings.Builder
		fmt.Fprintf(&b, "[director]\ninterfaces = [\"eth0\"]\nworkers = 1\n[[service]]\nvip = \"203.0.113.10\"\nprotocol = \"tcp\"\nport = 80\nscheduler = \"rr\"\nforward = \"dr\"\n")
		for i := 0; i < reals; i++ {
			fmt.Fprintf(&b, "  [[service.real]]\n  address = \"10.1.2.%d\"\n  port = 80\n", 3+i)
		}
		cfg, err := config.Parse("grow.toml", []byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ifs := []Iface{{Name: "eth0", Index: 2, MAC: ifaceMAC, MTU: 1500}}
	reg := NewRegistry(1)
	s1, err := reg.Build(conf(2), ifs, testEgress, 1)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := conntrack.New(conntrack.Config{Capacity: 1024})
	e := NewEngine(0, ct, 4096, 64<<10, 1)
	e.Begin(s1, 1e9)
	for i := 0; i < 10; i++ {
		e.Reset()
		e.Handle(synFrom(t, 1, uint16(1000+i)), 0)
	}
	// 20 reals: the load array (capacity 8) grows. The worker has not loaded s2 yet.
	s2, err := reg.Build(conf(20), ifs, testEgress, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		e.Reset()
		e.Handle(synFrom(t, 2, uint16(1000+i)), 0)
	}
	// Connections expire on the old snapshot too: their counts are given back where they went.
	e.Begin(s1, 1e9+61e9)
	for i := 0; i < 100 && e.ct.Len() > 10; i++ {
		e.Reset()
		e.Handle(synFrom(t, 3, uint16(1000+i)), 0)
		e.Expire()
	}
	svc := s2.cls.service(frametest.VIP, packet.ProtoTCP, 80)
	var total int32
	for i := range svc.Loads {
		total += svc.Loads[i].Active() + svc.Loads[i].Inactive()
	}
	if int(total) != e.ct.Len() {
		t.Fatalf("the grown load array counts %d connections, the table holds %d", total, e.ct.Len())
	}
}

// flowFrame copies the TCP frame src into dst as the frame of flow i: the client's address
// and port are i's (198.18.0.0/16 and up, port i mod 65536).
func flowFrame(dst, src []byte, i uint32) {
	copy(dst, src)
	binary.BigEndian.PutUint32(dst[packet.VnetHdrLen+26:], uint32(0xc6120000)|i>>16)
	binary.BigEndian.PutUint16(dst[packet.VnetHdrLen+34:], uint16(i))
	frametest.FixIP(dst[packet.VnetHdrLen:], 14)
}

// openFlows opens flows 0..n-1 (flowFrame) to e's DR service with a SYN each and returns an
// ACK frame to draw established flows from.
func openFlows(b *testing.B, e *Engine, n uint32) []byte {
	syn := tcpFrame(b, 40000, 0x02, false)
	work := make([]byte, len(syn))
	for i := uint32(0); i < n; i++ {
		flowFrame(work, syn, i)
		e.Handle(work, 0)
		if e.Full() {
			e.Reset()
		}
	}
	e.Reset()
	return tcpFrame(b, 40000, 0x10, false)
}

// BenchmarkEngineBigTable is an established DR flow drawn at random from 1M connections
// (so each lookup misses the caches), handled one by one (Handle) or staged in groups of
// stageCap and prefetched (Stage/Run). ns/op is per packet.
func BenchmarkEngineBigTable(b *testing.B) {
	const conns = 1 << 20
	e := newTestEngine(b, engineConfig(b, "dr", 80), conns+1024)
	ack := openFlows(b, e, conns)
	if e.ct.Len() != conns {
		b.Fatalf("%d connections set up", e.ct.Len())
	}
	var bufs [stageCap][]byte
	for i := range bufs {
		bufs[i] = make([]byte, len(ack))
	}
	for _, staged := range []bool{false, true} {
		name := "handle"
		if staged {
			name = "staged"
		}
		b.Run(name, func(b *testing.B) {
			e.Publish()
			before := e.stats.Forwarded.Load()
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU()
			j := uint32(0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				j = (j + 7_919_993) % conns
				buf := bufs[i%stageCap]
				flowFrame(buf, ack, j)
				if !staged {
					e.Handle(buf, 0)
				} else if e.Stage(buf, 0) {
					for e.Run() {
						e.Reset()
					}
				}
				if e.Full() {
					e.Reset()
				}
			}
			for e.Run() {
				e.Reset()
			}
			b.StopTimer()
			b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			e.Reset()
			e.Publish()
			if got := e.stats.Forwarded.Load() - before; got != uint64(b.N) {
				b.Fatalf("forwarded %d of %d (drops %v)", got, b.N, e.dropSummary())
			}
		})
	}
}

// TestStageMatchesHandle: frames handled through Stage/Run come out exactly as through
// Handle, one by one: same frames, same order, same counters, same table. The sequence has
// several packets of one new flow inside one stage (the first creates the connection the
// others must find), NAT replies, ARP, drops and other traffic, over several stages.
func TestStageMatchesHandle(t *testing.T) {
	cfg := engineConfig(t, "nat", 8080)
	one, staged := newTestEngine(t, cfg, 4096), newTestEngine(t, cfg, 4096)
	var frames [][]byte
	arp := make([]byte, 64)
	n := packet.BuildARP(arp, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, &packet.ARP{Op: packet.ARPRequest, SenderMAC: frametest.MACA, SenderIP: frametest.Client, TargetIP: frametest.VIP})
	other := frametest.DefaultSpec(0x06, 8)
	other.Dst = [4]byte{203, 0, 113, 99}
	for i := 0; i < 100; i++ {
		sport := uint16(30000 + i%13)
		switch i % 7 {
		case 0, 3:
			frames = append(frames, tcpFrame(t, sport, 0x02, i%2 == 0))
		case 1, 4:
			frames = append(frames, tcpFrame(t, sport, 0x10, false))
		case 2:
			frames = append(frames, natReply(t, sport))
		case 5:
			frames = append(frames, withVnet(arp[:n], false))
		case 6:
			frames = append(frames, withVnet(frametest.Build(t, other), false), tcpFrame(t, 9, 0x10, false))
		}
	}
	keep := sameStaged(t, one, staged, frames, 50)
	if a := testing.AllocsPerRun(100, func() {
		staged.Reset()
		for _, f := range keep[:40] {
			if staged.Stage(f, 0) {
				for staged.Run() {
				}
			}
		}
		for staged.Run() {
		}
	}); a != 0 {
		t.Fatalf("%v allocations per 40 staged frames", a)
	}
}

// sameStaged feeds frames to one frame by frame (Handle) and to staged through Stage/Run, and
// fails unless both send the same frames (at least minOut) and count the same. It returns the
// staged engine's copies of the frames.
func sameStaged(t *testing.T, one, staged *Engine, frames [][]byte, minOut int) [][]byte {
	t.Helper()
	var outOne, outStaged [][]byte
	for _, f := range frames {
		one.Handle(append([]byte(nil), f...), 0)
	}
	for _, o := range one.out {
		outOne = append(outOne, append([]byte(nil), o.Frame...))
	}
	keep := make([][]byte, 0, len(frames))
	for _, f := range frames {
		buf := append([]byte(nil), f...)
		keep = append(keep, buf)
		if staged.Stage(buf, 0) {
			for staged.Run() {
			}
		}
	}
	for staged.Run() {
	}
	for _, o := range staged.out {
		outStaged = append(outStaged, append([]byte(nil), o.Frame...))
	}
	if len(outOne) != len(outStaged) || len(outOne) < minOut {
		t.Fatalf("%d frames out one by one, %d staged", len(outOne), len(outStaged))
	}
	for i := range outOne {
		if string(outOne[i]) != string(outStaged[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	one.Publish()
	staged.Publish()
	if one.stats.Forwarded.Load() != staged.stats.Forwarded.Load() || one.stats.Replies.Load() != staged.stats.Replies.Load() ||
		one.stats.Ignored.Load() != staged.stats.Ignored.Load() || one.ct.Len() != staged.ct.Len() {
		t.Fatalf("counters differ: forwarded %d/%d replies %d/%d ignored %d/%d conns %d/%d",
			one.stats.Forwarded.Load(), staged.stats.Forwarded.Load(), one.stats.Replies.Load(), staged.stats.Replies.Load(),
			one.stats.Ignored.Load(), staged.stats.Ignored.Load(), one.ct.Len(), staged.ct.Len())
	}
	if d1, d2 := fmt.Sprint(one.dropSummary()), fmt.Sprint(staged.dropSummary()); d1 != d2 {
		t.Fatalf("drops differ: %s / %s", d1, d2)
	}
	// The same connections, keys included (an entry under a wrong key forwards the same
	// frames here, and is found by no one else).
	keys := func(e *Engine) map[conntrack.Key]bool {
		m := map[conntrack.Key]bool{}
		e.ct.Range(func(x *conntrack.Entry) bool { m[x.Key] = true; return true })
		return m
	}
	if k1, k2 := keys(one), keys(staged); fmt.Sprint(k1) != fmt.Sprint(k2) {
		t.Fatalf("tables differ:\n%v\n%v", k1, k2)
	}
	return keep
}

// BenchmarkEngineNewFlows is BenchmarkEngine's "dr/new" (each op a SYN of a new flow, the
// table growing to millions) handled one by one or staged 32 at a time as the worker does:
// the staged lookups of new flows are prefetched too.
func BenchmarkEngineNewFlows(b *testing.B) {
	for _, staged := range []bool{false, true} {
		name := "handle"
		if staged {
			name = "staged"
		}
		b.Run(name, func(b *testing.B) {
			e := newTestEngine(b, engineConfig(b, "dr", 80), max(b.N+1024, 1<<16))
			syn := tcpFrame(b, 40000, 0x02, false)
			var bufs [stageCap][]byte
			for i := range bufs {
				bufs[i] = make([]byte, len(syn))
			}
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				work := bufs[i%stageCap]
				copy(work, syn)
				binary.BigEndian.PutUint32(work[packet.VnetHdrLen+26:], uint32(0xc6120000)|uint32(i>>16))
				binary.BigEndian.PutUint16(work[packet.VnetHdrLen+34:], uint16(i))
				frametest.FixIP(work[packet.VnetHdrLen:], 14)
				if !staged {
					e.Handle(work, 0)
				} else if e.Stage(work, 0) {
					for e.Run() {
						e.Reset()
					}
				}
				if len(e.out) >= cap(e.out)-stageCap {
					e.Reset()
				}
			}
			for e.Run() {
				e.Reset()
			}
			b.StopTimer()
			b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			e.Publish()
			if got := e.stats.Forwarded.Load(); got != uint64(b.N) {
				b.Fatalf("forwarded %d of %d (drops %v)", got, b.N, e.dropSummary())
			}
		})
	}
}

// TestEngineCountersPublishedPerBlock: the hot path counts in plain fields; readers see the
// counts once the block is published (Expire does it), all of them, even when a block touches
// more service and real counters than the dirty list holds.
func TestEngineCountersPublishedPerBlock(t *testing.T) {
	e := newTestEngine(t, engineConfig(t, "dr", 80), 1024)
	svc := e.snap.cls.service(frametest.VIP, packet.ProtoTCP, 80)
	e.Handle(tcpFrame(t, 40000, 0x02, false), 0)
	if e.stats.Forwarded.Load() != 0 || e.stats.RxFrames.Load() != 0 || svc.Stats[0].InPkts.Load() != 0 {
		t.Fatal("counts visible before the block was published")
	}
	e.Expire()
	if e.stats.Forwarded.Load() != 1 || e.stats.RxFrames.Load() != 1 || svc.Stats[0].InPkts.Load() != 1 || svc.Stats[0].Conns.Load() != 1 {
		t.Fatalf("after the block: forwarded %d rx %d in %d conns %d", e.stats.Forwarded.Load(), e.stats.RxFrames.Load(), svc.Stats[0].InPkts.Load(), svc.Stats[0].Conns.Load())
	}
	cs := make([]Counters, 3*maxDirty+5)
	for round := 0; round < 2; round++ {
		for i := range cs {
			e.in(&cs[i], uint64(i))
			e.conn(&cs[i])
		}
	}
	e.Publish()
	for i := range cs {
		if cs[i].InPkts.Load() != 2 || cs[i].InBytes.Load() != 2*uint64(i) || cs[i].Conns.Load() != 2 || cs[i].pend.dirty {
			t.Fatalf("counter %d: %d packets %d bytes %d conns", i, cs[i].InPkts.Load(), cs[i].InBytes.Load(), cs[i].Conns.Load())
		}
	}
}

// TestStageMatchesHandleFamilies: the staged path (handleStaged takes the parse, service and
// key hashStaged made) forwards IPv6 and IPv4 frames of one batch, interleaved, as Handle
// does, and drops a frame to a VIP whose VRRP instance is backup as Handle does.
func TestStageMatchesHandleFamilies(t *testing.T) {
	t.Run("ipv4+ipv6", func(t *testing.T) {
		cfg := engineConfig(t, "dr", 80)
		one, staged := newTestEngine(t, cfg, 4096), newTestEngine(t, cfg, 4096)
		var frames [][]byte
		for i := 0; i < 90; i++ {
			sport, flags := uint16(41000+i%11), uint8(0x02)
			if i >= 33 {
				flags = 0x10
			}
			if i%2 == 0 {
				frames = append(frames, withVnet(frame6(t, tcp6(client6, vip6, sport, 80, flags)), false))
			} else {
				frames = append(frames, tcpFrame(t, sport, flags, false))
			}
		}
		sameStaged(t, one, staged, frames, 80)
	})
	t.Run("standby", func(t *testing.T) {
		engines := make([]*Engine, 2)
		for i := range engines {
			s := snapshotOf(t, twoVRRPInstances, "203.0.113.20") // VI_1 is backup
			ct, err := conntrack.New(conntrack.Config{Capacity: 1024})
			if err != nil {
				t.Fatal(err)
			}
			engines[i] = NewEngine(0, ct, 4096, 64<<10, 1)
			engines[i].Begin(s, 1e9)
		}
		other := frametest.DefaultSpec(0x06, 8)
		other.Dst = [4]byte{203, 0, 113, 20}
		var frames [][]byte
		for i := 0; i < 40; i++ {
			other.SPort = uint16(42000 + i)
			frames = append(frames, tcpFrame(t, uint16(42000+i), 0x02, false), withVnet(frametest.Build(t, other), false))
		}
		sameStaged(t, engines[0], engines[1], frames, 40)
		engines[1].Publish()
		if d := engines[1].stats.Drops[DropVRRPBackup].Load(); d != 40 {
			t.Fatalf("%d frames to the backup VIP dropped as vrrp_backup, want 40 (drops %v)", d, engines[1].dropSummary())
		}
	})
}

// snapshotOf builds the snapshot of config src for one worker on eth0, with the VRRP
// instances of the VIPs in active as masters.
func snapshotOf(t *testing.T, src string, active ...string) *Snapshot {
	t.Helper()
	cfg, err := config.Parse("snap.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(1)
	var as []netip.Addr
	for _, a := range active {
		as = append(as, netip.MustParseAddr(a))
	}
	reg.SetVRRPActive(as)
	s, err := reg.Build(cfg, []Iface{{Name: "eth0", Index: 2, MAC: ifaceMAC, MTU: 1500}}, testEgress, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStageNewSnapshotMidBatch: when a batch fills mid-stage and the caller begins a new
// snapshot before Run goes on, the frames left are classified by the new one (here it no
// longer has their service), not by the parse and service hashStaged kept.
func TestStageNewSnapshotMidBatch(t *testing.T) {
	both := snapshotOf(t, twoVRRPInstances, "203.0.113.10", "203.0.113.20")
	// The same, but 203.0.113.10's service is on another port: its frames have none.
	other := snapshotOf(t, strings.Replace(twoVRRPInstances, "port = 80", "port = 81", 1), "203.0.113.10", "203.0.113.20")
	ct, err := conntrack.New(conntrack.Config{Capacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(0, ct, maxFrameOuts, 64<<10, 1) // Full after one frame out
	e.Begin(both, 1e9)
	for i := 0; i < 3; i++ {
		e.Stage(tcpFrame(t, uint16(43000+i), 0x02, false), 0) // to 203.0.113.10
	}
	if !e.Run() || len(e.out) != 1 {
		t.Fatalf("Run did not stop after the first frame: %d out", len(e.out))
	}
	e.Reset()
	e.Begin(other, 2e9)
	for e.Run() {
		e.Reset()
	}
	e.Publish()
	if f := e.stats.Forwarded.Load(); f != 1 {
		t.Fatalf("%d frames forwarded, want only the first: the others' service is gone (drops %v)", f, e.dropSummary())
	}
}
