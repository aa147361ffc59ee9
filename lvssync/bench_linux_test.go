package lvssync

import (
	"context"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countTable counts installs; it is the cheapest Installer, so a benchmark measures sync.
type countTable struct{ n atomic.Int64 }

func (c *countTable) Install(*Conn) Reason { c.n.Add(1); return ReasonNone }

// synthTable is a Snapshotter of n synthetic connections.
type synthTable struct{ n int }

func (s synthTable) Snapshot(yield func(*Conn) bool) {
	for i := range s.n {
		c := testConn(i)
		c.CPort = uint16(i)
		if !yield(&c) {
			return
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSyncSender measures the master's cost per record: a worker's Ring.Put, the
// sender draining the ring, building, signing and sending messages of 1472 bytes to a
// unicast peer on loopback. It reports the process CPU time per record (sender and the
// receiving backup engine together, an upper bound for the master) and wire bytes per
// record (UDP payload plus 28 bytes of IPv4 and UDP header per message).
func BenchmarkSyncSender(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		name := map[bool]string{false: "unkeyed", true: "keyed"}[keyed]
		b.Run(name, func(b *testing.B) {
			var key []byte
			if keyed {
				key = []byte("benchmark key")
			}
			mt, bt := listenBench(b), listenBench(b)
			bk := &countTable{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m, err := New(Config{SyncID: 1, Role: RoleMaster, Peers: []netip.AddrPort{bt.LocalAddr()}, Key: key, MaxLen: 1472, Flush: time.Millisecond}, mt, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			bb, err := New(Config{SyncID: 1, Role: RoleBackup, Peers: []netip.AddrPort{mt.LocalAddr()}, Key: key, MaxRate: 1 << 30}, bt, bk, nil)
			if err != nil {
				b.Fatal(err)
			}
			go m.Run(ctx)
			go bb.Run(ctx)
			ring := m.NewRing(1 << 16)
			c := testConn(1)
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.CPort = uint16(i)
				for !ring.Put(&c) {
					time.Sleep(50 * time.Microsecond) // pace the producer to the sender
				}
			}
			for ring.Len() > 0 {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			st := m.Stats()
			wire := float64(st.RecordsSent*RecordV4Len) + float64(st.Sent)*float64(HeaderLen+28)
			if keyed {
				wire += float64(st.Sent) * AuthLen
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
			b.ReportMetric(wire/float64(max(st.RecordsSent, 1)), "wire-B/record")
		})
	}
}

func listenBench(b *testing.B) *UDPTransport {
	tr, err := ListenUDP(UDPConfig{Listen: netip.MustParseAddr("127.0.0.1"), SockBuf: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	return tr
}

// BenchmarkBulkCopy1M measures a bulk copy of a 1,000,000-entry table from a master to a
// new backup on loopback, keyed, at bulk_rate 500000 records/s (the default is 50000, which
// makes a copy take 20 s by design). It reports the copy's duration and the records lost.
func BenchmarkBulkCopy1M(b *testing.B) {
	const entries = 1_000_000
	for i := 0; i < b.N; i++ {
		mt, bt := listenBench(b), listenBench(b)
		key := []byte("benchmark key")
		ctx, cancel := context.WithCancel(context.Background())
		m, err := New(Config{SyncID: 1, Role: RoleMaster, Peers: []netip.AddrPort{bt.LocalAddr()}, Key: key, MaxLen: 1472, BulkRate: 500000}, mt, nil, synthTable{entries})
		if err != nil {
			b.Fatal(err)
		}
		bk := &countTable{}
		bb, err := New(Config{SyncID: 1, Role: RoleBackup, Peers: []netip.AddrPort{mt.LocalAddr()}, Key: key, MaxRate: 1 << 30}, bt, bk, nil)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		go m.Run(ctx)
		go bb.Run(ctx) // a new backup asks for the copy at once
		last, lastChange := int64(-1), time.Now()
		for bk.n.Load() < entries && time.Since(lastChange) < 2*time.Second {
			if n := bk.n.Load(); n != last {
				last, lastChange = n, time.Now()
			}
			time.Sleep(5 * time.Millisecond)
		}
		took := time.Since(start)
		if bk.n.Load() < entries {
			took -= 2 * time.Second // the wait for more that never came
		}
		cancel()
		b.ReportMetric(took.Seconds(), "s/copy")
		b.ReportMetric(float64(entries-bk.n.Load()), "lost")
	}
}
