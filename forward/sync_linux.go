package forward

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/engine"
	"github.com/uvs-project/uvs/lvssync"
)

// syncRingSize is each worker's ring, each way: 4096 records is two seconds of a worker
// opening 2000 connections per second before the sender (every 20 ms) or the worker (every
// block, at most every idle poll of 100 ms) falls behind; a full ring drops and counts.
const syncRingSize = 4096

// SyncPlane connects the workers to connection sync (lvssync): each worker puts records of
// its connections in its outbound ring and installs records from its inbound ring. It is
// an lvssync.Installer and lvssync.Snapshotter.
type SyncPlane struct {
	d       *Director
	out, in []*lvssync.Ring

	// The hop towards clients for installed NAT connections: the egress of the first NAT
	// client seen (routed clients share their gateway).
	hopMu      sync.Mutex // guards the fields below
	hopTarget  netip.Addr
	hopSet     bool
	hop        engine.SyncHop
	hopAsked   time.Time
	hopPolling bool // a goroutine waits for the hop to resolve
}

// EnableSync gives every worker a pair of sync rings; threshold and period are the
// sync_threshold sysctl's values. Call it once, before Run or while running.
func (d *Director) EnableSync(threshold, period int) *SyncPlane {
	p := &SyncPlane{d: d}
	for _, w := range d.workers {
		out, in := lvssync.NewRing(syncRingSize), lvssync.NewRing(syncRingSize)
		p.out, p.in = append(p.out, out), append(p.in, in)
		w.Engine().SetSync(out, in, threshold, period)
	}
	return p
}

// Set turns the workers' sync on (with new threshold and period) or off, keeping the rings.
func (p *SyncPlane) Set(on bool, threshold, period int) {
	for i, w := range p.d.workers {
		if on {
			w.Engine().SetSync(p.out[i], p.in[i], threshold, period)
		} else {
			w.Engine().SetSync(nil, nil, 0, 0)
		}
	}
}

// Rings are the workers' outbound rings, for the sync sender.
func (p *SyncPlane) Rings() []*lvssync.Ring { return p.out }

// Install queues c for the worker whose table holds the client's connections: the one the
// fanout steering hands the client's packets to (as Restore picks it). The worker installs
// it between blocks and counts what happened (SyncStats). Called by the sync receiver only.
func (p *SyncPlane) Install(c *lvssync.Conn) lvssync.Reason {
	s := p.d.snap.Load()
	if s == nil || len(p.in) == 0 {
		return lvssync.ReasonNoTable
	}
	if !c.Client.IsValid() || !c.VIP.IsValid() {
		return lvssync.ReasonUnknownService
	}
	if c.Flags&lvssync.FlagFwdMask == lvssync.FlagMasq && c.Flags&lvssync.FlagTemplate == 0 {
		p.learnHop(c.Client.Unmap())
	}
	vips, nat := s.Steering()
	key := conntrack.Key{Client: c.Client.Unmap().As16(), VIP: c.VIP.Unmap().As16(), CPort: c.CPort, VPort: c.VPort}
	h := engine.SteerKey(&key, vips, nat)
	i := int(h) % len(p.in)
	r := p.in[i]
	idle := r.Len() == 0
	if !r.Put(c) {
		return lvssync.ReasonRingFull
	}
	if idle {
		p.d.workers[i].Wake() // the worker may be asleep in poll for up to 100 ms
	}
	return lvssync.ReasonNone
}

// Snapshot lists every connection and template of the workers' tables as sync records,
// templates first so that a backup can bind connections to them.
func (p *SyncPlane) Snapshot(yield func(c *lvssync.Conn) bool) {
	s := p.d.snap.Load()
	if s == nil || len(p.d.workers) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	es, err := p.d.Connections(ctx)
	if err != nil {
		p.d.log.Warn("sync bulk copy: read tables", logErr, err)
		return
	}
	to := p.d.workers[0].Engine().Table().Timeouts()
	var c lvssync.Conn
	for pass := 0; pass < 2; pass++ {
		for i := range es {
			if (es[i].Flags&conntrack.FlagTemplate != 0) != (pass == 0) {
				continue
			}
			if s.SyncRecord(&es[i], &to, &c) && !yield(&c) {
				return
			}
		}
	}
}

// SyncInstallStats sums the workers' install outcomes.
func (p *SyncPlane) SyncInstallStats() (installed, updated, localActive, tableFull, noService, noReal uint64) {
	for _, w := range p.d.workers {
		st := w.Engine().SyncStats()
		installed += st.Installed.Load()
		updated += st.Updated.Load()
		localActive += st.LocalActive.Load()
		tableFull += st.TableFull.Load()
		noService += st.NoService.Load()
		noReal += st.NoReal.Load()
	}
	return
}

// learnHop resolves the hop towards client (the first NAT client it is given) with the
// director's egress resolver, and gives it to the workers when it changes. The resolver
// resolves only its targets, so the client is added to them (again after a reload resets
// them, at most once a second); until the hop resolves, a goroutine looks again every
// 100 ms for up to 30 s, since a bulk copy may bring every record before it does.
func (p *SyncPlane) learnHop(client netip.Addr) {
	p.hopMu.Lock()
	defer p.hopMu.Unlock()
	if !p.hopSet {
		p.hopTarget, p.hopSet = client, true
	}
	if p.tryHopLocked() || p.hopPolling {
		return
	}
	p.hopPolling = true
	go func() {
		for range 300 {
			time.Sleep(100 * time.Millisecond)
			p.hopMu.Lock()
			done := p.tryHopLocked()
			p.hopMu.Unlock()
			if done {
				break
			}
		}
		p.hopMu.Lock()
		p.hopPolling = false
		p.hopMu.Unlock()
	}()
}

// tryHopLocked publishes the hop if it resolves, and reports whether it did.
func (p *SyncPlane) tryHopLocked() bool {
	eg := p.d.resolver.LookupAddr(p.hopTarget)
	slot := -1
	for i, ifc := range p.d.ifaces {
		if eg.Valid && ifc.Index == eg.Ifindex {
			slot = i
		}
	}
	if slot < 0 {
		if !eg.Valid && time.Since(p.hopAsked) > time.Second {
			p.hopAsked = time.Now()
			p.d.mu.Lock()
			p.d.resolver.SetAddrs(append(realTargets(p.d.cfg), p.hopTarget))
			p.d.mu.Unlock()
		}
		return false
	}
	h := engine.SyncHop{If: uint8(slot), MAC: eg.DstMAC}
	if h != p.hop {
		p.hop = h
		for _, w := range p.d.workers {
			w.Engine().SetSyncHop(h)
		}
	}
	return true
}
