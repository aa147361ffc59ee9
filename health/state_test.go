package health

import (
	"testing"
	"time"
)

func TestObserve(t *testing.T) {
	tests := []struct {
		name    string
		up      bool
		results string // o = success, x = failure
		rise    int
		fall    int
		want    string // state after each result: U or D, with ! on a transition
	}{
		{"up stays up on success", true, "ooo", 2, 2, "UUU"},
		{"fall 2", true, "oxx", 2, 2, "UUD!"},
		{"fall 1", true, "x", 2, 1, "D!"},
		{"interrupted failures do not count", true, "xoxoxx", 2, 2, "UUUUUD!"},
		{"rise 2", false, "ooo", 2, 2, "DU!U"},
		{"interrupted successes do not count", false, "oxoxoo", 2, 2, "DDDDDU!"},
		{"rise 1", false, "o", 1, 3, "U!"},
		{"down stays down", false, "xxx", 1, 1, "DDD"},
		{"flap", true, "xxoooxx", 3, 2, "UD!DDU!UD!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := State{Up: tt.up}
			got := ""
			for _, r := range tt.results {
				changed := s.Observe(r == 'o', tt.rise, tt.fall)
				if s.Up {
					got += "U"
				} else {
					got += "D"
				}
				if changed {
					got += "!"
				}
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestObserveModel checks Observe against the definition: the state after a result is
// decided by the run of equal results that ends with it.
func TestObserveModel(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		rise, fall := int(seed%3)+1, int(seed/3%3)+1
		s := State{Up: true}
		up, run, last := true, 0, false
		x := seed*2654435761 + 1
		for i := 0; i < 100; i++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			ok := x%3 != 0
			if i == 0 || ok != last {
				run = 0
			}
			run++
			last = ok
			if ok && run >= rise {
				up = true
			}
			if !ok && run >= fall {
				up = false
			}
			s.Observe(ok, rise, fall)
			if s.Up != up {
				t.Fatalf("seed %d step %d: Up = %v, model %v", seed, i, s.Up, up)
			}
		}
	}
}

func TestRampPercent(t *testing.T) {
	tests := []struct {
		elapsed, d time.Duration
		want       int
	}{
		{0, 30 * time.Second, 1},
		{999 * time.Millisecond, 30 * time.Second, 1},
		{time.Second, 30 * time.Second, 3},
		{15 * time.Second, 30 * time.Second, 50},
		{15900 * time.Millisecond, 30 * time.Second, 50}, // steps of a second
		{29 * time.Second, 30 * time.Second, 96},
		{30 * time.Second, 30 * time.Second, 100},
		{time.Hour, 30 * time.Second, 100},
		{5 * time.Second, 0, 100},
		{-time.Second, 10 * time.Second, 1},
		{time.Second, 10 * time.Second, 10},
		{50 * time.Second, 100 * time.Second, 50},
	}
	for _, tt := range tests {
		if got := RampPercent(tt.elapsed, tt.d); got != tt.want {
			t.Errorf("RampPercent(%v, %v) = %d, want %d", tt.elapsed, tt.d, got, tt.want)
		}
	}
	// Monotonic, within 1..100.
	prev := 0
	for e := time.Duration(0); e <= 31*time.Second; e += 100 * time.Millisecond {
		p := RampPercent(e, 30*time.Second)
		if p < prev || p < 1 || p > 100 {
			t.Fatalf("RampPercent(%v) = %d after %d", e, p, prev)
		}
		prev = p
	}
}

func TestStagger(t *testing.T) {
	const n = 1000
	interval := time.Second
	seen := map[time.Duration]bool{}
	for i := 0; i < n; i++ {
		d := Stagger(i, n, interval, 0, 0)
		if d < 0 || d >= interval {
			t.Fatalf("Stagger(%d) = %v, outside [0, %v)", i, d, interval)
		}
		seen[d] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct first runs for %d checks, want all distinct", len(seen), n)
	}
	// No 10 ms window holds more than its share (10 of 1000 per second, plus one).
	buckets := map[int64]int{}
	for i := 0; i < n; i++ {
		buckets[int64(Stagger(i, n, interval, 0, 0)/(10*time.Millisecond))]++
	}
	for b, c := range buckets {
		if c > 11 {
			t.Errorf("window %d holds %d first runs", b, c)
		}
	}
	if got := Stagger(0, 1, interval, 2*time.Second, 0.5); got != time.Second {
		t.Errorf("warmup jitter: got %v, want 1s", got)
	}
	if got := Stagger(3, 4, 4*time.Second, time.Second, 0.25); got != 3250*time.Millisecond {
		t.Errorf("stagger plus jitter: got %v, want 3.25s", got)
	}
}
