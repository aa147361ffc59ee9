package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/uvs-project/uvs/bgp"
	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/control"
	"github.com/uvs-project/uvs/forward"
	"github.com/uvs-project/uvs/health"
)

// bgpRun wires package bgp into the director: the speaker follows every config the director
// applies, the announcer reads the director's snapshot and the health checker, and
// shutdown withdraws before it stops forwarding.
type bgpRun struct {
	sp   *bgp.Speaker
	ann  *bgp.Announcer
	log  *slog.Logger
	sigs <-chan os.Signal // Options.Stops: SIGINT and SIGTERM; nil never delivers
	done chan struct{}
	stop context.CancelFunc

	mu  sync.Mutex // guards cfg
	cfg config.BGP // as applied
}

// newBGP starts the speaker for cfg (its sessions come up; nothing is announced until
// start). Without [bgp] it starts nothing, but a reload may add [bgp] later. stops receives
// every stop signal (Options.Stops).
func newBGP(cfg *config.Config, log *slog.Logger, stops <-chan os.Signal) (*bgpRun, error) {
	blog := log.With("component", "bgp")
	b := &bgpRun{sp: bgp.NewSpeaker(blog), log: blog, sigs: stops, done: make(chan struct{}), stop: func() {}}
	if err := b.apply(cfg); err != nil {
		b.sp.Close()
		return nil, err
	}
	return b, nil
}

// start runs the announcer, which reads d's snapshot, hc's first round and d's liveness.
func (b *bgpRun) start(d *forward.Director, hc *health.Checker) {
	b.ann = bgp.NewAnnouncer(b.sp, bgp.Inputs{Snapshot: d.Snapshot, Settled: hc.Settled, Alive: dataPlaneAlive(d)}, b.log)
	ctx, cancel := context.WithCancel(context.Background())
	b.stop = cancel
	go b.ann.Run(ctx)
}

func (b *bgpRun) apply(cfg *config.Config) error {
	if err := b.sp.Apply(&cfg.BGP); err != nil {
		return err
	}
	b.mu.Lock()
	b.cfg = cfg.BGP
	b.mu.Unlock()
	return nil
}

func (b *bgpRun) present() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg.Present
}

// runContext is the director's context. stop is the context that SIGINT and SIGTERM end
// (signal.NotifyContext): without [bgp] the director's ends with it; with [bgp] the first
// signal withdraws every route, forwarding goes on for bgp.drain_time (so flows the router
// has not moved yet are served), and a second signal cuts the drain short.
func (b *bgpRun) runContext(stop context.Context) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		select {
		case <-stop.Done():
		case <-b.done:
			return
		}
		// The first signal reached b.sigs too (cmd/uvs registers both at once; a stop
		// that was no signal, or Stops nil, sends nothing): take it, so that only a later
		// one ends the drain.
		select {
		case <-b.sigs:
		case <-time.After(100 * time.Millisecond):
		}
		b.mu.Lock()
		drain, present := b.cfg.DrainTime, b.cfg.Present
		b.mu.Unlock()
		if !present {
			return
		}
		b.ann.Stop()
		if drain <= 0 {
			return
		}
		b.log.Info("bgp: routes withdrawn; forwarding during drain_time (a second SIGTERM skips it)", "drain_time", drain.String())
		t := time.NewTimer(drain)
		defer t.Stop()
		select {
		case <-t.C:
		case <-b.sigs:
			b.log.Info("bgp: second signal: drain skipped")
		case <-b.done:
		}
	}()
	return ctx
}

func (b *bgpRun) close() {
	close(b.done)
	b.stop()
	b.sp.Close()
}

// BGPStatus implements control.BGP and control.BGPSource.
func (b *bgpRun) BGPStatus() *control.BGPStatus {
	if !b.present() {
		return nil
	}
	st := &control.BGPStatus{Sessions: []control.BGPSession{}, Announced: []string{},
		State: b.ann.State().String(), Drained: b.ann.Drained()}
	for _, s := range b.sp.Sessions() {
		st.Sessions = append(st.Sessions, control.BGPSession{Address: s.Address.String(), ASN: s.ASN, State: s.State.String(), BFD: s.BFD})
	}
	for _, p := range b.sp.Announced() {
		st.Announced = append(st.Announced, p.String())
	}
	return st
}

// Drain implements control.BGP.
func (b *bgpRun) Drain(on bool) error {
	if !b.present() {
		return errors.New("the running config has no [bgp]")
	}
	b.ann.Drain(on)
	return nil
}

// withBGP applies every config the director applies (SIGHUP and control-socket reloads,
// runtime edits) to the BGP speaker too, after checking that its password files can be read.
type withBGP struct {
	withHealth
	b *bgpRun
}

// Reload applies cfg to the director, the health checker and the BGP speaker.
func (w withBGP) Reload(cfg *config.Config) error {
	if _, err := bgp.ReadPasswords(&cfg.BGP); err != nil {
		return err
	}
	if err := w.withHealth.Reload(cfg); err != nil {
		return err
	}
	if err := w.b.apply(cfg); err != nil {
		w.b.log.Error("bgp: apply", "err", err)
	}
	w.b.ann.Sync()
	return nil
}

// BGPStatus makes the metrics collector export the BGP series.
func (w withBGP) BGPStatus() *control.BGPStatus { return w.b.BGPStatus() }

// dataPlaneAlive is the announcer's liveness signal: every worker makes rounds of its loop.
func dataPlaneAlive(d *forward.Director) func() bool { return d.Alive }
