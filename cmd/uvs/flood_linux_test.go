//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// rssKiB returns the resident set size of the director process in the lab.
func rssKiB(t *testing.T, r *labRun) int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", r.lab.Director.NS).Output()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, pid := range strings.Fields(string(out)) {
		b, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				n, _ := strconv.Atoi(f[1])
				total += n
			}
		}
	}
	return total
}

// TestIntegrationSYNFlood floods the VIP with SYNs from hping3 while a download runs through
// the director: the download finishes intact, the table never takes more than
// max_connections, the refused SYNs are counted, and memory stays flat.
func TestIntegrationSYNFlood(t *testing.T) {
	testenv.RequireRoot(t)
	const maxConns = 4096
	r, _ := startCustom(t, func(l *bench.Lab) string {
		return fmt.Sprintf(`
[director]
interfaces = ["eth0"]
workers = 2
control_socket = "/run/uvs-test-%[1]s.sock"

[conntrack]
max_connections = %[5]d

[[service]]
vip = "%[2]s"
protocol = "tcp"
port = 80
scheduler = "wlc"
  [[service.real]]
  address = "%[3]s"
  [[service.real]]
  address = "%[4]s"
`, l.Spec.Prefix, l.VIP, l.RealAddrs[0], l.RealAddrs[1], maxConns)
	})
	before := rssKiB(t, r)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	var dlErr error
	go func() {
		defer wg.Done()
		defer func() {
			if p := recover(); p != nil {
				dlErr = fmt.Errorf("%v", p)
			}
		}()
		r.download(30_000_000)
	}()
	// 60000 SYNs from the client's own address, incrementing source ports (hping3's
	// default), at about 20k per second: bounded in count and time.
	flood := r.lab.Client.Command(ctx, "hping3", "-q", "-S", "-p", "80", "-i", "u50", "-c", "60000", r.vip.String())
	if out, err := flood.CombinedOutput(); err != nil && !strings.Contains(string(out), "packets transmitted") {
		t.Fatalf("hping3: %v: %s", err, out)
	}
	wg.Wait()
	if dlErr != nil {
		t.Fatalf("download during the flood: %v", dlErr)
	}
	after := rssKiB(t, r)
	if after > before+64*1024 {
		t.Errorf("director RSS grew from %d KiB to %d KiB during the flood", before, after)
	}
	r.stopAndCheckClean()
	c := r.stoppedCounters()
	if c["drop_conntrack_full"] == 0 {
		t.Errorf("no SYNs refused with a %d-entry table: %v", maxConns, c)
	}
	if c["conns"] > maxConns {
		t.Errorf("table holds %d entries, max_connections %d", c["conns"], maxConns)
	}
	t.Logf("RSS %d -> %d KiB; counters %v", before, after, c)
}
