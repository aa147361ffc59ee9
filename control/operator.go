package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward"
)

// Director is what the operator needs from the data plane. *forward.Director satisfies it.
type Director interface {
	Snapshot() *forward.Snapshot
	Config() *config.Config
	Reload(cfg *config.Config) error
	Connections(ctx context.Context) ([]conntrack.Entry, error)
	Stats() []*forward.EngineStats
	Tick() uint32
}

// MsgRuntimeOnly is what every runtime edit says about where it applies.
const MsgRuntimeOnly = "changed the running director only; the file is unchanged"

// counterKey names a service (real false) or one of its real servers across snapshots.
type counterKey struct {
	vip   [16]byte
	port  uint16
	proto uint8
	real  bool
	raddr [16]byte
	rport uint16
}

func svcCounterKey(s *forward.Service) counterKey {
	return counterKey{vip: s.VIP, port: s.Port, proto: s.Proto}
}

func realCounterKey(s *forward.Service, r *forward.Real) counterKey {
	k := svcCounterKey(s)
	k.real, k.raddr, k.rport = true, r.Addr, r.Port
	return k
}

// Operator serves the control protocol for one director: listings, edits, reloads, traces.
// It also runs the rate estimator. Safe for concurrent use.
type Operator struct {
	d          Director
	configPath string
	log        *slog.Logger
	est        *estimator

	mu   sync.Mutex // serialises edits and reloads; guards base
	base map[counterKey]Stats

	// dumping admits one connection dump at a time: the workers serve one request each.
	dumping chan struct{}

	bgp BGP // nil without a BGP announcer (SetBGP)
}

// NewOperator returns an operator for d, whose config file is configPath (what reload
// re-reads). A nil log discards.
func NewOperator(d Director, configPath string, log *slog.Logger) *Operator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Operator{d: d, configPath: configPath, log: log, est: newEstimator(), base: map[counterKey]Stats{},
		dumping: make(chan struct{}, 1)}
}

// Run samples the counters for the rate estimator every EstimatorInterval seconds until
// ctx ends.
func (o *Operator) Run(ctx context.Context) {
	t := time.NewTicker(EstimatorInterval * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			o.sample()
		}
	}
}

// sample feeds the estimator one round of raw counters.
func (o *Operator) sample() {
	snap := o.d.Snapshot()
	if snap == nil {
		return
	}
	cur := map[counterKey]Stats{}
	for _, s := range snap.Services() {
		cur[svcCounterKey(s)] = sumCounters(s.Stats)
		for _, r := range s.Reals {
			if r != nil {
				cur[realCounterKey(s, r)] = sumCounters(r.Stats)
			}
		}
	}
	o.est.update(cur)
}

// connections reads the workers' tables, waiting for a dump already running.
func (o *Operator) connections(ctx context.Context) ([]conntrack.Entry, error) {
	select {
	case o.dumping <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("control: connection dump: %w", ctx.Err())
	}
	defer func() { <-o.dumping }()
	return o.d.Connections(ctx)
}

// sumCounters adds up the per-worker counters.
func sumCounters(cs []forward.Counters) Stats {
	var s Stats
	for i := range cs {
		c := &cs[i]
		s.Conns += c.Conns.Load()
		s.InPackets += c.InPkts.Load()
		s.InBytes += c.InBytes.Load()
		s.OutPackets += c.OutPkts.Load()
		s.OutBytes += c.OutBytes.Load()
	}
	return s
}

// zeroed returns s minus the baseline recorded by the last ipvsadm -Z of k. Counters are
// never written by the control side (each worker owns its counters), so zeroing records a
// baseline instead; a counter below its baseline belongs to a service that was removed and
// added again and is shown as it is.
func (o *Operator) zeroed(k counterKey, s Stats) Stats {
	b, ok := o.base[k]
	if !ok {
		return s
	}
	if s.Conns < b.Conns || s.InPackets < b.InPackets || s.InBytes < b.InBytes ||
		s.OutPackets < b.OutPackets || s.OutBytes < b.OutBytes {
		return s
	}
	return Stats{Conns: s.Conns - b.Conns, InPackets: s.InPackets - b.InPackets, InBytes: s.InBytes - b.InBytes,
		OutPackets: s.OutPackets - b.OutPackets, OutBytes: s.OutBytes - b.OutBytes}
}

// Handle answers one request.
func (o *Operator) Handle(ctx context.Context, req *Request) *Response {
	switch req.Op {
	case OpList:
		st, err := o.Status(ctx, req.Service, req.PersistentConn)
		if err != nil {
			return &Response{Error: err.Error()}
		}
		return &Response{Status: st}
	case OpConns:
		cs, err := o.Connections(ctx, req.Service)
		if err != nil {
			return &Response{Error: err.Error()}
		}
		return &Response{Conns: cs}
	case OpSave:
		return &Response{Config: ConfigTOML(o.d.Config())}
	case OpReload:
		problems, err := o.Reload()
		if err != nil {
			return &Response{Error: err.Error(), Problems: problems}
		}
		return &Response{Message: "reloaded " + o.configPath}
	case OpEdit:
		msg, problems, err := o.Edit(req.Edit)
		if err != nil {
			return &Response{Error: err.Error(), Problems: problems}
		}
		return &Response{Message: msg}
	case OpTrace:
		tr, err := o.Trace(ctx, req.Trace)
		if err != nil {
			return &Response{Error: err.Error()}
		}
		return &Response{Trace: tr}
	}
	return &Response{Error: fmt.Sprintf("control: unknown operation %q", req.Op)}
}

// Reload re-reads the config file and applies it with Director.Reload. An invalid file
// changes nothing; its problems are returned one per line.
func (o *Operator) Reload() ([]string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.configPath == "" {
		return nil, errors.New("control: the director was started without a config file")
	}
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return problemLines(err), fmt.Errorf("reload rejected; the running config stays: %s has problems", o.configPath)
	}
	if err := o.d.Reload(cfg); err != nil {
		return nil, fmt.Errorf("reload rejected; the running config stays: %w", err)
	}
	o.log.Info("reloaded", "file", o.configPath, "services", len(cfg.Services))
	return nil, nil
}

func problemLines(err error) []string {
	var ce *config.Error
	if errors.As(err, &ce) {
		out := make([]string, len(ce.Problems))
		for i, p := range ce.Problems {
			out[i] = p.String()
		}
		return out
	}
	return []string{err.Error()}
}

// findService returns the snapshot service ref names: same protocol, VIP and one of its
// ports (port 0 only for a port-0 service).
func findService(snap *forward.Snapshot, cfg *config.Config, ref *ServiceRef) (*forward.Service, error) {
	proto, vip, err := parseRef(ref)
	if err != nil {
		return nil, err
	}
	for _, s := range snap.Services() {
		if s.VIP != vip || s.Proto != proto {
			continue
		}
		if s.Port == ref.Port {
			return s, nil
		}
		if cs := configService(cfg, s); cs != nil && slices.Contains(cs.Ports, ref.Port) {
			return s, nil
		}
	}
	return nil, fmt.Errorf("no such service: %s %s", ref.Protocol, netip.AddrPortFrom(conntrack.Addr(vip), ref.Port))
}

func parseRef(ref *ServiceRef) (uint8, [16]byte, error) {
	var proto uint8
	switch ref.Protocol {
	case "tcp":
		proto = conntrack.ProtoTCP
	case "udp":
		proto = conntrack.ProtoUDP
	default:
		return 0, [16]byte{}, fmt.Errorf("protocol %q: want tcp or udp", ref.Protocol)
	}
	a, err := netip.ParseAddr(ref.VIP)
	if err != nil {
		return 0, [16]byte{}, fmt.Errorf("address %q: want an IPv4 or IPv6 address", ref.VIP)
	}
	return proto, a.Unmap().As16(), nil
}

// configService returns the config service a snapshot service was built from.
func configService(cfg *config.Config, s *forward.Service) *config.Service {
	if cfg == nil {
		return nil
	}
	for i := range cfg.Services {
		cs := &cfg.Services[i]
		if cs.VIP.As16() != s.VIP || protoNumber(cs.Protocol) != s.Proto {
			continue
		}
		first := cs.Port
		if len(cs.Ports) > 0 {
			first = cs.Ports[0]
		}
		if first == s.Port {
			return cs
		}
	}
	return nil
}

func protoNumber(p config.Protocol) uint8 {
	if p == config.UDP {
		return conntrack.ProtoUDP
	}
	return conntrack.ProtoTCP
}

func protoName(p uint8) string {
	if p == conntrack.ProtoUDP {
		return "udp"
	}
	return "tcp"
}

func addrPort(a [16]byte, port uint16) string {
	return netip.AddrPortFrom(conntrack.Addr(a), port).String()
}

func maskString(bits int) string {
	m := uint32(0)
	if bits > 0 {
		m = ^uint32(0) << (32 - min(bits, 32))
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

// Status builds the listing of the running director. ref, when set, restricts it to one
// service. With persistentConn the connection table is read to count templates per real.
func (o *Operator) Status(ctx context.Context, ref *ServiceRef, persistentConn bool) (*Status, error) {
	snap := o.d.Snapshot()
	if snap == nil {
		return nil, errors.New("the director is starting: no snapshot yet")
	}
	cfg := o.d.Config()
	svcs := snap.Services()
	if ref != nil {
		s, err := findService(snap, cfg, ref)
		if err != nil {
			return nil, err
		}
		svcs = []*forward.Service{s}
	}
	type slotKey struct{ svc, slot uint16 }
	persist := map[slotKey]int64{}
	if persistentConn {
		es, err := o.connections(ctx)
		if err != nil {
			return nil, err
		}
		for i := range es {
			if es[i].Flags&conntrack.FlagTemplate != 0 {
				persist[slotKey{es[i].Service, es[i].RealIdx}]++
			}
		}
	}
	st := &Status{
		ConnTableSize: cfg.Conntrack.MaxConnections,
		Timeouts: Timeouts{
			TCP: int64(cfg.Timeouts.TCP / time.Second), TCPFin: int64(cfg.Timeouts.TCPFin / time.Second),
			UDP: int64(cfg.Timeouts.UDP / time.Second),
		},
		Services: []Service{},
		Drops:    map[string]uint64{},
		Sync:     syncStatus(o.d, time.Now()),
	}
	for _, ws := range o.d.Stats() {
		ws.EachDrop(func(reason string, n uint64) { st.Drops[reason] += n })
	}
	if dp, ok := o.d.(interface{ DataPlane() forward.DataPlane }); ok {
		p := dp.DataPlane()
		st.Director = &DirectorInfo{Backend: p.Backend, Shield: p.Shield, RXRing: p.RXRing, TXMode: p.TXMode}
		if st.Director.RXRing == "" {
			st.Director.RXRing = "none" // INTERFACE.md pins the field: afxdp has no such ring
		}
		st.Director.XDP = o.xdpStatus()
	}
	if o.bgp != nil {
		st.BGP = o.bgp.BGPStatus()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range svcs {
		sk := svcCounterKey(s)
		out := Service{
			Name:      s.Name,
			Protocol:  protoName(s.Proto),
			VIP:       conntrack.Addr(s.VIP).String(),
			Port:      s.Port,
			Scheduler: s.Sched.Kind().String(),
			Stats:     o.zeroed(sk, sumCounters(s.Stats)),
			Rates:     o.est.rates(sk),
			Reals:     []Real{},
		}
		if s.PersistMs > 0 {
			out.PersistenceTimeoutS = int64(s.PersistMs / 1000)
			out.PersistenceNetmask = maskString(s.PersistBits)
			if s.V6 {
				out.PersistenceNetmask = strconv.Itoa(s.PersistBits) // ipvsadm prints IPv6 masks as a prefix length
			}
		}
		if cs := configService(cfg, s); cs != nil {
			out.Scheduler = cs.Scheduler
			out.SchedulerFlags = cs.SchedulerFlags
			out.OnePacket = cs.OnePacket
			if len(cs.Ports) > 1 {
				out.Ports = cs.Ports
			}
		}
		for slot, r := range s.Reals {
			if r == nil || r.Removed {
				continue // a removed real draining its connections: ipvsadm does not list it
			}
			rk := realCounterKey(s, r)
			spec := s.Specs[slot]
			ld := &s.Loads[slot]
			out.Reals = append(out.Reals, Real{
				Address:        conntrack.Addr(r.Addr).String(),
				Port:           r.Port,
				Forward:        r.Method.String(),
				Weight:         r.Weight,
				ConfigWeight:   r.ConfigWeight,
				Healthy:        r.Healthy,
				HealthReason:   r.Reason,
				ActiveConns:    int64(max(ld.Active(), 0)),
				InactiveConns:  int64(max(ld.Inactive(), 0)),
				PersistConns:   persist[slotKey{s.ID, uint16(slot)}],
				UpperThreshold: spec.Upper,
				LowerThreshold: spec.Lower,
				Overloaded:     ld.Overloaded(),
				Stats:          o.zeroed(rk, sumCounters(r.Stats)),
				Rates:          o.est.rates(rk),
			})
		}
		sortReals(out.Reals)
		st.Services = append(st.Services, out)
	}
	sortServices(st.Services)
	st.VRRP = vrrpStatus(o.d)
	return st, nil
}

// sortServices orders services as ipvsadm does (ipvs_cmp_services): by protocol number,
// then address, then port.
func sortServices(ss []Service) {
	slices.SortStableFunc(ss, func(a, b Service) int {
		if c := int(protoNum(a.Protocol)) - int(protoNum(b.Protocol)); c != 0 {
			return c
		}
		if c := netip.MustParseAddr(a.VIP).Compare(netip.MustParseAddr(b.VIP)); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
}

// sortReals orders reals as ipvs_cmp_dests: by address, then port.
func sortReals(rs []Real) {
	slices.SortStableFunc(rs, func(a, b Real) int {
		if c := netip.MustParseAddr(a.Address).Compare(netip.MustParseAddr(b.Address)); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
}

func protoNum(name string) uint8 {
	if name == "udp" {
		return conntrack.ProtoUDP
	}
	return conntrack.ProtoTCP
}

// Connections returns the connection entries and persistence templates, optionally of one
// service, sorted by protocol, client and VIP.
func (o *Operator) Connections(ctx context.Context, ref *ServiceRef) ([]Connection, error) {
	snap := o.d.Snapshot()
	if snap == nil {
		return nil, errors.New("the director is starting: no snapshot yet")
	}
	var only *forward.Service
	if ref != nil {
		s, err := findService(snap, o.d.Config(), ref)
		if err != nil {
			return nil, err
		}
		only = s
	}
	es, err := o.connections(ctx)
	if err != nil {
		return nil, err
	}
	now := o.d.Tick()
	out := make([]Connection, 0, len(es))
	for i := range es {
		e := &es[i]
		if only != nil && e.Service != only.ID {
			continue
		}
		out = append(out, connection(e, now))
	}
	slices.SortStableFunc(out, func(a, b Connection) int {
		if a.Protocol != b.Protocol {
			return int(protoNum(a.Protocol)) - int(protoNum(b.Protocol))
		}
		if c := netip.MustParseAddrPort(a.Client).Compare(netip.MustParseAddrPort(b.Client)); c != 0 {
			return c
		}
		return netip.MustParseAddrPort(a.VIP).Compare(netip.MustParseAddrPort(b.VIP))
	})
	return out, nil
}

func connection(e *conntrack.Entry, now uint32) Connection {
	left := int64(int32(e.Expires - now))
	return Connection{
		Protocol: protoName(e.Key.Proto),
		Client:   addrPort(e.Key.Client, e.Key.CPort),
		VIP:      addrPort(e.Key.VIP, e.Key.VPort),
		Real:     addrPort(e.Real, e.RPort),
		State:    e.State.String(),
		ExpiresS: max(left, 0) / 1000,
		Template: e.Flags&conntrack.FlagTemplate != 0,
		Synced:   e.Flags&conntrack.FlagSynced != 0,
	}
}
