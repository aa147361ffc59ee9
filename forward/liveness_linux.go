package forward

import (
	"sync"
	"time"
)

// StallTimeout is how long a worker may make no round of its loop before Alive reports the
// data plane failed. A worker makes one at least every 100 ms (its idle poll), so this is
// far beyond any scheduling delay of a loaded machine, and far below BGP hold times.
const StallTimeout = 2 * time.Second

// liveness is Alive's memory of the workers' heartbeats. Control side only.
type liveness struct {
	mu    sync.Mutex  // guards last and since; taken after Director.mu
	last  []uint64    // heartbeat per worker at its last change
	since []time.Time // when it last changed
}

// observe records the workers' heartbeats at now and reports whether every worker has
// started (a heartbeat above 0) and moved within StallTimeout.
func (l *liveness) observe(beats []uint64, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(beats) == 0 {
		return false
	}
	if len(l.last) != len(beats) {
		l.last = make([]uint64, len(beats))
		l.since = make([]time.Time, len(beats))
		for i := range l.since {
			l.since[i] = now
		}
	}
	alive := true
	for i, b := range beats {
		if b != l.last[i] {
			l.last[i], l.since[i] = b, now
		}
		if b == 0 || now.Sub(l.since[i]) > StallTimeout {
			alive = false
		}
	}
	return alive
}

// Alive reports whether the data plane makes progress: every worker has started and has
// completed a round of its loop within StallTimeout. It is false before Run starts the
// workers and after they stop. The BGP announcer withdraws the director's routes while it
// is false; VRRP can use it as a fault condition. Safe for concurrent use; cheap enough to
// call a few times a second.
func (d *Director) Alive() bool {
	d.mu.Lock() // close clears d.workers under it
	if d.closed || d.stop.Load() {
		d.mu.Unlock()
		return false
	}
	beats := make([]uint64, len(d.workers))
	for i, w := range d.workers {
		beats[i] = w.Heartbeat()
	}
	d.mu.Unlock()
	return d.live.observe(beats, time.Now())
}
