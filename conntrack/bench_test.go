package conntrack

import (
	"encoding/binary"
	"runtime"
	"runtime/metrics"
	"slices"
	"testing"
	"time"
)

// bkey spreads i over the whole client address, so benchmarks can use more
// than 2^24 distinct keys.
func bkey(i uint32) Key {
	var k Key
	binary.BigEndian.PutUint32(k.Client[12:], i*2654435761)
	k.Client = Map4([4]byte(k.Client[12:])) // bijective on uint32
	k.VIP = Map4([4]byte{192, 0, 2, 1})
	k.CPort, k.VPort, k.Proto = 40000, 80, ProtoTCP
	return k
}

var benchSizes = []struct {
	name string
	n    int
}{{"10k", 10_000}, {"1M", 1_000_000}, {"10M", 10_000_000}}

func skipBig(b *testing.B, n int) {
	if n > 1_000_000 && (testing.Short() || raceEnabled) {
		b.Skip("10M entries skipped under -short and -race")
	}
}

// filled caches full tables across the b.N rounds of one benchmark.
var filled = map[int]*Table{}

func fullTable(b *testing.B, n int) *Table {
	if t, ok := filled[n]; ok {
		return t
	}
	clear(filled) // keep one big table alive at a time
	runtime.GC()
	t, err := New(Config{Capacity: n, Seed: 42})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		k := bkey(uint32(i))
		if _, ok := t.Insert(&Entry{Key: k}, 0); !ok {
			b.Fatalf("fill refused at %d", i)
		}
	}
	filled[n] = t
	return t
}

// BenchmarkLookup looks up present keys in a full table (index load 1/2), in
// an order that defeats the caches.
func BenchmarkLookup(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			skipBig(b, sz.n)
			t := fullTable(b, sz.n)
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuNanos()
			j := uint32(0)
			for i := 0; i < b.N; i++ {
				j = (j + 7_919_993) % uint32(sz.n)
				k := bkey(j)
				if t.Lookup(&k) == nil {
					b.Fatal("miss")
				}
			}
			reportCPU(b, c0)
			b.ReportMetric(float64(t.MemoryBytes())/float64(sz.n), "B/entry")
		})
	}
}

// BenchmarkLookupBatch is BenchmarkLookup through LookupBatch, 64 keys per
// call; ns/op is per key.
func BenchmarkLookupBatch(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			skipBig(b, sz.n)
			t := fullTable(b, sz.n)
			keys := make([]Key, 64)
			out := make([]*Entry, 64)
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuNanos()
			j := uint32(0)
			for i := 0; i < b.N; i += len(keys) {
				for x := range keys {
					j = (j + 7_919_993) % uint32(sz.n)
					keys[x] = bkey(j)
				}
				t.LookupBatch(keys, out)
				if out[0] == nil {
					b.Fatal("miss")
				}
			}
			reportCPU(b, c0)
		})
	}
}

// BenchmarkLookupMiss looks up absent keys (the cost of every new flow).
func BenchmarkLookupMiss(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			skipBig(b, sz.n)
			t := fullTable(b, sz.n)
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuNanos()
			for i := 0; i < b.N; i++ {
				k := bkey(uint32(sz.n + i%(1<<30)))
				if t.Lookup(&k) != nil {
					b.Fatal("hit")
				}
			}
			reportCPU(b, c0)
		})
	}
}

// BenchmarkInsert inserts new keys into a table between half and fully
// loaded; when it fills up, the inserted half is deleted off the clock.
func BenchmarkInsert(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			skipBig(b, sz.n)
			clear(filled)
			runtime.GC()
			t, _ := New(Config{Capacity: sz.n, Seed: 7})
			half := sz.n / 2
			for i := 0; i < half; i++ {
				k := bkey(uint32(i))
				t.Insert(&Entry{Key: k}, 0)
			}
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuNanos()
			next := half
			for i := 0; i < b.N; i++ {
				if t.Full() {
					b.StopTimer()
					c0 -= cpuNanos()
					for j := half; j < sz.n; j++ {
						k := bkey(uint32(j))
						t.Delete(t.Lookup(&k))
					}
					next = half
					c0 += cpuNanos()
					b.StartTimer()
				}
				e := Entry{Key: bkey(uint32(next)), Flags: FlagNAT}
				if _, ok := t.Insert(&e, 0); !ok {
					b.Fatal("refused")
				}
				next++
			}
			reportCPU(b, c0)
			b.ReportMetric(float64(t.MemoryBytes())/float64(sz.n), "B/entry")
		})
	}
}

func reportCPU(b *testing.B, c0 int64) {
	if c := cpuNanos(); c > 0 {
		b.ReportMetric(float64(c-c0)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkTCP is one state transition on a found entry.
func BenchmarkTCP(b *testing.B) {
	t, _ := New(Config{Capacity: 16})
	p, _ := t.Insert(&Entry{Key: bkey(1), Flags: FlagNAT}, 0)
	flags := [...]uint8{TCPSyn, TCPSyn | TCPAck, TCPAck, TCPFin | TCPAck}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		t.TCP(p, Dir(1+i&1), flags[i&3], uint32(i))
	}
}

// BenchmarkExpire is the sweep cost per slot examined over a full 1M table
// where nothing is due.
func BenchmarkExpire(b *testing.B) {
	t := fullTable(b, 1_000_000)
	out := make([]Entry, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t.Expire(0, 1, out)
	}
}

// BenchmarkChurn10M keeps 10M live entries while about 500 expire and 500
// new ones arrive per simulated millisecond, and a second goroutine makes
// garbage so the GC runs. It reports p50/p99/max Lookup latency (timed one by
// one, including ~20-40 ns of clock reading) and the worst GC pauses in the
// window, split into the time to stop the world and the whole pause.
// BenchmarkGCBaseline runs the same garbage maker without a table, to tell
// the machine's scheduling noise from the table's cost.
func BenchmarkChurn10M(b *testing.B) {
	const (
		live    = 10_000_000
		timeout = 20_000 // ms: live/timeout = 500 arrivals per tick
		perTick = live / timeout
		budget  = 4096 // slots swept per tick: a pass over 12M slots per ~3k ticks
		lookups = 64
	)
	skipBig(b, live)
	clear(filled)
	runtime.GC()
	t, err := New(Config{Capacity: 12_000_000, Seed: 11, Timeouts: Timeouts{Established: timeout}})
	if err != nil {
		b.Fatal(err)
	}
	// Fill with deadlines spread over one timeout, as in a steady state.
	seq := uint32(0)
	now := uint32(0)
	for tick := 0; tick < timeout; tick++ {
		for j := 0; j < perTick; j++ {
			insertEstablished(b, t, seq, now)
			seq++
		}
		now++
	}
	out := make([]Entry, 1024)
	ticks := 20_000
	lat := make([]int64, 0, ticks*lookups)
	// The cost of timing itself, to read the latencies against.
	clock := make([]int64, 10_000)
	for i := range clock {
		t0 := time.Now()
		clock[i] = int64(time.Since(t0))
	}
	slices.Sort(clock)
	stopGarbage := makeGarbage()
	p0 := readPauses()
	b.ResetTimer()
	start := time.Now()
	for r := 0; r < b.N; r++ {
		lat = lat[:0]
		for tick := 0; tick < ticks; tick++ {
			now++
			t.Tick(now)
			for j := 0; j < lookups; j++ {
				k := bkey(seq - 1 - uint32((uint64(j+tick)*2654435761)%uint64(live-2*perTick)))
				t0 := time.Now()
				e := t.Lookup(&k)
				lat = append(lat, int64(time.Since(t0)))
				if e == nil {
					b.Fatalf("live key missing at tick %d", tick)
				}
			}
			for j := 0; j < perTick; j++ {
				insertEstablished(b, t, seq, now)
				seq++
			}
			t.Expire(now, budget, out)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stopGarbage()
	reportPauses(b, p0)
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) }
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
	b.ReportMetric(pct(0.999), "p999-ns")
	b.ReportMetric(pct(1), "max-ns")
	b.ReportMetric(float64(clock[len(clock)/2]), "clock-p50-ns")
	b.ReportMetric(float64(t.Len()), "entries")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N*ticks), "ns/tick")
}

func BenchmarkGCBaseline(b *testing.B) {
	clear(filled)
	runtime.GC()
	stopGarbage := makeGarbage()
	p0 := readPauses()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		time.Sleep(10 * time.Second)
	}
	b.StopTimer()
	stopGarbage()
	reportPauses(b, p0)
}

// makeGarbage starts a goroutine allocating 64 KiB blocks, standing in for a
// control plane, and returns the function that stops it.
func makeGarbage() func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var sink [][]byte
		for {
			select {
			case <-stop:
				return
			default:
			}
			sink = append(sink, make([]byte, 64<<10))
			if len(sink) > 256 {
				sink = sink[:0]
			}
		}
	}()
	return func() { close(stop); <-done }
}

var pauseMetrics = []string{
	"/gc/cycles/total:gc-cycles",
	"/sched/pauses/stopping/gc:seconds",
	"/sched/pauses/total/gc:seconds",
	"/gc/scan/heap:bytes", // what the GC must scan: the table adds ~0
	"/gc/heap/live:bytes",
}

func readPauses() []metrics.Sample {
	s := make([]metrics.Sample, len(pauseMetrics))
	for i, n := range pauseMetrics {
		s[i].Name = n
	}
	metrics.Read(s)
	return s
}

// reportPauses reports GC cycles and the upper bound of the highest
// histogram bucket that gained counts since p0.
func reportPauses(b *testing.B, p0 []metrics.Sample) {
	p1 := readPauses()
	if p1[0].Value.Kind() == metrics.KindUint64 {
		b.ReportMetric(float64(p1[0].Value.Uint64()-p0[0].Value.Uint64()), "gcs")
	}
	for i, unit := range []string{"", "gc-stop-max-ns", "gc-pause-max-ns", "scan-heap-B", "live-heap-B"} {
		if k := p1[i].Value.Kind(); i >= 3 && k == metrics.KindUint64 {
			b.ReportMetric(float64(p1[i].Value.Uint64()), unit)
			continue
		}
		if i == 0 || p1[i].Value.Kind() != metrics.KindFloat64Histogram {
			continue
		}
		h0, h1 := p0[i].Value.Float64Histogram(), p1[i].Value.Float64Histogram()
		for j := len(h1.Counts) - 1; j >= 0; j-- {
			if h1.Counts[j] > h0.Counts[j] {
				b.ReportMetric(h1.Buckets[j+1]*1e9, unit)
				break
			}
		}
	}
}

func insertEstablished(b *testing.B, t *Table, seq, now uint32) {
	e := Entry{Key: bkey(seq), State: StateEstablished}
	if _, ok := t.Insert(&e, now); !ok {
		b.Fatalf("refused at seq %d (len %d)", seq, t.Len())
	}
}

// BenchmarkPrefetch is BenchmarkLookup the way a worker would batch it: hash
// 64 keys, Prefetch them, then LookupSpotHash one by one; ns/op is per key.
func BenchmarkPrefetch(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			skipBig(b, sz.n)
			t := fullTable(b, sz.n)
			keys := make([]Key, 64)
			hs := make([]uint64, 64)
			var s Spot
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuNanos()
			j := uint32(0)
			for i := 0; i < b.N; i += len(keys) {
				for x := range keys {
					j = (j + 7_919_993) % uint32(sz.n)
					keys[x] = bkey(j)
					hs[x] = t.Hash(&keys[x])
				}
				t.Prefetch(hs)
				for x := range keys {
					if t.LookupSpotHash(&keys[x], hs[x], &s) == nil {
						b.Fatal("miss")
					}
				}
			}
			reportCPU(b, c0)
		})
	}
}
