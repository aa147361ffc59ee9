package sched

import (
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
)

// cpuNanos returns the process's user+system CPU time. The benchmark host is
// shared, so wall-clock ns/op includes time spent waiting for a CPU;
// cpu-ns/op does not.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func reportCPU(b *testing.B, start int64) {
	b.ReportMetric(float64(cpuNanos()-start)/float64(b.N), "cpu-ns/op")
}

func benchSpec(k Kind, n int, rng *rand.Rand) Spec {
	reals := make([]RealSpec, n)
	for i := range reals {
		reals[i] = RealSpec{Addr: [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}, Port: 80, Weight: 1 + rng.Int32N(10)}
	}
	return Spec{Kind: k, Reals: reals}
}

// BenchmarkSchedule measures Pick per scheduler and number of reals, with
// random weights 1-10, random loads and 1024 distinct flows.
func BenchmarkSchedule(b *testing.B) {
	for _, k := range allKinds {
		b.Run(k.String(), func(b *testing.B) {
			for _, n := range []int{2, 16, 256, 4096} {
				b.Run(strconv.Itoa(n), func(b *testing.B) {
					rng := rand.New(rand.NewPCG(uint64(k), uint64(n)))
					tab := mustBuild(b, benchSpec(k, n, rng))
					loads := make([]Load, n)
					for i := range loads {
						setLoad(&loads[i], rng.Int32N(100), rng.Int32N(1000), false)
						if k == KindOVF { // ovf wants active <= weight
							loads[i].w.Store(packLoad(rng.Int32N(tab.weights[i]+1), 0))
						}
					}
					flows := make([]Flow, 1024)
					for i := range flows {
						flows[i] = randFlow(rng)
					}
					ws := NewWorkerState(1)
					b.ReportAllocs()
					b.ResetTimer()
					start := cpuNanos()
					for i := 0; i < b.N; i++ {
						if tab.Pick(&flows[i&1023], loads, ws, int64(i)*1000) < 0 {
							b.Fatal("no real")
						}
					}
					reportCPU(b, start)
				})
			}
		})
	}
}

// BenchmarkMHBuild measures building the default 65537-slot Maglev table.
func BenchmarkMHBuild(b *testing.B) {
	for _, n := range []int{1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			spec := benchSpec(KindMH, n, rand.New(rand.NewPCG(1, 1)))
			b.ReportAllocs()
			b.ResetTimer()
			start := cpuNanos()
			for i := 0; i < b.N; i++ {
				if _, err := Build(spec); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}
