//go:build linux

package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// healthLab is a DR lab with its servers and a director running a config of the test's own.
type healthLab struct {
	*labRun
	srv  *bench.Servers
	http *http.Client
}

// startHealthLab builds a DR lab with reals real servers, lets prepare adjust it, writes the
// config that conf returns (given the lab and a scratch directory) and starts a director.
func startHealthLab(t *testing.T, reals int, prepare func(*bench.Lab), conf func(l *bench.Lab, dir string) string) *healthLab {
	t.Helper()
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lab, err := bench.NewLab(ctx, bench.LabSpec{Prefix: labPrefix(), Topology: bench.TopologyDR, Reals: reals})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	if err := lab.PrepareReals("dr"); err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(lab)
	}
	srv, err := lab.StartServers(80, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "uvs.toml")
	if err := os.WriteFile(cfgPath, []byte(withBackend(t, conf(lab, tmp))), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &labRun{t: t, lab: lab, stderr: &syncBuffer{}, vip: lab.VIP, port: 80}
	if r.dir, err = lab.StartDirector(context.Background(), bin, cfgPath, r.stderr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.dir.Stop()
		if t.Failed() {
			t.Logf("director stderr:\n%s", r.stderr.String())
		}
	})
	h := &healthLab{labRun: r, srv: srv, http: lab.Client.HTTPClient()}
	h.http.Timeout = 3 * time.Second
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := h.get(lab.VIP, "/"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("VIP %s:80 never answered; director stderr:\n%s", lab.VIP, r.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	checkBackend(t, cfgPath)
	return h
}

// healthHeader is the [director] part of a test config.
func healthHeader(dir string) string {
	return fmt.Sprintf("[director]\ninterfaces = [\"eth0\"]\nworkers = 1\ncontrol_socket = %q\n", filepath.Join(dir, "uvs.sock"))
}

// get fetches path from vip:80 over a new connection and returns the answering real's name.
func (h *healthLab) get(vip netip.Addr, path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	b, err := bench.Get(ctx, h.http, "http://"+vip.String()+path)
	return strings.TrimSpace(string(b)), err
}

// spread sends n requests to vip and counts the answering reals; every failure is fatal.
func (h *healthLab) spread(vip netip.Addr, n int) map[string]int {
	h.t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		name, err := h.get(vip, "/")
		if err != nil {
			h.t.Fatalf("request %d of %d to %s: %v", i+1, n, vip, err)
		}
		got[name]++
	}
	return got
}

// healthSlack is what a loaded machine may add to a bound that the check's configuration
// sets (interval*fall + timeout, and so on). Waits poll up to bound+healthSlack: the slack only
// stops a test that would otherwise hang; how long the state took goes to the log.
const healthSlack = 15 * time.Second

// waitLog waits until the director's log has a line containing every one of parts. bound is
// what the checks' configuration allows; the wait gives up after bound+healthSlack.
func (h *healthLab) waitLog(bound time.Duration, parts ...string) string {
	h.t.Helper()
	start := time.Now()
	deadline := start.Add(bound + healthSlack)
	for {
		for _, line := range strings.Split(h.stderr.String(), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				h.t.Logf("log line with %q after %v (configuration bound %v)", parts, time.Since(start).Round(time.Millisecond), bound)
				return line
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no log line with %q within %v", parts, bound+healthSlack)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countLog counts the director's log lines containing every one of parts.
func (h *healthLab) countLog(parts ...string) int {
	n := 0
	for _, line := range strings.Split(h.stderr.String(), "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			n++
		}
	}
	return n
}

func realsTOML(l *bench.Lab, names ...string) string {
	var b strings.Builder
	for i, n := range l.Reals {
		for _, want := range names {
			if n.Name == want {
				fmt.Fprintf(&b, "\n  [[service.real]]\n  address = %q\n", l.RealAddrs[i])
			}
		}
	}
	return b.String()
}

// TestIntegrationHealthHTTPFailover stops one of two reals behind an HTTP check (interval 1 s,
// fall 2, rise 2): once it is marked down (the configuration allows interval*fall + timeout)
// it gets no new connection, and the other serves 200 requests without a failure; restarted,
// it gets traffic again after rise checks. How long each took is logged, not asserted.
func TestIntegrationHealthHTTPFailover(t *testing.T) {
	testenv.RequireRoot(t)
	eachBackend(t, testHealthHTTPFailover)
}

func testHealthHTTPFailover(t *testing.T) {
	const interval, timeout, fall, rise = time.Second, 500 * time.Millisecond, 2, 2
	h := startHealthLab(t, 2, nil, func(l *bench.Lab, dir string) string {
		return healthHeader(dir) + fmt.Sprintf(`
[[service]]
vip = %q
port = 80
scheduler = "rr"
  [service.check]
  type = "http"
  path = "/"
  interval = "1s"
  timeout = "500ms"
  fall = %d
  rise = %d
`, l.VIP, fall, rise) + realsTOML(l, "rs1", "rs2")
	})
	if got := h.spread(h.vip, 20); got["rs1"] != 10 || got["rs2"] != 10 {
		t.Fatalf("before: %v, want 10 each", got)
	}
	rs2 := h.lab.Reals[1]
	if err := h.srv.Stop(rs2); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	line := h.waitLog(interval*fall+timeout, "real server down", "198.18.1.12:80")
	downAfter := time.Since(stopped)
	if !strings.Contains(line, "connection refused") {
		t.Errorf("down line without the reason: %s", line)
	}
	// From now on no new connection may go to rs2: rs1 serves every one.
	if got := h.spread(h.vip, 200); got["rs1"] != 200 {
		t.Errorf("with rs2 stopped: %v, want rs1 200", got)
	}
	if err := h.srv.Start(rs2); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	deadline := started.Add(interval*rise + timeout + healthSlack)
	for {
		name, err := h.get(h.vip, "/")
		if err != nil {
			t.Fatalf("while rs2 comes back: %v", err)
		}
		if name == "rs2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rs2 got no traffic within %v of its restart", interval*rise+timeout+healthSlack)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("rs2 marked down %v after its stop; back in traffic %v after its restart", downAfter.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	if got := h.spread(h.vip, 20); got["rs1"] != 10 || got["rs2"] != 10 {
		t.Errorf("after recovery: %v, want 10 each", got)
	}
	// One log line per transition, not per check.
	if n := h.countLog("real server down", "198.18.1.12:80"); n != 1 {
		t.Errorf("%d down lines for one transition", n)
	}
	if n := h.countLog("real server up", "198.18.1.12:80"); n != 1 {
		t.Errorf("%d up lines for one transition", n)
	}
	h.stopAndCheckClean()
}

// TestIntegrationHealthStatusAndExec serves two VIPs from the same two reals. On the first,
// rs1's HTTP check asks for /status500 (it answers TCP, but with 500) and rs2's for /; on the
// second, rs1 has a TCP check and rs2 an exec check that hangs past its timeout. The HTTP
// check must take rs1 down where the TCP check keeps it up, and the exec check must take rs2
// down and kill its process.
func TestIntegrationHealthStatusAndExec(t *testing.T) {
	testenv.RequireRoot(t)
	eachBackend(t, testHealthStatusAndExec)
}

func testHealthStatusAndExec(t *testing.T) {
	vip2 := netip.MustParseAddr("198.18.1.101")
	var pidFile string
	h := startHealthLab(t, 2, func(l *bench.Lab) {
		for _, n := range l.Reals {
			if out, err := n.Command(context.Background(), "ip", "addr", "add", vip2.String()+"/32", "dev", "lo").CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
		}
	}, func(l *bench.Lab, dir string) string {
		pidFile = filepath.Join(dir, "exec.pids")
		return healthHeader(dir) + fmt.Sprintf(`
[[service]]
name = "http"
vip = %q
port = 80
scheduler = "rr"
  [[service.real]]
  address = %q
    [service.real.check]
    type = "http"
    path = "/status500"
    interval = "1s"
    timeout = "500ms"
    fall = 1
  [[service.real]]
  address = %q
    [service.real.check]
    type = "http"
    interval = "1s"
    timeout = "500ms"
    fall = 1

[[service]]
name = "tcp-exec"
vip = %q
port = 80
scheduler = "rr"
  [[service.real]]
  address = %q
    [service.real.check]
    type = "tcp"
    interval = "1s"
    timeout = "500ms"
    fall = 1
  [[service.real]]
  address = %q
    [service.real.check]
    type = "exec"
    command = ["/bin/sh", "-c", "echo $$ >> \"$0\"; sleep 30 & echo $! >> \"$0\"; wait", %q]
    interval = "2s"
    timeout = "1s"
    fall = 1
`, l.VIP, l.RealAddrs[0], l.RealAddrs[1], vip2, l.RealAddrs[0], l.RealAddrs[1], pidFile)
	})
	// fall = 1: the first check (interval 1 s, timeout 500 ms; exec: 2 s, 1 s) takes them down.
	h.waitLog(1500*time.Millisecond, "real server down", "198.18.1.11:80", "check=http", "status 500")
	h.waitLog(3*time.Second, "real server down", "198.18.1.12:80", "check=exec", "timeout (process group killed)")
	if got := h.spread(h.vip, 20); got["rs2"] != 20 {
		t.Errorf("VIP (rs1 failing its HTTP check): %v, want rs2 20", got)
	}
	if got := h.spread(vip2, 20); got["rs1"] != 20 {
		t.Errorf("VIP2 (rs1 passing its TCP check, rs2 failing exec): %v, want rs1 20", got)
	}
	if n := h.countLog("real server down", "198.18.1.11:80", "check=tcp"); n != 0 {
		t.Errorf("the TCP check took rs1 down")
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(b))
	if len(pids) < 2 {
		t.Fatalf("exec check pids: %q", b)
	}
	// Every check run but the one that may be under way now has been killed (its shell and
	// its sleep): the first run, whose timeout logged the down line above, certainly was.
	// SIGKILL is immediate, its exit is not: poll.
	for _, p := range pids[:2] {
		pid, _ := strconv.Atoi(p)
		if !waitGone(pid, healthSlack) {
			t.Errorf("exec check process %d outlived its timeout", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	h.stopAndCheckClean()
	b, _ = os.ReadFile(pidFile)
	for _, p := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(p)
		if !waitGone(pid, healthSlack) {
			t.Errorf("exec check process %d outlived the director", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// waitGone polls until pid no longer runs, for at most d.
func waitGone(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); alive(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// alive reports whether pid runs (not a zombie).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// TestIntegrationHealthSorryServer takes both reals down: the sorry server (a third server
// node) answers; one real back restores it.
func TestIntegrationHealthSorryServer(t *testing.T) {
	testenv.RequireRoot(t)
	eachBackend(t, testHealthSorryServer)
}

func testHealthSorryServer(t *testing.T) {
	h := startHealthLab(t, 3, nil, func(l *bench.Lab, dir string) string {
		return healthHeader(dir) + fmt.Sprintf(`
[[service]]
vip = %q
port = 80
scheduler = "rr"
sorry_server = "%s:80"
  [service.check]
  type = "tcp"
  interval = "1s"
  timeout = "500ms"
  fall = 1
  rise = 1
`, l.VIP, l.RealAddrs[2]) + realsTOML(l, "rs1", "rs2")
	})
	if got := h.spread(h.vip, 10); got["rs1"] != 5 || got["rs2"] != 5 {
		t.Fatalf("before: %v, want rs1 and rs2 5 each", got)
	}
	for _, n := range h.lab.Reals[:2] {
		if err := h.srv.Stop(n); err != nil {
			t.Fatal(err)
		}
	}
	// fall = 1: one check (interval 1 s, timeout 500 ms) takes each down.
	h.waitLog(1500*time.Millisecond, "real server down", "198.18.1.11:80")
	h.waitLog(1500*time.Millisecond, "real server down", "198.18.1.12:80")
	deadline := time.Now().Add(healthSlack)
	for {
		if name, err := h.get(h.vip, "/"); err == nil && name == "rs3" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sorry server never answered")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := h.spread(h.vip, 20); got["rs3"] != 20 {
		t.Errorf("below quorum: %v, want the sorry server rs3 20", got)
	}
	h.waitLog(0, "service below quorum", "sorry_server=198.18.1.13:80")
	if err := h.srv.Start(h.lab.Reals[0]); err != nil {
		t.Fatal(err)
	}
	h.waitLog(1500*time.Millisecond, "real server up", "198.18.1.11:80") // rise = 1
	// The log line comes before the new snapshot reaches the workers: poll for rs1 to answer.
	deadline = time.Now().Add(healthSlack)
	for {
		if name, err := h.get(h.vip, "/"); err == nil && name == "rs1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rs1 never answered after it came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := h.spread(h.vip, 20); got["rs1"] != 20 {
		t.Errorf("quorum back with rs1: %v, want rs1 20", got)
	}
	h.waitLog(0, "service quorum regained", "live_weight=1")
	if n := h.countLog("service below quorum"); n != 1 {
		t.Errorf("%d below-quorum lines for one transition", n)
	}
	h.stopAndCheckClean()
}

// TestIntegrationHealthViaVIP checks rs1 and rs2 with via = "vip": the probe goes to the VIP
// at the real's MAC, as DR traffic does. Taking the VIP off rs2's lo (a broken DR real that
// still answers on its own address) must take rs2 down, where a via = "real" check would not.
func TestIntegrationHealthViaVIP(t *testing.T) {
	testenv.RequireRoot(t)
	eachBackend(t, testHealthViaVIP)
}

func testHealthViaVIP(t *testing.T) {
	h := startHealthLab(t, 2, nil, func(l *bench.Lab, dir string) string {
		return healthHeader(dir) + fmt.Sprintf(`
[[service]]
vip = %q
port = 80
scheduler = "rr"
  [service.check]
  type = "http"
  via = "vip"
  interval = "1s"
  timeout = "500ms"
  fall = 1
`, l.VIP) + realsTOML(l, "rs1", "rs2")
	})
	ctx := context.Background()
	if out, err := h.lab.Director.Command(ctx, "ip", "rule").CombinedOutput(); err != nil || !strings.Contains(string(out), "lookup") || !strings.Contains(string(out), "fwmark") {
		t.Fatalf("no fwmark rule for via vip: %v %s", err, out)
	}
	if got := h.spread(h.vip, 10); got["rs1"] != 5 || got["rs2"] != 5 {
		t.Fatalf("before: %v, want 5 each", got)
	}
	rs2 := h.lab.Reals[1]
	if out, err := rs2.Command(ctx, "ip", "addr", "del", h.vip.String()+"/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	h.waitLog(1500*time.Millisecond, "real server down", "198.18.1.12:80", "timeout") // fall = 1
	if got := h.spread(h.vip, 20); got["rs1"] != 20 {
		t.Errorf("rs2 without the VIP: %v, want rs1 20", got)
	}
	// rs2 still answers on its own address: only the VIP path is broken.
	if _, err := bench.Get(ctx, h.http, "http://"+h.lab.RealAddrs[1].String()+"/"); err != nil {
		t.Errorf("rs2's own address: %v", err)
	}
	h.stopAndCheckClean()
	out, err := h.lab.Director.Command(ctx, "ip", "rule").CombinedOutput()
	if err != nil || strings.Contains(string(out), "fwmark") {
		t.Errorf("via vip rules left after exit: %v\n%s", err, out)
	}
}
