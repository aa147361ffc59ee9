package sched

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
)

func mustBuild(t testing.TB, spec Spec) *Table {
	t.Helper()
	tab, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func realsW(ws ...int32) []RealSpec {
	rs := make([]RealSpec, len(ws))
	for i, w := range ws {
		rs[i] = RealSpec{Addr: [4]byte{10, 0, byte(i >> 8), byte(i)}, Port: 80, Weight: w}
	}
	return rs
}

func TestKindRoundTrip(t *testing.T) {
	for _, k := range allKinds {
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, err)
		}
	}
	for _, s := range []string{"", "invalid", "RR", "wrr ", "maglev"} {
		if _, err := ParseKind(s); !errors.Is(err, ErrUnknownKind) {
			t.Errorf("ParseKind(%q) err = %v", s, err)
		}
	}
	if KindInvalid.String() != "invalid" || Kind(200).String() != "Kind(200)" {
		t.Error("bad String for invalid kinds")
	}
}

func TestParseFlag(t *testing.T) {
	tests := []struct {
		in   string
		want Flags
		err  bool
	}{
		{"", 0, false},
		{"sh-port", FlagSHPort, false},
		{"sh-fallback", FlagSHFallback, false},
		{"mh-port", FlagMHPort, false},
		{"mh-fallback", FlagMHFallback, false},
		{"sh-fallback,sh-port", FlagSHFallback | FlagSHPort, false},
		{"sh-port,", 0, true},
		{"flag-1", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFlag(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("ParseFlag(%q) = %v, %v", tt.in, got, err)
			}
			if !tt.err {
				if back, err := ParseFlag(got.String()); err != nil || back != got {
					t.Fatalf("round trip %q: %v, %v", got.String(), back, err)
				}
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		err  error
	}{
		{"no kind", Spec{}, ErrKind},
		{"flags on rr", Spec{Kind: KindRR, Flags: FlagSHPort}, ErrFlags},
		{"mh flag on sh", Spec{Kind: KindSH, Flags: FlagMHPort}, ErrFlags},
		{"negative weight", Spec{Kind: KindWLC, Reals: realsW(-1)}, ErrWeight},
		{"huge weight", Spec{Kind: KindWLC, Reals: realsW(MaxWeight + 1)}, ErrWeight},
		{"thresholds", Spec{Kind: KindLC, Reals: []RealSpec{{Weight: 1, Upper: 5, Lower: 6}}}, ErrThreshold},
		{"duplicate", Spec{Kind: KindLC, Reals: []RealSpec{{Weight: 1}, {Weight: 2}}}, ErrDuplicateReal},
		{"mh not prime", Spec{Kind: KindMH, MHTableSize: 65536}, ErrMHTableSize},
		{"mh too small", Spec{Kind: KindMH, MHTableSize: 7, Reals: realsW(1, 1, 1, 1, 1, 1, 1)}, ErrMHTableSize},
		{"wrr too long", Spec{Kind: KindWRR, Reals: realsW(65535, 65534, 65533, 65531, 65521, 65519, 65497, 65479, 65449, 65447, 65437, 65423, 65419, 65413, 65407, 65393, 65381)}, ErrWRRTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Build(tt.spec); !errors.Is(err, tt.err) {
				t.Fatalf("Build err = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestWRRSequence(t *testing.T) {
	tab := mustBuild(t, Spec{Kind: KindWRR, Reals: realsW(4, 3, 2)})
	loads := make([]Load, 3)
	want := []int{0, 0, 1, 0, 1, 2, 0, 1, 2} // A A B A B C A B C
	for round := range 3 {
		for j, w := range want {
			if got := tab.Pick(&Flow{}, loads, nil, 0); got != w {
				t.Fatalf("round %d pick %d = %d, want %d", round, j, got, w)
			}
		}
	}
}

func TestWRRRatio(t *testing.T) {
	tab := mustBuild(t, Spec{Kind: KindWRR, Reals: realsW(3, 1)})
	loads := make([]Load, 2)
	var n [2]int
	for range 4000 {
		n[tab.Pick(&Flow{}, loads, nil, 0)]++
	}
	if r := float64(n[0]) / float64(n[1]); r < 3*0.99 || r > 3*1.01 {
		t.Fatalf("wrr 3:1 gave %v (%v)", n, r)
	}
}

// TestRRExactAcrossWorkers alternates picks between two workers' states
// through one Table, then runs two goroutines at once.
func TestRRExactAcrossWorkers(t *testing.T) {
	for _, k := range []Kind{KindRR, KindWRR} {
		t.Run(k.String(), func(t *testing.T) {
			tab := mustBuild(t, Spec{Kind: k, Reals: realsW(1, 1)})
			loads := make([]Load, 2)
			ws := []*WorkerState{NewWorkerState(1), NewWorkerState(2)}
			var n [2]int
			for i := range 100 {
				n[tab.Pick(&Flow{}, loads, ws[i%2], 0)]++
			}
			if n != [2]int{50, 50} {
				t.Fatalf("alternating: %v", n)
			}
			var mu sync.Mutex
			var wg sync.WaitGroup
			n = [2]int{}
			for w := range 2 {
				wg.Go(func() {
					var m [2]int
					for range 5000 {
						m[tab.Pick(&Flow{}, loads, ws[w], 0)]++
					}
					mu.Lock()
					n[0] += m[0]
					n[1] += m[1]
					mu.Unlock()
				})
			}
			wg.Wait()
			if n != [2]int{5000, 5000} {
				t.Fatalf("concurrent: %v", n)
			}
		})
	}
}

// TestRRSkipsLikeKernel checks that skipping an overloaded real does not
// bias the next one: A, (B overloaded), C share the picks evenly.
func TestRRSkipsLikeKernel(t *testing.T) {
	tab := mustBuild(t, Spec{Kind: KindRR, Reals: realsW(1, 1, 1)})
	loads := make([]Load, 3)
	setLoad(&loads[1], 0, 0, true)
	var n [3]int
	for range 100 {
		n[tab.Pick(&Flow{}, loads, nil, 0)]++
	}
	if n != [3]int{50, 0, 50} {
		t.Fatalf("got %v", n)
	}
}

func TestHashStableAcrossRebuilds(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, k := range []Kind{KindDH, KindSH, KindMH} {
		t.Run(k.String(), func(t *testing.T) {
			spec := Spec{Kind: k, Reals: randReals(rng, 9, 5)}
			for i := range spec.Reals {
				spec.Reals[i].Weight++
			}
			a, b := mustBuild(t, spec), mustBuild(t, spec)
			loads := make([]Load, len(spec.Reals))
			for range 2000 {
				f := randFlow(rng)
				x, y := a.Pick(&f, loads, nil, 0), b.Pick(&f, loads, nil, 0)
				if x != y || x < 0 {
					t.Fatalf("flow %+v: %d then %d", f, x, y)
				}
			}
		})
	}
}

// TestMHOrderIndependent checks that the Maglev table depends on the set of
// reals, not their order in the Spec (sorted input, as cilium pkg/maglev).
func TestMHOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	spec := Spec{Kind: KindMH, Reals: realsW(1, 2, 3, 4, 5, 1, 1, 2), MHTableSize: 4093}
	a := mustBuild(t, spec)
	shuffled := append([]RealSpec(nil), spec.Reals...)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	b := mustBuild(t, Spec{Kind: KindMH, Reals: shuffled, MHTableSize: 4093})
	for i := range a.buckets {
		if a.reals[a.buckets[i]] != b.reals[b.buckets[i]] {
			t.Fatalf("slot %d differs", i)
		}
	}
}

// TestMHDisruption removes one of N reals and checks that about 1/N of the
// flows move, as Maglev promises.
func TestMHDisruption(t *testing.T) {
	const n, flows = 10, 100000
	reals := realsW(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	a := mustBuild(t, Spec{Kind: KindMH, Reals: reals, Flags: FlagMHPort})
	b := mustBuild(t, Spec{Kind: KindMH, Reals: append(reals[:3:3], reals[4:]...), Flags: FlagMHPort})
	la, lb := make([]Load, n), make([]Load, n-1)
	rng := rand.New(rand.NewPCG(9, 10))
	moved := 0
	var perReal [n]int
	for range flows {
		f := Flow{Client: [4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))},
			ClientPort: uint16(rng.IntN(65536)), Proto: 6}
		x, y := a.Pick(&f, la, nil, 0), b.Pick(&f, lb, nil, 0)
		perReal[x]++
		if a.reals[x] != b.reals[y] {
			moved++
		}
	}
	limit := flows/n + flows/50 // 1/N plus 2% slack
	t.Logf("moved %d of %d flows (1/N = %d); per real %v", moved, flows, flows/n, perReal)
	if moved > limit {
		t.Fatalf("moved %d flows, limit %d", moved, limit)
	}
}

func TestWeightZeroNeverPicked(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, k := range allKinds {
		t.Run(k.String(), func(t *testing.T) {
			spec := Spec{Kind: k, Reals: realsW(0, 3, 0, 1, 0), MHTableSize: 251}
			if k == KindSH {
				spec.Flags = FlagSHFallback
			}
			if k == KindMH {
				spec.Flags = FlagMHFallback
			}
			tab := mustBuild(t, spec)
			loads := make([]Load, 5)
			setLoad(&loads[0], 0, 0, false) // idle, would win lc/nq if allowed
			ws := NewWorkerState(1)
			seen := 0
			for i := range 3000 {
				randLoads(rng, loads, true)
				for j := range loads {
					loads[j].overload.Store(false)
				}
				f := randFlow(rng)
				got := tab.Pick(&f, loads, ws, int64(i)*1e9)
				if got >= 0 && spec.Reals[got].Weight == 0 {
					t.Fatalf("picked quiescent real %d", got)
				}
				if got >= 0 {
					seen++
				}
			}
			if seen == 0 && k != KindDH {
				t.Fatal("never picked anything")
			}
		})
	}
}

func TestNoneAvailable(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.String(), func(t *testing.T) {
			ws := NewWorkerState(1)
			empty := mustBuild(t, Spec{Kind: k})
			if got := empty.Pick(&Flow{}, nil, ws, 0); got != -1 {
				t.Fatalf("empty table picked %d", got)
			}
			tab := mustBuild(t, Spec{Kind: k, Reals: realsW(1, 2, 0)})
			loads := make([]Load, 3)
			setLoad(&loads[0], 0, 0, true)
			setLoad(&loads[1], 0, 0, true)
			if got := tab.Pick(&Flow{}, loads, ws, 0); got != -1 {
				t.Fatalf("all overloaded or quiescent, picked %d", got)
			}
			if got := tab.Pick(&Flow{}, loads[:2], ws, 0); got != -1 {
				t.Fatalf("short loads, picked %d", got)
			}
		})
	}
}

// TestThresholdHysteresis follows ip_vs_bind_dest/ip_vs_unbind_dest.
func TestThresholdHysteresis(t *testing.T) {
	type step struct {
		active, inactive int32
		over             bool // flag after the step
	}
	tests := []struct {
		name  string
		upper uint32
		lower uint32
		steps []step
	}{
		{"upper and lower", 10, 5, []step{
			{9, 0, false}, {1, 0, true}, {0, 1, true}, {-1, 1, true}, // total 11, still over
			{-3, 0, true}, {-2, 0, true}, {-1, 0, true}, // 8, 6, 5: not below lower yet
			{0, -1, false}, {1, 0, false}, // 4 clears; 5 stays clear until upper
		}},
		{"upper only: 3/4", 8, 0, []step{
			{8, 0, true}, {-1, 0, true}, {-1, 0, true}, {-1, 0, false}, // 7, 6 (6*4=24 !< 24), 5 cleared
			{2, 0, false}, {1, 0, true},
		}},
		{"inactive counts", 4, 2, []step{{1, 3, true}, {-1, 0, true}, {0, -2, false}}},
		{"moving between active and inactive keeps the flag", 4, 0, []step{{4, 0, true}, {-1, 1, true}}},
		{"no thresholds", 0, 0, []step{{100, 100, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &RealSpec{Weight: 1, Upper: tt.upper, Lower: tt.lower}
			var l Load
			for i, s := range tt.steps {
				l.Add(s.active, s.inactive, r)
				if l.Overloaded() != s.over {
					t.Fatalf("step %d (%d active, %d inactive): overloaded = %v, want %v",
						i, l.Active(), l.Inactive(), l.Overloaded(), s.over)
				}
			}
		})
	}
}

func TestMaskAddr(t *testing.T) {
	tests := []struct {
		bits int
		want [4]byte
	}{
		{-1, [4]byte{}}, {0, [4]byte{}}, {8, [4]byte{192}}, {20, [4]byte{192, 168, 0x70}},
		{24, [4]byte{192, 168, 123, 0}}, {32, [4]byte{192, 168, 123, 45}}, {40, [4]byte{192, 168, 123, 45}},
	}
	for _, tt := range tests {
		if got := MaskAddr([4]byte{192, 168, 123, 45}, tt.bits); got != tt.want {
			t.Errorf("MaskAddr /%d = %v, want %v", tt.bits, got, tt.want)
		}
	}
}

// TestLBLCExpiry checks the 24h idle expiry of the full periodic check and
// that a cached real survives a rebuild that keeps it.
func TestLBLCExpiry(t *testing.T) {
	for _, k := range []Kind{KindLBLC, KindLBLCR} {
		t.Run(k.String(), func(t *testing.T) {
			ws := NewWorkerState(1)
			reals := realsW(1, 1, 1)
			tab := mustBuild(t, Spec{Kind: k, Reals: reals})
			loads := make([]Load, 3)
			f := Flow{VIP: [4]byte{10, 1, 0, 1}, Port: 80, Proto: 6}
			setLoad(&loads[0], 5, 0, false)
			first := tab.Pick(&f, loads, ws, 0) // least loaded: real 1
			if first != 1 {
				t.Fatalf("first pick %d", first)
			}
			setLoad(&loads[1], 1, 0, false) // now 2 is lighter, but the cache holds 1
			// Rebuild with real 0 removed: indexes shift, identity holds.
			tab2 := mustBuild(t, Spec{Kind: k, Reals: reals[1:]})
			loads2 := loads[1:]
			if got := tab2.Pick(&f, loads2, ws, 1e9); got != 0 {
				t.Fatalf("after rebuild picked %d, want 0 (the same real)", got)
			}
			// Idle for more than 24h, then let the periodic checks run.
			now := int64(25 * 3600e9)
			other := Flow{VIP: [4]byte{10, 1, 0, 2}, Port: 80, Proto: 6}
			for range cacheFullCheckEvery + 1 {
				now += cacheCheckInterval
				tab2.Pick(&other, loads2, ws, now)
			}
			if got := tab2.Pick(&f, loads2, ws, now); got != 1 {
				t.Fatalf("after expiry picked %d, want 1 (least loaded)", got)
			}
		})
	}
}

func TestAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, k := range allKinds {
		t.Run(k.String(), func(t *testing.T) {
			spec := Spec{Kind: k, Reals: randReals(rng, 64, 10)}
			tab := mustBuild(t, spec)
			loads := make([]Load, 64)
			randLoads(rng, loads, false)
			ws := NewWorkerState(1)
			flows := make([]Flow, 256)
			for i := range flows {
				flows[i] = randFlow(rng)
			}
			i := 0
			allocs := testing.AllocsPerRun(1000, func() {
				tab.Pick(&flows[i%len(flows)], loads, ws, int64(i)*1e8)
				i++
			})
			if allocs != 0 {
				t.Fatalf("Pick allocates %v per call", allocs)
			}
		})
	}
}

// TestRebuildKeepsRRPosition checks that a rebuild does not send the next
// connection back to the first real.
func TestRebuildKeepsRRPosition(t *testing.T) {
	reals := realsW(1, 1, 1, 1)
	loads := make([]Load, 4)
	a := mustBuild(t, Spec{Kind: KindRR, Reals: reals})
	a.Pick(&Flow{}, loads, nil, 0)
	a.Pick(&Flow{}, loads, nil, 0) // next is real 2
	b, err := Rebuild(a, Spec{Kind: KindRR, Reals: reals[1:]})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Pick(&Flow{}, loads[1:], nil, 0); b.reals[got] != reals[2] {
		t.Fatalf("after rebuild picked %v, want %v", b.reals[got], reals[2])
	}
	if c, err := Rebuild(nil, Spec{Kind: KindRR, Reals: reals}); err != nil || c.Pick(&Flow{}, loads, nil, 0) != 0 {
		t.Fatalf("Rebuild(nil) = %v", err)
	}
}

// TestRebuildSharesCursor: a table rebuilt with the same sequence shares the old one's
// cursor, so a pick a worker still makes on the old table before the swap is not repeated
// by the new one; a changed sequence gets a cursor of its own.
func TestRebuildSharesCursor(t *testing.T) {
	loads := make([]Load, 4)
	for _, kind := range []Kind{KindRR, KindWRR} {
		reals := realsW(1, 2, 1, 1)
		a := mustBuild(t, Spec{Kind: kind, Reals: reals})
		b, err := Rebuild(a, Spec{Kind: kind, Reals: reals})
		if err != nil {
			t.Fatal(err)
		}
		// Interleave picks on the old and the new table, as workers do around a swap: one
		// sequence, no real picked twice in a row of len(seq).
		var got []int
		for i := 0; i < 2*len(a.seq); i++ {
			tbl := a
			if i%2 == 1 {
				tbl = b
			}
			got = append(got, tbl.Pick(&Flow{}, loads, nil, 0))
		}
		want := mustBuild(t, Spec{Kind: kind, Reals: reals})
		for i, g := range got {
			if w := want.Pick(&Flow{}, loads, nil, 0); g != w {
				t.Fatalf("%v: pick %d across the rebuild = %d, want %d (picks %v)", kind, i, g, w, got)
			}
		}
		// A changed sequence (a real removed) does not share.
		c, err := Rebuild(b, Spec{Kind: kind, Reals: reals[1:]})
		if err != nil {
			t.Fatal(err)
		}
		if c.pos == b.pos {
			t.Errorf("%v: a changed sequence shares the old cursor", kind)
		}
	}
}

func TestReconfigureThresholds(t *testing.T) {
	tests := []struct {
		name        string
		upper, next uint32
		over        bool
	}{
		{"raised", 4, 8, false},
		{"removed", 4, 0, false},
		{"lowered", 4, 2, true},
		{"same", 4, 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := &RealSpec{Weight: 1, Upper: tt.upper}
			var l Load
			l.Add(4, 0, prev)
			l.Reconfigure(prev, &RealSpec{Weight: 1, Upper: tt.next})
			if l.Overloaded() != tt.over {
				t.Fatalf("overloaded = %v", l.Overloaded())
			}
		})
	}
}
