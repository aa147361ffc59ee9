package control

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/uvs-project/uvs/config"
)

// Edit commands, as ipvsadm's -A -E -D -a -e -d -Z.
const (
	EditAddService    = "add-service"
	EditEditService   = "edit-service"
	EditDeleteService = "delete-service"
	EditAddReal       = "add-real"
	EditEditReal      = "edit-real"
	EditDeleteReal    = "delete-real"
	EditZero          = "zero"
)

// editSource names the edited config in problems.
const editSource = "running config"

// Edit applies e to the running director: it builds a changed copy of the running config,
// validates it with the same code as config files (rendered as TOML and parsed), and
// applies it with Director.Reload. On any problem nothing changes. Zeroing counters
// changes no config.
func (o *Operator) Edit(e *Edit) (string, []string, error) {
	if e.Command == EditDrainDirector || e.Command == EditUndrainDirector {
		return o.drainDirector(e.Command == EditDrainDirector)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if e.Command == EditZero {
		return o.zeroLocked(e)
	}
	cur := o.d.Config()
	next, err := ApplyEdit(cur, e)
	if err != nil {
		return "", nil, err
	}
	cfg, err := config.Parse(editSource, []byte(configTOML(next, true)))
	if err != nil {
		return "", problemLines(err), errors.New("edit rejected; the running config stays")
	}
	cfg.BGP = cur.BGP // the rendering leaves inline passwords out; an edit never changes [bgp]
	if err := o.d.Reload(cfg); err != nil {
		return "", nil, fmt.Errorf("edit rejected; the running config stays: %w", err)
	}
	o.log.Info("runtime edit", "command", e.Command, "service", refString(&e.Service), "real", e.Real)
	return MsgRuntimeOnly, nil, nil
}

func refString(r *ServiceRef) string {
	if a, err := netip.ParseAddr(r.VIP); err == nil {
		return r.Protocol + " " + netip.AddrPortFrom(a, r.Port).String() // [addr]:port for IPv6
	}
	return r.Protocol + " " + r.VIP + ":" + strconv.Itoa(int(r.Port))
}

// zeroLocked records baselines so that the counters of one service (or all) read zero,
// and clears their rates.
func (o *Operator) zeroLocked(e *Edit) (string, []string, error) {
	snap := o.d.Snapshot()
	if snap == nil {
		return "", nil, errors.New("the director is starting: no snapshot yet")
	}
	svcs := snap.Services()
	if e.Service.VIP != "" {
		s, err := findService(snap, o.d.Config(), &e.Service)
		if err != nil {
			return "", nil, err
		}
		svcs = svcs[:0]
		svcs = append(svcs, s)
	}
	for _, s := range svcs {
		sk := svcCounterKey(s)
		o.base[sk] = sumCounters(s.Stats)
		for _, r := range s.Reals {
			if r != nil {
				o.base[realCounterKey(s, r)] = sumCounters(r.Stats)
			}
		}
		o.est.zero(func(k counterKey) bool { return k.vip == sk.vip && k.port == sk.port && k.proto == sk.proto })
	}
	return fmt.Sprintf("zeroed the counters of %d services", len(svcs)), nil, nil
}

// ApplyEdit returns a copy of cfg changed by e. It checks that the service and real exist
// (or not) as the command needs; everything else is left to config validation.
func ApplyEdit(cfg *config.Config, e *Edit) (*config.Config, error) {
	next := cloneConfig(cfg)
	proto, err := config.ParseProtocol(e.Service.Protocol)
	if err != nil {
		return nil, err
	}
	vip, err := netip.ParseAddr(e.Service.VIP)
	if err != nil {
		return nil, fmt.Errorf("service address %q: %w", e.Service.VIP, err)
	}
	idx := -1
	for i := range next.Services {
		s := &next.Services[i]
		if s.VIP == vip && s.Protocol == proto && (s.Port == e.Service.Port && len(s.Ports) == 0 || slices.Contains(s.Ports, e.Service.Port)) {
			idx = i
			break
		}
	}
	svcName := refString(&e.Service)
	if e.Command == EditAddService {
		if idx >= 0 {
			return nil, fmt.Errorf("service %s already exists", svcName)
		}
		s := config.Service{Protocol: proto, VIP: vip, Port: e.Service.Port, Scheduler: config.DefaultScheduler,
			PersistenceBits: fullBits(vip), Forward: config.DR, MHTableSize: config.DefaultMHTableSize}
		if err := serviceOptions(&s, e); err != nil {
			return nil, err
		}
		next.Services = append(next.Services, s)
		return next, nil
	}
	if idx < 0 {
		return nil, fmt.Errorf("no such service: %s", svcName)
	}
	s := &next.Services[idx]
	switch e.Command {
	case EditEditService:
		return next, serviceOptions(s, e)
	case EditDeleteService:
		next.Services = slices.Delete(next.Services, idx, idx+1)
		return next, nil
	case EditAddReal, EditEditReal, EditDeleteReal:
	default:
		return nil, fmt.Errorf("unknown edit command %q", e.Command)
	}
	addr, port, err := parseReal(e.Real, s)
	if err != nil {
		return nil, err
	}
	ridx := -1
	for j := range s.Reals {
		r := &s.Reals[j]
		rp := r.Port
		if rp == 0 {
			rp = firstPort(s)
		}
		if r.Address == addr && rp == port {
			ridx = j
		}
	}
	rname := netip.AddrPortFrom(addr, port).String()
	switch e.Command {
	case EditAddReal:
		if ridx >= 0 {
			return nil, fmt.Errorf("real server %s of %s already exists", rname, svcName)
		}
		r := config.Real{Address: addr, Port: port, Weight: 1, Forward: s.Forward}
		if err := realOptions(&r, e); err != nil {
			return nil, err
		}
		s.Reals = append(s.Reals, r)
	case EditEditReal:
		if ridx < 0 {
			return nil, fmt.Errorf("no such real server: %s of %s", rname, svcName)
		}
		return next, realOptions(&s.Reals[ridx], e)
	case EditDeleteReal:
		if ridx < 0 {
			return nil, fmt.Errorf("no such real server: %s of %s", rname, svcName)
		}
		s.Reals = slices.Delete(s.Reals, ridx, ridx+1)
	}
	return next, nil
}

func firstPort(s *config.Service) uint16 {
	if len(s.Ports) > 0 {
		return s.Ports[0]
	}
	return s.Port
}

// parseReal parses -r ADDR[:PORT]; the port defaults to the service's.
func parseReal(text string, s *config.Service) (netip.Addr, uint16, error) {
	if text == "" {
		return netip.Addr{}, 0, errors.New("a real server (-r ADDR[:PORT]) is required")
	}
	if ap, err := netip.ParseAddrPort(text); err == nil {
		return ap.Addr(), ap.Port(), nil
	}
	a, err := netip.ParseAddr(text)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("real server %q: want ADDR or ADDR:PORT", text)
	}
	return a, firstPort(s), nil
}

func serviceOptions(s *config.Service, e *Edit) error {
	if e.Scheduler != nil {
		s.Scheduler = *e.Scheduler
	}
	if e.PersistenceTimeout != nil {
		s.PersistenceTimeout = time.Duration(*e.PersistenceTimeout) * time.Second
	}
	if e.PersistenceNetmask != nil {
		bits, err := netmaskBits(*e.PersistenceNetmask, fullBits(s.VIP))
		if err != nil {
			return err
		}
		s.PersistenceBits = bits
	}
	if e.Name != nil {
		s.Name = *e.Name
	}
	return nil
}

func realOptions(r *config.Real, e *Edit) error {
	if e.Forward != nil {
		f, err := config.ParseForward(*e.Forward)
		if err != nil {
			return err
		}
		r.Forward = f
	}
	if e.Weight != nil {
		r.Weight = *e.Weight
	}
	if e.UpperThreshold != nil {
		r.UpperThreshold = *e.UpperThreshold
	}
	if e.LowerThreshold != nil {
		r.LowerThreshold = *e.LowerThreshold
	}
	return nil
}

// netmaskBits parses a dotted netmask (ipvsadm -M 255.255.255.0) or a prefix length up to
// maxBits (32, or 128 for an IPv6 service, whose -M ipvsadm takes as a prefix length only).
func netmaskBits(s string, maxBits int) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= maxBits {
		return n, nil
	}
	if maxBits > 32 {
		return 0, fmt.Errorf("invalid netmask %q for an IPv6 service: want a prefix length 0..128", s)
	}
	return config.ParseNetmask(s)
}

// cloneConfig copies cfg deeply enough that edits to services and reals leave it alone.
func cloneConfig(cfg *config.Config) *config.Config {
	c := *cfg
	c.Director.Interfaces = slices.Clone(cfg.Director.Interfaces)
	c.Services = slices.Clone(cfg.Services)
	for i := range c.Services {
		c.Services[i].Reals = slices.Clone(c.Services[i].Reals)
		c.Services[i].Ports = slices.Clone(c.Services[i].Ports)
		c.Services[i].SchedulerFlags = slices.Clone(c.Services[i].SchedulerFlags)
	}
	return &c
}
