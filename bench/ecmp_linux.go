package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Bird is a BIRD daemon running in a lab's router namespace.
type Bird struct {
	cmd  *exec.Cmd
	sock string
	done chan struct{}
}

// StartBird writes conf to dir and runs BIRD in the router namespace of an ECMP lab, in
// the foreground, with its control socket in dir. It first turns on the layer-4 multipath
// hash (net.ipv4.fib_multipath_hash_policy=1), so that the flows of one client spread over
// the directors. Close (or Lab.Close) stops it.
func (l *Lab) StartBird(ctx context.Context, dir, conf string) (*Bird, error) {
	if l.Spec.Topology != TopologyECMP {
		return nil, fmt.Errorf("%w: bird runs in an ecmp lab, not %v", ErrSpec, l.Spec.Topology)
	}
	if err := writeSysctls(l.Router.NS, map[string]string{"ipv4/fib_multipath_hash_policy": "1"}); err != nil {
		return nil, err
	}
	cf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("bench: bird: %w", err)
	}
	b := &Bird{sock: filepath.Join(dir, "bird.ctl"), done: make(chan struct{})}
	b.cmd = l.Router.Command(ctx, "bird", "-f", "-c", cf, "-s", b.sock, "-P", filepath.Join(dir, "bird.pid"))
	out, err := os.Create(filepath.Join(dir, "bird.log"))
	if err != nil {
		return nil, fmt.Errorf("bench: bird: %w", err)
	}
	b.cmd.Stdout, b.cmd.Stderr = out, out
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("bench: start bird: %w", err)
	}
	go func() {
		_ = b.cmd.Wait()
		out.Close()
		close(b.done)
	}()
	return b, nil
}

// Close stops BIRD.
func (b *Bird) Close() {
	select {
	case <-b.done:
		return
	default:
	}
	_ = b.cmd.Process.Kill()
	<-b.done
}

// Birdc runs a birdc command against b and returns its output.
func (b *Bird) Birdc(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "birdc", append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("bench: birdc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// RouteVia returns the next hops of the router's kernel route to dst, sorted: one per
// director that announces it (empty when none does).
func (l *Lab) RouteVia(ctx context.Context, dst netip.Addr) ([]netip.Addr, error) {
	if l.Router == nil {
		return nil, errors.New("bench: lab has no router")
	}
	out, err := run(ctx, "", "ip", "-n", l.Router.NS, "-4", "route", "show", "exact", dst.String()+"/32")
	if err != nil {
		return nil, err
	}
	return parseVias(string(out)), nil
}

// parseVias reads the gateways of `ip route show` output: "... via A dev ..." or, for a
// multipath route, one "nexthop via A dev ..." line each.
func parseVias(out string) []netip.Addr {
	var vias []netip.Addr
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] != "via" {
			continue
		}
		if a, err := netip.ParseAddr(f[i+1]); err == nil && !slices.Contains(vias, a) {
			vias = append(vias, a)
		}
	}
	slices.SortFunc(vias, netip.Addr.Compare)
	return vias
}
