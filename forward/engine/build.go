package engine

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/packet"
	"github.com/uvs-project/uvs/forward/steer"
	"github.com/uvs-project/uvs/sched"
)

// maxServices bounds service IDs: conntrack entries store the ID in 16 bits.
const maxServices = 1 << 16

// Registry gives services and real servers identities that survive reloads: a service keeps
// its ID, load counters and statistics while its (VIP, protocol, port) stays in the config, and
// a real server keeps its slot, load and statistics while its address and port stay in the
// service. Connections store these IDs, so a reload never points them at another server.
// Control side only.
type Registry struct {
	workers  int
	services map[svcKey]*svcState
	used     []bool // service IDs in use
	health   map[healthRef]Health

	vrrpActive map[[16]byte]struct{} // addresses VRRP masters own (vrrp.go); nil until told
}

// healthRef is a RealRef as a comparable key.
type healthRef struct {
	svc  svcKey
	dest realKey
}

func healthKey(r RealRef) healthRef {
	return healthRef{
		svc:  svcKey{addr: r.VIP.As16(), port: r.Port, proto: protoNumber(r.Protocol)},
		dest: realKey{addr: r.Addr.As16(), port: r.RPort},
	}
}

type svcState struct {
	id    uint16
	table *sched.Table     // the last table built, so a rebuild keeps the rr position
	specs []sched.RealSpec // the last specs, so threshold changes reach the loads
	loads []sched.Load     // capacity only grows; slots are stable
	slots map[realKey]int
	reals []*realState // by slot; nil = free
	stats []Counters

	// Quorum, as keepalived's: known once the service has been built; up while the live
	// weight has not dropped below quorum-hysteresis since it last reached quorum+hysteresis.
	quorumKnown bool
	quorumUp    bool
}

type realKey struct {
	addr [16]byte
	port uint16
}

type realState struct {
	stats []Counters
	last  *Real // the real in the last published snapshot, kept while a removed real drains
}

func NewRegistry(workers int) *Registry {
	return &Registry{workers: workers, services: map[svcKey]*svcState{}, health: map[healthRef]Health{}}
}

// SetHealth records a real server's health for the next Build. It reports whether anything
// changed (a health already recorded as h changes nothing).
func (g *Registry) SetHealth(r RealRef, h Health) bool {
	k := healthKey(r)
	if old, ok := g.health[k]; ok && old == h {
		return false
	}
	if h.Up && h.WeightPercent == 0 && h.Reason == "" {
		delete(g.health, k)
	} else {
		g.health[k] = h
	}
	return true
}

// egressFunc is looked up for each real server while building a snapshot; addr is IPv6 or
// IPv4-mapped (conntrack.Map4).
type egressFunc func(addr [16]byte) Egress

// Build turns a validated config into a snapshot, keeping identities from earlier builds.
// It returns the snapshot and the NAT reals the shield must cover. A failure leaves the
// registry unchanged.
func (g *Registry) Build(cfg *config.Config, ifaces []Iface, egress egressFunc, gen uint64) (*Snapshot, error) {
	s := &Snapshot{
		Gen:        gen,
		vips:       map[[16]byte]struct{}{},
		services:   map[svcKey]*Service{},
		natReal:    map[svcKey]struct{}{},
		natAddr:    map[[16]byte]struct{}{},
		Ifaces:     ifaces,
		Sloppy:     cfg.Conntrack.SloppyTCP,
		AnswerPing: cfg.Director.AnswerPing,
	}
	// Plan first, so that an error (too many services) changes nothing.
	type plan struct {
		key   svcKey
		st    *svcState
		fresh bool
	}
	// Services are matched by (VIP, protocol, first port).
	plans := make([]plan, len(cfg.Services))
	keep := map[svcKey]bool{}
	for i := range cfg.Services {
		cs := &cfg.Services[i]
		k := svcKey{addr: cs.VIP.As16(), proto: protoNumber(cs.Protocol), port: firstPort(cs)}
		keep[k] = true
		if st := g.services[k]; st != nil {
			plans[i] = plan{key: k, st: st}
			continue
		}
		plans[i] = plan{key: k, fresh: true}
	}
	if len(cfg.Services) > maxServices {
		return nil, fmt.Errorf("forward: %d services: at most %d", len(cfg.Services), maxServices)
	}
	// Release services that are gone.
	for k, st := range g.services {
		if !keep[k] {
			g.used[st.id] = false
			delete(g.services, k)
		}
	}
	for i := range cfg.Services {
		cs := &cfg.Services[i]
		p := &plans[i]
		if p.fresh {
			p.st = &svcState{id: g.allocID(), slots: map[realKey]int{}, stats: make([]Counters, g.workers)}
			g.services[p.key] = p.st
		}
		svc, err := g.service(cs, p.st, egress)
		if err != nil {
			return nil, err
		}
		for int(svc.ID) >= len(s.byID) {
			s.byID = append(s.byID, nil)
		}
		s.byID[svc.ID] = svc
		s.vips[svc.VIP] = struct{}{}
		ports := cs.Ports
		if len(ports) == 0 {
			ports = []uint16{cs.Port}
		}
		for _, port := range ports {
			s.services[svcKey{addr: svc.VIP, proto: svc.Proto, port: port}] = svc
			if port == 0 {
				s.hasPort0 = true
			}
		}
		for _, r := range svc.Reals {
			if r == nil || r.Method != config.NAT {
				continue
			}
			s.natAddr[r.Addr] = struct{}{}
			if r.Port != 0 {
				s.natReal[svcKey{addr: r.Addr, port: r.Port, proto: svc.Proto}] = struct{}{}
				continue
			}
			// The real keeps the client's port: its replies come from any of the service's
			// ports (every port, for a port-0 service).
			for _, port := range ports {
				s.natReal[svcKey{addr: r.Addr, port: port, proto: svc.Proto}] = struct{}{}
			}
		}
	}
	s.applyVRRP(cfg, g.vrrpActive)
	s.buildClassifiers()
	return s, nil
}

func (g *Registry) allocID() uint16 {
	for i, u := range g.used {
		if !u {
			g.used[i] = true
			return uint16(i)
		}
	}
	g.used = append(g.used, true)
	return uint16(len(g.used) - 1)
}

// service builds one snapshot service, reusing slots of reals that stay.
func (g *Registry) service(cs *config.Service, st *svcState, egress egressFunc) (*Service, error) {
	kind, err := sched.ParseKind(cs.Scheduler)
	if err != nil {
		return nil, fmt.Errorf("forward: service %s: %w", cs.VIP, err)
	}
	var flags sched.Flags
	for _, f := range cs.SchedulerFlags {
		fl, err := sched.ParseFlag(f)
		if err != nil {
			return nil, fmt.Errorf("forward: service %s: %w", cs.VIP, err)
		}
		flags |= fl
	}
	// Health: a failed real is quiesced (weight 0) or, with Remove, left out; slow start
	// scales the weight.
	sk := svcKey{addr: cs.VIP.As16(), proto: protoNumber(cs.Protocol), port: firstPort(cs)}
	reals := make([]config.Real, 0, len(cs.Reals)+1)
	healthOf := map[realKey]Health{}
	live := 0 // configured weight of the reals that are up, as keepalived's weight_sum_aliv
	for _, r := range cs.Reals {
		k := realKey{r.Address.As16(), realPort(cs, &r)}
		h, ok := g.health[healthRef{svc: sk, dest: k}]
		if !ok {
			h = Health{Up: true}
		}
		healthOf[k] = h
		if h.Up {
			live += r.Weight
		}
		switch {
		case !h.Up && h.Remove:
			continue
		case !h.Up:
			r.Weight = 0
		case h.WeightPercent > 0 && h.WeightPercent < 100 && r.Weight > 0:
			r.Weight = max(1, r.Weight*h.WeightPercent/100)
		}
		reals = append(reals, r)
	}
	// Quorum and the sorry server. Below quorum the service is down: its reals are
	// quiesced and the sorry server, if any, is the only real with a weight.
	wasKnown, wasUp := st.quorumKnown, st.quorumUp
	st.quorumUp = quorumState(st.quorumKnown, st.quorumUp, live, cs.Quorum, cs.Hysteresis)
	st.quorumKnown = true
	quorumChanged := wasKnown && wasUp != st.quorumUp || !wasKnown && !st.quorumUp
	var sorry realKey
	sorryActive := !st.quorumUp && cs.SorryServer.IsValid()
	if !st.quorumUp {
		for i := range reals {
			reals[i].Weight = 0
		}
	}
	if sorryActive {
		sr := config.Real{Address: cs.SorryServer.Addr(), Port: cs.SorryServer.Port(), Weight: 1, Forward: cs.Forward}
		if sr.Port != firstPort(cs) {
			sr.Forward = config.NAT // a different port needs the destination rewritten
		}
		sorry = realKey{sr.Address.As16(), realPort(cs, &sr)}
		healthOf[sorry] = Health{Up: true}
		dup := false
		for i := range reals {
			if (realKey{reals[i].Address.As16(), realPort(cs, &reals[i])}) == sorry {
				reals[i].Weight, dup = 1, true
			}
		}
		if !dup {
			reals = append(reals, sr)
		}
	}
	// Free the slots of reals that are gone; give new reals the lowest free slots.
	want := map[realKey]bool{}
	for _, r := range reals {
		want[realKey{r.Address.As16(), realPort(cs, &r)}] = true
	}
	for k, slot := range st.slots {
		if want[k] {
			continue
		}
		l := &st.loads[slot]
		if rs := st.reals[slot]; rs != nil && rs.last != nil && l.Active()+l.Inactive() > 0 && deadPolicy(cs) == config.DeadRealKeep {
			continue // draining: its connections go on to it until they end
		}
		delete(st.slots, k)
		st.reals[slot] = nil
	}
	for _, r := range reals {
		k := realKey{r.Address.As16(), realPort(cs, &r)}
		if _, ok := st.slots[k]; ok {
			continue
		}
		slot := -1
		for i, rs := range st.reals {
			if rs == nil {
				slot = i
				break
			}
		}
		if slot < 0 {
			slot = len(st.reals)
			st.reals = append(st.reals, nil)
		}
		st.slots[k] = slot
		st.reals[slot] = &realState{stats: make([]Counters, g.workers)}
	}
	if len(st.reals) > len(st.loads) {
		// Grow the load array. Workers may still count on the old one until they load the
		// new snapshot: GrowLoads moves each old Load and forwards its later updates, so no
		// count is lost (issue 13 bug 3).
		st.loads = sched.GrowLoads(st.loads, len(st.reals))
	}
	svc := &Service{
		ID:    st.id,
		Name:  cs.Name,
		VIP:   cs.VIP.As16(),
		Port:  firstPort(cs),
		Proto: protoNumber(cs.Protocol),
		V6:    cs.VIP.Is6(),
		Reals: make([]*Real, len(st.reals)),
		Specs: make([]sched.RealSpec, len(st.reals)),
		Loads: st.loads[:len(st.reals)],
		Stats: st.stats,
		Down:  !st.quorumUp,

		liveWeight:    live,
		quorumChanged: quorumChanged,
	}
	if cs.PersistenceTimeout > 0 {
		svc.PersistMs = uint32(min(cs.PersistenceTimeout, 24*time.Hour*20) / time.Millisecond)
		svc.PersistBits = cs.PersistenceBits
		if svc.PersistBits == 0 {
			svc.PersistBits = 32
			if svc.V6 {
				svc.PersistBits = 128 // IPVS's default netmask for IPv6
			}
		}
		svc.TplPort = svc.Port
	}
	svc.OnePacket = cs.OnePacket && cs.Protocol == config.UDP
	svc.ExpireQuiescent = cs.ExpireQuiescentTemplate
	svc.DeadReal = deadPolicy(cs)
	svc.MSSClamp = uint16(cs.MSSClamp)
	for _, r := range reals {
		k := realKey{r.Address.As16(), realPort(cs, &r)}
		slot := st.slots[k]
		rs := st.reals[slot]
		h := healthOf[k]
		dest := &Real{
			Slot:         uint16(slot),
			Addr:         k.addr,
			V6:           r.Address.Is6(),
			Port:         k.port,
			Method:       r.Forward,
			Weight:       int32(r.Weight),
			ConfigWeight: int32(cfgWeight(cs, k)),
			Healthy:      h.Up,
			Reason:       h.Reason,
			Sorry:        sorryActive && k == sorry,
			Stats:        rs.stats,
		}
		dest.Egress = egress(k.addr)
		switch {
		case cs.TunnelSource.Is4():
			dest.SrcIP = cs.TunnelSource.As4() // TUN outer source; egress changes rebuild this
		case cs.TunnelSource.Is6():
			dest.SrcIP6 = cs.TunnelSource.As16()
		}
		svc.Reals[slot] = dest
		svc.Specs[slot] = sched.RealSpec{
			Addr: specAddr(k.addr), Port: k.port, Weight: int32(r.Weight),
			Upper: uint32(r.UpperThreshold), Lower: uint32(r.LowerThreshold),
		}
	}
	for k, slot := range st.slots {
		if want[k] || st.reals[slot] == nil || st.reals[slot].last == nil {
			continue
		}
		// A removed real, draining: reachable for its connections, never scheduled.
		d := *st.reals[slot].last
		d.Removed, d.Weight = true, 0
		svc.Reals[slot] = &d
		svc.Specs[slot] = sched.RealSpec{Addr: specAddr(d.Addr), Port: d.Port}
	}
	for i := range svc.Specs {
		if svc.Reals[i] == nil {
			// A free slot: weight 0, so no scheduler picks it, and an identity no real
			// server can have (0.0.0.0), distinct per slot.
			svc.Specs[i] = sched.RealSpec{Port: uint16(i + 1)}
		}
	}
	tbl, err := sched.Rebuild(st.table, sched.Spec{Kind: kind, Flags: flags, Reals: svc.Specs, MHTableSize: uint32(cs.MHTableSize)})
	if err != nil {
		return nil, fmt.Errorf("forward: service %s:%d: %w", cs.VIP, svc.Port, err)
	}
	svc.Sched = tbl
	return svc, nil
}

// Commit records what a published snapshot was built from; called only once the snapshot
// is published, so a failed build leaves the running state as it was.
func (g *Registry) Commit(s *Snapshot) {
	for _, svc := range s.byID {
		if svc == nil {
			continue
		}
		for _, st := range g.services {
			if st.id != svc.ID {
				continue
			}
			for i := range svc.Specs {
				if i < len(st.specs) && st.specs[i] != svc.Specs[i] {
					svc.Loads[i].Reconfigure(&st.specs[i], &svc.Specs[i])
				}
			}
			st.table = svc.Sched
			st.specs = svc.Specs
			for i, r := range svc.Reals {
				if r != nil && i < len(st.reals) && st.reals[i] != nil {
					st.reals[i].last = r
				}
			}
		}
	}
}

func cfgWeight(cs *config.Service, k realKey) int {
	for i := range cs.Reals {
		if cs.Reals[i].Address.As16() == k.addr && realPort(cs, &cs.Reals[i]) == k.port {
			return cs.Reals[i].Weight
		}
	}
	return 0
}

// specAddr is a real's address as the schedulers take it: IPv4 as it is, IPv6 folded to 32
// bits (sched.Fold6, IPVS's addr_fold for mh and sh).
func specAddr(a [16]byte) [4]byte {
	if conntrack.Is4(&a) {
		return [4]byte(a[12:])
	}
	return sched.Fold6(a)
}

func firstPort(cs *config.Service) uint16 {
	if len(cs.Ports) > 0 {
		return cs.Ports[0]
	}
	return cs.Port
}

func realPort(cs *config.Service, r *config.Real) uint16 {
	if r.Port != 0 {
		return r.Port
	}
	return firstPort(cs)
}

func protoNumber(p config.Protocol) uint8 {
	if p == config.UDP {
		return packet.ProtoUDP
	}
	return packet.ProtoTCP
}

// Steering returns the fanout steering inputs for a snapshot.
func (s *Snapshot) Steering() ([]steer.SteerVIP, []steer.SteerNAT) {
	byVIP := map[[16]byte]*steer.SteerVIP{}
	var vips []steer.SteerVIP
	var order [][16]byte
	for _, svc := range s.byID {
		if svc == nil {
			continue
		}
		if _, ok := byVIP[svc.VIP]; !ok {
			v := &steer.SteerVIP{}
			if svc.V6 {
				v.V6, v.Addr6 = true, svc.VIP
			} else {
				v.Addr = [4]byte(svc.VIP[12:])
			}
			byVIP[svc.VIP] = v
			order = append(order, svc.VIP)
		}
	}
	var nat []steer.SteerNAT
	for _, svc := range s.byID {
		if svc == nil || svc.PersistMs == 0 {
			continue
		}
		v := byVIP[svc.VIP]
		for k, x := range s.services {
			if x == svc {
				v.Persist = append(v.Persist, steer.SteerPersist{Port: k.port, Bits: svc.PersistBits})
			}
		}
		for k := range s.natReal {
			for _, r := range svc.Reals {
				if r != nil && r.Method == config.NAT && r.Addr == k.addr && k.proto == svc.Proto && (r.Port == k.port || r.Port == 0) {
					n := steer.SteerNAT{Port: k.port, Bits: svc.PersistBits}
					if conntrack.Is4(&r.Addr) {
						n.Addr = [4]byte(r.Addr[12:])
					} else {
						n.V6, n.Addr6 = true, r.Addr
					}
					nat = append(nat, n)
					break
				}
			}
		}
	}
	for _, a := range order {
		v := byVIP[a]
		// Port-0 entries first would shadow the others; put them last, as lookupService does.
		sortPersist(v.Persist)
		vips = append(vips, *v)
	}
	return vips, nat
}

func sortPersist(p []steer.SteerPersist) {
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && (p[j-1].Port == 0 && p[j].Port != 0 || p[j-1].Port != 0 && p[j].Port != 0 && p[j-1].Port > p[j].Port); j-- {
			p[j-1], p[j] = p[j], p[j-1]
		}
	}
}

// ShieldSets returns the VIPs (IPv4 and IPv6) and NAT reals the kernel must be kept away
// from.
func (s *Snapshot) ShieldSets() ([]netip.Addr, []NATReal) {
	var vips []netip.Addr
	for v := range s.vips {
		vips = append(vips, conntrack.Addr(v))
	}
	var nat []NATReal
	for k := range s.natReal {
		if k.port == 0 {
			// A port-0 NAT service: the set cannot say "any port". Such replies are still
			// handled by uvs; only a host with ip_forward=1 would forward copies of them.
			continue
		}
		nat = append(nat, natRealOf(k))
	}
	return vips, nat
}
