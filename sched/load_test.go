package sched

import (
	"math/rand/v2"
	"sync"
	"testing"
)

func TestLoadPacking(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var l Load
	var a, i int32
	for n := 0; n < 100000; n++ {
		da, di := rng.Int32N(7)-3, rng.Int32N(7)-3
		if a+da < -1000 || i+di < -1000 || a+da > 1<<20 || i+di > 1<<20 {
			continue
		}
		a, i = a+da, i+di
		l.Add(da, di, nil)
		if l.Active() != a || l.Inactive() != i {
			t.Fatalf("step %d: load %d/%d, want %d/%d", n, l.Active(), l.Inactive(), a, i)
		}
	}
}

func TestLoadOverloadHysteresis(t *testing.T) {
	r := &RealSpec{Upper: 4, Lower: 2}
	var l Load
	for n := 0; n < 4; n++ {
		l.Add(1, 0, r)
	}
	if !l.Overloaded() {
		t.Fatal("not overloaded at the upper threshold")
	}
	l.Add(-1, 0, r)
	l.Add(0, 0, r)
	if !l.Overloaded() {
		t.Fatal("cleared above the lower threshold")
	}
	l.Add(-2, 0, r)
	if l.Overloaded() {
		t.Fatal("still overloaded below the lower threshold")
	}
}

// TestGrowLoadsLosesNothing is issue 13 bug 3: workers keep counting on the
// old load array until they load the new snapshot, so a rebuild that grows
// the array must carry those counts over. Writers hammer the old array while
// it is grown (twice); at the end the new array holds every count.
func TestGrowLoadsLosesNothing(t *testing.T) {
	const reals, workers, adds = 4, 4, 20000
	old := make([]Load, reals)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			<-start
			for n := 0; n < adds; n++ {
				i := rng.IntN(reals)
				old[i].Add(1, 0, nil)  // new connection
				old[i].Add(-1, 1, nil) // becomes inactive
			}
		}(w)
	}
	close(start)
	mid := GrowLoads(old, reals+1)
	grown := GrowLoads(mid, len(mid)+1)
	wg.Wait()
	var a, i int32
	for r := 0; r < reals; r++ {
		a += grown[r].Active()
		i += grown[r].Inactive()
		if old[r].Active() != grown[r].Active() || old[r].Inactive() != grown[r].Inactive() {
			t.Fatalf("real %d: the old Load reads %d/%d, the new %d/%d", r, old[r].Active(), old[r].Inactive(), grown[r].Active(), grown[r].Inactive())
		}
	}
	if a != 0 || i != workers*adds {
		t.Fatalf("after growth: %d active, %d inactive; want 0 and %d", a, i, workers*adds)
	}
}

// BenchmarkLoadAdd is one connection changing state on one real, serial and
// with every worker on the same real (the shared cache line).
func BenchmarkLoadAdd(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		var l Load
		d := int32(1)
		for b.Loop() {
			l.Add(d, -d, nil)
			d = -d
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var l Load
		b.RunParallel(func(pb *testing.PB) {
			d := int32(1)
			for pb.Next() {
				l.Add(-d, d, nil)
				d = -d
			}
		})
	})
}

// TestWorkerStateReset: a reset state schedules as a fresh one (lblc cache and twos random
// source forgotten).
func TestWorkerStateReset(t *testing.T) {
	for _, k := range []Kind{KindLBLC, KindLBLCR, KindTwoS} {
		rng := rand.New(rand.NewPCG(3, uint64(k)))
		tab, err := Build(benchSpec(k, 8, rng))
		if err != nil {
			t.Fatal(err)
		}
		loads := make([]Load, 8)
		run := func(ws *WorkerState) []int {
			var picks []int
			for i := 0; i < 200; i++ {
				f := Flow{VIP: [4]byte{10, 0, 0, byte(i % 7)}, Port: 80, Proto: 6, Client: [4]byte{1, 2, 3, byte(i)}}
				idx := tab.Pick(&f, loads, ws, int64(i)*1e6)
				picks = append(picks, idx)
				if idx >= 0 {
					loads[idx].Add(1, 0, nil)
				}
			}
			return picks
		}
		ws := NewWorkerState(5)
		first := run(ws)
		clear(loads)
		ws.Reset(5)
		again := run(ws)
		clear(loads)
		fresh := run(NewWorkerState(5))
		for i := range first {
			if again[i] != fresh[i] || first[i] != fresh[i] {
				t.Fatalf("%s: pick %d: first %d, after Reset %d, fresh %d", k, i, first[i], again[i], fresh[i])
			}
		}
	}
}
