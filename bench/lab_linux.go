package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// netnsDir is where `ip netns` keeps named namespaces.
const netnsDir = "/run/netns"

// closeTimeout bounds Close and CleanupPrefix as a whole.
const closeTimeout = 30 * time.Second

// NewLab builds the lab that spec describes: a switch namespace holding one
// bridge per segment, and one namespace per node joined to it by veth pairs.
// On error it removes whatever it built. ctx bounds the whole build.
func NewLab(ctx context.Context, spec LabSpec) (_ *Lab, err error) {
	l, err := layout(spec)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.Close())
		}
	}()
	if err := l.build(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Lab) build(ctx context.Context) error {
	nodes := l.Nodes()
	all := []string{l.switchNS}
	for _, n := range nodes {
		all = append(all, n.NS)
	}
	for _, ns := range all {
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); err == nil {
			return fmt.Errorf("bench: netns %s exists (leftover of a killed run? see CleanupPrefix)", ns)
		}
		// Not cut short by ctx: an `ip netns add` killed midway can leave the
		// namespace behind without this run knowing it added it (seen when
		// `uvs demo` got SIGINT during the build). opTimeout still bounds it.
		if _, err := run(context.WithoutCancel(ctx), "", "ip", "netns", "add", ns); err != nil {
			return err
		}
		l.created = append(l.created, ns)
		if err := ctx.Err(); err != nil {
			return err
		}
		// Before any link exists, so that no interface gets IPv6 (no DAD,
		// no router solicitations on the segments).
		if err := writeSysctls(ns, baseSysctls); err != nil {
			return err
		}
		if l.Spec.IPv6 {
			if err := writeSysctls(ns, ipv6Sysctls); err != nil {
				return err
			}
		}
	}
	// The bridges do not filter: br_netfilter, when the host loaded it,
	// would otherwise run this namespace's (empty) iptables on bridged frames.
	if err := writeSysctls(l.switchNS, map[string]string{
		"bridge/bridge-nf-call-iptables":  "0",
		"bridge/bridge-nf-call-ip6tables": "0", // br_validate_ipv6 would drop malformed IPv6 frames
		"bridge/bridge-nf-call-arptables": "0",
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	mtu := strconv.Itoa(l.Spec.MTU)
	sw := []string{"link set lo up"}
	for _, s := range l.plan.segments {
		// No STP, so ports forward at once; no multicast snooping.
		sw = append(sw, "link add "+s.bridge+" mtu "+mtu+" type bridge stp_state 0 mcast_snooping 0",
			"link set "+s.bridge+" up")
	}
	if err := ipBatch(ctx, l.switchNS, sw); err != nil {
		return err
	}
	var ports []string
	for i, pn := range l.plan.nodes {
		n := nodes[i]
		lines := []string{"link set lo up"}
		queues := ""
		if q := l.Spec.DirectorQueues; q > 1 && pn.role == roleDirector {
			queues = fmt.Sprintf(" numrxqueues %d numtxqueues %d", q, q)
		}
		for _, pl := range pn.links {
			lines = append(lines,
				"link add "+pl.dev+queues+" mtu "+mtu+" type veth peer name "+pl.peer+queues+" mtu "+mtu+" netns "+l.switchNS,
				"addr add "+pl.prefix.String()+" dev "+pl.dev,
				"link set "+pl.dev+" up")
			ports = append(ports, "link set "+pl.peer+" master "+l.plan.segments[pl.segment].bridge+" up")
		}
		for _, r := range pn.routes {
			dst := "default"
			if r.dst.IsValid() {
				dst = r.dst.String()
			}
			lines = append(lines, "route replace "+dst+" via "+r.via.String())
		}
		sysctls := map[string]string{"ipv4/ip_forward": "0"}
		if pn.role == roleRouter {
			sysctls["ipv4/ip_forward"] = "1"
		}
		if l.Spec.IPv6 {
			sysctls["ipv6/conf/all/forwarding"] = sysctls["ipv4/ip_forward"]
			lines = append(lines, ipv6Lines(pn)...)
		}
		if err := writeSysctls(n.NS, sysctls); err != nil {
			return err
		}
		// Routes come after the links: a gateway must be on a connected
		// prefix. The switch-side ports come up last, all at once.
		if err := ipBatch(ctx, n.NS, lines); err != nil {
			return err
		}
	}
	if err := ipBatch(ctx, l.switchNS, ports); err != nil {
		return err
	}
	if l.Spec.DirectorTxOff {
		for _, pl := range l.plan.director().links {
			if _, err := run(ctx, "", "ip", "netns", "exec", l.Director.NS, "ethtool", "-K", pl.dev, "tx", "off"); err != nil {
				return err
			}
			if _, err := run(ctx, "", "ip", "netns", "exec", l.switchNS, "ethtool", "-K", pl.peer, "tx", "off"); err != nil {
				return err
			}
		}
	}
	return nil
}

// baseSysctls are written in every lab namespace before it gets links.
// rp_filter is off because TUN real servers answer from the VIP through the
// router, and the router sees the VIP's segment on its other side.
var baseSysctls = map[string]string{
	"ipv6/conf/all/disable_ipv6":     "1",
	"ipv6/conf/default/disable_ipv6": "1",
	"ipv4/conf/all/rp_filter":        "0",
	"ipv4/conf/default/rp_filter":    "0",
}

// writeSysctls writes /proc/sys/net/KEY = VALUE for each entry, from a thread
// inside namespace ns: /proc/sys/net shows the namespace of the thread that
// opens it.
func writeSysctls(ns string, kv map[string]string) error {
	return doIn(ns, func() error {
		for k, v := range kv {
			if err := os.WriteFile(filepath.Join("/proc/sys/net", k), []byte(v), 0); err != nil {
				return fmt.Errorf("bench: sysctl net/%s in %s: %w", k, ns, err)
			}
		}
		return nil
	})
}

// Close stops the lab's directors and servers, kills processes left in its namespaces and
// deletes them. It is idempotent; only the first call does any work.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	servers, directors := l.servers, l.directors
	l.servers, l.directors = nil, nil
	l.mu.Unlock()
	var errs []error
	for _, d := range directors {
		select {
		case <-d.Exited():
			continue // stopped or failed earlier: the caller saw that
		default:
		}
		if err := d.Stop(); errors.Is(err, ErrKilled) {
			errs = append(errs, err) // an exit status is the caller's business
		}
	}
	for _, s := range servers {
		errs = append(errs, s.Close())
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	// Nodes first (the switch namespace was created first): deleting a node
	// namespace destroys its veths, so the switch namespace is empty when it
	// goes.
	for i := len(l.created) - 1; i >= 0; i-- {
		errs = append(errs, deleteNS(ctx, l.created[i]))
	}
	return errors.Join(errs...)
}

// CleanupPrefix kills the processes in, and deletes, every network namespace
// whose name starts with prefix: the leftovers of a run that was killed
// before it could Close its lab.
func CleanupPrefix(prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bench: cleanup %s: %w", prefix, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	var errs []error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			errs = append(errs, deleteNS(ctx, e.Name()))
		}
	}
	return errors.Join(errs...)
}

// CleanupStale removes the leftovers of killed runs whose prefixes have the
// form base + PID + anything, such as "uvt1234-" or "uvsdemo1234-dr-", when
// process PID no longer exists. A live run's namespaces are never touched; a
// dead run whose PID was reused is left for CleanupPrefix.
func CleanupStale(base string) error {
	if err := checkPrefix(base); err != nil {
		return err
	}
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bench: cleanup %s: %w", base, err)
	}
	dead := make(map[string]bool) // "base<pid>" prefixes of dead runs
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), base)
		if !ok {
			continue
		}
		digits := len(rest) - len(strings.TrimLeft(rest, "0123456789"))
		pid, err := strconv.Atoi(rest[:digits])
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			dead[base+rest[:digits]] = true
		}
	}
	var errs []error
	for p := range dead {
		// The digits end where the PID ends, so "uvt12" never matches
		// "uvt123...": only names whose next byte is not a digit.
		errs = append(errs, cleanupPID(p))
	}
	return errors.Join(errs...)
}

// cleanupPID deletes the namespaces named p + a non-digit + anything.
func cleanupPID(p string) error {
	ents, err := os.ReadDir(netnsDir)
	if err != nil {
		return fmt.Errorf("bench: cleanup %s: %w", p, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	var errs []error
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), p)
		if ok && (rest == "" || rest[0] < '0' || rest[0] > '9') {
			errs = append(errs, deleteNS(ctx, e.Name()))
		}
	}
	return errors.Join(errs...)
}

// deleteNS kills the processes in namespace ns and deletes it. A namespace
// that does not exist is not an error.
func deleteNS(ctx context.Context, ns string) error {
	if _, err := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	out, err := run(ctx, "", "ip", "netns", "pids", ns)
	if err != nil {
		return err
	}
	self := os.Getpid()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != self && pid > 1 {
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL) // may have exited already
	}
	// Give killed processes a moment to release the namespace's devices.
	for _, pid := range pids {
		for range 100 {
			if syscall.Kill(pid, 0) != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	_, err = run(ctx, "", "ip", "netns", "del", ns)
	if err != nil {
		if _, serr := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(serr, fs.ErrNotExist) {
			return nil // deleted concurrently
		}
	}
	return err
}

// Do runs fn on a locked OS thread switched into the node's namespace and
// returns its error. Sockets fn creates stay in that namespace for their
// whole life, whichever thread uses them later. fn runs on a goroutine of
// its own, so the caller's thread never changes namespace; a panic in fn is
// re-raised in the caller. If the thread cannot be switched back, it stays
// locked and the runtime ends it with the goroutine.
func (n *Node) Do(fn func() error) error {
	return doIn(n.NS, fn)
}

func doIn(ns string, fn func() error) error {
	type result struct {
		err      error
		panicked bool
		p        any
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("bench: get netns: %w", err)}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("bench: open netns %s: %w", ns, err)}
			return
		}
		err = netns.Set(target)
		target.Close()
		if err != nil {
			// setns failed, so the thread is still where it was.
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("bench: enter netns %s: %w", ns, err)}
			return
		}
		var r result
		defer func() {
			if p := recover(); p != nil {
				r.panicked, r.p = true, p
			}
			if err := netns.Set(orig); err != nil {
				// Leave the thread locked: it must never run another
				// goroutine, and the runtime ends it when this one exits.
				r.err = errors.Join(r.err, fmt.Errorf("bench: leave netns %s: %w", ns, err))
			} else {
				runtime.UnlockOSThread()
			}
			ch <- r
		}()
		r.err = fn()
	}()
	r := <-ch
	if r.panicked {
		panic(r.p)
	}
	return r.err
}

// PrepareReals prepares the real servers for method. "dr" (also the first
// step of "tun") puts the VIP/32 on lo and sets arp_ignore=1 and
// arp_announce=2 on all and lo, so that the real servers accept VIP traffic
// but never answer ARP for the VIP or use it as an ARP source. "nat" points
// the real servers' default route at the director's segment-B address, and
// needs TopologyNAT. It is idempotent.
func (l *Lab) PrepareReals(method string) error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	switch method {
	case "dr":
		for _, n := range l.Reals {
			lines := []string{"addr replace " + l.VIP.String() + "/32 dev lo"}
			if l.VIP6.IsValid() {
				// Linux answers a neighbour solicitation only for an address on the
				// receiving device: on lo the VIP is never advertised (IPv6's arp_ignore).
				lines = append(lines, "addr replace "+l.VIP6.String()+"/128 dev lo nodad")
			}
			if err := ipBatch(ctx, n.NS, lines); err != nil {
				return err
			}
			if err := writeSysctls(n.NS, map[string]string{
				"ipv4/conf/all/arp_ignore":   "1",
				"ipv4/conf/lo/arp_ignore":    "1",
				"ipv4/conf/all/arp_announce": "2",
				"ipv4/conf/lo/arp_announce":  "2",
			}); err != nil {
				return err
			}
		}
		return nil
	case "nat":
		if l.Spec.Topology != TopologyNAT {
			return fmt.Errorf("%w: nat on a %v lab", ErrMethod, l.Spec.Topology)
		}
		gw, _ := l.Director.AddrOn(segNATB)
		lines := []string{"route replace default via " + gw.String()}
		if gw6, ok := Six(gw); ok && l.Spec.IPv6 {
			lines = append(lines, "route replace ::/0 via "+gw6.String())
		}
		for _, n := range l.Reals {
			if err := ipBatch(ctx, n.NS, lines); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%w: %q", ErrMethod, method)
}
