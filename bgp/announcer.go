package bgp

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uvs-project/uvs/forward"
)

// Interval is how often the announcer compares what it announces with what it should. A
// health change reaches the router within this plus BGP's own update delay.
const Interval = 200 * time.Millisecond

// Inputs are where the announcer reads the director's state. Every func is called from the
// announcer's goroutine and must not block.
type Inputs struct {
	Snapshot func() *forward.Snapshot // the published snapshot; nil before the workers start
	Settled  func() bool              // every real server has had its first health check; nil = true
	Alive    func() bool              // the data plane makes progress; nil = true
}

// Announcer keeps the speaker's routes equal to Desired. Safe for concurrent use.
type Announcer struct {
	sp  *Speaker
	in  Inputs
	log *slog.Logger

	drained  atomic.Bool
	stopping atomic.Bool

	mu      sync.Mutex // guards started, reason; held across a sync
	started bool       // latched: once ready, a reload's new checks do not withdraw everything
	reason  Reason
}

// NewAnnouncer returns an announcer for sp; Run drives it.
func NewAnnouncer(sp *Speaker, in Inputs, log *slog.Logger) *Announcer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Announcer{sp: sp, in: in, log: log}
}

// Run syncs every Interval until ctx ends.
func (a *Announcer) Run(ctx context.Context) {
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		a.Sync()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync makes the announced routes what the director's state asks for, now.
func (a *Announcer) Sync() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.sp.Running() { // no [bgp]: nothing to announce, nothing to log
		if _, err := a.sp.Announce(nil); err != nil {
			a.log.Error("bgp: announce", "err", err)
		}
		return
	}
	var snap *forward.Snapshot
	if a.in.Snapshot != nil {
		snap = a.in.Snapshot()
	}
	if !a.started && snap != nil && (a.in.Settled == nil || a.in.Settled()) {
		a.started = true
	}
	d := Director{Started: a.started, Stopping: a.stopping.Load(), Drained: a.drained.Load(),
		Alive: a.in.Alive == nil || a.in.Alive()}
	want, reason := Desired(snap, d)
	if reason != a.reason {
		a.log.Info("bgp: director state", "state", reason.String())
		a.reason = reason
	}
	if _, err := a.sp.Announce(want); err != nil {
		a.log.Error("bgp: announce", "err", err)
	}
}

// Drain withdraws every route (on true) and keeps them withdrawn until Drain(false).
// Forwarding goes on: connections the router still sends here are served.
func (a *Announcer) Drain(on bool) {
	if a.drained.Swap(on) != on {
		a.log.Info("bgp: drain", "drained", on)
	}
	a.Sync()
}

// Drained reports whether the director is drained.
func (a *Announcer) Drained() bool { return a.drained.Load() }

// Stop withdraws every route for good: the first step of a shutdown.
func (a *Announcer) Stop() {
	a.stopping.Store(true)
	a.Sync()
}

// State returns the director's announcement state.
func (a *Announcer) State() Reason {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reason
}
