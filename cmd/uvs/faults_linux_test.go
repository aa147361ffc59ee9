//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// directorCPU returns the CPU time (user+system, in clock ticks) of the director's processes.
func directorCPU(t *testing.T, r *labRun) int {
	t.Helper()
	out, err := r.lab.Director.Command(context.Background(), "ip", "netns", "pids", r.lab.Director.NS).Output()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, pid := range strings.Fields(string(out)) {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		if len(f) > 12 {
			u, _ := strconv.Atoi(f[11])
			s, _ := strconv.Atoi(f[12])
			total += u + s
		}
	}
	return total
}

// TestIntegrationLinkFlap takes the director's listened interface down and up: forwarding
// resumes without a restart, and the workers do not spin while the link is down.
func TestIntegrationLinkFlap(t *testing.T) {
	testenv.RequireRoot(t)
	r := startLab(t, bench.TopologyDR, "dr", 80, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	checkEven(t, "before the flap", r.distribution(10), 10)

	ipCmd(t, "-n", r.lab.Director.NS, "link", "set", "eth0", "down")
	cpu0 := directorCPU(t, r)
	// A measurement window, not a wait for a state: two seconds of a spinning worker would be
	// about 200 ticks, an idle one a few. A slow machine only lowers the count.
	time.Sleep(2 * time.Second)
	if used := directorCPU(t, r) - cpu0; used > 50 {
		t.Errorf("director used %d ticks of CPU in 2 s with its link down", used)
	}
	ipCmd(t, "-n", r.lab.Director.NS, "link", "set", "eth0", "up")

	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := r.curl(ctx, "/"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no forwarding after the link came back:\n%s", r.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := r.distribution(20)
	if got["rs1"]+got["rs2"] != 20 || got["rs1"] == 0 || got["rs2"] == 0 {
		t.Errorf("after the flap: %v", got)
	}
	r.kernelQuiet()
	r.stopAndCheckClean()
}

// TestIntegrationRealMACChange changes a real server's MAC (it announces the change with a
// gratuitous ARP, arp_notify=1): without a restart the director forwards to the new MAC (it
// learns it from the neighbour table's netlink notification; how long that took is logged).
func TestIntegrationRealMACChange(t *testing.T) {
	testenv.RequireRoot(t)
	r := startLab(t, bench.TopologyDR, "dr", 80, false)
	checkEven(t, "before", r.distribution(10), 10)
	rs1 := r.lab.Reals[0].NS
	ipCmd(t, "netns", "exec", rs1, "sysctl", "-qw", "net.ipv4.conf.eth0.arp_notify=1")
	ipCmd(t, "-n", rs1, "link", "set", "eth0", "address", "02:00:5e:aa:bb:01")
	changed := time.Now()
	// rr alternates: poll until rs1 answers again, which it can only at its new MAC (a frame
	// to the old one is not for its host).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		out, err := r.curl(cctx, "/")
		ccancel()
		if err == nil && strings.TrimSpace(string(out)) == "rs1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rs1 never answered at its new MAC:\n%s", r.stderr.String())
		}
	}
	t.Logf("rs1 answered at its new MAC %v after the change", time.Since(changed).Round(time.Millisecond))
	checkEven(t, "after the MAC change", r.distribution(20), 20)
	r.stopAndCheckClean()
}

// TestIntegrationRealVanishes removes a real server's link: the director stays up, counts
// what it cannot deliver, and keeps serving through the other real.
func TestIntegrationRealVanishes(t *testing.T) {
	testenv.RequireRoot(t)
	r := startLab(t, bench.TopologyDR, "dr", 80, false)
	ipCmd(t, "-n", r.lab.Reals[0].NS, "link", "del", "eth0")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ok := 0
	// Without a health check, rr still sends half the new connections to the vanished real;
	// those time out (the health-check tests cover taking it out of rotation).
	for i := 0; i < 8; i++ {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		if out, err := r.curl(cctx, "/"); err == nil && strings.TrimSpace(string(out)) == "rs2" {
			ok++
		}
		ccancel()
	}
	if ok == 0 {
		t.Fatal("the remaining real server got no traffic")
	}
	select {
	case <-r.dir.Exited():
		t.Fatalf("director exited:\n%s", r.stderr.String())
	default:
	}
	r.stopAndCheckClean()
	t.Logf("%d of 8 requests answered by rs2; counters %v", ok, r.stoppedCounters())
}

// TestIntegrationRestartKeepsConnections restarts the director of a NAT service with
// --state-file while a keep-alive TCP connection is open: the connection survives on its real
// server.
func TestIntegrationRestartKeepsConnections(t *testing.T) {
	testenv.RequireRoot(t)
	r := startLab(t, bench.TopologyNAT, "nat", 8080, false)
	_ = r.dir.Stop() // restart it with a state file
	dir := t.TempDir()
	cfg := filepath.Join(dir, "uvs.toml")
	state := filepath.Join(dir, "uvs.state")
	writeFile(t, cfg, r.lab.Config("nat", "rr", 80, 8080, dir))
	start := func() { r.runDirector(cfg, "--state-file", state) }
	start()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var conn net.Conn
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		if conn, err = r.lab.Client.Dial(ctx, "tcp4", netip.AddrPortFrom(r.vip, 80).String()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection: %v\n%s", err, r.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	ask := func() string {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
		if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: vip\r\n\r\n"); err != nil {
			t.Fatalf("long-lived connection: %v", err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("long-lived connection: %v\n%s", err, r.stderr.String())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b))
	}
	held := ask()
	if err := r.dir.Stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, r.stderr.String())
	}
	if !strings.Contains(r.stderr.String(), "msg=\"state saved\"") {
		t.Fatalf("no state saved:\n%s", r.stderr.String())
	}
	start()
	for i := 0; i < 3; i++ {
		if got := ask(); got != held {
			t.Fatalf("after the restart the connection is served by %s, was %s", got, held)
		}
	}
	if !strings.Contains(r.stderr.String(), "msg=\"state restored\"") {
		t.Errorf("no state restored:\n%s", r.stderr.String())
	}
	r.stopAndCheckClean()
}
