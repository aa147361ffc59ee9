//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// realserverProc is `uvs realserver --method tun` running in the foreground in a real server.
type realserverProc struct {
	node   *bench.Node
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	killed bool // killed on purpose by the test
}

// startRealserver runs `uvs realserver --method tun --vip VIP` in n and waits until it
// decapsulates. It is stopped with SIGTERM at cleanup, and must then exit 0.
func startRealserver(t *testing.T, n *bench.Node, vip netip.Addr) *realserverProc {
	t.Helper()
	return startRealserverArgs(t, n, "--method", "tun", "--vip", vip.String())
}

// startRealserverArgs runs `uvs realserver ARGS...` in n, as startRealserver does.
func startRealserverArgs(t *testing.T, n *bench.Node, args ...string) *realserverProc {
	t.Helper()
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := &realserverProc{node: n, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = n.Command(context.Background(), bin, append([]string{"realserver"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait() // ProcessState tells the outcome
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("realserver on %s: %v\n%s", n.Name, err, p.out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.out.String(), "decapsulating IPIP") {
		select {
		case <-p.done:
			t.Fatalf("realserver on %s exited: %s", n.Name, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("realserver on %s not ready: %s", n.Name, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// stop sends SIGTERM and waits up to 10s; it is idempotent.
func (p *realserverProc) stop() error {
	select {
	case <-p.done:
		if p.killed || p.cmd.ProcessState == nil || p.cmd.ProcessState.Success() {
			return nil
		}
		return fmt.Errorf("exit %v", p.cmd.ProcessState)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("ignored SIGTERM")
	}
	if !p.cmd.ProcessState.Success() {
		return fmt.Errorf("exit %v", p.cmd.ProcessState)
	}
	return nil
}

// startTUNLab builds a TUN lab whose real servers run `uvs realserver --method tun`, starts
// the test servers and a director with rr, and waits until the VIP answers.
func startTUNLab(t *testing.T, txOff bool) (*labRun, []*realserverProc) {
	t.Helper()
	lab := newLab(t, bench.LabSpec{Topology: bench.TopologyTUN, DirectorTxOff: txOff})
	var procs []*realserverProc
	for _, n := range lab.Reals {
		procs = append(procs, startRealserver(t, n, lab.VIP))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range procs {
				t.Logf("realserver %s:\n%s", p.node.Name, p.out.String())
			}
		}
	})
	startServers(t, lab, 80, bench.UDPPort)
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "uvs.toml")
	writeFile(t, cfgPath, lab.Config("tun", "rr", 80, 80, tmp))
	r := newRun(t, lab)
	r.runDirector(cfgPath)
	return r, procs
}

// counter reads /sys/class/net/DEV/statistics/NAME inside n.
func counter(t *testing.T, n *bench.Node, dev, name string) uint64 {
	t.Helper()
	out, err := n.Command(context.Background(), "cat", "/sys/class/net/"+dev+"/statistics/"+name).Output()
	if err != nil {
		t.Fatalf("%s %s %s: %v", n.Name, dev, name, err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func nstat(t *testing.T, n *bench.Node) map[string]uint64 {
	t.Helper()
	m, err := bench.Nstat(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestIntegrationTUN(t *testing.T) {
	testenv.RequireRoot(t)
	eachBackend(t, testTUN)
}

func testTUN(t *testing.T) {
	for _, txOff := range []bool{false, true} {
		t.Run(fmt.Sprintf("txoff=%v", txOff), func(t *testing.T) {
			r, procs := startTUNLab(t, txOff)
			var rsStat []map[string]uint64
			for _, n := range r.lab.Reals {
				rsStat = append(rsStat, nstat(t, n))
			}
			checkEven(t, "100 curls through the TUN VIP", r.distribution(100), 100)

			// The download's bytes come from the real servers through the router to the
			// client; the director's link sees only the client's side (ACKs).
			rx0 := counter(t, r.lab.Director, "eth0", "rx_bytes")
			r.download(10_000_000)
			if d := counter(t, r.lab.Director, "eth0", "rx_bytes") - rx0; d > 2_000_000 {
				t.Errorf("director received %d bytes during a 10 MB download: replies went through it", d)
			} else {
				t.Logf("director received %d bytes during the 10 MB download", d)
			}
			checkEven(t, "UDP echo through TUN", r.udpEcho(10), 10)
			r.kernelQuiet()
			// The raw socket claims protocol 4: no ICMP protocol unreachable per packet.
			for i, n := range r.lab.Reals {
				now := nstat(t, n)
				if d := now["IcmpOutDestUnreachs"] - rsStat[i]["IcmpOutDestUnreachs"]; d != 0 {
					t.Errorf("%s sent %d ICMP destination unreachable", n.Name, d)
				}
			}
			r.stopAndCheckClean()
			if c := r.stoppedCounters(); c["nat_replies"] != 0 || c["forwarded"] < 100 {
				t.Errorf("director counters %v: want forwarded requests and no replies", c)
			} else {
				t.Logf("director counters: %v", c)
			}
			// SIGTERM undoes the real servers' changes.
			for _, p := range procs {
				if err := p.stop(); err != nil {
					t.Fatalf("realserver %s: %v\n%s", p.node.Name, err, p.out.String())
				}
				out, _ := p.node.Command(context.Background(), "ip", "-o", "addr", "show", "dev", "lo").Output()
				if strings.Contains(string(out), r.vip.String()) {
					t.Errorf("%s: VIP still on lo after SIGTERM", p.node.Name)
				}
				if err := p.node.Command(context.Background(), "ip", "link", "show", "uvs-tun0").Run(); err == nil {
					t.Errorf("%s: uvs-tun0 still there after SIGTERM", p.node.Name)
				}
				if !strings.Contains(p.out.String(), "decapsulated ") {
					t.Errorf("%s: no summary on exit:\n%s", p.node.Name, p.out.String())
				}
			}
		})
	}
}

// TestIntegrationTUNPMTU sends a DF datagram that fits the client's link but not the tunnel,
// expects ICMP fragmentation needed with MTU 1480 from the VIP, and then downloads over a
// connection whose request is far larger than the tunnel MTU: its segments only get through
// after PMTU discovery lowered the client's MSS.
func TestIntegrationTUNPMTU(t *testing.T) {
	testenv.RequireRoot(t)
	r, _ := startTUNLab(t, false)
	cl := r.lab.Client
	c0 := nstat(t, cl)

	var ic *icmp.PacketConn
	if err := cl.Do(func() error {
		var err error
		ic, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	conn, err := cl.Dial(context.Background(), "udp4", netip.AddrPortFrom(r.vip, bench.UDPPort).String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_DO)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if _, err := conn.Write(make([]byte, 1500-28)); err != nil { // a 1500-byte IP packet
		t.Fatal(err)
	}
	_ = ic.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	for {
		n, from, err := ic.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no ICMP fragmentation needed: %v", err)
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeDestinationUnreachable || m.Code != 4 {
			continue
		}
		t.Logf("ICMP type 3 code 4 from %v, next-hop MTU %d", from, binary.BigEndian.Uint16(buf[6:8]))
		if from.String() != r.vip.String() {
			t.Errorf("ICMP from %v, want the VIP", from)
		}
		// The body of a parsed DstUnreach loses the MTU word: read it from the raw message.
		if mtu := binary.BigEndian.Uint16(buf[6:8]); mtu != 1480 {
			t.Fatalf("next-hop MTU %d, want 1480", mtu)
		}
		break
	}
	out, err := cl.Command(context.Background(), "ip", "route", "get", r.vip.String()).Output()
	if err != nil || !strings.Contains(string(out), "mtu 1480") {
		t.Errorf("client route to the VIP does not carry PMTU 1480: %v %s", err, out)
	}
	// Forget the learned PMTU so that the TCP connection below discovers it itself.
	_ = cl.Command(context.Background(), "ip", "route", "flush", "cache").Run()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 10_000_000
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/bytes?n=%d", r.vip, n), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Pad", strings.Repeat("p", 200_000)) // ~140 full segments toward the VIP
	hc := cl.HTTPClient()
	hc.Timeout = 60 * time.Second
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("download with a large request: %v", err)
	}
	h := sha256.New()
	got, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || got != n || hex.EncodeToString(h.Sum(nil)) != bench.ExpectedSHA256(n) {
		t.Fatalf("download: status %d, %d bytes, err %v", resp.StatusCode, got, err)
	}
	c1 := nstat(t, cl)
	if d := c1["IcmpInDestUnreachs"] - c0["IcmpInDestUnreachs"]; d < 2 {
		t.Errorf("client received %d destination unreachable, want the datagram's and the connection's", d)
	}
	r.stopAndCheckClean()
	if c := r.stoppedCounters(); c["frag_needed"] < 2 {
		t.Errorf("director counted %d frag-needed: %v", c["frag_needed"], c)
	} else {
		t.Logf("director counters: %v", c)
	}
}

// TestIntegrationRealserverCheck breaks a prepared TUN real server one way at a time and
// expects `uvs realserver --check` to name each problem, and to pass on the correct host.
func TestIntegrationRealserverCheck(t *testing.T) {
	testenv.RequireRoot(t)
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lab, err := bench.NewLab(ctx, bench.LabSpec{Prefix: labPrefix(), Topology: bench.TopologyTUN, Reals: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	rs := lab.Reals[0]
	vip := lab.VIP.String()
	check := func(method string) (string, int) {
		t.Helper()
		var out bytes.Buffer
		cmd := rs.Command(ctx, bin, "realserver", "--check", "--vip", vip, "--method", method)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), code
	}
	sh := func(args ...string) {
		t.Helper()
		if out, err := rs.Command(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	expect := func(what, method string, want ...string) {
		t.Helper()
		out, code := check(method)
		if code != 1 {
			t.Fatalf("%s: exit %d, want 1:\n%s", what, code, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", what, w, out)
			}
		}
	}
	expect("bare host", "tun", "is not on lo", "arp_ignore = 0", "arp_announce = 0", "no IPIP decapsulation")

	p := startRealserver(t, rs, lab.VIP)
	if out, code := check("tun"); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("prepared host: exit %d:\n%s", code, out)
	}
	if out, code := check("dr"); code != 0 {
		t.Fatalf("prepared host, dr: exit %d:\n%s", code, out)
	}

	sh("sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=0")
	expect("arp_ignore=0", "tun", "net.ipv4.conf.all.arp_ignore = 0, want 1", "sysctl -w net.ipv4.conf.all.arp_ignore=1")
	expect("arp_ignore=0, dr", "dr", "arp_ignore = 0")
	sh("sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1")

	sh("ip", "addr", "del", vip+"/32", "dev", "lo")
	expect("VIP missing", "tun", "VIP "+vip+" is not on lo", "ip addr add "+vip+"/32 dev lo")
	sh("ip", "addr", "add", vip+"/32", "dev", "lo")

	sh("sysctl", "-qw", "net.ipv4.conf.uvs-tun0.rp_filter=1")
	expect("rp_filter=1 on the TUN device", "tun", "net.ipv4.conf.uvs-tun0.rp_filter = 1", "sysctl -w net.ipv4.conf.uvs-tun0.rp_filter=0")
	sh("sysctl", "-qw", "net.ipv4.conf.uvs-tun0.rp_filter=0")

	sh("ip", "link", "set", "uvs-tun0", "mtu", "1500")
	expect("TUN MTU too large", "tun", "uvs-tun0 has MTU 1500", "ip link set uvs-tun0 mtu 1480")
	sh("ip", "link", "set", "uvs-tun0", "mtu", "1480")

	if out, code := check("tun"); code != 0 {
		t.Fatalf("repaired host: exit %d:\n%s", code, out)
	}
	// A second run in the same namespace refuses, in one line, and changes nothing.
	var out2, err2 bytes.Buffer
	second := rs.Command(ctx, bin, "realserver", "--method", "tun", "--vip", vip)
	second.Stdout, second.Stderr = &out2, &err2
	if err := second.Run(); err == nil || strings.Count(err2.String(), "\n") != 1 || !strings.Contains(err2.String(), "is running here") {
		t.Fatalf("second run: %v, stdout %q, stderr %q", err, out2.String(), err2.String())
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	expect("after SIGTERM", "tun", "is not on lo", "arp_ignore = 0", "no IPIP decapsulation")

	// A run killed with SIGKILL leaves its changes and its record; --down undoes them.
	p = startRealserver(t, rs, lab.VIP)
	p.killed = true
	_ = p.cmd.Process.Kill()
	<-p.done
	if _, code := check("dr"); code != 0 {
		t.Fatal("a killed run's VIP and sysctls should remain until --down")
	}
	if out, err := rs.Command(ctx, bin, "realserver", "--down").CombinedOutput(); err != nil || !strings.Contains(string(out), "removed "+vip) {
		t.Fatalf("realserver --down after SIGKILL: %v\n%s", err, out)
	}
	expect("after SIGKILL and --down", "tun", "is not on lo", "arp_ignore = 0", "no IPIP decapsulation")

	// DR: prepared by a run that exits, undone by --down.
	out, err := rs.Command(ctx, bin, "realserver", "--method", "dr", "--vip", vip).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "added VIP") {
		t.Fatalf("realserver dr: %v\n%s", err, out)
	}
	if out, code := check("dr"); code != 0 {
		t.Fatalf("dr host: exit %d:\n%s", code, out)
	}
	if out, err := rs.Command(ctx, bin, "realserver", "--down").CombinedOutput(); err != nil {
		t.Fatalf("realserver --down: %v\n%s", err, out)
	}
	expect("after --down", "dr", "is not on lo", "arp_ignore = 0")
}

// TestRealserverRefusesBadFlags needs no root: flag errors are one line and exit 1.
func TestRealserverRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"realserver", "--method", "tun"},
		{"realserver", "--vip", "nope", "--method", "dr"},
		{"realserver", "--vip", "198.18.0.1", "--method", "nat"},
		{"realserver", "--vip", "198.18.0.1", "--method", "tun", "--decap", "maybe"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 1 || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}

// TestIntegrationTUNRouteChange removes the director's route to the TUN real servers'
// network and puts it back: without it the director counts what it cannot send and stays up;
// with it, forwarding resumes without a restart.
func TestIntegrationTUNRouteChange(t *testing.T) {
	testenv.RequireRoot(t)
	r, _ := startTUNLab(t, false)
	checkEven(t, "before", r.distribution(10), 10)
	ns := r.lab.Director.NS
	via := r.lab.Router.Addr.String()
	ipCmd(t, "-n", ns, "route", "del", "198.18.5.0/24")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The director learns of the removal from a netlink notification: poll until requests
	// stop getting through (two in a row, so that rr has tried both reals).
	for failed, deadline := 0, time.Now().Add(30*time.Second); failed < 2; {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := r.curl(cctx, "/"); err != nil {
			failed++
		} else {
			failed = 0
		}
		ccancel()
		if failed < 2 && time.Now().After(deadline) {
			t.Fatalf("requests still get through with no route to the real servers:\n%s", r.stderr.String())
		}
	}
	select {
	case <-r.dir.Exited():
		t.Fatalf("director exited without a route:\n%s", r.stderr.String())
	default:
	}
	ipCmd(t, "-n", ns, "route", "add", "198.18.5.0/24", "via", via)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := r.curl(ctx, "/"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no forwarding after the route came back:\n%s", r.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := r.distribution(10)
	if got["rs1"] == 0 || got["rs2"] == 0 {
		t.Errorf("after the route change: %v", got)
	}
	r.stopAndCheckClean()
	if c := r.stoppedCounters(); c["drop_egress_unresolved"] == 0 {
		t.Errorf("nothing counted as unresolved while the route was gone: %v", c)
	}
}
