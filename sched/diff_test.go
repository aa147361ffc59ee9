package sched

import (
	"math/rand/v2"
	"testing"
)

var allKinds = []Kind{KindRR, KindWRR, KindLC, KindWLC, KindLBLC, KindLBLCR, KindDH, KindSH,
	KindSED, KindNQ, KindFO, KindOVF, KindMH, KindTwoS}

// setLoad forces a real's counters and overload flag, as a test fixture.
func setLoad(l *Load, active, inactive int32, over bool) {
	l.w.Store(packLoad(active, inactive))
	l.overload.Store(over)
}

func randReals(rng *rand.Rand, n int, maxW int32) []RealSpec {
	rs := make([]RealSpec, 0, n)
	seen := map[[6]byte]bool{}
	for len(rs) < n {
		r := RealSpec{
			Addr:   [4]byte{10, 0, byte(rng.IntN(4)), byte(rng.IntN(256))},
			Port:   uint16(8080 + rng.IntN(3)),
			Weight: rng.Int32N(maxW + 1),
		}
		k := [6]byte{r.Addr[0], r.Addr[1], r.Addr[2], r.Addr[3], byte(r.Port >> 8), byte(r.Port)}
		if seen[k] {
			continue
		}
		seen[k] = true
		if rng.IntN(5) == 0 {
			r.Weight = 0
		}
		rs = append(rs, r)
	}
	return rs
}

func randLoads(rng *rand.Rand, loads []Load, small bool) {
	for i := range loads {
		a, in := rng.Int32N(20), rng.Int32N(60)
		if small {
			a, in = rng.Int32N(4), rng.Int32N(4)
		}
		setLoad(&loads[i], a, in, rng.IntN(6) == 0)
	}
}

func randFlow(rng *rand.Rand) Flow {
	return Flow{
		Client:     [4]byte{192, 168, byte(rng.IntN(2)), byte(rng.IntN(256))},
		ClientPort: uint16(rng.IntN(65536)),
		VIP:        [4]byte{10, 1, 0, byte(rng.IntN(6))},
		Port:       80,
		Proto:      []uint8{6, 17, 132, 1}[rng.IntN(4)],
	}
}

// TestDifferentialStateless compares Pick with the reference models for the
// schedulers whose choice depends only on the flow and the loads.
func TestDifferentialStateless(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range []Kind{KindLC, KindWLC, KindSED, KindNQ, KindFO, KindOVF, KindDH, KindSH, KindMH} {
		t.Run(k.String(), func(t *testing.T) {
			for trial := range 300 {
				spec := Spec{Kind: k, Reals: randReals(rng, rng.IntN(14), []int32{3, 10, 300}[trial%3])}
				switch k {
				case KindSH:
					spec.Flags = Flags(rng.IntN(4)) & (FlagSHPort | FlagSHFallback)
				case KindMH:
					spec.Flags = Flags(rng.IntN(16)) & (FlagMHPort | FlagMHFallback)
					spec.MHTableSize = []uint32{251, 1021, 65537}[trial%3]
				}
				tab, err := Build(spec)
				if err != nil {
					t.Fatal(err)
				}
				loads := make([]Load, len(spec.Reals))
				var mhTable []int
				if k == KindMH {
					rs := refSnapshot(spec, loads)
					mhTable = refMHTable(rs, int(tab.mhSize))
				}
				for range 40 {
					randLoads(rng, loads, trial%2 == 0)
					rs := refSnapshot(spec, loads)
					f := randFlow(rng)
					var want int
					switch k {
					case KindLC:
						want = refLC(rs)
					case KindWLC:
						want = refWLC(rs)
					case KindSED:
						want = refSED(rs)
					case KindNQ:
						want = refNQ(rs)
					case KindFO:
						want = refFO(rs)
					case KindOVF:
						want = refOVF(rs)
					case KindDH:
						want = refDH(rs, &f)
					case KindSH:
						want = refSH(rs, &f, spec.Flags)
					case KindMH:
						want = refMH(mhTable, rs, &f, spec.Flags)
					}
					if got := tab.Pick(&f, loads, nil, 0); got != want {
						t.Fatalf("trial %d: reals %+v loads %+v flow %+v: got %d, want %d", trial, spec.Reals, rs, f, got, want)
					}
				}
			}
		})
	}
}

// TestDifferentialStateful drives rr, wrr, twos, lblc and lblcr and their
// reference models through the same picks, load changes, clock jumps and
// rebuilds that remove reals.
func TestDifferentialStateful(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, k := range []Kind{KindRR, KindWRR, KindTwoS, KindLBLC, KindLBLCR} {
		t.Run(k.String(), func(t *testing.T) {
			for trial := range 100 {
				spec := Spec{Kind: k, Reals: randReals(rng, 1+rng.IntN(10), 6), Seed: rng.Uint64()}
				loads := make([]Load, len(spec.Reals))
				ws := NewWorkerState(uint64(trial))
				wsRef := NewWorkerState(uint64(trial))
				var rr refRR
				var wrr *refWRR
				var lblc refLBLC
				var lblcr refLBLCR
				now := int64(rng.IntN(1e12))
				var tab *Table
				rebuild := func() {
					var err error
					if tab, err = Build(spec); err != nil {
						t.Fatal(err)
					}
					rr = refRR{}
					wrr = newRefWRR(refSnapshot(spec, loads))
				}
				rebuild()
				for step := range 400 {
					switch x := rng.IntN(100); {
					case x < 20:
						randLoads(rng, loads, true)
					case x < 23 && len(spec.Reals) > 1 && (k == KindLBLC || k == KindLBLCR):
						j := rng.IntN(len(spec.Reals))
						spec.Reals = append(spec.Reals[:j:j], spec.Reals[j+1:]...)
						loads = append(loads[:j:j], loads[j+1:]...)
						rebuild()
					}
					switch x := rng.IntN(100); {
					case x < 2:
						now += 25 * 3600e9
					case x < 30:
						now += int64(rng.IntN(3600e9))
					}
					rs := refSnapshot(spec, loads)
					f := randFlow(rng)
					var want int
					switch k {
					case KindRR:
						want = rr.pick(rs)
					case KindWRR:
						want = wrr.pick(rs)
					case KindTwoS:
						want = refTwoS(rs, wsRef, spec.Seed)
					case KindLBLC:
						want = lblc.pick(rs, &f, now)
					case KindLBLCR:
						want = lblcr.pick(rs, &f, now)
					}
					if got := tab.Pick(&f, loads, ws, now); got != want {
						t.Fatalf("trial %d step %d: reals %+v loads %+v: got %d, want %d", trial, step, spec.Reals, rs, got, want)
					}
				}
				if k == KindLBLC && ws.lblc.n != len(lblc.m) {
					t.Fatalf("trial %d lblc cache holds %d entries, reference %d; counters %d %d now %d next %d %d", trial, ws.lblc.n, len(lblc.m), ws.lblc.counter, lblc.timer.counter, now, ws.lblc.nextCheck, lblc.timer.next)
				}
				if k == KindLBLCR && ws.lblcr.n != len(lblcr.m) {
					t.Fatalf("lblcr cache holds %d entries, reference %d", ws.lblcr.n, len(lblcr.m))
				}
			}
		})
	}
}
