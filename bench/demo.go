package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/uvs-project/uvs/config"
)

// Demo traffic: enough requests that a round-robin split is visible.
const (
	demoHTTPRequests = 20
	demoUDPEchoes    = 5
	demoBase         = "uvsdemo" // namespace prefixes are demoBase + pid + "-"
)

// demoConfig parameterises runDemo; RunDemo fills it, tests shorten it.
type demoConfig struct {
	uvs          string
	out          io.Writer
	prefix       string
	readyTimeout time.Duration // for the first answer through the VIP
}

// demoTOML is the embedded default configuration of the demo: a DR
// service (HTTP and UDP echo) on the clients' segment, a NAT service with
// port mapping on a segment behind the director and, once `uvs realserver`
// exists, a TUN service behind a router.
const demoTOML = `# uvs demo
[director]
interfaces = ["eth0", "eth1"]
workers = 2
control_socket = %q

[lab]
prefix = %q

[[service]]
name = "dr-http"
vip = "198.18.1.100"
port = 80
scheduler = "rr"
forward = "dr"
  [[service.real]]
  address = "198.18.1.11"
  [[service.real]]
  address = "198.18.1.12"

[[service]]
name = "dr-udp"
vip = "198.18.1.100"
protocol = "udp"
port = 9000
scheduler = "rr"
forward = "dr"
  [[service.real]]
  address = "198.18.1.11"
  [[service.real]]
  address = "198.18.1.12"

[[service]]
name = "nat-http"
vip = "198.18.1.101"
port = 80
scheduler = "rr"
forward = "nat"
  [[service.real]]
  address = "198.18.3.11"
  port = 8080
  [[service.real]]
  address = "198.18.3.12"
  port = 8080

[[service]]
name = "nat-udp"
vip = "198.18.1.101"
protocol = "udp"
port = 9000
scheduler = "rr"
forward = "nat"
  [[service.real]]
  address = "198.18.3.11"
  [[service.real]]
  address = "198.18.3.12"
`

// demoTUN is appended to demoTOML when the uvs binary has `uvs realserver`.
const demoTUN = `
[[service]]
name = "tun-http"
vip = "198.18.1.102"
port = 80
scheduler = "rr"
forward = "tun"
  [[service.real]]
  address = "198.18.5.11"
  [[service.real]]
  address = "198.18.5.12"
`

// demoIPv6 is appended to the demo's configuration by RunDemo: the DR and NAT services again
// on IPv6 VIPs, the twins of the IPv4 ones in a dual-stack lab (lab6.go), to the same real
// servers by their IPv6 addresses.
const demoIPv6 = `
[[service]]
name = "dr6-http"
vip = "2001:2:0:1::100"
port = 80
scheduler = "rr"
forward = "dr"
  [[service.real]]
  address = "2001:2:0:1::11"
  [[service.real]]
  address = "2001:2:0:1::12"

[[service]]
name = "nat6-http"
vip = "2001:2:0:1::101"
port = 80
scheduler = "rr"
forward = "nat"
  [[service.real]]
  address = "2001:2:0:3::11"
  port = 8080
  [[service.real]]
  address = "2001:2:0:3::12"
  port = 8080
`

// demoTUN6 is appended with demoTUN and demoIPv6: IPv6 in IPv6 to the TUN real servers.
const demoTUN6 = `
[[service]]
name = "tun6-http"
vip = "2001:2:0:1::102"
port = 80
scheduler = "rr"
forward = "tun"
  [[service.real]]
  address = "2001:2:0:5::11"
  [[service.real]]
  address = "2001:2:0:5::12"
`

// DemoConfigDual is DemoConfig with IPv6 services beside the IPv4 ones (dr6-http through
// 2001:2:0:1::100 to rs1 and rs2, nat6-http through 2001:2:0:1::101 to rs3 and rs4 and, with
// withTUN, tun6-http through 2001:2:0:1::102 to rs5 and rs6), which make its lab dual-stack.
// `uvs demo` runs it.
func DemoConfigDual(socket, prefix string, withTUN bool) string {
	// shield = "auto" takes tcx for IPv6 as for IPv4 (the tcx program covers both families).
	src := DemoConfig(socket, prefix, withTUN) + demoIPv6
	if withTUN {
		src += demoTUN6
	}
	return src
}

// DemoConfig returns the demo's configuration for a lab whose namespaces start with prefix
// and whose director listens on socket: DR (HTTP on port 80, UDP echo on 9000) through
// 198.18.1.100 to rs1 and rs2, NAT with port mapping (80 to 8080) through 198.18.1.101 to rs3
// and rs4 and, with withTUN, a TUN service through 198.18.1.102 to rs5 and rs6 behind the
// router. Integration tests use it as their lab fixture, so that there is one.
func DemoConfig(socket, prefix string, withTUN bool) string {
	src := fmt.Sprintf(demoTOML, socket, prefix)
	if withTUN {
		src += demoTUN
	}
	return src
}

// RunDemo builds the lab of an embedded configuration (DR and NAT services,
// and TUN once `uvs realserver` exists, each on IPv4 and IPv6: DemoConfigDual)
// with LabUp, sends HTTP requests and
// UDP echoes through each VIP from the client, writes which real server
// answered how often, one line per service:
//
//	DR   198.18.1.100:80        rr  rs1: 10  rs2: 10
//
// and removes the lab. It removes the lab on every exit path; cancel ctx
// (on SIGINT) to stop it early, and it returns ErrInterrupted then. It
// returns an error if the lab or the director could not be set up or if any
// request failed.
func RunDemo(ctx context.Context, uvsBinary string, out io.Writer) error {
	return runDemo(ctx, demoConfig{
		uvs:          uvsBinary,
		out:          out,
		prefix:       demoBase + strconv.Itoa(os.Getpid()) + "-",
		readyTimeout: 15 * time.Second,
	})
}

func runDemo(ctx context.Context, c demoConfig) (err error) {
	// Demos killed earlier left nothing anyone needs, and a leftover with
	// this process's pid would be in the way.
	if err := CleanupStale(demoBase); err != nil {
		return err
	}
	if err := CleanupPrefix(c.prefix); err != nil {
		return err
	}
	_ = os.Remove(statePath(c.prefix))
	dir, err := os.MkdirTemp("", "uvs-demo-")
	if err != nil {
		return fmt.Errorf("bench: demo: %w", err)
	}
	defer os.RemoveAll(dir)
	src := DemoConfigDual(filepath.Join(dir, "uvs.sock"), c.prefix, HasCommand(c.uvs, "realserver"))
	path := filepath.Join(dir, "uvs-demo.toml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		return fmt.Errorf("bench: demo: %w", err)
	}
	cfg, err := config.Parse(path, []byte(src))
	if err != nil {
		return fmt.Errorf("bench: demo config: %w", err)
	}
	st, err := labUp(ctx, cfg, path, c.uvs, io.Discard, c.readyTimeout)
	if err != nil {
		return err // labUp's errors name bench and say what failed (or ErrInterrupted)
	}
	defer func() { err = errors.Join(interrupted(ctx, err), st.Down()) }()
	client := st.NodesByRole("client")[0]
	names := map[netip.Addr]string{}
	for _, n := range st.NodesByRole("real") {
		names[n.Addr] = n.Name
		if n.Addr6.IsValid() {
			names[n.Addr6] = n.Name
		}
	}
	hc := client.HTTPClient()
	var failed, total int
	var firstErr error
	for _, svc := range cfg.Services {
		var t tally
		ap := netip.AddrPortFrom(svc.VIP, svc.Port)
		label := ap.String()
		if svc.Protocol == config.TCP {
			for range demoHTTPRequests {
				body, err := Get(ctx, hc, "http://"+ap.String()+"/")
				t.add(strings.TrimSuffix(string(body), "\n"), err)
			}
			total += demoHTTPRequests
		} else {
			label += "/udp"
			for i := range demoUDPEchoes {
				reply, err := udpEcho(ctx, client, ap, "demo"+strconv.Itoa(i))
				name, _, _ := strings.Cut(reply, ":")
				t.add(name, err)
			}
			total += demoUDPEchoes
		}
		if ctx.Err() != nil {
			return interrupted(ctx, ctx.Err())
		}
		var reals []string
		for _, r := range svc.Reals {
			reals = append(reals, names[r.Address])
		}
		fmt.Fprintf(c.out, "%-4s %-22s %s  %s\n", strings.ToUpper(svc.Forward.String()), label, svc.Scheduler, t.String(reals))
		failed += t.failed
		if firstErr == nil {
			firstErr = t.firstErr
		}
	}
	if failed > 0 {
		return fmt.Errorf("bench: demo: %d of %d requests failed (first: %v)", failed, total, firstErr)
	}
	return nil
}

// udpEcho sends payload to addr from n and returns the reply.
func udpEcho(ctx context.Context, n *Node, addr netip.AddrPort, payload string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := n.Dial(ctx, "udp", addr.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	if err := c.SetDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte(payload)); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	m, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:m]), nil
}

// tally counts answers by real server name.
type tally struct {
	by       map[string]int
	failed   int
	firstErr error
}

func (t *tally) add(name string, err error) {
	if err != nil {
		t.failed++
		if t.firstErr == nil {
			t.firstErr = err
		}
		return
	}
	if t.by == nil {
		t.by = make(map[string]int)
	}
	t.by[name]++
}

// String lists the real servers in order, then unknown names and
// failures.
func (t *tally) String(reals []string) string {
	var parts []string
	seen := make(map[string]bool)
	for _, rs := range reals {
		parts = append(parts, fmt.Sprintf("%s: %d", rs, t.by[rs]))
		seen[rs] = true
	}
	var other []string
	for name := range t.by {
		if !seen[name] {
			other = append(other, name)
		}
	}
	slices.Sort(other)
	for _, name := range other {
		parts = append(parts, fmt.Sprintf("%q: %d", name, t.by[name]))
	}
	if t.failed > 0 {
		parts = append(parts, fmt.Sprintf("failed: %d", t.failed))
	}
	return strings.Join(parts, "  ")
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent use
// (os/exec copies stdout and stderr from separate goroutines).
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitReady calls probe until it succeeds, the director exits, timeout
// passes or ctx ends.
func waitReady(ctx context.Context, timeout time.Duration, d *Director, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// A director that exits cuts the probe in flight short.
	go func() {
		select {
		case <-d.Exited():
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		err := probe(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-d.Exited():
			return fmt.Errorf("director exited before serving: %v", d.Wait())
		default:
		}
		select {
		case <-d.Exited():
			return fmt.Errorf("director exited before serving: %v", d.Wait())
		case <-ctx.Done():
			return fmt.Errorf("no answer through the VIP within %v: %w", timeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
