package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/control"
	"github.com/uvs-project/uvs/forward"
	"github.com/uvs-project/uvs/health"
	"github.com/uvs-project/uvs/vrrp"
)

// Options configure Run. Config is required; the zero value of the rest means defaults.
type Options struct {
	// Config is the validated config to run. It is shared read-only.
	Config *config.Config
	// ConfigPath is the file a reload re-reads (SIGHUP, uvs reload).
	ConfigPath string
	// Logger receives every component's log; nil discards it.
	Logger *slog.Logger
	// StateFile, if set, is where connections are saved on exit and restored from at
	// start (uvs run --state-file).
	StateFile string
	// Stops receives every stop request (SIGINT, SIGTERM); the first also ends Run's
	// context. With [bgp], a later one cuts bgp.drain_time short. The caller registers it
	// before Run, together with the context, so that the first signal reaches both. Nil:
	// a drain runs its full time.
	Stops <-chan os.Signal
	// Reloads receives a value for each reload request (SIGHUP): ConfigPath is read again
	// and applied, or rejected with the running config kept. One that comes during
	// start-up is applied once the director runs. Nil: only the control socket reloads.
	Reloads <-chan os.Signal
}

// Run runs one director until ctx ends, then undoes everything it changed on the host and
// returns nil; a setup error is returned with what was set up undone. A ctx that ends
// during start-up (systemd stopping uvs while the rings and the shield are set up) stops
// it there, with what was started undone, and Run returns nil as after a normal stop.
func Run(ctx context.Context, opts Options) error {
	cfg := opts.Config
	if cfg == nil {
		return errors.New("daemon: no config")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cp, err := openControl(cfg, log)
	if err != nil {
		return err
	}
	// Sync starts before the director so that a bad [sync] (no such interface, an unreadable
	// key_file) fails before the director changes anything on the host.
	sr := newSyncRunner(log)
	if err := sr.apply(cfg.Sync); err != nil {
		cp.close()
		return err
	}
	defer sr.stop()
	ann, err := newBGP(cfg, log, opts.Stops) // before the director: a failure here leaves nothing to undo
	if err != nil {
		cp.close()
		return err
	}
	defer ann.close()
	// The VRRP speaker opens its sockets before the director changes anything on the host,
	// so that a missing interface or address is reported first; it starts after the
	// director exists.
	var d *forward.Director
	vs, err := newVRRP(cfg, func() *forward.Director { return d }, log)
	if err != nil {
		cp.close()
		return err
	}
	// abort undoes what start-up opened before the director ran.
	abort := func() {
		if d != nil {
			d.Close()
		}
		if vs != nil {
			vs.Stop()
		}
		cp.close()
	}
	if stopping(ctx, log) {
		abort()
		return nil
	}
	d, err = forward.NewDirector(forward.Options{Config: cfg, Logger: log, StateFile: opts.StateFile})
	if err != nil {
		abort()
		return err
	}
	// NewDirector is the long step (rings, shield, XDP programs); a stop during it waits
	// here, so that nothing else starts.
	if stopping(ctx, log) {
		abort()
		return nil
	}
	hc := health.New(health.Config{Logger: log.With("component", "health"), Update: func(r health.Ref, st health.Status) {
		ref := forward.RealRef{VIP: r.VIP, Protocol: r.Protocol, Port: r.Port, Addr: r.Addr, RPort: r.RPort}
		h := forward.Health{Up: st.Up, Remove: st.Remove, WeightPercent: st.WeightPercent, Reason: st.Reason}
		if err := d.SetHealth(ref, h); err != nil {
			log.Error("apply health", "real", r.Addr.String(), "err", err)
		}
	}})
	if err := hc.Apply(cfg); err != nil {
		log.Error("health checks", "err", err)
	}
	if vs != nil {
		vs.Start()
		defer vs.Stop()
	}
	defer func() {
		if err := hc.Close(); err != nil {
			log.Error("stop health checks", "err", err)
		}
	}()
	ann.start(d, hc)
	sr.attach(d)
	if vs != nil {
		sr.setVRRP(vrrpView(vs, d))
	}
	dir := withSync{withBGP{withHealth{d, hc, vs}, ann}, sr}
	op := control.NewOperator(dir, opts.ConfigPath, log)
	op.SetBGP(ann)
	cctx, cancel := context.WithCancel(ctx)
	cp.start(cctx, op, dir)
	defer func() {
		cancel()
		cp.close()
	}()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-opts.Reloads:
				reloadFromSignal(op, log)
			}
		}
	}()
	if stopping(ctx, log) {
		d.Close() // never ran: no drain, no gratuitous ARP; the defers stop the rest
		return nil
	}
	return d.Run(ann.runContext(ctx))
}

// stopping reports whether ctx ended during start-up, and says so.
func stopping(ctx context.Context, log *slog.Logger) bool {
	if ctx.Err() == nil {
		return false
	}
	log.Info("stop requested during start-up; undoing it")
	return true
}

// withHealth hands every config the director applies (SIGHUP and control-socket reloads,
// runtime edits) to the health checker too.
type withHealth struct {
	*forward.Director
	hc *health.Checker
	vs *vrrp.Speaker // nil without [[vrrp]]
}

// Reload applies cfg to the director, then to the health checker and the VRRP speaker.
// A VRRP change that needs a restart is rejected first, so the old config keeps running.
func (w withHealth) Reload(cfg *config.Config) error {
	if err := checkVRRPReload(w.vs, w.Director.Config(), cfg); err != nil {
		return err
	}
	if err := w.Director.Reload(cfg); err != nil {
		return err
	}
	if err := w.hc.Apply(cfg); err != nil {
		return err
	}
	if w.vs != nil {
		return w.vs.Reload(cfg)
	}
	return nil
}

// VRRPStatus reports the VRRP instances for uvs list and the metrics.
func (w withHealth) VRRPStatus() []vrrp.Status {
	if w.vs == nil {
		return nil
	}
	return w.vs.Status()
}
