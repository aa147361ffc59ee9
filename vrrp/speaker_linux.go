//go:build linux

package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/config"
)

// Log attribute keys.
const (
	attrInstance = "instance"
	attrFrom     = "from"
	attrTo       = "to"
	attrMaster   = "master"
	attrErr      = "err"
)

// recvTimeout bounds a blocked read so that a receiver notices Stop.
const recvTimeout = 200 * time.Millisecond

// dropLogInterval is how often dropped adverts are summarised in the log, at most.
const dropLogInterval = time.Minute

// Speaker runs the configured VRRP instances: sockets, timers, gratuitous ARP, notify
// commands and tracking. Its loop goroutine owns every Machine.
type Speaker struct {
	opt  Options
	log  *slog.Logger
	cfg  *config.Config // owned by the loop
	inst []*instance

	events   chan event
	reloads  chan reloadReq
	status   atomic.Pointer[[]Status]
	notifier *notifier
	wg       sync.WaitGroup
	stopped  chan struct{}
	cancel   context.CancelFunc
}

// instance is the loop's view of one [[vrrp]].
type instance struct {
	c       config.VRRP
	vips    []netip.Addr
	m       *Machine
	group   int // index into cfg.VRRPSyncGroups, -1 for none
	fd      int
	ifindex int
	v6      bool // VRRP over IPv6: a raw AF_INET6 socket, NAs instead of gratuitous ARP
	mac     [6]byte
	primary netip.Addr
	ipID    uint16
	// rx is what the receiver goroutine checks adverts against; the loop replaces it
	// whole on reload.
	rx atomic.Pointer[rxParams]

	garpAt      time.Time // second round after takeover
	garpRefresh time.Time // next periodic round while master
	ownFault    bool
	failed      int
	drops       [numDrops]atomic.Uint64
	dropsLogged [numDrops]uint64 // the counts at the last drop summary; loop only
	buf         []byte
}

// rxParams are an instance's settings that its receiver reads.
type rxParams struct {
	p     Params
	auth  uint8
	pass  [8]byte
	peers []netip.Addr
}

// setRX publishes the receiver's view of r.
func (in *instance) setRX(r *config.VRRP) {
	x := &rxParams{p: params(r, in.primary), peers: slices.Clone(r.UnicastPeer)}
	if r.AuthPass != "" {
		x.auth = AuthPass
		copy(x.pass[:], r.AuthPass)
	}
	in.rx.Store(x)
}

// event is an accepted advert handed from a receiver to the loop.
type event struct {
	inst     int
	prio     uint8
	interval time.Duration
	src      netip.Addr
}

type reloadReq struct {
	c    *config.Config
	done chan struct{}
}

// New opens a socket per instance of c and returns a speaker that is not yet running.
func New(c *config.Config, opt Options) (*Speaker, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.TrackInterval == 0 {
		opt.TrackInterval = 500 * time.Millisecond
	}
	s := &Speaker{opt: opt, log: opt.Logger, cfg: c, events: make(chan event, 64), reloads: make(chan reloadReq), stopped: make(chan struct{})}
	for i := range c.VRRP {
		in, err := s.open(c, i)
		if err != nil {
			s.closeAll()
			return nil, err
		}
		s.inst = append(s.inst, in)
	}
	s.publish()
	return s, nil
}

func (s *Speaker) closeAll() {
	for _, in := range s.inst {
		unix.Close(in.fd)
	}
}

// open resolves the instance's interface and opens its raw socket: protocol 112, bound to
// the interface, IP_HDRINCL (we build keepalived's header), joined to 224.0.0.18 there
// unless unicast, multicast loop off.
func (s *Speaker) open(c *config.Config, i int) (*instance, error) {
	r := c.VRRP[i]
	ifi, err := net.InterfaceByName(r.Interface)
	if err != nil {
		return nil, fmt.Errorf("vrrp: instance %s: interface %s: %w", r.Name, r.Interface, err)
	}
	in := &instance{c: r, vips: c.OwnedVIPs(i), group: groupOf(c, r.Name), ifindex: ifi.Index, v6: c.VRRPIPv6(i), buf: make([]byte, 0, max(MaxPacket, MaxMessage6))}
	copy(in.mac[:], ifi.HardwareAddr)
	if in.v6 {
		return s.open6(in, ifi)
	}
	in.primary = r.UnicastSrcIP
	if !in.primary.IsValid() {
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("vrrp: instance %s: addresses of %s: %w", r.Name, r.Interface, err)
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
					in.primary = ip.Unmap()
					break
				}
			}
		}
		if !in.primary.IsValid() {
			return nil, fmt.Errorf("vrrp: instance %s: %s has no IPv4 address to advertise from (set unicast_src_ip)", r.Name, r.Interface)
		}
	}
	in.setRX(&r)
	in.m = NewMachine(in.rx.Load().p)

	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, Protocol)
	if err != nil {
		return nil, fmt.Errorf("vrrp: instance %s: raw socket for protocol 112: %w", r.Name, err)
	}
	fail := func(op string, err error) (*instance, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("vrrp: instance %s: %s: %w", r.Name, op, err)
	}
	if err := unix.BindToDevice(fd, r.Interface); err != nil {
		return fail("SO_BINDTODEVICE", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
		return fail("IP_HDRINCL", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0); err != nil {
		return fail("IP_MULTICAST_LOOP", err)
	}
	mreq := &unix.IPMreqn{Multiaddr: Group.As4(), Ifindex: int32(ifi.Index)}
	if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq); err != nil {
		return fail("IP_MULTICAST_IF", err)
	}
	if len(r.UnicastPeer) == 0 {
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); err != nil {
			return fail("IP_ADD_MEMBERSHIP 224.0.0.18", err)
		}
	}
	tv := unix.NsecToTimeval(recvTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	in.fd = fd
	return in, nil
}

func groupOf(c *config.Config, name string) int {
	for g, sg := range c.VRRPSyncGroups {
		if slices.Contains(sg.Instances, name) {
			return g
		}
	}
	return -1
}

// Start runs the speaker until Stop.
func (s *Speaker) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.notifier = newNotifier(s.log)
	for i := range s.inst {
		s.wg.Add(1)
		go s.receive(ctx, i)
	}
	go s.loop(ctx)
}

// Stop sends priority 0 from every master (so that backups take over after their skew
// time), closes the sockets and waits for the goroutines. OnChange is called with no
// active addresses.
func (s *Speaker) Stop() {
	if s.cancel == nil {
		s.closeAll()
		return
	}
	s.cancel()
	<-s.stopped
	s.wg.Wait()
	s.closeAll()
	s.notifier.close()
}

// Reload applies a changed configuration that CheckReload accepted: priorities, timers,
// preemption, VIPs, GARP, notify and tracking keys change without a state flap.
func (s *Speaker) Reload(c *config.Config) error {
	if err := CheckReload(s.cfg, c); err != nil {
		return err
	}
	done := make(chan struct{})
	select {
	case s.reloads <- reloadReq{c, done}:
		<-done
	case <-s.stopped:
		return errors.New("vrrp: speaker stopped")
	}
	return nil
}

// Status returns every instance's state, in config order.
func (s *Speaker) Status() []Status {
	if p := s.status.Load(); p != nil {
		return *p
	}
	return nil
}

// receive reads adverts for instance i, checks them and hands accepted ones to the loop.
// Every rejection is counted under its reason.
func (s *Speaker) receive(ctx context.Context, i int) {
	defer s.wg.Done()
	in := s.inst[i]
	buf := make([]byte, max(MaxPacket, MaxMessage6))
	oob := make([]byte, oobLen6)
	a := Advert{Addrs: make([]netip.Addr, 0, MaxAddrs)}
	for ctx.Err() == nil {
		var h IPv4
		var m []byte
		var d Drop
		if in.v6 {
			var ok bool
			if m, d, ok = recv6(in.fd, buf, oob, &h); !ok {
				continue
			}
		} else {
			n, _, err := unix.Recvfrom(in.fd, buf, 0)
			if err != nil {
				continue // EAGAIN on timeout, EINTR; a closed socket ends with ctx
			}
			m, d = ParseIPv4(buf[:n], &h)
		}
		if d == DropNone {
			d = Decode(m, h.Src, h.Dst, &a)
		}
		if d == DropNone {
			x := in.rx.Load()
			d = accept(&a, &h, &x.p, x.auth, x.pass, x.peers)
		}
		if d != DropNone {
			in.drops[d].Add(1)
			continue
		}
		select {
		case s.events <- event{inst: i, prio: a.Priority, interval: a.Interval, src: h.Src}:
		case <-ctx.Done():
		}
	}
}

// loop owns the machines: it runs timers, adverts, tracking and reloads.
func (s *Speaker) loop(ctx context.Context) {
	defer close(s.stopped)
	now := time.Now()
	s.track(now, true)
	s.publish()
	s.notifyActive()
	timer := time.NewTimer(0)
	defer timer.Stop()
	nextTrack := now.Add(s.opt.TrackInterval)
	nextDropLog := now.Add(dropLogInterval)
	for {
		next := nextTrack
		for _, in := range s.inst {
			for _, t := range []time.Time{in.m.Deadline(), in.garpAt, in.garpRefresh} {
				if !t.IsZero() && t.Before(next) {
					next = t
				}
			}
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			now := time.Now()
			for _, in := range s.inst {
				s.apply(now, in, in.m.Stop(now), false)
			}
			s.publish()
			s.notifyActive()
			return
		case ev := <-s.events:
			now := time.Now()
			in := s.inst[ev.inst]
			a := Advert{Version: uint8(in.c.Version), VRID: uint8(in.c.VirtualRouterID), Priority: ev.prio, Interval: ev.interval}
			s.apply(now, in, in.m.Receive(now, &a, ev.src), true)
		case r := <-s.reloads:
			s.reload(time.Now(), r.c)
			close(r.done)
		case <-timer.C:
		}
		now := time.Now()
		for _, in := range s.inst {
			if d := in.m.Deadline(); !d.IsZero() && !now.Before(d) {
				s.apply(now, in, in.m.Timer(now), true)
			}
			if !in.garpAt.IsZero() && !now.Before(in.garpAt) {
				in.garpAt = time.Time{}
				s.garp(in)
			}
			if !in.garpRefresh.IsZero() && !now.Before(in.garpRefresh) {
				in.garpRefresh = now.Add(in.c.GARPMasterRefresh)
				s.garp(in)
			}
		}
		if !now.Before(nextTrack) {
			s.track(now, false)
			nextTrack = now.Add(s.opt.TrackInterval)
		}
		if !now.Before(nextDropLog) {
			s.logDrops()
			nextDropLog = now.Add(dropLogInterval)
		}
		s.publish()
	}
}

// apply carries out a machine's output: the advert first (nothing may delay it), then the
// transition: ownership, gratuitous ARP, log, notify; and for a sync group member moving
// to master or backup on its own (propagate), the same move for the other members.
func (s *Speaker) apply(now time.Time, in *instance, out Output, propagate bool) {
	if out.Send {
		s.send(in, out.Priority)
	}
	if out.Announce {
		s.garp(in)
	}
	if !out.Changed() {
		return
	}
	to := out.To
	s.log.Info("vrrp transition", attrInstance, in.c.Name, attrFrom, out.From.String(), attrTo, to.String(), attrMaster, addrString(in.m.Master()))
	in.garpAt, in.garpRefresh = time.Time{}, time.Time{}
	if to == StateMaster {
		// The data plane must own the VIPs before the neighbours are told to use us.
		s.notifyActive()
		s.garp(in)
		if in.c.GARPMasterDelay > 0 {
			in.garpAt = now.Add(in.c.GARPMasterDelay)
		}
		if in.c.GARPMasterRefresh > 0 {
			in.garpRefresh = now.Add(in.c.GARPMasterRefresh)
		}
	} else if out.From == StateMaster {
		s.notifyActive()
	}
	var argv []string
	switch to {
	case StateMaster:
		argv = in.c.NotifyMaster
	case StateBackup:
		argv = in.c.NotifyBackup
	case StateFault:
		argv = in.c.NotifyFault
	}
	if argv != nil {
		s.notifier.enqueue(notifyJob{argv: argv, timeout: in.c.NotifyTimeout,
			env: []string{"UVS_VRRP_INSTANCE=" + in.c.Name, "UVS_VRRP_STATE=" + to.String(), fmt.Sprintf("UVS_VRRP_PRIORITY=%d", in.m.Priority())}})
	}
	if propagate && in.group >= 0 && (to == StateMaster || to == StateBackup) {
		for _, o := range s.inst {
			if o != in && o.group == in.group {
				s.apply(now, o, o.m.Force(now, to), false)
			}
		}
	}
}

// send writes one advertisement with priority prio: multicast, or to each unicast peer.
func (s *Speaker) send(in *instance, prio uint8) {
	x := in.rx.Load()
	a := Advert{Version: x.p.Version, VRID: x.p.VRID, Priority: prio, Interval: x.p.AdvertInt, AuthType: x.auth, Auth: x.pass, Addrs: in.vips}
	if in.c.ChecksumAsV2 {
		a.Checksum = ChecksumPlain
	}
	dsts := []netip.Addr{GroupFor(in.primary)}
	if len(x.peers) > 0 {
		dsts = x.peers
	}
	if in.v6 {
		s.send6(in, &a, dsts)
		return
	}
	for _, dst := range dsts {
		in.ipID++
		in.buf = AppendPacket(in.buf[:0], &a, in.primary, dst, in.ipID)
		if err := unix.Sendto(in.fd, in.buf, 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
			s.log.Debug("vrrp send", attrInstance, in.c.Name, attrErr, err)
		}
	}
}

// garp sends garp_master_repeat gratuitous ARPs for each VIP at once, as keepalived does.
func (s *Speaker) garp(in *instance) {
	if len(in.vips) == 0 {
		return
	}
	if in.v6 {
		s.unsolicitedNA(in)
		return
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		s.log.Warn("vrrp gratuitous arp", attrInstance, in.c.Name, attrErr, err)
		return
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: in.ifindex, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	frame := make([]byte, GARPLen)
	for range in.c.GARPMasterRepeat {
		for _, vip := range in.vips {
			BuildGARP(frame, in.mac, vip)
			if err := unix.Sendto(fd, frame, 0, to); err != nil {
				s.log.Warn("vrrp gratuitous arp", attrInstance, in.c.Name, attrErr, err)
				return
			}
		}
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// track evaluates interfaces, services and liveness, and moves instances into or out of
// fault (with their sync groups) or changes their priority.
func (s *Speaker) track(now time.Time, start bool) {
	alive := s.opt.Alive == nil || s.opt.Alive()
	own := make([]bool, len(s.inst))
	group := make([]int, len(s.inst))
	prios := make([]uint8, len(s.inst))
	for i, in := range s.inst {
		failed := 0
		for _, name := range in.c.TrackInterface {
			if !interfaceUp(name) {
				failed++
			}
		}
		for _, name := range in.c.TrackService {
			if s.opt.ServiceUp != nil && !s.opt.ServiceUp(name) {
				failed++
			}
		}
		in.failed = failed
		// The instance's own interface down is always a fault, as keepalived.
		prios[i], own[i] = trackedPriority(in.c.Priority, failed, in.c.TrackWeight, alive && interfaceUp(in.c.Interface))
		in.ownFault = own[i]
		group[i] = in.group
	}
	faults := groupFaults(own, group)
	for i, in := range s.inst {
		if start {
			in.m.SetPriority(now, prios[i])
			s.apply(now, in, in.m.Start(now, faults[i]), false)
			continue
		}
		s.apply(now, in, in.m.SetPriority(now, prios[i]), false)
		s.apply(now, in, in.m.SetFault(now, faults[i]), false)
	}
}

func interfaceUp(name string) bool {
	ifi, err := net.InterfaceByName(name)
	return err == nil && ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0
}

// reload applies a config that CheckReload accepted.
func (s *Speaker) reload(now time.Time, c *config.Config) {
	s.cfg = c
	for i := range c.VRRP {
		r := c.VRRP[i]
		var in *instance
		for _, x := range s.inst {
			if x.c.Name == r.Name {
				in = x
			}
		}
		vips := c.OwnedVIPs(i)
		changedVIPs := !slices.Equal(vips, in.vips)
		in.c, in.vips, in.group = r, vips, groupOf(c, r.Name)
		in.setRX(&r)
		s.apply(now, in, in.m.SetParams(now, in.rx.Load().p), false)
		if changedVIPs && in.m.State() == StateMaster {
			s.notifyActive()
			s.garp(in)
		}
	}
	s.track(now, false)
}

// logDrops logs, once per instance, the adverts dropped since the last summary, by reason
// (other VRIDs aside).
func (s *Speaker) logDrops() {
	for _, in := range s.inst {
		var attrs []any
		for d := DropShort; d < numDrops; d++ {
			n := in.drops[d].Load()
			// Other routers' VRIDs on a shared segment are normal: counted, not logged.
			if delta := n - in.dropsLogged[d]; delta > 0 && d != DropVRID {
				attrs = append(attrs, d.String(), delta)
			}
			in.dropsLogged[d] = n
		}
		if len(attrs) > 0 {
			s.log.Warn("vrrp adverts dropped", append([]any{attrInstance, in.c.Name}, attrs...)...)
		}
	}
}

// notifyActive tells OnChange every address a master instance owns.
func (s *Speaker) notifyActive() {
	if s.opt.OnChange == nil {
		return
	}
	var active []netip.Addr
	for _, in := range s.inst {
		if in.m.State() == StateMaster {
			active = append(active, in.vips...)
		}
	}
	s.opt.OnChange(active)
}

// publish stores the status that Status returns.
func (s *Speaker) publish() {
	st := make([]Status, len(s.inst))
	for i, in := range s.inst {
		vips := make([]string, len(in.vips))
		for j, v := range in.vips {
			vips[j] = v.String()
		}
		drops := DropCounts{}
		for d := DropShort; d < numDrops; d++ {
			if n := in.drops[d].Load(); n > 0 {
				drops[d.String()] = n
			}
		}
		st[i] = Status{Name: in.c.Name, Interface: in.c.Interface, VRID: in.c.VirtualRouterID, Version: in.c.Version,
			State: in.m.State().String(), StateValue: in.m.State(), Priority: int(in.m.Priority()),
			Master: addrString(in.m.Master()), Transitions: in.m.Transitions(), VIPs: vips, Drops: drops}
	}
	s.status.Store(&st)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
