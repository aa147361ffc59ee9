package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The failover demo's own small lab: one segment, two directors, a client, two DR reals.
const (
	failoverBase = "uvsfo" // namespace prefixes are failoverBase + pid + "-"
	failoverVIP  = "198.18.1.100"
)

// failoverHosts are the lab's hosts and their addresses on the one segment.
var failoverHosts = []struct{ name, addr string }{
	{"d1", "198.18.1.2"}, {"d2", "198.18.1.3"}, {"client", "198.18.1.10"}, {"rs1", "198.18.1.11"}, {"rs2", "198.18.1.12"},
}

const failoverTOML = `[director]
interfaces = ["eth0"]
workers = 1
control_socket = %q

[[service]]
vip = %q
port = 80
scheduler = "rr"
forward = "dr"
  [[service.real]]
  address = "198.18.1.11"
  [[service.real]]
  address = "198.18.1.12"

[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = %d
advert_int = 1
`

// RunFailoverDemo shows VRRP failover between two uvs directors: it builds a lab of its own
// (a switch, directors d1 and d2, a client, two DR real servers), starts d1 with priority
// 150 and d2 with 100, sends HTTP requests through the VIP every 100 ms, kills d1 with
// SIGKILL, and reports when d2 took over and which requests failed; then it starts d1 again
// and shows it preempt. It removes the lab on every exit path; cancel ctx to stop early
// (ErrInterrupted).
func RunFailoverDemo(ctx context.Context, uvsBinary string, out io.Writer) (err error) {
	if err := CleanupStale(failoverBase); err != nil {
		return err
	}
	prefix := failoverBase + strconv.Itoa(os.Getpid()) + "-"
	if err := CleanupPrefix(prefix); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "uvs-failover-")
	if err != nil {
		return fmt.Errorf("bench: failover demo: %w", err)
	}
	defer os.RemoveAll(dir)
	fo := &failover{ctx: ctx, prefix: prefix, dir: dir, uvs: uvsBinary, out: out, procs: map[string]*exec.Cmd{}}
	defer func() { err = errors.Join(interrupted(ctx, err), fo.down()) }()
	if err := fo.build(); err != nil {
		return err
	}
	fmt.Fprintf(out, "lab: switch, d1 and d2 (uvs, VRRP VI_1 vrid 51), client, rs1 and rs2 (DR) on 198.18.1.0/24; VIP %s\n", failoverVIP)
	if err := fo.start("d1", 150); err != nil {
		return err
	}
	if err := fo.waitState("d1", "master", 10*time.Second); err != nil {
		return err
	}
	if err := fo.start("d2", 100); err != nil {
		return err
	}
	if err := fo.waitState("d2", "backup", 10*time.Second); err != nil {
		return err
	}
	fmt.Fprintln(out, "d1 (priority 150) is master, d2 (priority 100) backup")

	var mu sync.Mutex
	type result struct {
		at   time.Time
		real string
		err  error
	}
	var results []result
	stop := make(chan struct{})
	done := make(chan struct{})
	hc := (&Node{NS: prefix + "client"}).HTTPClient()
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			body, err := Get(rctx, hc, "http://"+failoverVIP+"/")
			cancel()
			mu.Lock()
			results = append(results, result{time.Now(), strings.TrimSpace(string(body)), err})
			mu.Unlock()
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}()
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return err
	}
	killed := time.Now()
	fo.kill("d1")
	fmt.Fprintln(out, "SIGKILL d1 (requests every 100 ms go on)")
	// 3 × advert_int + skew ((256-100)/256 s) + 1 s.
	bound := 3*time.Second + 156*time.Second/256 + time.Second
	if err := fo.waitState("d2", "master", bound); err != nil {
		return err
	}
	took := time.Since(killed)
	fmt.Fprintf(out, "d2 master %.1fs after the kill (bound: 3 × advert_int + skew + 1s = %.1fs)\n", took.Seconds(), bound.Seconds())
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return err
	}
	close(stop)
	<-done
	mu.Lock()
	var ok, failed int
	var firstFail, lastFail time.Time
	for _, r := range results {
		if r.err == nil {
			ok++
			continue
		}
		failed++
		if firstFail.IsZero() {
			firstFail = r.at
		}
		lastFail = r.at
	}
	mu.Unlock()
	if failed == 0 {
		fmt.Fprintf(out, "%d requests, none failed\n", ok)
	} else {
		fmt.Fprintf(out, "%d requests, %d failed, all between %.1fs and %.1fs after the kill\n", ok+failed, failed, firstFail.Sub(killed).Seconds(), lastFail.Sub(killed).Seconds())
	}

	if err := fo.start("d1", 150); err != nil {
		return err
	}
	started := time.Now()
	if err := fo.waitState("d1", "master", 10*time.Second); err != nil {
		return err
	}
	if err := fo.waitState("d2", "backup", 5*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(out, "d1 restarted with priority 150: master again after %.1fs (preempt), d2 backup\n", time.Since(started).Seconds())
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	body, err := Get(rctx, hc, "http://"+failoverVIP+"/")
	if err != nil {
		return fmt.Errorf("bench: failover demo: no answer through d1 after it preempted: %w", err)
	}
	fmt.Fprintf(out, "request through d1: answered by %s\n", strings.TrimSpace(string(body)))
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// failover is the demo's lab.
type failover struct {
	ctx     context.Context
	prefix  string
	dir     string
	uvs     string
	out     io.Writer
	created []string
	procs   map[string]*exec.Cmd
	servers []*http.Server
	logs    map[string]*tailBuffer
}

func (f *failover) ns(h string) string { return f.prefix + h }

func (f *failover) build() error {
	sw := f.ns("sw")
	for _, h := range append([]string{"sw"}, hostNames()...) {
		if _, err := run(f.ctx, "", "ip", "netns", "add", f.ns(h)); err != nil {
			return err
		}
		f.created = append(f.created, f.ns(h))
	}
	lines := []string{"link add br0 type bridge", "link set br0 up"}
	if err := ipBatch(f.ctx, sw, lines); err != nil {
		return err
	}
	for i, h := range failoverHosts {
		port := "p" + strconv.Itoa(i)
		if _, err := run(f.ctx, "", "ip", "link", "add", "eth0", "netns", f.ns(h.name), "type", "veth", "peer", "name", port, "netns", sw); err != nil {
			return err
		}
		if err := ipBatch(f.ctx, sw, []string{"link set " + port + " master br0", "link set " + port + " up"}); err != nil {
			return err
		}
		if err := ipBatch(f.ctx, f.ns(h.name), []string{"addr add " + h.addr + "/24 dev eth0", "link set eth0 up", "link set lo up"}); err != nil {
			return err
		}
	}
	vip := netip.MustParseAddr(failoverVIP)
	for _, rs := range []string{"rs1", "rs2"} {
		n := &Node{Name: rs, NS: f.ns(rs)}
		if err := prepareDR(f.ctx, n, []netip.Addr{vip}); err != nil {
			return err
		}
		var ln net.Listener
		if err := n.Do(func() error {
			var err error
			ln, err = net.Listen("tcp4", ":80")
			return err
		}); err != nil {
			return fmt.Errorf("bench: failover demo: listen on %s: %w", rs, err)
		}
		srv := &http.Server{Handler: handler(rs), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		f.servers = append(f.servers, srv)
	}
	return nil
}

func hostNames() []string {
	var out []string
	for _, h := range failoverHosts {
		out = append(out, h.name)
	}
	return out
}

// start runs uvs on director d with priority prio.
func (f *failover) start(d string, prio int) error {
	path := filepath.Join(f.dir, d+".toml")
	src := fmt.Sprintf(failoverTOML, filepath.Join(f.dir, d+".sock"), failoverVIP, prio)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		return fmt.Errorf("bench: failover demo: %w", err)
	}
	if f.logs == nil {
		f.logs = map[string]*tailBuffer{}
	}
	log := &tailBuffer{max: 4096}
	f.logs[d] = log
	cmd := exec.Command("ip", "netns", "exec", f.ns(d), f.uvs, "run", "--config", path)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bench: failover demo: start uvs on %s: %w", d, err)
	}
	go func() { _ = cmd.Wait() }()
	f.procs[d] = cmd
	return nil
}

// kill sends SIGKILL to director d (ip netns exec execs uvs: the PID is uvs's).
func (f *failover) kill(d string) {
	if c := f.procs[d]; c != nil && c.Process != nil {
		_ = c.Process.Signal(syscall.SIGKILL)
		delete(f.procs, d)
	}
}

// state asks director d for its instance's state.
func (f *failover) state(d string) string {
	out, err := exec.CommandContext(f.ctx, "ip", "netns", "exec", f.ns(d), f.uvs, "list", "--json", "--socket", filepath.Join(f.dir, d+".sock")).Output()
	if err != nil {
		return ""
	}
	var st struct {
		VRRP []struct {
			State string `json:"state"`
		} `json:"vrrp"`
	}
	if json.Unmarshal(out, &st) != nil || len(st.VRRP) == 0 {
		return ""
	}
	return st.VRRP[0].State
}

func (f *failover) waitState(d, want string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if f.state(d) == want {
			return nil
		}
		if err := sleepCtx(f.ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	msg := ""
	if l := f.logs[d]; l != nil {
		msg = "; its log:\n" + l.String()
	}
	return fmt.Errorf("bench: failover demo: %s not %s within %v%s", d, want, within, msg)
}

// down stops the directors (SIGTERM), the servers, and deletes the namespaces.
func (f *failover) down() error {
	for _, c := range f.procs {
		if c.Process != nil {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, c := range f.procs {
		for i := 0; i < 50 && c.Process != nil && syscall.Kill(c.Process.Pid, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if c.Process != nil {
			_ = c.Process.Kill()
		}
	}
	for _, s := range f.servers {
		_ = s.Close()
	}
	var errs []error
	for _, ns := range f.created {
		if _, err := run(context.Background(), "", "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
