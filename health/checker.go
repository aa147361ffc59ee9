package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uvs-project/uvs/config"
)

// Log attribute keys.
const (
	logReal   = "real"
	logCheck  = "check"
	logReason = "reason"
	logErr    = "err"
)

// Ref names a real server of a service as forward.RealRef does: the service's VIP, protocol
// and first port, and the real's address and port.
type Ref struct {
	VIP      netip.Addr
	Protocol config.Protocol
	Port     uint16
	Addr     netip.Addr
	RPort    uint16
}

// Status is what the checker says about one real of one service; it mirrors forward.Health.
type Status struct {
	Up            bool
	Remove        bool   // down, and on_failure = "remove": take it out rather than quiesce it
	WeightPercent int    // slow start: 1..100; 0 means 100
	Reason        string // the last failure, kept after recovery for listings
}

// Config configures a Checker.
type Config struct {
	// Update receives every change of a real's status. It is called from the checks'
	// goroutines, for any one Ref always from one goroutine at a time, in order. nil
	// discards (a checker that only logs).
	Update func(Ref, Status)
	// Logger gets one line per transition; nil discards.
	Logger *slog.Logger
}

// Checker runs the health checks of a config. Apply starts and stops checks; Close stops
// them all. Its methods are safe for concurrent use.
type Checker struct {
	update func(Ref, Status)
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	probes, failed atomic.Uint64 // probes run, and how many failed; for metrics

	mu     sync.Mutex // guards checks, routes and closed
	checks map[string]*check
	routes *vipRoutes
	closed bool
}

// New returns a Checker with no checks.
func New(cfg Config) *Checker {
	if cfg.Update == nil {
		cfg.Update = func(Ref, Status) {}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Checker{update: cfg.Update, log: log, ctx: ctx, cancel: cancel, checks: map[string]*check{}}
}

// sub is one real of one service that a check reports to.
type sub struct {
	ref       Ref
	remove    bool
	slowStart time.Duration
	sent      Status // the last status reported; starts as the data plane's default, up
}

// check is one probe shared by every service that names the same real, port and check.
type check struct {
	key    string
	conf   *config.Check
	real   netip.AddrPort
	probe  probe
	update func(Ref, Status)
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	probes *atomic.Uint64 // the Checker's counters
	failed *atomic.Uint64

	mu   sync.Mutex // guards subs; held while reporting so Apply cannot interleave
	subs []*sub

	ran atomic.Bool // a probe has run and its result was reported (Settled)

	// Owned by the run goroutine.
	st         State
	reason     string    // the last probe failure
	downReason string    // the failure that last took the real down; what subscribers see
	upSince    time.Time // start of the current slow start; zero when none
}

// Apply makes the running checks those of conf: checks that stay keep their state, new ones
// start (their first runs spread over their interval), and checks that are gone stop. A real
// that no longer has a check is reported up. conf has been validated. A check that cannot be
// set up (the routes of via = "vip") is logged and runs as a check that fails with that
// reason; Apply fails only after Close.
func (c *Checker) Apply(conf *config.Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("health: checker closed")
	}
	want, marks := c.plan(conf)
	// What each real of each service was last told, and which of them keep a check. A
	// subscriber that moves to another check (a reload changed the interval, say) keeps
	// what it was told, and a new check starts from it, so a real that is down stays down
	// across the reload instead of taking traffic until fall failures.
	sentOf := map[Ref]Status{}
	for _, ck := range c.checks {
		ck.mu.Lock()
		for _, s := range ck.subs {
			sentOf[s.ref] = s.sent
		}
		ck.mu.Unlock()
	}
	keep := map[Ref]bool{}
	for _, w := range want {
		for _, s := range w.subs {
			keep[s.ref] = true
		}
	}
	for key, ck := range c.checks {
		if _, ok := want[key]; ok {
			continue
		}
		ck.stop()
		ck.clear(keep)
		delete(c.checks, key)
	}
	for key, ck := range c.checks {
		ck.setSubs(want[key].subs, sentOf, keep)
	}
	var fresh []string
	for key := range want {
		if c.checks[key] == nil {
			fresh = append(fresh, key)
		}
	}
	slices.Sort(fresh)
	for i, key := range fresh {
		w := want[key]
		ck := &check{
			key: key, conf: w.conf, real: w.tgt.real, update: c.update, subs: w.subs,
			log:  c.log.With(logReal, w.tgt.real.String(), logCheck, w.conf.Type.String()),
			done: make(chan struct{}), st: State{Up: true}, probes: &c.probes, failed: &c.failed,
		}
		for _, s := range w.subs {
			if st, ok := sentOf[s.ref]; ok {
				s.sent = st
				if !st.Up {
					ck.st.Up, ck.reason, ck.downReason = false, st.Reason, st.Reason
				}
			}
		}
		ck.probe = newProbe(w.conf, w.tgt)
		ctx, cancel := context.WithCancel(c.ctx)
		ck.cancel = cancel
		first := Stagger(i, len(fresh), w.conf.Interval, w.conf.Warmup, rand.Float64())
		c.checks[key] = ck
		go ck.run(ctx, first)
	}
	if c.routes != nil {
		c.routes.keep(marks)
	}
	return nil
}

// wanted is one check that a config asks for.
type wanted struct {
	conf *config.Check
	tgt  target
	subs []*sub
}

// plan lists the checks conf asks for, keyed so that equal checks of one real are shared,
// and installs the routes of via = "vip" checks.
func (c *Checker) plan(conf *config.Config) (map[string]*wanted, map[netip.Addr]bool) {
	want := map[string]*wanted{}
	marks := map[netip.Addr]bool{}
	for i := range conf.Services {
		s := &conf.Services[i]
		vport := s.Port
		if len(s.Ports) > 0 {
			vport = s.Ports[0]
		}
		for j := range s.Reals {
			r := &s.Reals[j]
			ck := r.Check
			if ck == nil {
				ck = s.Check
			}
			if ck == nil || ck.Type == config.CheckNone {
				continue
			}
			rport := r.Port
			if rport == 0 {
				rport = vport
			}
			port := rport
			if ck.Port != 0 {
				port = uint16(ck.Port)
			}
			t := target{
				real:  netip.AddrPortFrom(r.Address, port),
				vip:   netip.AddrPortFrom(s.VIP, vport),
				proto: s.Protocol,
			}
			key := fmt.Sprintf("%s %#v", t.real, *ck)
			if ck.Type == config.CheckExec || ck.Via == config.ViaVIP {
				// The probe depends on the service: exec gets the VIP in its environment,
				// and via = "vip" dials it.
				key += fmt.Sprintf(" vip=%s/%s", t.vip, t.proto)
			}
			if ck.Via == config.ViaVIP {
				if c.routes == nil {
					c.routes = newVIPRoutes(c.log)
				}
				m, err := c.routes.mark(r.Address)
				if err != nil {
					// Not fatal: the check fails, with this as its reason, and the
					// next Apply tries again.
					c.log.Error("via vip check", logReal, r.Address.String(), logErr, err)
					t.err = err
				} else {
					t.mark = m
					marks[r.Address] = true
				}
			}
			w := want[key]
			if w == nil {
				w = &wanted{conf: ck, tgt: t}
				want[key] = w
			}
			w.subs = append(w.subs, &sub{
				ref:       Ref{VIP: s.VIP, Protocol: s.Protocol, Port: vport, Addr: r.Address, RPort: rport},
				remove:    s.OnFailure == config.FailRemove,
				slowStart: s.SlowStart,
				sent:      Status{Up: true},
			})
		}
	}
	return want, marks
}

// Close stops every check, waits for them, and removes any routes it installed.
func (c *Checker) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.cancel()
	for _, ck := range c.checks {
		<-ck.done
	}
	c.checks = nil
	if c.routes != nil {
		return c.routes.close()
	}
	return nil
}

// Probes returns how many probes have run, and how many of them failed.
func (c *Checker) Probes() (total, failed uint64) { return c.probes.Load(), c.failed.Load() }

// Checks returns how many distinct checks run.
func (c *Checker) Checks() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.checks)
}

func (ck *check) stop() {
	ck.cancel()
	<-ck.done
}

// setSubs replaces the subscribers. Ones that stay keep what was sent to them, ones that
// come from another check keep what it sent (sentOf), and the next run sends the current
// status where it differs. Ones that go are reported up, unless another check takes them
// (keep): nothing says they are down any more.
func (ck *check) setSubs(subs []*sub, sentOf map[Ref]Status, keep map[Ref]bool) {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	old := map[Ref]*sub{}
	for _, s := range ck.subs {
		old[s.ref] = s
	}
	for _, s := range subs {
		if o := old[s.ref]; o != nil {
			s.sent = o.sent
			delete(old, s.ref)
		} else if st, ok := sentOf[s.ref]; ok {
			s.sent = st
		}
	}
	ck.subs = subs
	for _, o := range old {
		if !keep[o.ref] && o.sent != (Status{Up: true}) {
			ck.update(o.ref, Status{Up: true})
		}
	}
}

// clear reports the subscribers up, except those another check takes (keep): this check is
// gone. Its goroutine has stopped.
func (ck *check) clear(keep map[Ref]bool) {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	for _, s := range ck.subs {
		if !keep[s.ref] && s.sent != (Status{Up: true}) {
			ck.update(s.ref, Status{Up: true})
		}
	}
	ck.subs = nil
}

// run probes every interval, first after first, until ctx ends.
func (ck *check) run(ctx context.Context, first time.Duration) {
	defer close(ck.done)
	timer := time.NewTimer(first)
	defer timer.Stop()
	next := time.Now().Add(first)
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		probed := false
		if !now.Before(next) {
			probed = true
			pctx, cancel := context.WithTimeout(ctx, ck.conf.Timeout)
			err := ck.probe(pctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			ck.probes.Add(1)
			if err != nil {
				ck.failed.Add(1)
			}
			ck.observe(err, time.Now())
			// Runs keep their phase: the next run is one interval after this one began.
			next = next.Add(ck.conf.Interval)
			if !next.After(now) {
				next = now.Add(ck.conf.Interval)
			}
		}
		now = time.Now()
		ramping := ck.report(now)
		if probed && !ck.ran.Load() {
			ck.ran.Store(true)
		}
		wait := next.Sub(now)
		if ramping {
			step := rampStep - now.Sub(ck.upSince)%rampStep
			wait = min(wait, step)
		}
		timer.Reset(max(wait, time.Millisecond))
	}
}

// observe feeds one probe result to the state machine and logs a transition.
func (ck *check) observe(err error, now time.Time) {
	if err != nil {
		ck.reason = err.Error()
	}
	if !ck.st.Observe(err == nil, ck.conf.Rise, ck.conf.Fall) {
		return
	}
	if ck.st.Up {
		ck.upSince = now
		ck.log.Info("real server up", "successes", ck.st.OK)
		return
	}
	ck.downReason = ck.reason
	ck.upSince = time.Time{}
	ck.log.Warn("real server down", logReason, ck.reason, "failures", ck.st.Fail)
}

// report sends each subscriber its status if it changed, and says whether a slow start is
// still under way.
func (ck *check) report(now time.Time) bool {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	ramping := false
	for _, s := range ck.subs {
		// Failures that did not take the real down are not news: only the one that did
		// is reported, so a probe failing now and then does not republish the snapshot.
		want := Status{Up: ck.st.Up, Reason: ck.downReason}
		switch {
		case !ck.st.Up:
			want.Remove = s.remove
		case !ck.upSince.IsZero() && s.slowStart > 0:
			if p := RampPercent(now.Sub(ck.upSince), s.slowStart); p < 100 {
				want.WeightPercent = p
				ramping = true
			}
		}
		if want != s.sent {
			ck.update(s.ref, want)
			s.sent = want
		}
	}
	return ramping
}
