package health

import "time"

// State is one check's rise/fall state machine, as keepalived's: a real that is up goes down
// after Fall consecutive failures, and a real that is down comes up after Rise consecutive
// successes. The zero value is down; New starts checks up, as keepalived does without alpha.
type State struct {
	Up   bool
	OK   int // consecutive successes
	Fail int // consecutive failures
}

// Observe records one probe result and reports whether Up changed.
func (s *State) Observe(ok bool, rise, fall int) bool {
	if ok {
		s.OK++
		s.Fail = 0
		if !s.Up && s.OK >= rise {
			s.Up = true
			return true
		}
		return false
	}
	s.Fail++
	s.OK = 0
	if s.Up && s.Fail >= fall {
		s.Up = false
		return true
	}
	return false
}

// rampStep is how often slow start raises the weight: once a second, as the kernel's own
// weight changes are coarse anyway and each step republishes the snapshot.
const rampStep = time.Second

// RampPercent is the share of its weight, in percent (1..100), that a real gets elapsed into a
// slow start of length d: a straight line from 1% to 100%, taken in rampStep steps.
func RampPercent(elapsed, d time.Duration) int {
	if d <= 0 || elapsed >= d {
		return 100
	}
	if elapsed < 0 {
		elapsed = 0
	}
	elapsed = elapsed.Truncate(rampStep)
	p := int(int64(elapsed) * 100 / int64(d))
	return min(max(p, 1), 100)
}

// Stagger is the delay before the first run of check i of n that share an interval: the runs
// are spread evenly over the interval, then jitter (0 <= jitter < 1, a fraction of warmup) is
// added, so that many checks, or a restart, do not fire at once.
func Stagger(i, n int, interval, warmup time.Duration, jitter float64) time.Duration {
	var d time.Duration
	if n > 0 && i > 0 {
		d = time.Duration(int64(interval) / int64(n) * int64(i%n))
	}
	return d + time.Duration(float64(warmup)*jitter)
}
