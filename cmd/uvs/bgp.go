package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/uvs-project/uvs/bgp"
	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/control"
	"github.com/uvs-project/uvs/forward"
	"github.com/uvs-project/uvs/health"
)

// bgpRun wires package bgp into `uvs run`: the speaker follows every config the director
// applies, the announcer reads the director's snapshot and the health checker, and
// shutdown withdraws before it stops forwarding.
type bgpRun struct {
	sp   *bgp.Speaker
	ann  *bgp.Announcer
	log  *slog.Logger
	sigs chan os.Signal
	done chan struct{}
	stop context.CancelFunc

	mu  sync.Mutex // guards cfg
	cfg config.BGP // as applied
}

// newBGP starts the speaker for cfg (its sessions come up; nothing is announced until
// start). Without [bgp] it starts nothing, but a reload may add [bgp] later.
func newBGP(cfg *config.Config, log *slog.Logger) (*bgpRun, error) {
	blog := log.With("component", "bgp")
	b := &bgpRun{sp: bgp.NewSpeaker(blog), log: blog, sigs: make(chan os.Signal, 2), done: make(chan struct{}), stop: func() {}}
	signal.Notify(b.sigs, syscall.SIGINT, syscall.SIGTERM)
	if err := b.apply(cfg); err != nil {
		signal.Stop(b.sigs)
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
		// The first signal reached b.sigs too (unless it came before startBGP registered
		// it): take it, so that only a later one ends the drain.
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
	signal.Stop(b.sigs)
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

// editDirector sends --drain-director or --undrain-director, which take no other flag but
// --socket.
func editDirector(fs *flag.FlagSet, socket string, drain bool, stdout, stderr io.Writer) int {
	others := 0
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "socket" {
			others++
		}
	})
	if others != 1 {
		fmt.Fprintln(stderr, "uvs: edit: --drain-director and --undrain-director take no other flag but --socket")
		return 1
	}
	cmd := control.EditUndrainDirector
	if drain {
		cmd = control.EditDrainDirector
	}
	resp := call(socket, &control.Request{Op: control.OpEdit, Edit: &control.Edit{Command: cmd}}, stderr)
	if resp == nil {
		return 1
	}
	fmt.Fprintf(stdout, "uvs: %s\n", resp.Message)
	return 0
}
