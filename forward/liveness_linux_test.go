package forward

import (
	"testing"
	"time"
)

func TestLivenessObserve(t *testing.T) {
	var l liveness
	t0 := time.Unix(1000, 0)
	steps := []struct {
		beats []uint64
		at    time.Duration
		want  bool
	}{
		{nil, 0, false},                                       // no workers
		{[]uint64{0, 0}, 0, false},                            // not started
		{[]uint64{1, 0}, 100 * time.Millisecond, false},       // one started
		{[]uint64{2, 1}, 200 * time.Millisecond, true},        // both run
		{[]uint64{2, 5}, StallTimeout, true},                  // worker 0 quiet, within the limit
		{[]uint64{2, 9}, StallTimeout + time.Second, false},   // worker 0 stalled
		{[]uint64{3, 10}, StallTimeout + 2*time.Second, true}, // and back
	}
	for i, s := range steps {
		if got := l.observe(s.beats, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d: %v at %v: alive %v, want %v", i, s.beats, s.at, got, s.want)
		}
	}
}
