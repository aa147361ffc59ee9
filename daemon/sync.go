package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"sync"
	"time"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/forward"
	"github.com/uvs-project/uvs/lvssync"
	"github.com/uvs-project/uvs/vrrp"
)

// syncRunner runs connection synchronization for [sync] and restarts it when a reload
// changes [sync]; the connection tables are the data plane's and are not touched.
type syncRunner struct {
	log *slog.Logger
	ctx context.Context // parent of each engine's context; stop ends the engine

	mu    sync.Mutex         // guards the fields below
	d     *forward.Director  // nil until attach
	plane *forward.SyncPlane // the workers' sync rings; nil until [sync] is first on with a director
	cur   *config.Sync
	// vrrpState (setVRRP) says whether the named VRRP instance is master (known false: no
	// such instance) and who its peers are. Role auto polls it every vrrpPoll; without it,
	// role auto stays backup.
	vrrpState func(instance string) (master, known bool, peers []netip.Addr)
	eng       *lvssync.Engine
	engCtx    context.Context // the running engine's context
	cancel    context.CancelFunc
	done      chan struct{}
}

func newSyncRunner(log *slog.Logger) *syncRunner {
	return &syncRunner{ctx: context.Background(), log: log.With("component", "sync")}
}

// apply starts, restarts or stops sync for s (nil: off). An unchanged s does nothing.
func (r *syncRunner) apply(s *config.Sync) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reflect.DeepEqual(r.cur, s) {
		return nil
	}
	r.stopLocked()
	if s == nil {
		if r.plane != nil {
			r.plane.Set(false, 0, 0)
		}
		return nil
	}
	eng, err := r.startLocked(s)
	if err != nil {
		return err
	}
	r.eng, r.cur = eng, s
	r.attachLocked()
	r.followLocked()
	return nil
}

// setVRRP gives role auto its view of VRRP; called once the VRRP speaker exists.
func (r *syncRunner) setVRRP(state func(instance string) (master, known bool, peers []netip.Addr)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vrrpState = state
	r.followLocked()
}

// followLocked starts following VRRP for a running engine with role auto.
func (r *syncRunner) followLocked() {
	if r.eng == nil || r.vrrpState == nil || r.cur.Role != config.SyncAuto {
		return
	}
	go followVRRP(r.engCtx, r.eng, r.vrrpState, r.cur.VRRPInstance)
}

// vrrpView is setVRRP's function for a VRRP speaker: the instance's state, and as peers
// its unicast peers and the current master's address (from which unkeyed messages are
// then accepted).
func vrrpView(vs *vrrp.Speaker, d *forward.Director) func(string) (bool, bool, []netip.Addr) {
	return func(name string) (bool, bool, []netip.Addr) {
		var peers []netip.Addr
		for _, v := range d.Config().VRRP {
			if v.Name == name {
				peers = append(peers, v.UnicastPeer...)
			}
		}
		for _, st := range vs.Status() {
			if st.Name == name {
				if a, err := netip.ParseAddr(st.Master); err == nil {
					peers = append(peers, a)
				}
				return st.StateValue == vrrp.StateMaster, true, peers
			}
		}
		return false, false, peers
	}
}

// attach connects sync to the director's workers; called once the director exists.
func (r *syncRunner) attach(d *forward.Director) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.d = d
	r.attachLocked()
}

// attachLocked gives the running engine the workers' rings and tables.
func (r *syncRunner) attachLocked() {
	if r.d == nil || r.eng == nil {
		return
	}
	if r.plane == nil {
		r.plane = r.d.EnableSync(r.cur.Threshold, r.cur.Period)
	} else {
		r.plane.Set(true, r.cur.Threshold, r.cur.Period)
	}
	// The engine installs (and asks for a bulk copy) once the director forwards by a
	// snapshot; until then a record has no service to go to.
	eng, plane, d, ctx := r.eng, r.plane, r.d, r.engCtx
	go func() {
		for d.Snapshot() == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		eng.Attach(plane, plane, plane.Rings())
	}()
}

func (r *syncRunner) startLocked(s *config.Sync) (*lvssync.Engine, error) {
	key, err := s.LoadKey()
	if err != nil {
		return nil, err
	}
	maxLen := s.MaxLen
	if maxLen == 0 {
		ifMaxLen := lvssync.InterfaceMaxLen
		if s.IPv6() {
			ifMaxLen = lvssync.InterfaceMaxLen6
		}
		if maxLen, err = ifMaxLen(s.Interface); err != nil {
			return nil, fmt.Errorf("sync: %w", err)
		}
	}
	ucfg := lvssync.UDPConfig{Interface: s.Interface, Port: s.Port, TTL: s.TTL, IPv6: s.IPv6()}
	if len(s.Peers) == 0 {
		ucfg.Group = s.Group
	}
	tr, err := lvssync.ListenUDP(ucfg)
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	role := map[config.SyncRole]lvssync.Role{config.SyncAuto: lvssync.RoleAuto, config.SyncMaster: lvssync.RoleMaster,
		config.SyncBackup: lvssync.RoleBackup, config.SyncBoth: lvssync.RoleBoth}[s.Role]
	eng, err := lvssync.New(lvssync.Config{
		SyncID: uint8(s.SyncID), Role: role, Group: s.Group, Port: s.Port, Peers: s.Peers,
		MaxLen: maxLen, Key: key, MaxRate: s.MaxRate, BulkRate: s.BulkRate, Logger: r.log,
	}, tr, nil, nil)
	if err != nil {
		_ = tr.Close()
		return nil, fmt.Errorf("sync: %w", err)
	}
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	r.cancel, r.done, r.engCtx = cancel, done, ctx
	go func() {
		defer close(done)
		if err := eng.Run(ctx); err != nil {
			r.log.Error("sync stopped", "err", err)
		}
	}()
	// The key is never logged; whether there is one is.
	r.log.Info("sync started", "role", role.String(), "syncid", s.SyncID, "interface", s.Interface,
		"peers", len(s.Peers), "keyed", len(key) > 0)
	return eng, nil
}

func (r *syncRunner) stopLocked() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	r.cancel, r.done, r.eng, r.cur = nil, nil, nil, nil
}

// stop ends sync.
func (r *syncRunner) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}

// stats reports the engine's counters, and false when sync is off.
func (r *syncRunner) stats() (lvssync.Stats, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.eng == nil {
		return lvssync.Stats{}, false
	}
	s := r.eng.Stats()
	if r.plane != nil {
		// Records reach the workers through rings; what became of them is counted there.
		installed, updated, local, full, noSvc, noReal := r.plane.SyncInstallStats()
		s.Installed = installed + updated
		s.Dropped[lvssync.ReasonLocalActive] += local
		s.Dropped[lvssync.ReasonTableFull] += full
		s.Dropped[lvssync.ReasonUnknownService] += noSvc
		s.Dropped[lvssync.ReasonUnknownReal] += noReal
	}
	return s, true
}

// withSync adds connection sync to the director the operator and metrics see: reloads
// (SIGHUP, uvs reload, runtime edits) reach the sync runner too, and SyncStats feeds
// uvs list and the uvs_sync_* metrics.
type withSync struct {
	withBGP
	sync *syncRunner
}

// Reload applies cfg to the director, health checks, VRRP and BGP, then to sync.
func (w withSync) Reload(cfg *config.Config) error {
	if err := w.withBGP.Reload(cfg); err != nil {
		return err
	}
	return w.sync.apply(cfg.Sync)
}

// SyncStats implements control.SyncSource.
func (w withSync) SyncStats() (lvssync.Stats, bool) { return w.sync.stats() }

// vrrpPoll is how often role auto looks at its VRRP instance: a tenth of the shortest
// advert interval, so the sync role follows a transition well within one advert.
const vrrpPoll = 100 * time.Millisecond

// followVRRP makes eng master while the VRRP instance is master, backup otherwise, and
// accepts unkeyed messages from the instance's peers.
func followVRRP(ctx context.Context, eng *lvssync.Engine, state func(string) (bool, bool, []netip.Addr), instance string) {
	t := time.NewTicker(vrrpPoll)
	defer t.Stop()
	for {
		master, known, peers := state(instance)
		eng.SetVRRPMaster(master && known)
		eng.SetVRRPPeers(peers)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
