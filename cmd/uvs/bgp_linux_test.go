//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/control"
	"github.com/uvs-project/uvs/internal/testenv"
)

// The ECMP scale-out tests: three directors announce one VIP over BGP to a BIRD router,
// which spreads flows over them by ECMP on the layer-4 hash. Long-lived connections
// exchange a line every flowInterval (a request and its answer each cross the director and
// the real server), so a connection that the director set loses or sends to another real
// server shows within a few exchanges: kernel buffering cannot hide it.
const (
	ecmpDirectors = 3
	ecmpReals     = 3
	ecmpFlows     = 60
	ecmpNewFlows  = 30
	ecmpPort      = 9000
	ecmpHold      = 3 * time.Second
	flowInterval  = 200 * time.Millisecond
	// flowProgress is how many exchanges every live connection must complete after an
	// event for it to count as carried through.
	flowProgress = 3
	// converge bounds route changes: the hold time, BGP's connect retry (5 s) and the
	// health check's first run, with room for a loaded machine.
	converge = 30 * time.Second
	// recover bounds a connection's recovery after an event: TCP retransmission backs
	// off exponentially while the route still points at a dead director.
	recoverWait = 40 * time.Second
	minSurvive  = 0.95
	// syncBulkPeriod is lvssync's bulkRequestPeriod: a sync peer serves a requester at
	// most one bulk copy this often.
	syncBulkPeriod = 5 * time.Second
)

// ecmpLab is a running ECMP lab: router with BIRD, directors, echo servers.
type ecmpLab struct {
	t       *testing.T
	opts    ecmpOpts
	lab     *bench.Lab
	bird    *bench.Bird
	tmp     string
	sched   string
	dirs    []*bench.Director
	stderrs []*syncBuffer
	started []time.Time // when each director was last started
}

// ecmpOpts are the BGP session settings of an ECMP lab.
type ecmpOpts struct {
	hold     time.Duration
	bfd      bool
	password string
	// sync runs [sync] with role both on every director, unicast to the other two: each
	// sends its connections and installs the others'.
	sync bool
}

func newECMPLab(t *testing.T, sched string, opts ecmpOpts) *ecmpLab {
	t.Helper()
	testenv.RequireRoot(t)
	requireBird(t)
	lab := newLab(t, bench.LabSpec{Topology: bench.TopologyECMP, Directors: ecmpDirectors, Reals: ecmpReals})
	if err := lab.PrepareReals("dr"); err != nil {
		t.Fatal(err)
	}
	if opts.hold == 0 {
		opts.hold = ecmpHold
	}
	e := &ecmpLab{t: t, opts: opts, lab: lab, tmp: t.TempDir(), sched: sched, dirs: make([]*bench.Director, ecmpDirectors),
		stderrs: make([]*syncBuffer, ecmpDirectors), started: make([]time.Time, ecmpDirectors)}
	for _, n := range lab.Reals {
		startEcho(t, n, ecmpPort)
	}
	// Small client buffers, so that data cannot pile up unnoticed in the client's kernel.
	for _, kv := range []string{"net.ipv4.tcp_rmem=4096 4096 4096", "net.ipv4.tcp_wmem=4096 4096 4096"} {
		if out, err := lab.Client.Command(context.Background(), "sysctl", "-qw", kv).CombinedOutput(); err != nil {
			t.Fatalf("sysctl %s: %v: %s", kv, err, out)
		}
	}
	var err error
	if e.bird, err = lab.StartBird(context.Background(), e.tmp, lab.BirdConfig(opts.hold, opts.bfd, opts.password)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.bird.Close()
		if t.Failed() {
			out, _ := exec.Command("cat", filepath.Join(e.tmp, "bird.log")).Output()
			t.Logf("bird log:\n%s", out)
		}
	})
	for i := range ecmpDirectors {
		writeFile(t, e.cfgPath(i), e.config(i))
		e.start(i)
	}
	e.waitVias(ecmpDirectors)
	return e
}

// requireBird skips the test without BIRD (Debian's bird2), or fails it in CI.
func requireBird(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("bird"); err != nil {
		testenv.SkipOrFail(t, "bird (Debian bird2) is needed: %v", err)
	}
}

func (e *ecmpLab) cfgPath(i int) string { return filepath.Join(e.tmp, fmt.Sprintf("d%d.toml", i+1)) }
func (e *ecmpLab) sock(i int) string    { return filepath.Join(e.tmp, fmt.Sprintf("d%d.sock", i+1)) }

func (e *ecmpLab) config(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[director]\ninterfaces = [\"eth0\"]\nworkers = 1\ncontrol_socket = %q\nmetrics_listen = \"127.0.0.1:9750\"\n", e.sock(i))
	b.WriteString("[conntrack]\nsloppy_tcp = true\n")
	fmt.Fprintf(&b, "[[service]]\nvip = %q\nport = %d\nscheduler = %q\nforward = \"dr\"\n", e.lab.VIP, ecmpPort, e.sched)
	if e.sched == "mh" {
		b.WriteString("scheduler_flags = [\"mh-port\"]\n")
	}
	b.WriteString("  [service.check]\n  type = \"tcp\"\n  interval = \"1s\"\n")
	for _, a := range e.lab.RealAddrs {
		fmt.Fprintf(&b, "  [[service.real]]\n  address = %q\n", a)
	}
	if e.opts.sync {
		var peers []string
		for j, d := range e.lab.Directors {
			if j != i {
				peers = append(peers, strconv.Quote(d.Addr.String()))
			}
		}
		fmt.Fprintf(&b, "[sync]\ninterface = \"eth0\"\nrole = \"both\"\npeers = [%s]\n", strings.Join(peers, ", "))
	}
	gw, _ := e.lab.Router.AddrOn(e.lab.Directors[i].Ifaces[0].Prefix.Masked())
	fmt.Fprintf(&b, "[bgp]\nasn = %d\nrouter_id = %q\ndrain_time = \"3s\"\n  [[bgp.neighbor]]\n  address = %q\n  asn = %d\n  hold_time = %d\n  bfd = %t\n",
		bench.ECMPDirectorASN, e.lab.Directors[i].Addr, gw, bench.ECMPRouterASN, int(e.opts.hold/time.Second), e.opts.bfd)
	if e.opts.password != "" {
		fmt.Fprintf(&b, "  password = %q\n", e.opts.password)
	}
	return b.String()
}

// start runs director i, stopped (and its stderr shown on failure) when the test ends.
func (e *ecmpLab) start(i int) {
	e.t.Helper()
	bin, err := uvsBinary()
	if err != nil {
		e.t.Fatal(err)
	}
	buf := &syncBuffer{}
	d, err := e.lab.StartDirectorIn(context.Background(), e.lab.Directors[i], bin, e.cfgPath(i), buf)
	if err != nil {
		e.t.Fatal(err)
	}
	e.dirs[i], e.stderrs[i], e.started[i] = d, buf, time.Now()
	e.t.Cleanup(func() {
		_ = d.Signal(syscall.SIGCONT)
		_ = d.Stop()
		if e.t.Failed() {
			e.t.Logf("director %d stderr:\n%s", i+1, buf.String())
		}
	})
}

// vias returns the router's next hops for the VIP.
func (e *ecmpLab) vias() []netip.Addr {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := e.lab.RouteVia(ctx, e.lab.VIP)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// waitVias polls the router's route to the VIP until it has n next hops.
func (e *ecmpLab) waitVias(n int) time.Duration {
	e.t.Helper()
	start := time.Now()
	for {
		v := e.vias()
		if len(v) == n {
			return time.Since(start)
		}
		if time.Since(start) > converge {
			out, _ := e.bird.Birdc(context.Background(), "show", "protocols")
			e.t.Fatalf("route to %s has next hops %v, want %d after %s\n%s", e.lab.VIP, v, n, converge, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRoute polls the router's route to dst until it has n next hops.
func (e *ecmpLab) waitRoute(dst netip.Addr, n int) {
	e.t.Helper()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := e.lab.RouteVia(ctx, dst)
		cancel()
		if err != nil {
			e.t.Fatal(err)
		}
		if len(v) == n {
			return
		}
		if time.Since(start) > converge {
			e.t.Fatalf("route to %s has next hops %v, want %d after %s", dst, v, n, converge)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// birdSince returns when BIRD's protocol name last changed state (its "Since" column).
func (e *ecmpLab) birdSince(name string) string {
	e.t.Helper()
	out, err := e.bird.Birdc(context.Background(), "show", "protocols", name)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 6 && f[0] == name {
			if f[3] != "up" {
				e.t.Fatalf("bird protocol %s is %s:\n%s", name, f[3], out)
			}
			return f[4]
		}
	}
	e.t.Fatalf("no bird protocol %s:\n%s", name, out)
	return ""
}

// list asks director i for its listing.
func (e *ecmpLab) list(i int) *control.Status {
	e.t.Helper()
	resp, err := control.Call(context.Background(), e.sock(i), &control.Request{Version: control.ProtocolVersion, Op: control.OpList})
	if err != nil || resp.Status == nil {
		e.t.Fatalf("list director %d: %v %+v", i+1, err, resp)
	}
	return resp.Status
}

// carried returns the client ports of the connections in director i's table (not those
// installed from sync records).
func (e *ecmpLab) carried(i int) map[uint16]bool {
	e.t.Helper()
	return e.conns(i, false)
}

// conns returns the client ports of director i's connections: its own, or (synced) those
// installed from sync records.
func (e *ecmpLab) conns(i int, synced bool) map[uint16]bool {
	e.t.Helper()
	resp, err := control.Call(context.Background(), e.sock(i), &control.Request{Version: control.ProtocolVersion, Op: control.OpConns})
	if err != nil {
		e.t.Fatalf("conns director %d: %v", i+1, err)
	}
	out := map[uint16]bool{}
	for _, c := range resp.Conns {
		if ap, err := netip.ParseAddrPort(c.Client); err == nil && !c.Template && c.Synced == synced {
			out[ap.Port()] = true
		}
	}
	return out
}

// waitSynced waits, bounded by converge, until every director holds every connection of
// set that another director owns (owner) as an entry installed from a sync record.
func (e *ecmpLab) waitSynced(set []*flow, owner map[uint16]int) {
	e.t.Helper()
	deadline := time.Now().Add(converge)
	for i := range ecmpDirectors {
		for {
			has, want, missing := e.conns(i, true), 0, 0
			for _, f := range set {
				if owner[f.port] != i {
					want++
					if !has[f.port] {
						missing++
					}
				}
			}
			if missing == 0 {
				st := e.list(i).Sync
				if st == nil || st.Role != "both" {
					e.t.Fatalf("director %d: sync status %+v, want role both", i+1, st)
				}
				e.t.Logf("director %d holds the %d connections of the others from sync (sent %d, received %d messages, %d records installed)",
					i+1, want, st.Sent, st.Received, st.Installed)
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("director %d lacks %d synced connections after %v: %+v", i+1, missing, converge, e.list(i).Sync)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// startEcho serves, in node n, a line echo that answers "NODE LINE": the client sees
// which real server answers every exchange.
func startEcho(t *testing.T, n *bench.Node, port int) {
	t.Helper()
	var ln net.Listener
	if err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, n.Name+" "+line); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// flow is one long-lived client connection exchanging numbered lines with a real server.
type flow struct {
	port   uint16
	real   string // the real server that answered first
	done   atomic.Int64
	broken atomic.Bool
	why    atomic.Value // string
}

type flows struct {
	t    *testing.T
	all  []*flow
	stop chan struct{}
	wg   sync.WaitGroup
}

// open dials n connections from the client, each answering once before it counts.
func (fs *flows) open(e *ecmpLab, n int) []*flow {
	fs.t.Helper()
	var out []*flow
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := e.lab.Client.Dial(ctx, "tcp", netip.AddrPortFrom(e.lab.VIP, ecmpPort).String())
		cancel()
		if err != nil {
			fs.t.Fatalf("dial: %v", err)
		}
		f := &flow{port: uint16(c.LocalAddr().(*net.TCPAddr).Port)}
		r := bufio.NewReader(c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "0\n"); err != nil {
			fs.t.Fatalf("first exchange: %v", err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			fs.t.Fatalf("first exchange: %v", err)
		}
		f.real, _, _ = strings.Cut(line, " ")
		f.done.Store(1)
		fs.all = append(fs.all, f)
		out = append(out, f)
		fs.wg.Add(1)
		go fs.run(f, c, r)
	}
	return out
}

func (fs *flows) run(f *flow, c net.Conn, r *bufio.Reader) {
	defer fs.wg.Done()
	defer c.Close()
	// A random phase, so that after an outage the flows reach a survivor in an order that
	// has nothing to do with the order they were opened in: rr on the survivor would
	// otherwise repeat the lost director's rr sequence and hide the breakage.
	select {
	case <-fs.stop:
		return
	case <-time.After(rand.N(flowInterval)):
	}
	t := time.NewTicker(flowInterval)
	defer t.Stop()
	fail := func(format string, args ...any) {
		f.why.Store(fmt.Sprintf(format, args...))
		f.broken.Store(true)
	}
	for seq := 1; ; seq++ {
		select {
		case <-fs.stop:
			return
		case <-t.C:
		}
		_ = c.SetDeadline(time.Now().Add(recoverWait))
		want := strconv.Itoa(seq)
		if _, err := io.WriteString(c, want+"\n"); err != nil {
			fail("write %d: %v", seq, err)
			return
		}
		line, err := r.ReadString('\n')
		if err != nil {
			fail("read %d: %v", seq, err)
			return
		}
		if got := f.real + " " + want + "\n"; line != got {
			fail("exchange %d: got %q, want %q (another real server)", seq, line, got)
			return
		}
		f.done.Add(1)
	}
}

func (fs *flows) close() {
	close(fs.stop)
	fs.wg.Wait()
}

// settle waits until every flow of set that is not broken has made flowProgress more
// exchanges than at the call, or is broken, bounded by recoverWait; flows that make no
// progress by then count as broken. It returns how many of set carried on.
func (fs *flows) settle(set []*flow) int {
	fs.t.Helper()
	mark := make([]int64, len(set))
	for i, f := range set {
		mark[i] = f.done.Load()
	}
	deadline := time.Now().Add(recoverWait)
	for {
		pending := 0
		for i, f := range set {
			if !f.broken.Load() && f.done.Load() < mark[i]+flowProgress {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	ok := 0
	for i, f := range set {
		if !f.broken.Load() && f.done.Load() >= mark[i]+flowProgress {
			ok++
		}
	}
	return ok
}

func (fs *flows) brokenReasons(set []*flow) string {
	var b strings.Builder
	for _, f := range set {
		if f.broken.Load() {
			fmt.Fprintf(&b, "  port %d (real %s): %v\n", f.port, f.real, f.why.Load())
		}
	}
	return b.String()
}

// ecmpFailover is the scale-out test for one scheduler and one way of losing a director:
// spread 60 connections over three directors, lose one, check the route goes within the
// hold time, count the connections that carry on, open new ones, bring the director back.
// It returns the fraction of all connections that carried on at the death.
func ecmpFailover(t *testing.T, sched string, sig syscall.Signal, opts ecmpOpts) float64 {
	e := newECMPLab(t, sched, opts)
	fs := &flows{t: t, stop: make(chan struct{})}
	defer fs.close()
	first := fs.open(e, ecmpFlows)

	// Every connection is in exactly one director's table, and each director has a share.
	owner := map[uint16]int{}
	for i := range ecmpDirectors {
		n := 0
		for p := range e.carried(i) {
			if slices.ContainsFunc(first, func(f *flow) bool { return f.port == p }) {
				if j, dup := owner[p]; dup {
					t.Errorf("connection from port %d in the tables of directors %d and %d", p, j+1, i+1)
				}
				owner[p] = i
				n++
			}
		}
		t.Logf("director %d carries %d of %d connections", i+1, n, ecmpFlows)
		if n == 0 {
			t.Errorf("director %d carries none of %d connections: ECMP does not spread them", i+1, ecmpFlows)
		}
	}
	if len(owner) != ecmpFlows {
		t.Fatalf("%d of %d connections found in the directors' tables", len(owner), ecmpFlows)
	}
	// The first director: with the kernel's hash-threshold multipath, removing the first of
	// three next hops also moves part of the second director's flows to the third, so the
	// survivors' own connections are tested too.
	const victim = 0
	var theirs []*flow
	for _, f := range first {
		if owner[f.port] == victim {
			theirs = append(theirs, f)
		}
	}

	if e.opts.sync {
		e.waitSynced(first, owner)
	}

	// The death.
	if err := e.dirs[victim].Signal(sig); err != nil {
		t.Fatal(err)
	}
	took := e.waitVias(ecmpDirectors - 1)
	t.Logf("%v: route via director %d gone after %v (hold time %v, bfd %v)", sig, victim+1, took.Round(10*time.Millisecond), e.opts.hold, e.opts.bfd)
	if slices.Contains(e.vias(), e.lab.Directors[victim].Addr) {
		t.Fatalf("route still via director %d", victim+1)
	}
	okTheirs := fs.settle(theirs)
	okAll := fs.settle(first)
	moved := 0
	for i := range ecmpDirectors {
		if i == victim {
			continue
		}
		for p := range e.carried(i) {
			if o, ok := owner[p]; ok && o != i && o != victim {
				moved++
			}
		}
	}
	if e.opts.sync {
		// Every director holds every connection, so a table cannot tell which moved.
		t.Logf("%d connections picked up afresh between surviving directors (moved ones hit synced entries)", moved)
	} else {
		t.Logf("%d connections moved between surviving directors", moved)
	}
	frac := float64(okTheirs) / float64(len(theirs))
	t.Logf("%s, %v: %d of %d connections of the lost director carried on (%.0f%%); %d of %d in all",
		sched, sig, okTheirs, len(theirs), 100*frac, okAll, len(first))
	switch {
	case e.opts.sync:
		// Every survivor holds every other director's connections: none may break.
		if okTheirs != len(theirs) || okAll != len(first) {
			t.Errorf("with sync, connections broke at the death:\n%s", fs.brokenReasons(first))
		}
	case sched != "mh":
		return float64(okAll) / float64(len(first)) // the caller expects breakage
	case frac < minSurvive || float64(okAll)/float64(len(first)) < minSurvive:
		t.Errorf("too many connections broke at the death:\n%s", fs.brokenReasons(first))
	}
	// New connections go to the survivors.
	fresh := fs.open(e, ecmpNewFlows)
	if got := fs.settle(fresh); got != len(fresh) {
		t.Errorf("%d of %d new connections work with director %d gone:\n%s", got, len(fresh), victim+1, fs.brokenReasons(fresh))
	}

	// The return.
	if sig == syscall.SIGSTOP {
		if err := e.dirs[victim].Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	} else {
		_ = e.dirs[victim].Wait()
		if e.opts.sync {
			// A director gets at most one bulk copy per syncBulkPeriod from each peer; it
			// asked for one when it first started, and a restarted director without its
			// bulk copy would reschedule (rr) the flows that come back to it.
			time.Sleep(time.Until(e.started[victim].Add(syncBulkPeriod + time.Second)))
		}
		e.start(victim)
	}
	took = e.waitVias(ecmpDirectors)
	if e.opts.sync {
		st := e.list(victim).Sync
		t.Logf("director %d after its return: %d records installed from sync (%d messages received)", victim+1, st.Installed, st.Received)
	}
	t.Logf("director %d back in the route after %v", victim+1, took.Round(10*time.Millisecond))
	live := slices.DeleteFunc(slices.Clone(fs.all), func(f *flow) bool { return f.broken.Load() })
	okBack := fs.settle(live)
	t.Logf("at the return: %d of %d live connections carried on", okBack, len(live))
	if okBack != len(live) && (e.opts.sync || float64(okBack)/float64(len(live)) < minSurvive) {
		t.Errorf("connections broke at the return:\n%s", fs.brokenReasons(live))
	}
	back := fs.open(e, ecmpNewFlows)
	fs.settle(back)
	has := e.carried(victim)
	n := 0
	for _, f := range back {
		if has[f.port] {
			n++
		}
	}
	t.Logf("director %d took %d of %d new connections after its return", victim+1, n, len(back))
	if n == 0 {
		t.Errorf("director %d took none of %d new connections after its return", victim+1, len(back))
	}
	return frac
}

// TestIntegrationBGPECMPKill: with mh, a director killed with SIGKILL loses (almost) no
// connection: the survivors pick its flows up mid-stream and send them to the same real.
func TestIntegrationBGPECMPKill(t *testing.T) {
	ecmpFailover(t, "mh", syscall.SIGKILL, ecmpOpts{})
}

// TestIntegrationBGPECMPStop: a director frozen with SIGSTOP keeps its TCP session open;
// the router's hold timer must notice.
func TestIntegrationBGPECMPStop(t *testing.T) {
	ecmpFailover(t, "mh", syscall.SIGSTOP, ecmpOpts{})
}

// TestIntegrationBGPECMPRoundRobinBreaks is the counter-test: with rr, a survivor that
// picks up a flow mid-stream schedules it afresh, usually to another real server, which
// resets it. If this passed with rr, the mh tests above would prove nothing.
func TestIntegrationBGPECMPRoundRobinBreaks(t *testing.T) {
	frac := ecmpFailover(t, "rr", syscall.SIGKILL, ecmpOpts{})
	if frac >= minSurvive {
		t.Errorf("with rr %.0f%% of the connections carried on; the failover test cannot tell mh from rr", 100*frac)
	}
}

// TestIntegrationBGPECMPSync: with connection sync (role both, unicast to the other
// directors), even rr loses no connection when a director is killed: the survivors hold
// its connections from sync and send them to the same real servers.
func TestIntegrationBGPECMPSync(t *testing.T) {
	ecmpFailover(t, "rr", syscall.SIGKILL, ecmpOpts{sync: true})
}

// TestIntegrationBGPDrain: an administrative drain (uvs edit --drain-director) and a
// graceful stop (SIGTERM: withdraw, then forward for drain_time) lose no connection.
func TestIntegrationBGPDrain(t *testing.T) {
	e := newECMPLab(t, "mh", ecmpOpts{})
	fs := &flows{t: t, stop: make(chan struct{})}
	defer fs.close()
	first := fs.open(e, ecmpFlows)

	st := e.list(2)
	if st.BGP == nil || len(st.BGP.Sessions) != 1 || st.BGP.Sessions[0].State != "established" ||
		!slices.Equal(st.BGP.Announced, []string{e.lab.VIP.String() + "/32"}) {
		js, _ := json.Marshal(st.BGP)
		t.Fatalf("list bgp: %s", js)
	}
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	edit := func(flag string) {
		out, err := exec.Command(bin, "edit", flag, "--socket", e.sock(2)).CombinedOutput()
		if err != nil {
			t.Fatalf("uvs edit %s: %v: %s", flag, err, out)
		}
	}
	edit("--drain-director")
	e.waitVias(ecmpDirectors - 1)
	if st := e.list(2); !st.BGP.Drained || len(st.BGP.Announced) != 0 || st.BGP.State != "drained" {
		t.Errorf("after --drain-director: %+v", st.BGP)
	}
	if ok := fs.settle(first); ok != len(first) {
		t.Errorf("drain: %d of %d connections carried on:\n%s", ok, len(first), fs.brokenReasons(first))
	}
	edit("--undrain-director")
	e.waitVias(ecmpDirectors)
	if ok := fs.settle(first); ok != len(first) {
		t.Errorf("undrain: %d of %d connections carried on:\n%s", ok, len(first), fs.brokenReasons(first))
	}

	// Metrics: the session is up.
	resp, err := e.lab.Directors[0].HTTPClient().Get("http://127.0.0.1:9750/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	gw, _ := e.lab.Router.AddrOn(e.lab.Director.Ifaces[0].Prefix.Masked())
	if want := fmt.Sprintf("uvs_bgp_session_up{neighbor=%q} 1", gw.String()); !strings.Contains(string(body), want) {
		t.Errorf("metrics lack %s", want)
	}

	// SIGHUP with two more services: one whose reals fail their check (its VIP is withdrawn
	// once the check fails), one that is healthy (announced). The session is not reset.
	since := e.birdSince("d3")
	vip2, vip3 := netip.MustParseAddr("198.18.11.101"), netip.MustParseAddr("198.18.11.102")
	more := e.config(2) + fmt.Sprintf("[[service]]\nvip = %q\nport = 9001\nscheduler = \"mh\"\n  [service.check]\n  type = \"tcp\"\n  interval = \"1s\"\n", vip2)
	for _, a := range e.lab.RealAddrs {
		more += fmt.Sprintf("  [[service.real]]\n  address = %q\n", a)
	}
	more += fmt.Sprintf("[[service]]\nvip = %q\nport = %d\nscheduler = \"mh\"\n", vip3, ecmpPort)
	for _, a := range e.lab.RealAddrs {
		more += fmt.Sprintf("  [[service.real]]\n  address = %q\n", a)
	}
	// [[service]] tables after [bgp] are fine in TOML, but keep [bgp] last for readers.
	writeFile(t, e.cfgPath(2), more)
	if err := e.dirs[2].Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitRoute(vip3, 1)
	e.waitRoute(vip2, 0)
	if got := e.birdSince("d3"); got != since {
		t.Errorf("SIGHUP reset the BGP session of director 3 (up since %s, now %s)", since, got)
	}
	if ok := fs.settle(first); ok != len(first) {
		t.Errorf("reload: %d of %d connections carried on:\n%s", ok, len(first), fs.brokenReasons(first))
	}

	// A graceful stop: the route goes at once, forwarding goes on for drain_time.
	if err := e.dirs[1].Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	took := e.waitVias(ecmpDirectors - 1)
	t.Logf("SIGTERM: route withdrawn after %v", took.Round(10*time.Millisecond))
	if err := e.dirs[1].Wait(); err != nil {
		t.Errorf("director 2 exit: %v", err)
	}
	if ok := fs.settle(first); ok != len(first) {
		t.Errorf("graceful stop: %d of %d connections carried on:\n%s", ok, len(first), fs.brokenReasons(first))
	}
	if !strings.Contains(e.stderrs[1].String(), "forwarding during drain_time") {
		t.Errorf("director 2 did not drain:\n%s", e.stderrs[1].String())
	}

	// A second SIGTERM cuts the drain short.
	if err := e.dirs[2].Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	e.waitVias(ecmpDirectors - 2)
	if err := e.dirs[2].Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := e.dirs[2].Wait(); err != nil {
		t.Errorf("director 3 exit: %v", err)
	}
	if !strings.Contains(e.stderrs[2].String(), "second signal: drain skipped") {
		t.Errorf("director 3 did not skip its drain on the second SIGTERM:\n%s", e.stderrs[2].String())
	}
}

// TestIntegrationBGPECMPStopBFD freezes a director whose sessions have a 90 s hold time but
// BFD on: the route must go within the convergence bound (30 s), long before the hold timer
// could notice, so only BFD can pass it. The sessions also carry a TCP MD5 password.
func TestIntegrationBGPECMPStopBFD(t *testing.T) {
	ecmpFailover(t, "mh", syscall.SIGSTOP, ecmpOpts{hold: 90 * time.Second, bfd: true, password: "uvs-lab-md5"})
}

// TestIntegrationLabUpBGP: `uvs lab up` lays out lab.directors directors behind a BIRD
// router from a config with [bgp]; the router ends with a three-way multipath route to the
// VIP, the VIP answers, and `uvs lab down` removes everything.
func TestIntegrationLabUpBGP(t *testing.T) {
	testenv.RequireRoot(t)
	requireBird(t)
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("uvt%d-lb-", os.Getpid()%100000)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lab.toml")
	src := fmt.Sprintf(`[director]
interfaces = ["eth0"]
workers = 1
control_socket = %q
[conntrack]
sloppy_tcp = true
[lab]
prefix = %q
directors = 3
[[service]]
vip = "198.18.40.100"
port = 80
scheduler = "mh"
forward = "dr"
  [[service.real]]
  address = "198.18.30.11"
  [[service.real]]
  address = "198.18.30.12"
[bgp]
asn = 65001
router_id = "198.18.30.2"
drain_time = "1s"
  [[bgp.neighbor]]
  address = "198.18.30.1"
  asn = 65000
  hold_time = "3s"
  password = "lab-secret"
`, filepath.Join(dir, "uvs.sock"), prefix)
	writeFile(t, cfg, src)
	t.Cleanup(func() {
		_, _ = uvsCmd(t, bin, "lab", "down", "-c", cfg)
		assertNoNamespaces(t, prefix)
	})
	if out, err := uvsCmd(t, bin, "lab", "up", "-c", cfg); err != nil {
		t.Fatalf("lab up: %v\n%s", err, out)
	}
	deadline := time.Now().Add(converge)
	var vias string
	for {
		out, err := exec.Command("ip", "-n", prefix+"router", "route", "show", "198.18.40.100/32").CombinedOutput()
		if err != nil {
			t.Fatalf("ip route: %v: %s", err, out)
		}
		vias = string(out)
		if strings.Count(vias, "nexthop via") == 3 {
			break
		}
		if time.Now().After(deadline) {
			status, _ := uvsCmd(t, bin, "lab", "status", "-c", cfg)
			t.Fatalf("route to the VIP after %v:\n%s\n%s", converge, vias, status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, err := uvsCmd(t, bin, "lab", "exec", "-c", cfg, "client", "--", "curl", "-sS", "--max-time", "5", "http://198.18.40.100/")
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	status, err := uvsCmd(t, bin, "lab", "status", "-c", cfg)
	if err != nil || !strings.Contains(status, "director3") || !strings.Contains(status, "established") || strings.Contains(status, "lab-secret") {
		t.Errorf("lab status: %v\n%s", err, status)
	}
}
