//go:build linux

package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/forward/afxdp"
	"github.com/uvs-project/uvs/internal/testenv"
)

// The end-to-end tests run once per backend: eachBackend makes subtests named backend=NAME,
// and runDirector writes director.backend = NAME into the config of a test running under one
// (applyBackend) and checks, once the VIP answers, that `uvs list --json` reports that backend
// and, for afxdp, its XDP program attached (checkBackend).

var testBackends = []string{"afpacket", "afxdp"}

// eachBackend runs f as a subtest per backend.
func eachBackend(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, b := range testBackends {
		t.Run("backend="+b, f)
	}
}

var backendInName = regexp.MustCompile(`(?:^|/)backend=(\w+)`)

// testBackend returns the backend t runs under, or "" (the config's own choice).
func testBackend(t *testing.T) string {
	if m := backendInName.FindStringSubmatch(t.Name()); m != nil {
		return m[1]
	}
	return ""
}

// applyBackend sets director.backend in the config file at path to t's backend, unless the
// file sets one.
func applyBackend(t *testing.T, path string) {
	t.Helper()
	if testBackend(t) == "" {
		return
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, withBackend(t, string(text)))
}

// withBackend returns the config text with director.backend set to t's backend, unless the
// text sets one or t runs under none.
func withBackend(t *testing.T, text string) string {
	b := testBackend(t)
	if b == "" || regexp.MustCompile(`(?m)^backend\s*=`).MatchString(text) {
		return text
	}
	return strings.Replace(text, "[director]\n", "[director]\nbackend = \""+b+"\"\n", 1)
}

// listDirector is the director object of `uvs list --json`.
type listDirector struct {
	Backend string  `json:"backend"`
	Shield  *string `json:"shield"`  // pinned by INTERFACE.md: present on every backend
	RXRing  *string `json:"rx_ring"` // pinned too
	XDP     *struct {
		Attached   bool `json:"attached"`
		Interfaces []struct {
			Name   string `json:"name"`
			Mode   string `json:"mode"`
			ProgID uint32 `json:"prog_id"`
			Queues int    `json:"queues"`
		} `json:"interfaces"`
	} `json:"xdp"`
}

// checkBackend asks the director started from cfgPath which backend it runs and fails t if
// it is not t's backend, or is afxdp without its program attached.
func checkBackend(t *testing.T, cfgPath string) {
	t.Helper()
	want := testBackend(t)
	if want == "" {
		return
	}
	checkBackendIs(t, want, listBackend(t, cfgPath))
}

// checkBackendAt is checkBackend for the director at a control socket.
func checkBackendAt(t *testing.T, socket string) {
	t.Helper()
	if want := testBackend(t); want != "" {
		checkBackendIs(t, want, listBackendAt(t, socket))
	}
}

func checkBackendIs(t *testing.T, want string, d *listDirector) {
	t.Helper()
	switch {
	case d.Backend != want:
		t.Fatalf("uvs list --json: backend %q, want %q", d.Backend, want)
	case want == "afxdp" && (d.XDP == nil || !d.XDP.Attached || len(d.XDP.Interfaces) == 0 || d.XDP.Interfaces[0].ProgID == 0):
		t.Fatalf("uvs list --json: backend afxdp without its XDP program attached: %+v", d)
	case d.Shield == nil || d.RXRing == nil:
		t.Fatalf("uvs list --json: director object without shield or rx_ring: %+v", d)
	case want == "afxdp" && *d.RXRing != "none", want == "afpacket" && *d.RXRing != "v2" && *d.RXRing != "v3":
		t.Fatalf("uvs list --json: backend %s with rx_ring %q", want, *d.RXRing)
	}
}

// listBackend returns the director object of `uvs list --json` of the director started from
// cfgPath.
func listBackend(t *testing.T, cfgPath string) *listDirector {
	t.Helper()
	text, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^control_socket\s*=\s*"([^"]+)"`).FindSubmatch(text)
	if m == nil {
		t.Fatalf("no control_socket in %s", cfgPath)
	}
	return listBackendAt(t, string(m[1]))
}

// listBackendAt returns the director object of `uvs list --json --socket socket`.
func listBackendAt(t *testing.T, socket string) *listDirector {
	t.Helper()
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "list", "--json", "--socket", socket).Output()
	if err != nil {
		t.Fatalf("uvs list --json: %v", err)
	}
	var st struct {
		Director *listDirector `json:"director"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("uvs list --json: %v", err)
	}
	if st.Director == nil {
		t.Fatalf("uvs list --json has no director object:\n%s", out)
	}
	return st.Director
}

// checkXDPDetached fails t if an interface of the director's namespace still has an XDP
// program (the director detaches its own on exit by closing the bpf_link).
func (r *labRun) checkXDPDetached() {
	r.t.Helper()
	out, err := r.lab.Director.Command(context.Background(), "ip", "-d", "link", "show").CombinedOutput()
	if err != nil {
		r.t.Fatalf("ip link show: %v: %s", err, out)
	}
	if regexp.MustCompile(`prog/xdp|xdpgeneric|xdpdrv|\bxdp\b`).Match(out) {
		r.t.Errorf("an XDP program is still attached after the director stopped:\n%s", out)
	}
}

// wantCaps is the CapEff mask a director started as root keeps: CAP_NET_ADMIN (12) and
// CAP_NET_RAW (13); CAP_BPF (39) unless it runs afpacket with the nftables shield; with afxdp
// also CAP_IPC_LOCK (14).
func wantCaps(t *testing.T, shield string) string {
	switch {
	case testBackend(t) == "afxdp":
		return "0000008000007000"
	case shield == "nftables":
		return "0000000000003000"
	}
	return "0000008000003000"
}

// TestIntegrationAFXDPMultiQueue runs DR through a director whose veth has four RX queues:
// afxdp opens a socket per queue and worker, the program picks the socket of the frame's
// queue, and traffic that arrives on several queues is forwarded.
func TestIntegrationAFXDPMultiQueue(t *testing.T) {
	testenv.RequireRoot(t)
	const queues = 4
	lab := newLab(t, bench.LabSpec{Topology: bench.TopologyDR, DirectorQueues: queues})
	if err := lab.PrepareReals("dr"); err != nil {
		t.Fatal(err)
	}
	startServers(t, lab, 80, bench.UDPPort)
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "uvs.toml")
	writeFile(t, cfgPath, strings.Replace(lab.Config("dr", "rr", 80, 80, tmp), "[director]\n", "[director]\nbackend = \"afxdp\"\n", 1))
	r := newRun(t, lab)
	r.runDirector(cfgPath)
	d := listBackend(t, cfgPath)
	if d.Backend != "afxdp" || d.XDP == nil || len(d.XDP.Interfaces) != 1 || d.XDP.Interfaces[0].Queues != queues {
		t.Fatalf("uvs list --json director: %+v, want afxdp with %d queues", d, queues)
	}
	checkEven(t, "100 curls through the DR VIP", r.distribution(100), 100)
	checkEven(t, "UDP echo through DR", r.udpEcho(10), 10)
	// veth counts XDP verdicts per RX queue: frames were redirected on more than one.
	out, err := lab.Director.Command(context.Background(), "ethtool", "-S", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("ethtool -S: %v: %s", err, out)
	}
	used := 0
	for _, m := range regexp.MustCompile(`rx_queue_(\d+)_xdp_redirect: (\d+)`).FindAllStringSubmatch(string(out), -1) {
		if m[2] != "0" {
			used++
		}
	}
	t.Logf("RX queues with redirected frames: %d of %d", used, queues)
	if used < 2 {
		t.Errorf("frames were redirected on %d RX queues, want at least 2:\n%s", used, out)
	}
	r.kernelQuiet()
	r.stopAndCheckClean()
}

// TestIntegrationAFXDPKilledRun kills an afxdp director with SIGKILL: its bpf_link dies with
// it, so the XDP program is detached at once (VIP traffic goes to the stack until the next
// start, see operations.md), and the next start attaches a fresh one and forwards.
func TestIntegrationAFXDPKilledRun(t *testing.T) {
	testenv.RequireRoot(t)
	t.Run("backend=afxdp", func(t *testing.T) {
		r := startLab(t, bench.TopologyDR, "dr", 80, false)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ip", "netns", "pids", r.lab.Director.NS).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, pid := range strings.Fields(string(out)) {
			_ = exec.Command("kill", "-9", pid).Run()
		}
		<-r.dir.Exited()
		r.checkXDPDetached()
		cfg := filepath.Join(t.TempDir(), "uvs.toml")
		writeFile(t, cfg, r.lab.Config("dr", "rr", 80, 80, filepath.Dir(cfg)))
		r.runDirector(cfg)
		checkEven(t, "after restart", r.distribution(20), 20)
		r.stopAndCheckClean()
	})
}

// attachXDPByNetlink loads a program that passes every frame, named name, and attaches it to
// dev in n's namespace through netlink (no bpf_link): what another tool, or an older uvs,
// leaves behind.
func attachXDPByNetlink(t *testing.T, n *bench.Node, dev, name string) {
	t.Helper()
	err := n.Do(func() error {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: name, Type: ebpf.XDP, License: "MIT",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}})
		if err != nil {
			return err
		}
		defer prog.Close()
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		return netlink.LinkSetXdpFd(l, prog.FD())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestIntegrationAFXDPForeignProgram: uvs refuses to start over an XDP program it did not
// attach, and replaces a uvs program left attached without a link (where it may read the
// program's name).
func TestIntegrationAFXDPForeignProgram(t *testing.T) {
	testenv.RequireRoot(t)
	t.Run("backend=afxdp", func(t *testing.T) {
		r := startLab(t, bench.TopologyDR, "dr", 80, false)
		if err := r.dir.Stop(); err != nil {
			t.Fatal(err)
		}
		bin, err := uvsBinary()
		if err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(t.TempDir(), "uvs.toml")
		writeFile(t, cfg, withBackend(t, r.lab.Config("dr", "rr", 80, 80, filepath.Dir(cfg))))

		attachXDPByNetlink(t, r.lab.Director, "eth0", "other_xdp")
		var stderr syncBuffer
		d, err := r.lab.StartDirector(context.Background(), bin, cfg, &stderr)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-d.Exited():
		case <-time.After(30 * time.Second):
			_ = d.Stop()
			t.Fatalf("director started over a foreign XDP program:\n%s", stderr.String())
		}
		if !strings.Contains(stderr.String(), "uvs did not attach") {
			t.Errorf("refusal does not name the foreign program:\n%s", stderr.String())
		}
		if out, _ := r.lab.Director.Command(context.Background(), "ip", "link", "show", "eth0").CombinedOutput(); !strings.Contains(string(out), "xdp") {
			t.Errorf("the foreign program was removed:\n%s", out)
		}
		if out, err := r.lab.Director.Command(context.Background(), "ip", "link", "set", "dev", "eth0", "xdp", "off").CombinedOutput(); err != nil {
			t.Fatalf("ip link set xdp off: %v: %s", err, out)
		}

		// Naming the program needs CAP_SYS_ADMIN (BPF_PROG_GET_FD_BY_ID), which only a
		// director that keeps its capabilities has.
		attachXDPByNetlink(t, r.lab.Director, "eth0", "uvs_xdp")
		r.runDirector(cfg, "--keep-capabilities")
		if !strings.Contains(r.stderr.String(), "replaced a leftover uvs XDP program") {
			t.Errorf("no log line about the replaced leftover:\n%s", r.stderr.String())
		}
		checkEven(t, "after replacing the leftover", r.distribution(20), 20)
		r.stopAndCheckClean()
	})
}

// TestIntegrationAutoPicksAFXDP: with director.backend unset (auto), a director started as
// root on this kernel runs afxdp and says why in one log line.
func TestIntegrationAutoPicksAFXDP(t *testing.T) {
	testenv.RequireRoot(t)
	if err := afxdp.Probe(); err != nil {
		testenv.SkipOrFail(t, "afxdp cannot run here: %v", err)
	}
	r := startLab(t, bench.TopologyDR, "dr", 80, false)
	d := listBackend(t, r.cfg)
	if d.Backend != "afxdp" || d.XDP == nil || !d.XDP.Attached {
		t.Errorf("auto: uvs list --json director %+v, want afxdp attached", d)
	}
	if n := strings.Count(r.stderr.String(), "msg=backend "); n != 1 || !strings.Contains(r.stderr.String(), `msg=backend backend=afxdp why="auto:`) {
		t.Errorf("want one log line saying auto chose afxdp:\n%s", r.stderr.String())
	}
	r.stopAndCheckClean()
}
