//go:build linux

package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// TestIntegrationStartupSignal stops `uvs run` with SIGTERM at points of its start-up, as
// systemd does when it stops a unit that is still starting: at once, after the backend is
// chosen (before the shield and the rings), after the shield or XDP program is installed
// (the director half set up), and once it forwards. Each time uvs must exit 0 (at once, a
// signal that beats the Go runtime's handlers may still end it by SIGTERM, before it has
// touched anything) and leave the director's namespace as it found it: no nftables table,
// tcx or XDP program, sysctl, address or route changed, no control socket, no process.
//
// Before daemon installed its handlers first, a SIGTERM during forward.NewDirector was
// swallowed (the BGP runner's channel had it, the stop context did not exist yet) and uvs
// forwarded on; one before that ended uvs by the default action.
func TestIntegrationStartupSignal(t *testing.T) {
	testenv.RequireRoot(t)
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	// With [[vrrp]] and [sync] (role auto, following VI_1), the VRRP speaker and the sync
	// engine run too when the stop comes; "sync started" comes before the director.
	const vrrpSync = "\n[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = 100\n" +
		"\n[sync]\ninterface = \"eth0\"\nvrrp_instance = \"VI_1\"\n"
	type point struct {
		name string
		line string // signal once a log line holds this; "" at once
	}
	for _, mode := range []struct {
		name, keys, installed, extra string
		early                        []point
	}{
		// nftables: the table outlives a killed process, so a missed stop shows.
		{"afpacket-nftables", "backend = \"afpacket\"\nshield = \"nftables\"\n", "shield installed", "", nil},
		{"afpacket-tcx", "backend = \"afpacket\"\nshield = \"tcx\"\n", "shield installed", "", nil},
		{"afxdp", "backend = \"afxdp\"\n", "afxdp attached", "", nil},
		{"vrrp-sync", "backend = \"afpacket\"\nshield = \"nftables\"\n", "shield installed", vrrpSync,
			[]point{{"after-sync", "msg=\"sync started\""}}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			lab := newLab(t, bench.LabSpec{Topology: bench.TopologyDR})
			tmp := t.TempDir()
			cfgPath := filepath.Join(tmp, "uvs.toml")
			text := lab.Config("dr", "rr", 80, 80, tmp) + mode.extra
			writeFile(t, cfgPath, strings.Replace(text, "[director]\n", "[director]\n"+mode.keys, 1))
			before := directorState(t, lab)
			points := append([]point{{"at-exec", ""}}, mode.early...)
			points = append(points, point{"after-backend", "msg=backend "}, point{"after-install", mode.installed},
				point{"forwarding", "msg=forwarding "})
			for _, point := range points {
				t.Run(point.name, func(t *testing.T) {
					stderr := &syncBuffer{}
					d, err := lab.StartDirector(context.Background(), bin, cfgPath, stderr)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() {
						_ = d.Stop()
						if t.Failed() {
							t.Logf("director stderr:\n%s", stderr.String())
						}
					})
					if point.line != "" && !waitLine(stderr, d.Exited(), point.line) {
						t.Fatalf("no log line with %q before the director exited or 30 s passed", point.line)
					}
					if err := d.Signal(syscall.SIGTERM); err != nil {
						t.Fatalf("SIGTERM: %v", err)
					}
					select {
					case <-d.Exited():
					case <-time.After(30 * time.Second):
						t.Fatalf("uvs still runs 30 s after SIGTERM (%s): the stop was lost", point.name)
					}
					err = d.Wait()
					var ee *exec.ExitError
					termed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() &&
						ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM
					if err != nil && !(point.line == "" && termed) {
						t.Errorf("exit after SIGTERM (%s): %v, want status 0", point.name, err)
					}
					checkDirectorState(t, lab, before)
					if _, err := os.Stat(filepath.Join(tmp, "uvs.sock")); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("control socket left after SIGTERM (%s): %v", point.name, err)
					}
				})
			}
		})
	}
}

// waitLine waits until a line of buf holds part, for at most 30 s or until exited closes.
func waitLine(buf *syncBuffer, exited <-chan struct{}, part string) bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(buf.String(), part) {
			return true
		}
		select {
		case <-exited:
			return strings.Contains(buf.String(), part)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return false
}

// directorState is what uvs may change in the director's namespace and must restore: its
// sysctls, addresses, routes and links (with XDP programs), each as command output.
func directorState(t *testing.T, lab *bench.Lab) map[string]string {
	t.Helper()
	st := map[string]string{}
	for _, args := range [][]string{
		{"sysctl", "net.ipv4.conf", "net.ipv4.ip_forward", "net.ipv4.ip_nonlocal_bind"},
		{"ip", "-4", "addr", "show"},
		{"ip", "-4", "route", "show", "table", "all"},
		{"ip", "rule", "show"},
		{"ip", "-d", "link", "show"},
	} {
		out, err := lab.Director.Command(context.Background(), args[0], args[1:]...).Output()
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		st[strings.Join(args, " ")] = string(out)
	}
	return st
}

// checkDirectorState fails t if the director's namespace differs from before, holds an
// nftables table, a tcx or XDP program, or a process.
func checkDirectorState(t *testing.T, lab *bench.Lab, before map[string]string) {
	t.Helper()
	for k, v := range directorState(t, lab) {
		if v != before[k] {
			t.Errorf("%s changed:\nbefore:\n%s\nafter:\n%s", k, before[k], v)
		}
	}
	out, err := lab.Director.Command(context.Background(), "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("nftables not clean:\n%s", s)
	}
	for _, i := range lab.Director.Ifaces {
		if n := tcxPrograms(t, lab.Director, i.Name); n != 0 {
			t.Errorf("%d tcx programs left on %s", n, i.Name)
		}
	}
	if out, err := exec.Command("ip", "netns", "pids", lab.Director.NS).Output(); err != nil {
		t.Errorf("ip netns pids: %v", err)
	} else if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("processes left in the director's namespace: %s", s)
	}
}
