package daemon

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync/atomic"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/forward"
	"github.com/uvs-project/uvs/vrrp"
)

// newVRRP opens the VRRP speaker for cfg's [[vrrp]] instances (nil when there are none);
// the caller starts it once director returns the director. The speaker tells the director
// which VIPs it may answer and forward for, tracks services through the director's health
// view, and takes the data plane's liveness.
func newVRRP(cfg *config.Config, director func() *forward.Director, log *slog.Logger) (*vrrp.Speaker, error) {
	if len(cfg.VRRP) == 0 {
		return nil, nil
	}
	var started atomic.Bool
	return vrrp.New(cfg, vrrp.Options{
		Logger: log.With("component", "vrrp"),
		OnChange: func(active []netip.Addr) {
			if err := director().SetVRRPActive(active); err != nil {
				log.Error("vrrp: apply VIP ownership", "err", err)
			}
		},
		ServiceUp: func(name string) bool { return serviceUp(director(), name) },
		// The same liveness signal BGP withdraws on: every worker makes rounds of its loop.
		// Before the workers first run (the speaker starts just before them) the instance is
		// not put in fault: a data plane that fails to start ends uvs run anyway.
		Alive: func() bool {
			d := director()
			if d == nil {
				return true
			}
			if d.Alive() {
				started.Store(true)
				return true
			}
			return !started.Load()
		},
	})
}

// serviceUp reports whether the named service has a real server that passes its health
// check (track_service).
func serviceUp(d *forward.Director, name string) bool {
	snap := d.Snapshot()
	if snap == nil {
		return true // starting: the data plane is not up yet, nothing to judge
	}
	found := false
	for _, s := range snap.Services() {
		if s.Name != name {
			continue
		}
		found = true
		for _, r := range s.Reals {
			if r != nil && !r.Removed && r.Healthy {
				return true
			}
		}
	}
	return !found
}

// checkVRRPReload rejects a reload that adds or removes VRRP (a restart starts or stops
// the speaker) or changes a key the speaker cannot change while running.
func checkVRRPReload(vs *vrrp.Speaker, old, new *config.Config) error {
	switch {
	case vs == nil && len(new.VRRP) > 0:
		return errors.New("vrrp: adding [[vrrp]] instances needs a restart")
	case vs != nil && len(new.VRRP) == 0:
		return errors.New("vrrp: removing every [[vrrp]] instance needs a restart")
	case vs == nil:
		return nil
	}
	return vrrp.CheckReload(old, new)
}
