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
)

// Demo traffic: enough requests that a round-robin split is visible.
const (
	demoHTTPRequests = 20
	demoUDPEchoes    = 5
	demoHTTPPort     = 80
	demoScheduler    = "rr"
	demoBase         = "uvsdemo" // namespace prefixes are demoBase + pid + "-"
)

// demoConfig parameterises runDemo; RunDemo fills it, tests shorten it.
type demoConfig struct {
	uvs          string
	out          io.Writer
	prefix       string
	readyTimeout time.Duration // for the first answer through the VIP
}

// RunDemo builds a DR lab and a NAT lab, starts the test servers and the
// director (uvsBinary) in each, sends HTTP requests and UDP echoes through
// each VIP from the client, and writes to out which real server answered how
// often, one line per service:
//
//	DR   198.18.1.100:80        rr  rs1: 10  rs2: 10
//
// It removes both labs on every exit path; cancel ctx (on SIGINT) to stop it
// early. It returns an error if a lab or the director could not be set up
// or if any request failed.
func RunDemo(ctx context.Context, uvsBinary string, out io.Writer) error {
	return runDemo(ctx, demoConfig{
		uvs:          uvsBinary,
		out:          out,
		prefix:       demoBase + strconv.Itoa(os.Getpid()) + "-",
		readyTimeout: 15 * time.Second,
	})
}

func runDemo(ctx context.Context, c demoConfig) error {
	// Demos killed earlier left nothing anyone needs, and a leftover with
	// this process's pid would be in the way.
	if err := CleanupStale(demoBase); err != nil {
		return err
	}
	if err := CleanupPrefix(c.prefix); err != nil {
		return err
	}
	for _, d := range []struct {
		topo   Topology
		method string
	}{{TopologyDR, "dr"}, {TopologyNAT, "nat"}} {
		if err := demoLab(ctx, c, d.topo, d.method); err != nil {
			return fmt.Errorf("bench: demo %s: %w", d.method, err)
		}
	}
	return nil
}

// demoLab runs the demo on one lab and removes it.
func demoLab(ctx context.Context, c demoConfig, topo Topology, method string) (err error) {
	l, err := NewLab(ctx, LabSpec{Prefix: c.prefix + method + "-", Topology: topo})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	if _, err := l.StartServers(demoHTTPPort, UDPPort); err != nil {
		return err
	}
	if err := l.PrepareReals(method); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "uvs-demo-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "uvs.toml")
	if err := os.WriteFile(cfg, []byte(l.Config(method, demoScheduler, demoHTTPPort, demoHTTPPort, dir)), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	logs := &tailBuffer{max: 4096}
	d, err := l.StartDirector(ctx, c.uvs, cfg, logs)
	if err != nil {
		return err
	}
	defer func() {
		if serr := d.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("director: %w; its output ends:\n%s", serr, logs)
		}
	}()
	hc := l.Client.HTTPClient()
	url := "http://" + netip.AddrPortFrom(l.VIP, demoHTTPPort).String() + "/"
	if err := waitReady(ctx, c.readyTimeout, d, func(ctx context.Context) error {
		_, err := Get(ctx, hc, url)
		return err
	}); err != nil {
		return fmt.Errorf("%w; director output ends:\n%s", err, logs)
	}
	var tcp, udp tally
	for range demoHTTPRequests {
		body, err := Get(ctx, hc, url)
		tcp.add(strings.TrimSuffix(string(body), "\n"), err)
	}
	for i := range demoUDPEchoes {
		reply, err := udpEcho(ctx, l.Client, netip.AddrPortFrom(l.VIP, UDPPort), "demo"+strconv.Itoa(i))
		name, _, _ := strings.Cut(reply, ":")
		udp.add(name, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	label := strings.ToUpper(method)
	fmt.Fprintf(c.out, "%-4s %-22s %s  %s\n", label, netip.AddrPortFrom(l.VIP, demoHTTPPort), demoScheduler, tcp.String(l))
	fmt.Fprintf(c.out, "%-4s %-22s %s  %s\n", label, netip.AddrPortFrom(l.VIP, UDPPort).String()+"/udp", demoScheduler, udp.String(l))
	if tcp.failed+udp.failed > 0 {
		return fmt.Errorf("%d of %d requests failed (first: %v)",
			tcp.failed+udp.failed, demoHTTPRequests+demoUDPEchoes, errors.Join(tcp.firstErr, udp.firstErr))
	}
	return nil
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

// udpEcho sends payload to addr from n and returns the reply.
func udpEcho(ctx context.Context, n *Node, addr netip.AddrPort, payload string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := n.Dial(ctx, "udp4", addr.String())
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

// String lists every real server of l in order, then unknown names and
// failures.
func (t *tally) String(l *Lab) string {
	var parts []string
	seen := make(map[string]bool)
	for _, rs := range l.Reals {
		parts = append(parts, fmt.Sprintf("%s: %d", rs.Name, t.by[rs.Name]))
		seen[rs.Name] = true
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
