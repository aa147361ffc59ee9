package health

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/uvs-project/uvs/config"
)

// recorder collects updates.
type recorder struct {
	mu  sync.Mutex
	log []update
}

type update struct {
	at  time.Time
	ref Ref
	st  Status
}

func (r *recorder) update(ref Ref, st Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, update{time.Now(), ref, st})
}

func (r *recorder) all() []update {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]update(nil), r.log...)
}

// last returns the last status of ref.
func (r *recorder) last(ref Ref) (Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.log) - 1; i >= 0; i-- {
		if r.log[i].ref == ref {
			return r.log[i].st, true
		}
	}
	return Status{}, false
}

// waitSlack bounds every wait of these tests. It is not what the checks' configuration allows
// (a few 100 ms intervals): it only stops a test that would otherwise hang on a loaded machine.
const waitSlack = 15 * time.Second

// waitFor polls until cond holds or waitSlack passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitSlack)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitProbes waits until hc has run n more probes than before. A probe is counted before its
// result is reported, so the reports of all but the last of them are done when it returns:
// tests that assert that nothing was reported wait for one probe more than they mean.
func waitProbes(t *testing.T, hc *Checker, before uint64, n uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d probes", n), func() bool { total, _ := hc.Probes(); return total >= before+n })
}

// flipServer is a TCP listener that can be closed and reopened on the same port.
type flipServer struct {
	t    *testing.T
	addr netip.AddrPort
	mu   sync.Mutex
	ln   net.Listener
}

func newFlipServer(t *testing.T) *flipServer {
	f := &flipServer{t: t}
	f.start("127.0.0.1:0")
	f.addr = addrOf(t, f.ln.Addr())
	t.Cleanup(f.stop)
	return f
}

func (f *flipServer) start(at string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ln, err := net.Listen("tcp4", at)
	if err != nil {
		f.t.Fatal(err)
	}
	f.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func (f *flipServer) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
}

// twoServices is a config whose two services share the real server at rs, with check c.
func twoServices(rs netip.AddrPort, c *config.Check, mod func(s *config.Service)) *config.Config {
	cfg := &config.Config{}
	for i, vip := range []string{"198.18.0.100", "198.18.0.101"} {
		s := config.Service{
			VIP: netip.MustParseAddr(vip), Protocol: config.TCP, Port: rs.Port(),
			OnFailure: config.FailQuiesce, Quorum: 1, Check: c,
			Reals: []config.Real{{Address: rs.Addr(), Port: rs.Port(), Weight: 1, Forward: config.DR}},
		}
		if i == 1 && mod != nil {
			mod(&s)
		}
		cfg.Services = append(cfg.Services, s)
	}
	return cfg
}

func refOf(s *config.Service) Ref {
	return Ref{VIP: s.VIP, Protocol: s.Protocol, Port: s.Port, Addr: s.Reals[0].Address, RPort: s.Reals[0].Port}
}

func TestCheckerSharedDownUp(t *testing.T) {
	srv := newFlipServer(t)
	c := newCheck(config.CheckTCP)
	c.Interval, c.Timeout, c.Rise, c.Fall = 100*time.Millisecond, 90*time.Millisecond, 2, 2
	cfg := twoServices(srv.addr, c, func(s *config.Service) { s.OnFailure = config.FailRemove })
	rec := &recorder{}
	hc := New(Config{Update: rec.update})
	defer hc.Close()
	if err := hc.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if n := hc.Checks(); n != 1 {
		t.Fatalf("%d checks for one real shared by two services, want 1", n)
	}
	waitProbes(t, hc, 0, 3) // two reported, both healthy
	if u := rec.all(); len(u) != 0 {
		t.Fatalf("updates while healthy: %v", u)
	}
	a, b := refOf(&cfg.Services[0]), refOf(&cfg.Services[1])
	srv.stop()
	waitFor(t, "both services to see the real down", func() bool {
		sa, oka := rec.last(a)
		sb, okb := rec.last(b)
		return oka && okb && !sa.Up && !sb.Up
	})
	sa, _ := rec.last(a)
	sb, _ := rec.last(b)
	if sa.Remove || !sb.Remove || sa.Reason == "" || sa.Reason != sb.Reason {
		t.Errorf("down statuses: quiesce service %+v, remove service %+v", sa, sb)
	}
	p0, _ := hc.Probes()
	waitProbes(t, hc, p0, 2) // one more failing probe reported
	n := len(rec.all())
	if n != 2 {
		t.Errorf("%d updates after going down, want 2 (one per service): %v", n, rec.all())
	}
	srv.start(srv.addr.String())
	waitFor(t, "the real up again", func() bool {
		sa, _ := rec.last(a)
		sb, _ := rec.last(b)
		return sa.Up && sb.Up
	})
	sa, _ = rec.last(a)
	if sa.WeightPercent != 0 || sa.Reason == "" {
		t.Errorf("up status %+v: want full weight, last failure kept", sa)
	}
}

func TestCheckerSlowStart(t *testing.T) {
	srv := newFlipServer(t)
	c := newCheck(config.CheckTCP)
	c.Interval, c.Timeout, c.Rise, c.Fall = 100*time.Millisecond, 90*time.Millisecond, 1, 2
	cfg := twoServices(srv.addr, c, func(s *config.Service) { s.SlowStart = 3 * time.Second })
	rec := &recorder{}
	hc := New(Config{Update: rec.update})
	defer hc.Close()
	if err := hc.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	b := refOf(&cfg.Services[1])
	srv.stop()
	waitFor(t, "down", func() bool { s, ok := rec.last(b); return ok && !s.Up })
	srv.start(srv.addr.String())
	waitFor(t, "up", func() bool { s, _ := rec.last(b); return s.Up })
	waitFor(t, "full weight", func() bool { s, _ := rec.last(b); return s.Up && s.WeightPercent == 0 })
	var steps []int
	var upAt time.Time
	for _, u := range rec.all() {
		if u.ref != b || !u.st.Up {
			continue
		}
		if upAt.IsZero() {
			upAt = u.at
		}
		steps = append(steps, u.st.WeightPercent)
		// When a step arrives is the scheduler's business (the recorder's clock is read
		// after the checker's): log it; the ramp itself is RampPercent's unit test.
		t.Logf("step %d%% at %v into slow start", u.st.WeightPercent, u.at.Sub(upAt))
	}
	// 1% at once, then one step a second (33%, 66%), then full weight (0 = 100%). A loaded
	// machine may wake the check late and skip a step, never repeat or reverse one.
	ok := len(steps) >= 3 && steps[0] == 1 && steps[len(steps)-1] == 0
	for i := 1; ok && i < len(steps)-1; i++ {
		ok = steps[i] > steps[i-1]
	}
	if !ok {
		t.Errorf("slow start steps %v, want [1 33 66 0]", steps)
	} else if fmt.Sprint(steps) != "[1 33 66 0]" {
		t.Logf("slow start steps %v (a step skipped under load)", steps)
	}
	// The service without slow start went straight to full weight.
	if s, _ := rec.last(refOf(&cfg.Services[0])); !s.Up || s.WeightPercent != 0 {
		t.Errorf("service without slow start: %+v", s)
	}
}

func TestCheckerApply(t *testing.T) {
	srv := newFlipServer(t)
	c := newCheck(config.CheckTCP)
	c.Interval, c.Timeout, c.Rise, c.Fall = 50*time.Millisecond, 40*time.Millisecond, 1, 1
	rec := &recorder{}
	hc := New(Config{Update: rec.update})
	defer hc.Close()
	cfg := twoServices(srv.addr, c, nil)
	if err := hc.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	a := refOf(&cfg.Services[0])
	waitFor(t, "down", func() bool { s, ok := rec.last(a); return ok && !s.Up })
	// A reload without the check reports the real up: nothing says it is down any more.
	none := twoServices(srv.addr, nil, nil)
	if err := hc.Apply(none); err != nil {
		t.Fatal(err)
	}
	if n := hc.Checks(); n != 0 {
		t.Errorf("%d checks after removing them", n)
	}
	if s, _ := rec.last(a); s != (Status{Up: true}) {
		t.Errorf("after removing the check: %+v, want up", s)
	}
	// type = "none" runs nothing.
	nc := newCheck(config.CheckNone)
	if err := hc.Apply(twoServices(srv.addr, nc, nil)); err != nil || hc.Checks() != 0 {
		t.Errorf("none: %v, %d checks", err, hc.Checks())
	}
	// Distinct checks of one real are not shared; exec checks are per service.
	e := newCheck(config.CheckExec)
	e.Command = []string{"/bin/true"}
	if err := hc.Apply(twoServices(srv.addr, e, nil)); err != nil || hc.Checks() != 2 {
		t.Errorf("exec: %v, %d checks, want 2", err, hc.Checks())
	}
	if err := hc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := hc.Apply(cfg); err == nil {
		t.Error("Apply after Close succeeded")
	}
}

// TestCheckerReloadKeepsDown changes a down real's check on reload: the real must stay down
// (no "up" in between), and the new check brings it up once the server is back.
func TestCheckerReloadKeepsDown(t *testing.T) {
	srv := newFlipServer(t)
	c := newCheck(config.CheckTCP)
	c.Interval, c.Timeout, c.Rise, c.Fall = 100*time.Millisecond, 90*time.Millisecond, 2, 1
	rec := &recorder{}
	hc := New(Config{Update: rec.update})
	defer hc.Close()
	cfg := twoServices(srv.addr, c, nil)
	if err := hc.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	a := refOf(&cfg.Services[0])
	srv.stop()
	waitFor(t, "down", func() bool { s, ok := rec.last(a); return ok && !s.Up })
	n := len(rec.all())
	c2 := *c
	c2.Interval = 150 * time.Millisecond
	if err := hc.Apply(twoServices(srv.addr, &c2, nil)); err != nil {
		t.Fatal(err)
	}
	p0, _ := hc.Probes()
	waitProbes(t, hc, p0, 3) // two probes of the new check reported
	for _, u := range rec.all()[n:] {
		t.Errorf("update after a reload that only changed the interval: %+v", u)
	}
	srv.start(srv.addr.String())
	waitFor(t, "up with the new check", func() bool { s, _ := rec.last(a); return s.Up })
}
