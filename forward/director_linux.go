//go:build linux

package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/afpacket"
	"github.com/uvs-project/uvs/forward/afxdp"
	"github.com/uvs-project/uvs/forward/egress"
	"github.com/uvs-project/uvs/forward/engine"
	"github.com/uvs-project/uvs/forward/shield"
	"github.com/uvs-project/uvs/forward/statefile"
	"github.com/uvs-project/uvs/forward/steer"
)

// Log attribute keys.
const (
	logVIP    = "vip"
	logReal   = "real"
	logIface  = "iface"
	logErr    = "err"
	logWorker = "worker"
)

// Options configure a Director. Config is required; the zero value of the rest means defaults.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	Ring   afpacket.RingConfig
	// StateFile, if set, is where connections and persistence templates are saved on exit
	// and restored from at start (uvs run --state-file).
	StateFile string
	// ResolveWait bounds how long Start waits for every real server's egress to resolve
	// before it starts forwarding (default 3 s). Unresolved reals are reported and their
	// traffic counted as dropped until they resolve.
	ResolveWait time.Duration
}

// Director is the running data plane: one worker per CPU (or as configured), each with an RX
// ring and a TX queue per interface, fed by a snapshot that the control side rebuilds when the
// config, a route or a neighbour changes.
type Director struct {
	log    *slog.Logger
	opts   Options
	ifaces []engine.Iface

	mu     sync.Mutex // guards cfg, reg, gen, closed and the publishing of snapshots
	closed bool       // close ran: nothing may be published (health updates can come late)
	cfg    *config.Config
	reg    *engine.Registry
	gen    uint64
	steer  []bpf.RawInstruction

	snap     atomic.Pointer[engine.Snapshot]
	workers  []worker
	backend  config.Backend // afpacket or afxdp, as chosen at start
	xdp      *afxdp.XDP     // afxdp: the program, its maps and links
	umem     *afxdp.UMEM    // afxdp: the packet memory
	stop     atomic.Bool
	wg       sync.WaitGroup
	shield   *shield.Shield
	rxRing   config.RXRing // the receive ring every worker reads
	nd       *ndGroups     // solicited-node memberships of the IPv6 VIPs; guarded by mu
	resolver *egress.Resolver
	epoch    time.Time
	live     liveness // Alive's state
}

// NewDirector opens every socket and ring and installs the shield, but forwards nothing until
// Run. On error everything it set up is undone.
func NewDirector(opts Options) (_ *Director, err error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("forward: no config")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.ResolveWait == 0 {
		opts.ResolveWait = 3 * time.Second
	}
	nw := cfg.Director.Workers
	if nw <= 0 {
		nw = runtime.NumCPU()
	}
	d := &Director{log: log, opts: opts, cfg: cfg, reg: engine.NewRegistry(nw), epoch: time.Now()}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	for _, name := range cfg.Director.Interfaces {
		ifc, err := lookupIface(name)
		if err != nil {
			return nil, err
		}
		d.ifaces = append(d.ifaces, ifc)
	}
	if d.backend, err = d.chooseBackend(); err != nil {
		return nil, err
	}
	if d.backend == config.BackendAFPacket {
		if d.shield, err = shield.NewShield(shield.ShieldConfig{Interfaces: cfg.Director.Interfaces, Logger: log, Mode: cfg.Director.Shield}); err != nil {
			return nil, err
		}
	}
	if d.nd, err = newNDGroups(); err != nil {
		return nil, err
	}
	if d.resolver, err = egress.NewResolver(egress.ResolverConfig{Logger: log, OnChange: d.egressChanged}); err != nil {
		return nil, err
	}
	to := conntrack.DefaultTimeouts()
	to.SetIPVS(cfg.Timeouts.TCP, cfg.Timeouts.TCPFin, cfg.Timeouts.UDP)
	perWorker := max(cfg.Conntrack.MaxConnections/nw, 1024)
	if opts.Ring.Version == 0 {
		opts.Ring.Version = cfg.Director.RXRing
	}
	ring := opts.Ring.WithDefaults()
	ring.Solo = nw == 1
	d.rxRing = ring.Version
	for i := 0; i < nw; i++ {
		ct, err := conntrack.New(conntrack.Config{Capacity: perWorker, Timeouts: to, SloppyTCP: cfg.Conntrack.SloppyTCP})
		if err != nil {
			return nil, fmt.Errorf("forward: worker %d: %w", i, err)
		}
		ct.Prefault() // resident from the start: a flood cannot make memory grow
		// Scratch holds the frames a batch generates: ARP replies, ICMP errors, the fragments
		// of reassembled datagrams (a 64 KiB datagram is about 45 fragments of 1514 bytes,
		// 68 KiB) and TUN frames (a segmented 64 KiB GSO frame takes up to maxFrameScratch,
		// 106 KiB). The worker flushes early when less than maxFrameScratch is left, so 256 KiB
		// never runs short for one frame.
		eng := engine.NewEngine(i, ct, ring.BlockBytes/64, 256<<10, uint64(i)+1)
		if d.backend == config.BackendAFXDP {
			if err := d.newXDPWorker(i, nw, eng); err != nil {
				return nil, err
			}
			continue
		}
		w, err := afpacket.NewWorker(i, eng, &d.snap, &d.stop, d.epoch)
		if err != nil {
			return nil, err
		}
		d.workers = append(d.workers, w)
	}
	d.paceGC()
	if d.backend == config.BackendAFXDP {
		return d, d.openXDP()
	}
	for slot, ifc := range d.ifaces {
		var group uint16
		ignoreOut := true
		for _, w := range d.workers {
			var err error
			if group, ignoreOut, err = w.(*afpacket.Worker).Open(ifc.Index, slot, ring, group, ignoreOut, cfg.Director.TXMode == config.TXRing); err != nil {
				return nil, fmt.Errorf("%w (interface %s)", err, ifc.Name)
			}
		}
	}
	return d, nil
}

func lookupIface(name string) (engine.Iface, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return engine.Iface{}, fmt.Errorf("forward: interface %s: %w", name, err)
	}
	a := link.Attrs()
	ifc := engine.Iface{Name: name, Index: a.Index, MTU: a.MTU}
	if len(a.HardwareAddr) != 6 {
		return engine.Iface{}, fmt.Errorf("forward: interface %s: not an Ethernet device", name)
	}
	copy(ifc.MAC[:], a.HardwareAddr)
	if addrs, err := netlink.AddrList(link, netlink.FAMILY_V4); err == nil && len(addrs) > 0 {
		copy(ifc.Addr[:], addrs[0].IP.To4())
	}
	if addrs, err := netlink.AddrList(link, netlink.FAMILY_V6); err == nil {
		for _, ad := range addrs {
			if ip := ad.IP.To16(); ip != nil && ip.IsGlobalUnicast() {
				copy(ifc.Addr6[:], ip) // the source of Packet Too Big to a NAT real
				break
			}
		}
	}
	return ifc, nil
}

// Run forwards until ctx is done, then stops the workers and undoes every change to the host.
func (d *Director) Run(ctx context.Context) error {
	defer d.close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resolverDone := make(chan error, 1)
	go func() { resolverDone <- d.resolver.Run(rctx) }()

	d.mu.Lock()
	d.resolver.SetAddrs(realTargets(d.cfg))
	d.mu.Unlock()
	d.waitResolved(ctx)
	if err := d.publish(); err != nil {
		return err
	}
	if d.opts.StateFile != "" {
		d.restoreState()
	}
	for _, w := range d.workers {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			w.Run()
		}()
	}
	d.announce(nil)
	var ctCap, ctBytes int
	for _, w := range d.workers {
		ctCap += w.Engine().Table().Capacity()
		ctBytes += w.Engine().Table().MemoryBytes()
	}
	dp := d.DataPlane()
	d.log.Info("forwarding", "workers", len(d.workers), "interfaces", len(d.ifaces), "services", len(d.cfg.Services),
		"conntrack_capacity", ctCap, "conntrack_bytes", ctBytes, "backend", dp.Backend, "rx_ring", dp.RXRing,
		"tx_mode", dp.TXMode, "shield", dp.Shield)

	var err error
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	ticks := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			d.collectRingStats()
			if ticks++; ticks%10 == 0 {
				d.logTotals("counters", slog.LevelDebug)
			}
		case err = <-resolverDone:
			// The resolver runs on a child of ctx: when ctx ends, this case and the one
			// above are ready together, and the resolver's context error is a stop, not
			// a failure (a stop right at start-up made uvs exit 1).
			if ctx.Err() != nil {
				err = nil
			} else if err != nil {
				err = fmt.Errorf("forward: egress resolver: %w", err)
			}
			break loop
		}
	}
	d.stopWorkers()
	d.collectRingStats()
	d.logTotals("stopped", slog.LevelInfo)
	if d.opts.StateFile != "" {
		if serr := d.saveState(); serr != nil && err == nil {
			err = serr
		}
	}
	return err
}

// waitResolved waits until every real server resolves, or ResolveWait passes.
func (d *Director) waitResolved(ctx context.Context) {
	deadline := time.Now().Add(d.opts.ResolveWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		d.mu.Lock()
		targets := realTargets(d.cfg)
		d.mu.Unlock()
		ok := true
		for _, t := range targets {
			if !d.resolver.LookupAddr(t).Valid {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Reload applies a new, validated config. Unchanged services keep their connections,
// counters and persistence; on error the running state is unchanged.
func (d *Director) Reload(cfg *config.Config) error {
	if !slices.Equal(cfg.Director.Interfaces, d.cfg.Director.Interfaces) {
		return errors.New("forward: director.interfaces cannot change on reload; restart uvs")
	}
	d.mu.Lock()
	old := d.cfg
	d.cfg = cfg
	d.resolver.SetAddrs(realTargets(cfg))
	d.mu.Unlock()
	if err := d.publish(); err != nil {
		d.mu.Lock()
		d.cfg = old
		d.mu.Unlock()
		return err
	}
	d.announce(old)
	return nil
}

// egressChanged is the resolver's callback: rebuild with the new routes and neighbours.
func (d *Director) egressChanged() {
	if d.snap.Load() == nil {
		return // not started; Run publishes the first snapshot
	}
	if err := d.publish(); err != nil {
		d.log.Error("rebuild after egress change", logErr, err)
	}
}

// publish builds a snapshot from the current config and egress, updates the shield and the
// steering program, and hands the snapshot to the workers.
func (d *Director) publish() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.gen++
	s, err := d.reg.Build(d.cfg, d.ifaces, d.egress, d.gen)
	if err != nil {
		return err
	}
	// Both backends join the VIPs' solicited-node groups: a NIC's multicast filter and an
	// MLD-snooping switch deliver neighbour solicitations only to joined groups.
	if err := d.nd.set(ifindexes(d.ifaces), vipAddrs(d.cfg)); err != nil {
		d.log.Warn("solicited-node groups", logErr, err)
	}
	if d.xdp != nil {
		return d.publishXDP(s)
	}
	vips, nat := s.ShieldSets()
	snat := make([]shield.NATReal, len(nat))
	for i, n := range nat {
		snat[i] = shield.NATReal{Addr: n.Addr, Proto: n.Proto, Port: n.Port, V6: n.V6, Addr6: n.Addr6}
	}
	if err := d.shield.UpdateAddrs(vips, snat); err != nil {
		return err
	}
	sv, sn := s.Steering()
	prog, err := steer.BuildSteerProgram(sv, sn)
	if err != nil {
		return err
	}
	if !slices.Equal(prog, d.steer) {
		filter := make([]unix.SockFilter, len(prog))
		for i, ins := range prog {
			filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
		}
		for slot := range d.ifaces {
			if err := d.workers[0].(*afpacket.Worker).SetFanoutProgram(slot, filter); err != nil {
				return err
			}
		}
		d.steer = prog
	}
	d.snap.Store(s)
	d.reg.Commit(s)
	d.logQuorum(s)
	return nil
}

// logQuorum logs each service that went below its quorum or back above it in s.
func (d *Director) logQuorum(s *engine.Snapshot) {
	for _, svc := range s.Services() {
		if !svc.QuorumChanged() {
			continue
		}
		vip := netip.AddrPortFrom(conntrack.Addr(svc.VIP), svc.Port).String()
		if !svc.Down {
			d.log.Info("service quorum regained", logVIP, vip, "live_weight", svc.LiveWeight())
			continue
		}
		sorry := "none"
		for _, r := range svc.Reals {
			if r != nil && r.Sorry {
				sorry = netip.AddrPortFrom(conntrack.Addr(r.Addr), r.Port).String()
			}
		}
		d.log.Warn("service below quorum", logVIP, vip, "live_weight", svc.LiveWeight(), "sorry_server", sorry)
	}
}

// egress maps a real server's resolved egress onto an interface slot.
func (d *Director) egress(addr [16]byte) engine.Egress {
	e := d.resolver.LookupAddr(conntrack.Addr(addr))
	if !e.Valid {
		return engine.NoEgress
	}
	for slot, ifc := range d.ifaces {
		if ifc.Index == e.Ifindex {
			return engine.Egress{TxIf: slot, SrcMAC: e.SrcMAC, DstMAC: e.DstMAC, SrcIP: e.SrcAddr, SrcIP6: e.SrcAddr6, MTU: e.MTU}
		}
	}
	d.log.Warn("real server egress is not a listened interface", logReal, conntrack.Addr(addr).String(), logIface, e.Ifname)
	return engine.NoEgress
}

// announce sends gratuitous ARP for IPv4 VIPs and unsolicited neighbour advertisements for
// IPv6 VIPs that are new since old (all of them when old is nil).
func (d *Director) announce(old *config.Config) {
	if len(d.cfg.VRRP) > 0 {
		return // the VRRP speaker announces the VIPs its master instances own
	}
	had := map[netip.Addr]bool{}
	if old != nil {
		for _, s := range old.Services {
			had[s.VIP] = true
		}
	}
	seen := map[netip.Addr]bool{}
	for _, s := range d.cfg.Services {
		if had[s.VIP] || seen[s.VIP] {
			continue
		}
		seen[s.VIP] = true
		if s.VIP.Is6() {
			v := s.VIP.As16()
			for _, ifc := range d.ifaces {
				go func() {
					// RFC 4861 section 7.2.6: up to MAX_NEIGHBOR_ADVERTISEMENT (3) of them.
					if err := sendUnsolicitedNA(ifc.Name, v, 3, 200*time.Millisecond); err != nil {
						d.log.Warn("unsolicited neighbour advertisement", logVIP, s.VIP.String(), logIface, ifc.Name, logErr, err)
					}
				}()
			}
			continue
		}
		v := s.VIP.As4()
		for _, ifc := range d.ifaces {
			go func() {
				if err := sendGratuitousARP(ifc.Name, v, 3, 200*time.Millisecond); err != nil {
					d.log.Warn("gratuitous ARP", logVIP, net.IP(v[:]).String(), logIface, ifc.Name, logErr, err)
				}
			}()
		}
	}
}

// Connections returns a copy of every worker's connection table (connections and
// persistence templates). Each worker copies its own table between two ring blocks.
func (d *Director) Connections(ctx context.Context) ([]conntrack.Entry, error) {
	var out []conntrack.Entry
	for _, w := range d.workers {
		es, err := w.Dump(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	return out, nil
}

// SetHealth records a real server's health and republishes the snapshot if it changed.
func (d *Director) SetHealth(r engine.RealRef, h engine.Health) error {
	d.mu.Lock()
	changed := d.reg.SetHealth(r, h)
	d.mu.Unlock()
	if !changed {
		return nil
	}
	if d.snap.Load() == nil {
		return nil
	}
	return d.publish()
}

func (d *Director) stopWorkers() {
	d.stop.Store(true)
	for _, w := range d.workers {
		w.Wake()
	}
	d.wg.Wait()
}

// close releases sockets and removes the shield. Safe to call more than once.
func (d *Director) close() {
	d.mu.Lock() // waits for a publish under way (a health update, say)
	defer d.mu.Unlock()
	d.closed = true
	d.closeXDP() // detach first: no frame is redirected to a closed socket
	for _, w := range d.workers {
		w.Close()
	}
	d.workers = nil
	d.closeUMEM()
	if d.shield != nil {
		if err := d.shield.Close(); err != nil {
			d.log.Error("remove shield", logErr, err)
		}
		d.shield = nil
	}
	if d.nd != nil {
		d.nd.close()
	}
	if d.resolver != nil {
		d.resolver.Close() // never ran (a stop during start-up); else Run released it
	}
}

// ifindexes are the interface indexes of ifaces.
func ifindexes(ifaces []engine.Iface) []int {
	out := make([]int, len(ifaces))
	for i, ifc := range ifaces {
		out[i] = ifc.Index
	}
	return out
}

// vipAddrs are the VIPs of cfg, each once: the services', then the [[vrrp]] instances'
// (vrrpAddrs).
func vipAddrs(cfg *config.Config) []netip.Addr {
	var out []netip.Addr
	for _, s := range cfg.Services {
		if !slices.Contains(out, s.VIP) {
			out = append(out, s.VIP)
		}
	}
	return vrrpAddrs(cfg, out)
}

// Stats returns the workers' counters (read with atomic loads).
func (d *Director) Stats() []*engine.EngineStats {
	out := make([]*engine.EngineStats, 0, len(d.workers))
	for _, w := range d.workers {
		out = append(out, w.Engine().Stats())
	}
	return out
}

// DataPlane returns the mechanisms this director runs with.
func (d *Director) DataPlane() DataPlane {
	d.mu.Lock()
	p := DataPlane{Backend: BackendAFPacket, RXRing: d.rxRing.String(), TXMode: d.cfg.Director.TXMode.String()}
	if d.shield != nil {
		p.Shield = d.shield.Kind()
	}
	if d.backend == config.BackendAFXDP {
		// The XDP program keeps VIP traffic from the stack itself: no shield, no rings.
		p = DataPlane{Backend: "afxdp", Shield: "none"}
	}
	d.mu.Unlock()
	return p
}

// Snapshot returns the snapshot the workers currently forward by.
func (d *Director) Snapshot() *engine.Snapshot { return d.snap.Load() }

func realTargets(cfg *config.Config) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, s := range cfg.Services {
		for _, r := range s.Reals {
			a := r.Address.Unmap()
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
		// A sorry server is resolved up front, so it can take over at once.
		if a := s.SorryServer.Addr().Unmap(); s.SorryServer.IsValid() && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// collectRingStats adds the kernel's per-socket ring counters (PACKET_STATISTICS, which reset
// on each read) to the workers' counters. Control side, once a second.
func (d *Director) collectRingStats() {
	for _, w := range d.workers {
		w.CollectRingStats()
	}
}

// totals sums the workers' counters.
type totals struct {
	RxFrames, TxFrames, Forwarded, Replies, ARPReplies, Ignored uint64
	RingPackets, RingDrops, ICMPSent, ICMPLimited, ICMPRelayed  uint64
	Conns                                                       int64
	Drops                                                       map[string]uint64
}

// totals returns the sum of every worker's counters, drops by reason (non-zero only).
func (d *Director) totals() totals {
	t := totals{Drops: map[string]uint64{}}
	for _, w := range d.workers {
		s := w.Engine().Stats()
		t.RxFrames += s.RxFrames.Load()
		t.TxFrames += s.TxFrames.Load()
		t.Forwarded += s.Forwarded.Load()
		t.Replies += s.Replies.Load()
		t.ARPReplies += s.ARPReplies.Load()
		t.Ignored += s.Ignored.Load()
		t.RingPackets += s.RingPackets.Load()
		t.RingDrops += s.RingDrops.Load()
		t.ICMPSent += s.ICMPSent.Load()
		t.ICMPLimited += s.ICMPLimited.Load()
		t.ICMPRelayed += s.ICMPRelayed.Load()
		t.Conns += s.Conns.Load()
		s.EachDrop(func(reason string, v uint64) {
			if v != 0 {
				t.Drops[reason] += v
			}
		})
	}
	return t
}

func (d *Director) logTotals(msg string, level slog.Level) {
	t := d.totals()
	attrs := []any{"rx", t.RxFrames, "tx", t.TxFrames, "forwarded", t.Forwarded, "nat_replies", t.Replies,
		"arp_replies", t.ARPReplies, "left_to_kernel", t.Ignored, "conns", t.Conns, "icmp_relayed", t.ICMPRelayed,
		"ring_packets", t.RingPackets, "ring_drops", t.RingDrops, "icmp_sent", t.ICMPSent, "icmp_limited", t.ICMPLimited}
	for k, v := range t.Drops {
		attrs = append(attrs, "drop_"+k, v)
	}
	attrs = append(attrs, d.tunnelAttrs()...)
	d.log.Log(context.Background(), level, msg, attrs...)
}

// nowMs is the workers' coarse clock.
func (d *Director) nowMs() uint32 { return uint32(time.Since(d.epoch) / time.Millisecond) }

// saveState writes every worker's table to the state file (workers stopped), atomically.
func (d *Director) saveState() error {
	var all []conntrack.Entry
	for _, w := range d.workers {
		w.Engine().Table().Range(func(e *conntrack.Entry) bool {
			all = append(all, *e)
			return true
		})
	}
	conns := engine.SaveConns(d.snap.Load(), all, d.nowMs())
	tmp := d.opts.StateFile + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("forward: save state: %w", err)
	}
	names := make([]string, len(d.ifaces))
	for i, ifc := range d.ifaces {
		names[i] = ifc.Name
	}
	werr := statefile.WriteState(f, names, conns)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, d.opts.StateFile)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("forward: save state: %w", werr)
	}
	d.log.Info("state saved", "file", d.opts.StateFile, "entries", len(conns))
	return nil
}

// restoreState loads the state file, if there is one, into the workers' tables.
func (d *Director) restoreState() {
	f, err := os.Open(d.opts.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		d.log.Warn("state not restored", "file", d.opts.StateFile, logErr, err)
		return
	}
	defer f.Close()
	names, conns, err := statefile.ReadState(f)
	if err != nil {
		d.log.Warn("state not restored", "file", d.opts.StateFile, logErr, err)
		return
	}
	engines := make([]*engine.Engine, len(d.workers))
	for i, w := range d.workers {
		engines[i] = w.Engine()
	}
	n := engine.Restore(d.snap.Load(), engines, names, conns, d.nowMs())
	d.log.Info("state restored", "file", d.opts.StateFile, "entries", n, "skipped", len(conns)-n)
}

// gcGarbage is how much garbage the director lets build up between collections.
const gcGarbage = 4 << 20

// paceGC sets the GC percentage so that garbage between collections stays near gcGarbage (4 MiB).
// With the default GOGC=100 the runtime lets garbage grow to the size of the live heap, and
// the live heap is mostly the connection tables (60 bytes per entry, preallocated): a
// 1M-entry table would let RSS drift up by another 60 MB. The tables hold no pointers, so a
// collection does not scan them and running it more often costs little. A GOGC set in the
// environment wins.
func (d *Director) paceGC() {
	if os.Getenv("GOGC") != "" {
		return
	}
	var tables int
	for _, w := range d.workers {
		tables += w.Engine().Table().MemoryBytes()
	}
	if tables <= gcGarbage {
		return
	}
	pct := max(10, 100*gcGarbage/tables)
	debug.SetGCPercent(pct)
	d.log.Debug("gc pacing", "gogc", pct, "table_bytes", tables)
}
