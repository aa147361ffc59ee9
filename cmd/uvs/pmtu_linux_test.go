//go:build linux

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// ipCmd runs ip(8) with args, failing the test on error.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// TestIntegrationPMTUThroughDR puts a 1000-byte link between two routers on the way from a
// far client to a DR service. The real server's 1500-byte replies make the first router send
// "fragmentation needed" to the VIP; only if the director relays it to the real server does
// the real lower its path MTU and the download complete.
//
//	far --1500-- mid --1000-- client(router B) --DR segment-- director, rs1, rs2
func TestIntegrationPMTUThroughDR(t *testing.T) {
	testenv.RequireRoot(t)
	r := startLab(t, bench.TopologyDR, "dr", 80, false)
	pfx := r.lab.Spec.Prefix
	mid, far := pfx+"mid", pfx+"far"
	for _, ns := range []string{mid, far} {
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	}
	b := r.lab.Client.NS
	ipCmd(t, "link", "add", "pm0", "netns", b, "mtu", "1000", "type", "veth", "peer", "name", "pm1", "netns", mid, "mtu", "1000")
	ipCmd(t, "link", "add", "pf0", "netns", mid, "type", "veth", "peer", "name", "pf1", "netns", far)
	for _, c := range [][]string{
		{"-n", b, "addr", "add", "198.18.7.1/24", "dev", "pm0"},
		{"-n", b, "link", "set", "pm0", "up"},
		{"-n", b, "route", "add", "198.18.8.0/24", "via", "198.18.7.2"},
		{"-n", mid, "addr", "add", "198.18.7.2/24", "dev", "pm1"},
		{"-n", mid, "link", "set", "pm1", "up"},
		{"-n", mid, "addr", "add", "198.18.8.1/24", "dev", "pf0"},
		{"-n", mid, "link", "set", "pf0", "up"},
		{"-n", mid, "route", "add", "default", "via", "198.18.7.1"},
		{"-n", far, "addr", "add", "198.18.8.2/24", "dev", "pf1"},
		{"-n", far, "link", "set", "pf1", "up"},
		{"-n", far, "route", "add", "default", "via", "198.18.8.1"},
	} {
		ipCmd(t, c...)
	}
	for _, ns := range []string{b, mid} {
		ipCmd(t, "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	}
	for _, rs := range r.lab.Reals {
		for _, net := range []string{"198.18.7.0/24", "198.18.8.0/24"} {
			ipCmd(t, "-n", rs.NS, "route", "add", net, "via", r.lab.Client.Addr.String())
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 3_000_000
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", far, "curl", "-sS", "--fail", "-m", "40",
		"http://"+r.vip.String()+"/bytes?n="+strconv.Itoa(n))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("download through the 1000-byte link: %v (%d bytes)", err, len(out))
	}
	sum := sha256.Sum256(out)
	if len(out) != n || hex.EncodeToString(sum[:]) != bench.ExpectedSHA256(n) {
		t.Fatalf("download corrupt: %d bytes", len(out))
	}
	r.stopAndCheckClean()
	if c := r.stoppedCounters(); c["icmp_relayed"] == 0 {
		t.Errorf("no ICMP error relayed: %v", c)
	}
}
