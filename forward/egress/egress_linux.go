package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/forward/privilege"
)

// Egress is how frames to one destination leave the director: the device,
// the next hop and the link-layer addresses to write, as the host's routing
// table and neighbour cache say. uvs sends with AF_PACKET, bypassing the
// kernel's neighbour output path, so it must know the MAC itself.
type Egress struct {
	Ifindex int
	Ifname  string
	// MTU is the route's MTU metric if set, else the device MTU.
	MTU    int
	SrcMAC [6]byte
	DstMAC [6]byte
	// SrcAddr is the preferred IPv4 source for this destination: the
	// route's preferred source, else the device's first IPv4 address. TUN
	// outer headers use it.
	SrcAddr [4]byte
	// Gateway is the next hop, or zero if the destination is on-link.
	Gateway [4]byte
	// SrcAddr6 and Gateway6 are SrcAddr and Gateway for an IPv6 destination (the
	// IPv4 fields are then zero): the route's preferred source, else the device's
	// first global IPv6 address; the next hop, often a link-local router address.
	SrcAddr6 [16]byte
	Gateway6 [16]byte
	// Valid is false while the destination cannot be reached: no usable
	// route, or the next hop's neighbour entry is missing, incomplete or
	// FAILED. The other fields are filled in as far as they are known.
	Valid bool
	// Reason says why Valid is false, for logs and listings.
	Reason string
}

// Reasons an Egress is not valid.
const (
	egressPending    = "not resolved yet"
	egressNotTarget  = "not a resolver target"
	egressResolving  = "neighbour resolving"
	egressNeighFail  = "neighbour FAILED"
	egressLocal      = "destination is a local address"
	egressNotEther   = "egress interface is not ethernet"
	egressLinkDown   = "egress interface is down"
	egressNoARP      = "egress interface does not use ARP"
	egressNoSrcAddr  = "egress interface has no IPv4 address"
	egressNoSrcAddr6 = "egress interface has no global IPv6 address"
	egressNoRoutePfx = "no route: "
)

// Timing of the resolver.
const (
	// egressBackstop is the period of the full refresh that catches any
	// missed notification (netlink multicast is lossy under ENOBUFS) and
	// revalidates STALE neighbours.
	egressBackstop = 5 * time.Second
	// egressDebounce coalesces bursts of netlink notifications, such as
	// one per route of a table reload, into one refresh.
	egressDebounce = 10 * time.Millisecond
	// egressRetrigger is the least time between two resolution requests for
	// the same next hop. A FAILED entry waits a backstop period: the
	// kernel just spent mcast_solicit * retrans_time (3 s by default) on it.
	egressRetrigger = time.Second
	// egressNetlinkTimeout bounds each netlink request of a refresh.
	egressNetlinkTimeout = 2 * time.Second
	// egressRcvbuf is asked for each subscription socket; the kernel caps
	// it at net.core.rmem_max.
	egressRcvbuf = 1 << 20
	// neighDumpTries bounds the neighbour dumps of one refresh per link when
	// the kernel reports them interrupted by a change.
	neighDumpTries = 3
)

// Log attribute keys used by the resolver.
const (
	egressKeyReal   = "real"
	egressKeyIface  = "iface"
	egressKeyGw     = "gateway"
	egressKeyMAC    = "mac"
	egressKeyReason = "reason"
	egressKeyErr    = "err"
)

// ResolverConfig configures a Resolver. The zero value is usable.
type ResolverConfig struct {
	// Logger receives one message per change of a destination's
	// resolvability; nil discards them.
	Logger *slog.Logger
	// OnChange, if set, is called from the Run goroutine after a refresh
	// changed any result; one call covers all changes of that refresh. It
	// must not block for long; it may call Lookup, Snapshot and SetTargets.
	OnChange func()
}

// Resolver keeps the Egress of a set of IPv4 destinations current from the
// host's routes, links, addresses and neighbours over rtnetlink, and asks the
// kernel to resolve next hops whose neighbour entry is missing or FAILED and
// to revalidate STALE ones (uvs's own traffic never confirms them). It works
// in the network namespace of the thread that called NewResolver.
//
// Lookup, Snapshot and SetTargets are safe for concurrent use; they are for
// the control side, which publishes snapshots to workers.
type Resolver struct {
	log      *slog.Logger
	onChange func()
	ns       netns.NsHandle  // closed when Run returns
	h        *netlink.Handle // closed when Run returns; used by Run only
	kick     chan struct{}   // capacity 1: SetTargets asks for a refresh
	running  atomic.Bool

	mu      sync.Mutex // guards targets and results
	targets map[netip.Addr]struct{}
	results map[netip.Addr]Egress

	// Owned by the Run goroutine.
	nextHops map[netip.Addr]bool      // next hops whose neighbour events matter
	lastUse  map[netip.Addr]time.Time // last resolution request per next hop
}

// NewResolver returns a resolver bound to the calling thread's network
// namespace. Nothing is resolved until Run is called. Its namespace handle
// and rtnetlink socket are released when Run returns, or by Close for a
// resolver that is never run.
func NewResolver(cfg ResolverConfig) (*Resolver, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("forward: new resolver: get network namespace: %w", err)
	}
	// Entering the namespace we are in needs CAP_SYS_ADMIN; see inNetNS.
	var h *netlink.Handle
	if privilege.InNetNS(ns) {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	}
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("forward: new resolver: open rtnetlink: %w", err)
	}
	if err := h.SetSocketTimeout(egressNetlinkTimeout); err != nil {
		h.Close()
		ns.Close()
		return nil, fmt.Errorf("forward: new resolver: set rtnetlink timeout: %w", err)
	}
	return &Resolver{
		log:      log,
		onChange: cfg.OnChange,
		ns:       ns,
		h:        h,
		kick:     make(chan struct{}, 1),
		targets:  make(map[netip.Addr]struct{}),
		results:  make(map[netip.Addr]Egress),
		nextHops: make(map[netip.Addr]bool),
		lastUse:  make(map[netip.Addr]time.Time),
	}, nil
}

// SetTargets replaces the set of destinations to keep resolved. New ones
// read as not valid until the Run goroutine has resolved them, which it
// starts at once; results of dropped ones are forgotten.
func (r *Resolver) SetTargets(addrs [][4]byte) {
	all := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		all[i] = netip.AddrFrom4(a)
	}
	r.SetAddrs(all)
}

// SetAddrs is SetTargets for IPv4 and IPv6 destinations.
func (r *Resolver) SetAddrs(addrs []netip.Addr) {
	r.mu.Lock()
	next := make(map[netip.Addr]struct{}, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		next[a] = struct{}{}
		if _, ok := r.results[a]; !ok {
			r.results[a] = Egress{Reason: egressPending}
		}
	}
	for a := range r.results {
		if _, ok := next[a]; !ok {
			delete(r.results, a)
		}
	}
	r.targets = next
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Lookup returns the latest result for addr. For an address that is not a
// target, Valid is false.
func (r *Resolver) Lookup(addr [4]byte) Egress { return r.LookupAddr(netip.AddrFrom4(addr)) }

// LookupAddr is Lookup for an IPv4 or IPv6 destination.
func (r *Resolver) LookupAddr(addr netip.Addr) Egress {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.results[addr.Unmap()]
	if !ok {
		return Egress{Reason: egressNotTarget}
	}
	return e
}

// Snapshot returns a copy of the results for all IPv4 targets.
func (r *Resolver) Snapshot() map[[4]byte]Egress {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[[4]byte]Egress, len(r.results))
	for a, e := range r.results {
		if a.Is4() {
			m[a.As4()] = e
		}
	}
	return m
}

// subscription is one generation of the four rtnetlink subscriptions.
type subscription struct {
	done   chan struct{}
	routes chan netlink.RouteUpdate
	neighs chan netlink.NeighUpdate
	links  chan netlink.LinkUpdate
	addrs  chan netlink.AddrUpdate
}

// subscribe opens route, neighbour, link and address subscriptions in the
// resolver's namespace. errc receives their receive errors.
func (r *Resolver) subscribe(errc chan<- error) (*subscription, error) {
	s := &subscription{
		done:   make(chan struct{}),
		routes: make(chan netlink.RouteUpdate, 64),
		neighs: make(chan netlink.NeighUpdate, 256),
		links:  make(chan netlink.LinkUpdate, 64),
		addrs:  make(chan netlink.AddrUpdate, 64),
	}
	cb := func(err error) {
		select {
		case <-s.done:
			return // closing the socket on purpose fails its Receive
		default:
		}
		select {
		case errc <- err:
		default:
		}
	}
	ns := &r.ns
	if privilege.InNetNS(r.ns) {
		ns = nil // subscribe without setns (CAP_SYS_ADMIN); see inNetNS
	}
	steps := []struct {
		what      string
		subscribe func() error
		closeCh   func() // for channels the library never took over
	}{
		{"routes", func() error {
			return netlink.RouteSubscribeWithOptions(s.routes, s.done, netlink.RouteSubscribeOptions{
				Namespace: ns, ErrorCallback: cb, ReceiveBufferSize: egressRcvbuf})
		}, func() { close(s.routes) }},
		{"neighbours", func() error {
			return netlink.NeighSubscribeWithOptions(s.neighs, s.done, netlink.NeighSubscribeOptions{
				Namespace: ns, ErrorCallback: cb, ReceiveBufferSize: egressRcvbuf})
		}, func() { close(s.neighs) }},
		{"links", func() error {
			return netlink.LinkSubscribeWithOptions(s.links, s.done, netlink.LinkSubscribeOptions{
				Namespace: ns, ErrorCallback: cb, ReceiveBufferSize: egressRcvbuf})
		}, func() { close(s.links) }},
		{"addresses", func() error {
			return netlink.AddrSubscribeWithOptions(s.addrs, s.done, netlink.AddrSubscribeOptions{
				Namespace: ns, ErrorCallback: cb, ReceiveBufferSize: egressRcvbuf})
		}, func() { close(s.addrs) }},
	}
	for i, st := range steps {
		if err := st.subscribe(); err != nil {
			// The library closes the channels of subscriptions it
			// started once done is closed; close the others so that
			// the drain in s.close ends.
			for _, rest := range steps[i:] {
				rest.closeCh()
			}
			s.close()
			return nil, fmt.Errorf("forward: resolver: subscribe to %s: %w", st.what, err)
		}
	}
	return s, nil
}

// close ends the subscriptions and drains their channels until the
// library's receive goroutines, which block on a full channel, have exited.
// A placeholder subscription has nil channels, which are not drained.
func (s *subscription) close() {
	close(s.done)
	if s.routes == nil {
		return
	}
	go func() {
		for range s.routes {
		}
	}()
	go func() {
		for range s.neighs {
		}
	}()
	go func() {
		for range s.links {
		}
	}()
	go func() {
		for range s.addrs {
		}
	}()
}

// Close releases the namespace handle and rtnetlink socket of a resolver that was never run
// (a director stopped during start-up); Run then refuses to start. Once Run has started it
// releases them itself when it returns, and Close does nothing.
func (r *Resolver) Close() {
	if r.running.CompareAndSwap(false, true) {
		r.h.Close()
		r.ns.Close()
	}
}

// Run resolves the targets and follows changes until ctx is done, then
// returns ctx.Err(). It returns early only if it cannot subscribe to
// rtnetlink at start; a subscription that fails later is reopened. Run may be
// called once.
func (r *Resolver) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("forward: resolver run: already started")
	}
	defer r.ns.Close()
	defer r.h.Close()

	errc := make(chan error, 1)
	sub, err := r.subscribe(errc)
	if err != nil {
		return err
	}
	defer func() { sub.close() }()

	backstop := time.NewTicker(egressBackstop)
	defer backstop.Stop()
	debounce := time.NewTimer(0) // fires at once: first refresh
	defer debounce.Stop()
	pending := true
	schedule := func() {
		if !pending {
			pending = true
			debounce.Reset(egressDebounce)
		}
	}
	resubscribe := func(why string) {
		r.log.Warn("resolver: rtnetlink subscription lost; reopening", egressKeyReason, why)
		sub.close()
		for {
			s, err := r.subscribe(errc)
			if err == nil {
				sub = s
				break
			}
			r.log.Warn("resolver: reopen rtnetlink subscription", egressKeyErr, err)
			select {
			case <-ctx.Done():
				sub = &subscription{done: make(chan struct{})}
				return
			case <-time.After(egressRetrigger):
			}
		}
		schedule() // events may have been missed
	}

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-debounce.C:
			pending = false
			r.refresh()
		case <-backstop.C:
			r.refresh()
		case <-r.kick:
			schedule()
		case u, ok := <-sub.neighs:
			if !ok {
				resubscribe("neighbour channel closed")
				continue
			}
			if ip, ok := netip.AddrFromSlice(u.IP); ok && r.nextHops[ip.Unmap()] {
				schedule()
			}
		case _, ok := <-sub.routes:
			if !ok {
				resubscribe("route channel closed")
				continue
			}
			schedule()
		case _, ok := <-sub.links:
			if !ok {
				resubscribe("link channel closed")
				continue
			}
			schedule()
		case _, ok := <-sub.addrs:
			if !ok {
				resubscribe("address channel closed")
				continue
			}
			schedule()
		case err := <-errc:
			// The failing subscription closes its channel; that case
			// reopens it. Log the cause here.
			r.log.Warn("resolver: rtnetlink subscription error", egressKeyErr, err)
		}
	}
}

// refreshCache holds what one refresh read from the kernel, per link.
type refreshCache struct {
	links  map[int]netlink.Link
	neighs map[int][]netlink.Neigh
	addrs  map[int][4]byte
	addrs6 map[int][16]byte
	neigh6 map[int][]netlink.Neigh
}

// refresh recomputes every target's Egress, requests resolution where
// needed, publishes the results and calls OnChange if any changed.
func (r *Resolver) refresh() {
	r.mu.Lock()
	targets := make([]netip.Addr, 0, len(r.targets))
	for a := range r.targets {
		targets = append(targets, a)
	}
	prev := make(map[netip.Addr]Egress, len(r.results))
	for a, e := range r.results {
		prev[a] = e
	}
	r.mu.Unlock()

	c := refreshCache{links: map[int]netlink.Link{}, neighs: map[int][]netlink.Neigh{}, addrs: map[int][4]byte{},
		addrs6: map[int][16]byte{}, neigh6: map[int][]netlink.Neigh{}}
	next := make(map[netip.Addr]Egress, len(targets))
	hops := make(map[netip.Addr]bool, len(targets))
	for _, a := range targets {
		e, hop := r.resolve(a, prev[a], &c)
		next[a] = e
		if hop.IsValid() {
			hops[hop] = true
		}
	}
	r.nextHops = hops
	for hop := range r.lastUse {
		if !hops[hop] {
			delete(r.lastUse, hop)
		}
	}

	changed := false
	r.mu.Lock()
	for a, e := range next {
		old, ok := r.results[a]
		if !ok {
			continue // dropped by SetTargets meanwhile
		}
		if old != e {
			changed = true
			r.results[a] = e
			r.logTransition(a, old, e)
		}
	}
	r.mu.Unlock()
	if changed && r.onChange != nil {
		r.onChange()
	}
}

// logTransition logs when a destination becomes valid or invalid, or when
// a valid one moves to another device, gateway or MAC; not on every reason
// change of an unresolvable one.
// The transient "resolving" state of a new target is not logged.
func (r *Resolver) logTransition(a netip.Addr, old, e Egress) {
	dst := a.String()
	gw := net.IP(e.Gateway[:]).String()
	if a.Is6() {
		gw = netip.AddrFrom16(e.Gateway6).String()
	}
	switch {
	case e.Valid && (!old.Valid || old.Ifindex != e.Ifindex || old.Gateway != e.Gateway || old.Gateway6 != e.Gateway6 || old.DstMAC != e.DstMAC):
		r.log.Info("egress resolved", egressKeyReal, dst, egressKeyIface, e.Ifname,
			egressKeyGw, gw, egressKeyMAC, net.HardwareAddr(e.DstMAC[:]).String())
	case !e.Valid && (old.Valid || (e.Reason != old.Reason && e.Reason != egressResolving)):
		r.log.Warn("egress unresolved", egressKeyReal, dst, egressKeyIface, e.Ifname, egressKeyReason, e.Reason)
	}
}

// resolve computes the Egress of dst and returns it with the next hop whose
// neighbour entry it depends on (zero if none).
func (r *Resolver) resolve(dst netip.Addr, prev Egress, c *refreshCache) (Egress, netip.Addr) {
	var e Egress
	var none netip.Addr
	routes, err := r.h.RouteGet(net.IP(dst.AsSlice()))
	if err != nil {
		e.Reason = egressNoRoutePfx + err.Error()
		return e, none
	}
	if len(routes) == 0 {
		e.Reason = egressNoRoutePfx + "empty answer"
		return e, none
	}
	rt := routes[0]
	switch rt.Type {
	case unix.RTN_UNICAST:
	case unix.RTN_LOCAL:
		e.Reason = egressLocal
		return e, none
	default:
		e.Reason = fmt.Sprintf("%sroute type %d", egressNoRoutePfx, rt.Type)
		return e, none
	}

	link, ok := c.links[rt.LinkIndex]
	if !ok {
		link, err = r.h.LinkByIndex(rt.LinkIndex)
		if err != nil {
			e.Reason = fmt.Sprintf("get link %d: %v", rt.LinkIndex, err)
			return e, none
		}
		c.links[rt.LinkIndex] = link
	}
	la := link.Attrs()
	e.Ifindex, e.Ifname, e.MTU = la.Index, la.Name, la.MTU
	if rt.MTU > 0 {
		e.MTU = rt.MTU
	}
	noSrc := false
	if dst.Is6() {
		if len(rt.Gw) == 16 && !rt.Gw.IsUnspecified() {
			e.Gateway6 = [16]byte(rt.Gw)
		}
		if len(rt.Src) == 16 && !rt.Src.IsUnspecified() {
			e.SrcAddr6 = [16]byte(rt.Src)
		} else {
			e.SrcAddr6 = r.firstAddr6(link, c)
		}
		noSrc = e.SrcAddr6 == [16]byte{}
	} else {
		if gw := rt.Gw.To4(); gw != nil {
			e.Gateway = [4]byte(gw)
		}
		if src := rt.Src.To4(); src != nil {
			e.SrcAddr = [4]byte(src)
		} else {
			e.SrcAddr = r.firstAddr(link, c)
		}
		noSrc = e.SrcAddr == [4]byte{}
	}
	switch {
	case len(la.HardwareAddr) != 6:
		e.Reason = egressNotEther
		return e, none
	case la.RawFlags&unix.IFF_NOARP != 0:
		e.Reason = egressNoARP
		return e, none
	case la.RawFlags&unix.IFF_UP == 0:
		e.Reason = egressLinkDown
		return e, none
	case noSrc && dst.Is6():
		e.Reason = egressNoSrcAddr6
		return e, none
	case noSrc:
		e.Reason = egressNoSrcAddr
		return e, none
	}
	e.SrcMAC = [6]byte(la.HardwareAddr)

	hop := dst
	if e.Gateway != ([4]byte{}) {
		hop = netip.AddrFrom4(e.Gateway)
	}
	if e.Gateway6 != ([16]byte{}) {
		hop = netip.AddrFrom16(e.Gateway6)
	}
	n, found := r.neighbour(la.Index, hop, c)
	state := netlink.NUD_NONE
	if found {
		state = n.State
	}
	const usable = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY |
		netlink.NUD_PROBE | netlink.NUD_PERMANENT | netlink.NUD_NOARP
	samePath := prev.Valid && prev.Ifindex == e.Ifindex && prev.Gateway == e.Gateway && prev.Gateway6 == e.Gateway6
	switch {
	case state&usable != 0 && len(n.HardwareAddr) == 6:
		e.DstMAC = [6]byte(n.HardwareAddr)
		e.Valid = true
	case samePath && state&netlink.NUD_FAILED == 0:
		// The next hop had a MAC, and its entry is gone (garbage-collected, flushed, or
		// missing from a dump the table changed under) or being resolved again: keep
		// sending to that MAC until the kernel gives up on it (FAILED, mcast_solicit *
		// retrans_time later), as the kernel keeps using a STALE entry while it probes.
		// Invalid here, the real's traffic would be dropped for as long as that lasts:
		// up to the backstop period when no other event comes.
		e.DstMAC, e.Valid = prev.DstMAC, true
	case state&netlink.NUD_FAILED != 0:
		e.Reason = egressNeighFail
	case state&netlink.NUD_INCOMPLETE != 0 && prev.Reason == egressNeighFail:
		// Our own retry after FAILED: keep the result stable rather
		// than flap between two reasons every backstop period.
		e.Reason = egressNeighFail
	default:
		e.Reason = egressResolving
	}

	// The kernel never sees uvs's traffic, so it neither creates the entry
	// nor moves a STALE one through DELAY/PROBE. Ask it to, as if a packet
	// were queued: RTM_NEWNEIGH with NTF_USE calls neigh_event_send()
	// (net/core/neighbour.c, neigh_add), which starts ARP (neighbour
	// solicitation for IPv6) for a new or FAILED entry and a unicast probe
	// for a STALE one.
	wait := egressRetrigger
	if state&netlink.NUD_FAILED != 0 {
		wait = egressBackstop
	}
	if state == netlink.NUD_NONE || state&(netlink.NUD_STALE|netlink.NUD_FAILED) != 0 {
		if last, ok := r.lastUse[hop]; !ok || time.Since(last) >= wait {
			r.lastUse[hop] = time.Now()
			if err := r.h.NeighSet(&netlink.Neigh{
				LinkIndex: la.Index,
				Family:    family(hop),
				IP:        net.IP(hop.AsSlice()),
				Flags:     netlink.NTF_USE,
			}); err != nil {
				r.log.Debug("resolver: request neighbour resolution", egressKeyReal, dst.String(),
					egressKeyIface, la.Name, egressKeyErr, err)
			}
		}
	}
	return e, hop
}

// neighbour finds the neighbour entry of ip (IPv4 or IPv6) on link ifindex.
func (r *Resolver) neighbour(ifindex int, ip netip.Addr, c *refreshCache) (netlink.Neigh, bool) {
	cache := c.neighs
	if ip.Is6() {
		cache = c.neigh6
	}
	list, ok := cache[ifindex]
	if !ok {
		// A dump the table changed under (NLM_F_DUMP_INTR) may lack entries: ask again.
		var err error
		for try := 0; try < neighDumpTries; try++ {
			if list, err = r.h.NeighList(ifindex, family(ip)); !errors.Is(err, netlink.ErrDumpInterrupted) {
				break
			}
		}
		if err != nil {
			r.log.Debug("resolver: list neighbours", egressKeyErr, err)
		}
		cache[ifindex] = list
	}
	for _, n := range list {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip {
			return n, true
		}
	}
	return netlink.Neigh{}, false
}

// family is the netlink address family of a.
func family(a netip.Addr) int {
	if a.Is6() {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// firstAddr6 returns the first global IPv6 address of link, or zero: a link-local source
// would not reach a real server behind a router, and IPv6 has no other scope worth trying.
func (r *Resolver) firstAddr6(link netlink.Link, c *refreshCache) [16]byte {
	idx := link.Attrs().Index
	if a, ok := c.addrs6[idx]; ok {
		return a
	}
	var best [16]byte
	if addrs, err := r.h.AddrList(link, unix.AF_INET6); err == nil {
		for _, a := range addrs {
			if len(a.IP) == 16 && a.IP.To4() == nil && a.Scope == unix.RT_SCOPE_UNIVERSE &&
				a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 {
				best = [16]byte(a.IP)
				break
			}
		}
	}
	c.addrs6[idx] = best
	return best
}

// firstAddr returns the first global IPv4 address of link, else the first
// of any scope, else zero.
func (r *Resolver) firstAddr(link netlink.Link, c *refreshCache) [4]byte {
	idx := link.Attrs().Index
	if a, ok := c.addrs[idx]; ok {
		return a
	}
	var best [4]byte
	addrs, err := r.h.AddrList(link, unix.AF_INET)
	if err == nil {
		for _, a := range addrs {
			v4 := a.IP.To4()
			if v4 == nil {
				continue
			}
			if a.Scope == unix.RT_SCOPE_UNIVERSE {
				best = [4]byte(v4)
				break
			}
			if best == ([4]byte{}) {
				best = [4]byte(v4)
			}
		}
	}
	c.addrs[idx] = best
	return best
}
