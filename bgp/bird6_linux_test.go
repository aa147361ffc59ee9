//go:build linux

package bgp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/internal/testenv"
)

// The IPv6 BGP test's link (a /64 of its own in 2001:2::/48) and VIP.
const (
	bird6Router   = "2001:2:0:c8::1"
	bird6Director = "2001:2:0:c8::2"
	bird6VIP      = "2001:2:0:c8:100::1"
)

// speakerHelperEnv names the neighbour when the test binary runs as the director's speaker
// (in the director's namespace: GoBGP dials from goroutines of its own, so the whole process
// must live there).
const speakerHelperEnv = "UVS_BGP6_SPEAKER_NEIGHBOR"

// TestSpeakerHelperProcess is not a test: run with speakerHelperEnv by
// TestIntegrationBGP6Bird, it is the director's speaker. It reads "announce PREFIX..." lines
// (the whole set; an empty set withdraws everything) on stdin, answers each with "ok" once
// applied, and closes the speaker at end of input.
func TestSpeakerHelperProcess(t *testing.T) {
	nb := os.Getenv(speakerHelperEnv)
	if nb == "" {
		t.Skip("helper process of TestIntegrationBGP6Bird")
	}
	sp := NewSpeaker(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	defer sp.Close()
	cfg := config.BGP{Present: true, ASN: 65001, RouterID: netip.MustParseAddr("198.18.200.2"), MaxPrefixes: 10,
		Neighbors: []config.Neighbor{{Address: netip.MustParseAddr(nb), ASN: 65000, HoldTime: 9 * time.Second}}}
	if err := sp.Apply(&cfg); err != nil {
		t.Fatal(err)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 || f[0] != "announce" {
			t.Fatalf("bad command %q", in.Text())
		}
		var want []netip.Prefix
		for _, s := range f[1:] {
			want = append(want, netip.MustParsePrefix(s))
		}
		if _, err := sp.Announce(want); err != nil {
			t.Fatal(err)
		}
		fmt.Println("ok")
	}
}

// TestIntegrationBGP6Bird announces an IPv6 VIP as a /128 to a real BIRD 2 over an IPv6
// session (IPv6 unicast, next hop the director's address on the link) and withdraws it:
// BIRD's table and the router's kernel route show it, then not. The announce and withdraw
// decisions are the Announcer's (the same for /32 and /128, HostPrefix); here a helper
// process stands in for it (no test yet has `uvs run` announce a /128 from its snapshot).
func TestIntegrationBGP6Bird(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("bird"); err != nil {
		testenv.SkipOrFail(t, "bird (Debian bird2) is needed: %v", err)
	}
	pre := fmt.Sprintf("ubg6-%d-", os.Getpid()%100000)
	rt, dir := pre+"rt", pre+"dir"
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", rt).Run()
		_ = exec.Command("ip", "netns", "del", dir).Run()
	})
	run("ip", "netns", "add", rt)
	run("ip", "netns", "add", dir)
	run("ip", "link", "add", "e0", "netns", rt, "type", "veth", "peer", "name", "e0", "netns", dir)
	for ns, a := range map[string]string{rt: bird6Router, dir: bird6Director} {
		run("ip", "-n", ns, "addr", "add", a+"/64", "dev", "e0", "nodad")
		run("ip", "-n", ns, "link", "set", "e0", "up")
		run("ip", "-n", ns, "link", "set", "lo", "up")
	}

	tmp := t.TempDir()
	sock := filepath.Join(tmp, "bird.ctl")
	conf := fmt.Sprintf("router id 198.18.200.1;\nprotocol device {}\nprotocol kernel {\n  ipv6 { export all; };\n}\n"+
		"protocol bgp d1 {\n  local %s as 65000;\n  neighbor %s as 65001;\n  passive on;\n  hold time 9;\n  keepalive time 3;\n"+
		"  ipv6 { import all; export none; };\n}\n", bird6Router, bird6Director)
	if err := os.WriteFile(filepath.Join(tmp, "bird.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var birdLog syncBuffer
	bird := exec.Command("ip", "netns", "exec", rt, "bird", "-f", "-c", filepath.Join(tmp, "bird.conf"), "-s", sock, "-P", filepath.Join(tmp, "bird.pid"))
	bird.Stdout, bird.Stderr = &birdLog, &birdLog
	bird.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := bird.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = bird.Process.Kill()
		_ = bird.Wait()
		if t.Failed() {
			t.Logf("bird output:\n%s", birdLog.String())
		}
	})

	var spLog syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sp := exec.CommandContext(ctx, "ip", "netns", "exec", dir, os.Args[0], "-test.run=^TestSpeakerHelperProcess$", "-test.v")
	sp.Env = append(os.Environ(), speakerHelperEnv+"="+bird6Router)
	sp.Stderr = &spLog
	stdin, err := sp.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := sp.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = sp.Wait()
		if t.Failed() {
			t.Logf("speaker output:\n%s", spLog.String())
		}
	})
	replies := bufio.NewScanner(stdout)
	announce := func(prefixes ...string) {
		t.Helper()
		if _, err := io.WriteString(stdin, strings.TrimSpace("announce "+strings.Join(prefixes, " "))+"\n"); err != nil {
			t.Fatal(err)
		}
		for replies.Scan() {
			if replies.Text() == "ok" {
				return
			}
		}
		t.Fatalf("speaker ended: %v", replies.Err())
	}
	birdc := func(args ...string) string {
		out, _ := exec.Command("birdc", append([]string{"-s", sock}, args...)...).CombinedOutput()
		return string(out)
	}
	kernelRoute := func() string {
		out, _ := exec.Command("ip", "-n", rt, "-6", "route", "show", bird6VIP+"/128").CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	poll := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v\nbirdc show protocols all d1:\n%s\nbirdc show route all:\n%s", what, within, birdc("show", "protocols", "all", "d1"), birdc("show", "route", "all"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The session comes up over IPv6 (GoBGP connects out; its connect retry is 5 s).
	poll("BGP session established", 30*time.Second, func() bool { return strings.Contains(birdc("show", "protocols", "d1"), "Established") })
	announce(bird6VIP+"/128", "198.18.200.100/32")
	poll("the /128 in BIRD's table", 15*time.Second, func() bool { return strings.Contains(birdc("show", "route", "for", bird6VIP+"/128"), bird6VIP+"/128") })
	all := birdc("show", "route", "for", bird6VIP+"/128", "all")
	if !strings.Contains(all, "BGP.next_hop: "+bird6Director) || !strings.Contains(all, "BGP.as_path: 65001") {
		t.Fatalf("BIRD's route, want next hop %s and AS path 65001:\n%s", bird6Director, all)
	}
	t.Logf("BIRD's route:\n%s", all)
	poll("the /128 in the router's kernel table via the director", 10*time.Second, func() bool {
		r := kernelRoute()
		return strings.Contains(r, "via "+bird6Director) && strings.Contains(r, "proto bird")
	})
	t.Logf("router's kernel route: %s", kernelRoute())
	if out := birdc("show", "route", "for", "198.18.200.100/32"); strings.Contains(out, "198.18.200.100/32") {
		t.Fatalf("the IPv4 /32 reached BIRD over the IPv6 session:\n%s", out)
	}
	// Withdrawn (the Announcer's decision when the service fails health): gone from both.
	announce("198.18.200.100/32")
	poll("the /128 withdrawn from BIRD", 15*time.Second, func() bool { return !strings.Contains(birdc("show", "route", "for", bird6VIP+"/128"), bird6VIP+"/128") })
	poll("the /128 gone from the kernel table", 10*time.Second, func() bool { return kernelRoute() == "" })
	// Announced again, then the speaker closes (uvs stopping): withdrawn again.
	announce(bird6VIP + "/128")
	poll("the /128 back", 15*time.Second, func() bool { return strings.Contains(kernelRoute(), "via "+bird6Director) })
	stdin.Close()
	poll("the /128 withdrawn when the speaker closes", 15*time.Second, func() bool { return kernelRoute() == "" })
}
