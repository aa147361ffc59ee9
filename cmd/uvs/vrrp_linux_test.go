//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/internal/testenv"
)

// vrrpNet is a layer-2 segment for VRRP tests: a bridge in namespace "sw" and one
// namespace per host, each with e0 on the bridge and 198.18.9.N/24 (N = position + 1).
type vrrpNet struct {
	t      *testing.T
	prefix string
	hosts  []string
	dir    string
	ifaces string // director.interfaces of the uvs configs; default ["e0"]
}

var vrrpSeq struct {
	sync.Mutex
	n int
}

func newVRRPNet(t *testing.T, hosts ...string) *vrrpNet {
	t.Helper()
	testenv.RequireRoot(t)
	vrrpSeq.Lock()
	vrrpSeq.n++
	v := &vrrpNet{t: t, prefix: fmt.Sprintf("uvr%d-%d-", os.Getpid()%100000, vrrpSeq.n), hosts: hosts, dir: t.TempDir()}
	vrrpSeq.Unlock()
	t.Cleanup(func() {
		for _, h := range append([]string{"sw"}, hosts...) {
			_ = exec.Command("ip", "netns", "del", v.ns(h)).Run()
		}
	})
	sw := v.ns("sw")
	v.must("ip", "netns", "add", sw)
	v.must("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	v.must("ip", "-n", sw, "link", "set", "br0", "up")
	for i, h := range hosts {
		ns := v.ns(h)
		v.must("ip", "netns", "add", ns)
		port := fmt.Sprintf("p%d", i)
		v.must("ip", "link", "add", "e0", "netns", ns, "type", "veth", "peer", "name", port, "netns", sw)
		v.must("ip", "-n", sw, "link", "set", port, "master", "br0")
		v.must("ip", "-n", sw, "link", "set", port, "up")
		v.must("ip", "-n", ns, "addr", "add", fmt.Sprintf("198.18.9.%d/24", i+1), "dev", "e0")
		v.must("ip", "-n", ns, "link", "set", "e0", "up")
		v.must("ip", "-n", ns, "link", "set", "lo", "up")
	}
	return v
}

func (v *vrrpNet) ns(host string) string { return v.prefix + host }

// addr is the host's address on the segment.
func (v *vrrpNet) addr(host string) string {
	for i, h := range v.hosts {
		if h == host {
			return fmt.Sprintf("198.18.9.%d", i+1)
		}
	}
	v.t.Fatalf("no host %q", host)
	return ""
}

func (v *vrrpNet) must(args ...string) string {
	v.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		v.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// in runs a command in host's namespace.
func (v *vrrpNet) in(host string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", v.ns(host)}, args...)...).CombinedOutput()
	return string(out), err
}

// mac is the MAC address of host's e0.
func (v *vrrpNet) mac(host string) string {
	out := v.must("ip", "-n", v.ns(host), "-o", "link", "show", "e0")
	m := regexp.MustCompile(`link/ether ([0-9a-f:]{17})`).FindStringSubmatch(out)
	if m == nil {
		v.t.Fatalf("no MAC in %q", out)
	}
	return m[1]
}

// proc is a daemon started in a namespace; ip netns exec execs it, so the PID is its own.
type proc struct {
	cmd *exec.Cmd
	out *syncBuffer
}

func (v *vrrpNet) start(host string, args ...string) *proc {
	v.t.Helper()
	p := &proc{out: &syncBuffer{}}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", v.ns(host)}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		v.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	v.t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
		if v.t.Failed() {
			v.t.Logf("%s %s output:\n%s", host, args[0], p.out.String())
		}
	})
	return p
}

// signal sends sig and, for SIGKILL and SIGTERM, waits for the process to end.
func (p *proc) stop(t *testing.T, sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if p.cmd.ProcessState != nil || syscall.Kill(p.cmd.Process.Pid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// uvsVRRP writes a uvs config for host and starts uvs with it.
func (v *vrrpNet) uvs(host, body string) (*proc, string) {
	v.t.Helper()
	bin, err := uvsBinary()
	if err != nil {
		v.t.Fatal(err)
	}
	sock := filepath.Join(v.dir, host+".sock")
	path := filepath.Join(v.dir, host+".toml")
	ifaces := v.ifaces
	if ifaces == "" {
		ifaces = `["e0"]`
	}
	writeFile(v.t, path, fmt.Sprintf("[director]\ninterfaces = %s\nworkers = 1\ncontrol_socket = %q\n", ifaces, sock)+body)
	return v.start(host, bin, "run", "-c", path), path
}

// vrrpState asks the uvs on host for its first instance's state ("" when it does not answer).
func (v *vrrpNet) vrrpState(host string) string {
	bin, _ := uvsBinary()
	out, err := v.in(host, bin, "list", "--json", "--socket", filepath.Join(v.dir, host+".sock"))
	if err != nil {
		return ""
	}
	var st struct {
		VRRP []struct {
			State string `json:"state"`
		} `json:"vrrp"`
	}
	if json.Unmarshal([]byte(out), &st) != nil || len(st.VRRP) == 0 {
		return ""
	}
	return st.VRRP[0].State
}

// keepalived starts keepalived (VRRP only) on host with one instance.
func (v *vrrpNet) keepalived(host, instance string) *proc {
	v.t.Helper()
	if _, err := exec.LookPath("keepalived"); err != nil {
		if os.Getenv("CI") == "true" {
			v.t.Fatal("keepalived is not installed")
		}
		v.t.Skip("keepalived is not installed")
	}
	conf := filepath.Join(v.dir, host+"-keepalived.conf")
	writeFile(v.t, conf, "global_defs {\n  router_id "+host+"\n}\nvrrp_instance VI_1 {\n  interface e0\n"+instance+"}\n")
	return v.start(host, "keepalived", "-P", "-n", "-l", "-f", conf,
		"-p", filepath.Join(v.dir, host+"-keepalived.pid"), "-r", filepath.Join(v.dir, host+"-vrrp.pid"))
}

// hasAddr reports whether host's e0 carries addr (keepalived adds the VIP as master).
func (v *vrrpNet) hasAddr(host, addr string) bool {
	out, _ := v.in(host, "ip", "-o", "addr", "show", "dev", "e0")
	return strings.Contains(out, " "+addr+"/")
}

// wantARP checks that exactly mac answers ARP for vip from client.
func (v *vrrpNet) wantARP(when, client, vip, mac string) {
	v.t.Helper()
	if got := v.arpRepliers(client, vip); !slices.Equal(got, []string{mac}) {
		v.t.Fatalf("%s: ARP for %s answered by %v, want only %s", when, vip, got, mac)
	}
}

// waitFor polls cond every 100 ms until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v", what, within)
	return 0
}

// masterDown is 3 × advert_int + skew (v2: (256-prio)/256 s) + 1 s, the bound the issue sets.
func masterDown(advert time.Duration, prio int) time.Duration {
	return 3*advert + time.Duration(256-prio)*time.Second/256 + time.Second
}

const vrrpVIP = "198.18.9.100"

// TestIntegrationVRRPKeepalived pairs uvs with a real keepalived (VRRP only), VRRPv2 and
// VRRPv3, and has each take over from the other both ways, judged by VRRP state (uvs list,
// keepalived's VIP on its interface) and by who answers ARP for the VIP.
func TestIntegrationVRRPKeepalived(t *testing.T) {
	for _, ver := range []int{2, 3} {
		t.Run(fmt.Sprintf("v%d", ver), func(t *testing.T) {
			n := newVRRPNet(t, "uvs", "ka", "client")
			ka := n.keepalived("ka", fmt.Sprintf("  state BACKUP\n  virtual_router_id 51\n  priority 100\n  advert_int 1\n  version %d\n  virtual_ipaddress {\n    %s/32\n  }\n", ver, vrrpVIP))
			_ = ka
			svc := fmt.Sprintf("[[service]]\nvip = %q\nport = 80\n  [[service.real]]\n  address = %q\n", vrrpVIP, n.addr("client"))
			inst := func(prio int) string {
				return fmt.Sprintf("[[vrrp]]\nname = \"VI_1\"\ninterface = \"e0\"\nvirtual_router_id = 51\npriority = %d\nversion = %d\n", prio, ver)
			}
			// keepalived alone becomes master.
			waitFor(t, masterDown(time.Second, 100)+time.Second, "keepalived master", func() bool { return n.hasAddr("ka", vrrpVIP) })
			kaMAC, uvsMAC := n.mac("ka"), n.mac("uvs")
			n.wantARP("keepalived master", "client", vrrpVIP, kaMAC)
			// uvs with a higher priority preempts keepalived.
			u, path := n.uvs("uvs", svc+inst(150))
			waitFor(t, masterDown(time.Second, 150)+2*time.Second, "uvs preempts keepalived", func() bool {
				return n.vrrpState("uvs") == "master" && !n.hasAddr("ka", vrrpVIP)
			})
			n.wantARP("uvs master", "client", vrrpVIP, uvsMAC)
			// uvs lowers its priority (SIGHUP): keepalived preempts the running uvs, which
			// must then stop answering ARP.
			writeFile(t, path, strings.Replace(mustRead(t, path), "priority = 150", "priority = 50", 1))
			_ = u.cmd.Process.Signal(syscall.SIGHUP)
			waitFor(t, masterDown(time.Second, 100)+2*time.Second, "keepalived preempts uvs", func() bool {
				return n.vrrpState("uvs") == "backup" && n.hasAddr("ka", vrrpVIP)
			})
			n.wantARP("uvs backup", "client", vrrpVIP, kaMAC)
			// Back to 150: uvs preempts again; then SIGKILL uvs: keepalived takes over
			// within the master-down interval.
			writeFile(t, path, strings.Replace(mustRead(t, path), "priority = 50", "priority = 150", 1))
			_ = u.cmd.Process.Signal(syscall.SIGHUP)
			waitFor(t, masterDown(time.Second, 150)+2*time.Second, "uvs preempts keepalived again", func() bool {
				return n.vrrpState("uvs") == "master" && !n.hasAddr("ka", vrrpVIP)
			})
			u.stop(t, syscall.SIGKILL)
			waitFor(t, masterDown(time.Second, 100), "keepalived takes over from a killed uvs", func() bool { return n.hasAddr("ka", vrrpVIP) })
			n.wantARP("after SIGKILL", "client", vrrpVIP, kaMAC)
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
