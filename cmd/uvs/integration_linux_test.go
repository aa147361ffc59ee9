//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// uvsBinary is built once per test process, the first time an integration test needs it.
var uvsBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "uvs-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "uvs")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// syncBuffer collects the director's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// labRun is a lab with servers and a running director.
type labRun struct {
	t      *testing.T
	lab    *bench.Lab
	dir    *bench.Director
	stderr *syncBuffer
	vip    netip.Addr
	port   int
	nstat0 map[string]uint64
	cfg    string // the config file runDirector started the director with
}

var labSeq struct {
	sync.Mutex
	n int
}

func labPrefix() string {
	labSeq.Lock()
	defer labSeq.Unlock()
	labSeq.n++
	return fmt.Sprintf("uvt%d-%d-", os.Getpid()%100000, labSeq.n)
}

// newLab builds a lab (with a fresh name prefix) and removes it when the test ends.
func newLab(t *testing.T, spec bench.LabSpec) *bench.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	spec.Prefix = labPrefix()
	lab, err := bench.NewLab(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	return lab
}

// startServers starts HTTP and UDP echo servers on every real server until the test ends.
func startServers(t *testing.T, lab *bench.Lab, httpPort, udpPort int) {
	t.Helper()
	srv, err := lab.StartServers(httpPort, udpPort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
}

// writeFile writes a test file, failing the test on error.
func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newRun returns a labRun for lab with the director's kernel counters sampled.
func newRun(t *testing.T, lab *bench.Lab) *labRun {
	t.Helper()
	r := &labRun{t: t, lab: lab, stderr: &syncBuffer{}, vip: lab.VIP, port: 80}
	var err error
	if r.nstat0, err = bench.Nstat(context.Background(), lab.Director); err != nil {
		t.Fatal(err)
	}
	return r
}

// runDirector starts `uvs run --config cfgPath extra...` in the lab's director namespace with
// a fresh stderr buffer, stopped when the test ends, and waits until the VIP answers.
func (r *labRun) runDirector(cfgPath string, extra ...string) {
	r.t.Helper()
	bin, err := uvsBinary()
	if err != nil {
		r.t.Fatal(err)
	}
	r.stderr = &syncBuffer{}
	applyBackend(r.t, cfgPath)
	r.cfg = cfgPath
	if r.dir, err = r.lab.StartDirector(context.Background(), bin, cfgPath, r.stderr, extra...); err != nil {
		r.t.Fatal(err)
	}
	d, stderr := r.dir, r.stderr
	r.t.Cleanup(func() {
		_ = d.Stop()
		if r.t.Failed() {
			r.t.Logf("director stderr:\n%s", stderr.String())
		}
	})
	r.waitVIP()
	checkBackend(r.t, cfgPath)
}

// waitVIP waits up to 15 s until a request to the VIP is answered.
func (r *labRun) waitVIP() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := r.curl(ctx, "/"); err == nil {
			return
		}
		select {
		case <-r.dir.Exited():
			r.t.Fatalf("director exited:\n%s", r.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("VIP %s never answered; director stderr:\n%s", netip.AddrPortFrom(r.vip, uint16(r.port)), r.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startLab builds a lab for method ("dr" or "nat"), starts its servers and a director with
// scheduler rr, and waits until the VIP answers.
func startLab(t *testing.T, topo bench.Topology, method string, realPort int, txOff bool) *labRun {
	t.Helper()
	return startLabShield(t, topo, method, realPort, txOff, "")
}

// startLabShield is startLab with director.shield set to shield ("" leaves the default).
func startLabShield(t *testing.T, topo bench.Topology, method string, realPort int, txOff bool, shield string) *labRun {
	t.Helper()
	return startLabWorkers(t, topo, method, realPort, txOff, shield, 0)
}

// startLabRing is startLabShield with director.rx_ring set to ring.
func startLabRing(t *testing.T, topo bench.Topology, method string, realPort int, txOff bool, shield, ring string) *labRun {
	t.Helper()
	return startLabKeys(t, topo, method, realPort, txOff, shield, 0, ring)
}

// startLabWorkers is startLabShield with director.workers set to workers (0 leaves the
// lab's 2).
func startLabWorkers(t *testing.T, topo bench.Topology, method string, realPort int, txOff bool, shield string, workers int) *labRun {
	t.Helper()
	return startLabKeys(t, topo, method, realPort, txOff, shield, workers, "")
}

// startLabKeys starts a lab whose director has the given shield, workers and rx_ring (zero
// values leave the defaults).
func startLabKeys(t *testing.T, topo bench.Topology, method string, realPort int, txOff bool, shield string, workers int, ring string) *labRun {
	t.Helper()
	lab := newLab(t, bench.LabSpec{Topology: topo, DirectorTxOff: txOff})
	if err := lab.PrepareReals(method); err != nil {
		t.Fatal(err)
	}
	startServers(t, lab, realPort, bench.UDPPort)
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "uvs.toml")
	text := lab.Config(method, "rr", 80, realPort, tmp)
	if shield != "" {
		text = strings.Replace(text, "[director]\n", "[director]\nshield = \""+shield+"\"\n", 1)
	}
	if workers > 0 {
		text = strings.Replace(text, "\nworkers = 2\n", fmt.Sprintf("\nworkers = %d\n", workers), 1)
	}
	if ring != "" {
		text = strings.Replace(text, "[director]\n", "[director]\nrx_ring = \""+ring+"\"\n", 1)
	}
	writeFile(t, cfgPath, text)
	r := newRun(t, lab)
	r.runDirector(cfgPath)
	if shield != "" && !waitLog(r, "shield installed", "shield="+shield) {
		t.Fatalf("the director does not say that the %s shield runs:\n%s", shield, r.stderr.String())
	}
	return r
}

// waitLog waits (bounded) until a line of the director's log holds every one of parts.
func waitLog(r *labRun, parts ...string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(r.stderr.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// tcxPrograms counts the programs attached to dev's tcx ingress in node n.
func tcxPrograms(t *testing.T, n *bench.Node, dev string) int {
	t.Helper()
	count := 0
	if err := n.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		res, err := link.QueryPrograms(link.QueryOptions{Target: ifi.Index, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			return err
		}
		count = len(res.Programs)
		return nil
	}); err != nil {
		t.Fatalf("query tcx programs on %s: %v", dev, err)
	}
	return count
}

// curl fetches path from the VIP with the real curl binary in the client namespace.
func (r *labRun) curl(ctx context.Context, path string) ([]byte, error) {
	// AddrPort writes an IPv6 VIP as [addr]:port; -g keeps curl from reading the brackets
	// as a glob, and -6 makes it an IPv6 request.
	url := "http://" + netip.AddrPortFrom(r.vip, uint16(r.port)).String() + path
	args := []string{"-sS", "--fail", "-g", "-m", "20", url}
	if r.vip.Is6() {
		args = append([]string{"-6"}, args...)
	}
	cmd := r.lab.Client.Command(ctx, "curl", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("curl %s: %v: %s", url, err, stderr.String())
	}
	return out, nil
}

// distribution sends n requests and counts the answering real servers.
func (r *labRun) distribution(n int) map[string]int {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		out, err := r.curl(ctx, "/")
		if err != nil {
			r.t.Fatalf("request %d: %v", i, err)
		}
		got[strings.TrimSpace(string(out))]++
	}
	return got
}

func (r *labRun) download(n int) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := r.curl(ctx, "/bytes?n="+strconv.Itoa(n))
	if err != nil {
		r.t.Fatal(err)
	}
	sum := sha256.Sum256(out)
	if got, want := hex.EncodeToString(sum[:]), bench.ExpectedSHA256(n); len(out) != n || got != want {
		r.t.Fatalf("download of %d bytes: got %d bytes, sha256 %s, want %s", n, len(out), got, want)
	}
}

// udpEcho sends payloads to VIP:UDPPort from a connected socket in the client namespace: the
// kernel delivers only datagrams from VIP:UDPPort to it, so an answer proves the source.
func (r *labRun) udpEcho(n int) map[string]int {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		c, err := r.lab.Client.Dial(ctx, "udp", netip.AddrPortFrom(r.vip, bench.UDPPort).String())
		if err != nil {
			r.t.Fatal(err)
		}
		payload := fmt.Sprintf("ping-%d", i)
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte(payload)); err != nil {
			r.t.Fatal(err)
		}
		buf := make([]byte, 256)
		m, err := c.Read(buf)
		_ = c.Close()
		if err != nil {
			r.t.Fatalf("udp echo %d: %v", i, err)
		}
		name, rest, ok := strings.Cut(string(buf[:m]), ":")
		if !ok || rest != payload {
			r.t.Fatalf("udp echo %d: reply %q", i, buf[:m])
		}
		got[name]++
	}
	return got
}

// kernelQuiet checks that the director's kernel sent no RST and forwarded nothing.
func (r *labRun) kernelQuiet() {
	r.t.Helper()
	now, err := bench.Nstat(context.Background(), r.lab.Director)
	if err != nil {
		r.t.Fatal(err)
	}
	// The IPv6 ones stay zero in an IPv4-only lab (IPv6 is off there).
	for _, k := range []string{"TcpOutRsts", "IpForwDatagrams", "IcmpOutMsgs", "IcmpOutDestUnreachs", "Ip6OutForwDatagrams", "Icmp6OutDestUnreachs"} {
		if d := now[k] - r.nstat0[k]; d != 0 {
			r.t.Errorf("director kernel %s grew by %d", k, d)
		}
	}
}

// stopAndCheckClean stops the director with SIGTERM and checks it left nothing behind.
func (r *labRun) stopAndCheckClean() {
	r.t.Helper()
	if err := r.dir.Stop(); err != nil {
		r.t.Errorf("director exit: %v\n%s", err, r.stderr.String())
	}
	out, err := r.lab.Director.Command(context.Background(), "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		r.t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		r.t.Errorf("nftables not clean after SIGTERM:\n%s", s)
	}
	r.checkXDPDetached()
	for _, i := range r.lab.Director.Ifaces {
		if n := tcxPrograms(r.t, r.lab.Director, i.Name); n != 0 {
			r.t.Errorf("%d tcx programs left on %s after SIGTERM", n, i.Name)
		}
	}
}

// stoppedCounters parses the director's final counter line.
func (r *labRun) stoppedCounters() map[string]uint64 {
	m := map[string]uint64{}
	for _, line := range strings.Split(r.stderr.String(), "\n") {
		if !strings.Contains(line, "msg=stopped") {
			continue
		}
		for _, kv := range regexp.MustCompile(`(\w+)=(\d+)`).FindAllStringSubmatch(line, -1) {
			v, _ := strconv.ParseUint(kv[2], 10, 64)
			m[kv[1]] = v
		}
	}
	return m
}

func checkEven(t *testing.T, what string, got map[string]int, n int) {
	t.Helper()
	if len(got) != 2 || got["rs1"] != n/2 || got["rs2"] != n/2 {
		t.Errorf("%s: distribution %v, want rs1 and rs2 %d each", what, got, n/2)
	}
}

// capEff returns the effective capability mask of the director's processes.
func capEff(t *testing.T, r *labRun) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", r.lab.Director.NS).Output()
	if err != nil {
		t.Fatal(err)
	}
	var masks []string
	for _, pid := range strings.Fields(string(out)) {
		b, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
				masks = append(masks, strings.TrimSpace(v))
			}
		}
	}
	return masks
}

func TestIntegrationDR(t *testing.T) {
	testenv.RequireRoot(t)
	eachBackend(t, testDR)
}

// labCases are the cases of the DR and NAT tests. On afpacket each shield and each receive
// ring runs one of the two: the tcx program and the V2 ring with offloads on, the nftables
// table and the V3 ring with them off. afxdp has neither shield nor ring.
func labCases(t *testing.T) []struct {
	name         string
	txOff        bool
	shield, ring string
} {
	var out []struct {
		name         string
		txOff        bool
		shield, ring string
	}
	for _, txOff := range []bool{false, true} {
		shield := map[bool]string{false: "tcx", true: "nftables"}[txOff]
		ring := map[bool]string{false: "v2", true: "v3"}[txOff]
		name := fmt.Sprintf("txoff=%v/shield=%s/rx_ring=%s", txOff, shield, ring)
		if testBackend(t) == "afxdp" {
			shield, ring, name = "", "", fmt.Sprintf("txoff=%v", txOff)
		}
		out = append(out, struct {
			name         string
			txOff        bool
			shield, ring string
		}{name, txOff, shield, ring})
	}
	return out
}

func testDR(t *testing.T) {
	for _, tc := range labCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			r := startLabRing(t, bench.TopologyDR, "dr", 80, tc.txOff, tc.shield, tc.ring)
			// Started as root, the director keeps only CAP_NET_ADMIN (12), CAP_NET_RAW (13)
			// and what its backend and shield need (wantCaps).
			if m := capEff(t, r); len(m) != 1 || m[0] != wantCaps(t, tc.shield) {
				t.Errorf("director capabilities %v, want [%s]", m, wantCaps(t, tc.shield))
			}
			checkEven(t, "100 curls through the DR VIP", r.distribution(100), 100)
			r.download(10_000_000)
			checkEven(t, "UDP echo through DR", r.udpEcho(10), 10)
			r.kernelQuiet()
			r.stopAndCheckClean()
		})
	}
}

func TestIntegrationNAT(t *testing.T) {
	testenv.RequireRoot(t)
	eachBackend(t, testNAT)
}

func testNAT(t *testing.T) {
	// With offloads on, the downloads come back through the director as GSO super-frames:
	// on the V2 ring they are larger than a slot and take the PACKET_COPY_THRESH path.
	for _, tc := range labCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			r := startLabRing(t, bench.TopologyNAT, "nat", 8080, tc.txOff, tc.shield, tc.ring)
			checkEven(t, "100 curls through the NAT VIP", r.distribution(100), 100)
			r.download(10_000_000)
			checkEven(t, "UDP echo through NAT", r.udpEcho(10), 10)
			r.kernelQuiet()
			r.stopAndCheckClean()
			c := r.stoppedCounters()
			if c["nat_replies"] == 0 {
				t.Errorf("no NAT replies counted: %v", c)
			}
			// Every frame larger than a V2 slot was read whole from the socket.
			if c["drop_truncated_frame"] != 0 || c["drop_scratch_full"] != 0 {
				t.Errorf("frames lost to the ring: %v", c)
			}
			t.Logf("counters %v", c)
		})
	}
}

// TestIntegrationKilledRunCleanedAtStart kills an afpacket director with SIGKILL. An nftables
// shield is left behind, and the next start (with the default shield, tcx here) removes it; a
// tcx shield dies with the process. A SIGTERM then leaves nothing. (afxdp installs no shield:
// TestIntegrationAFXDPKilledRun.)
func TestIntegrationKilledRunCleanedAtStart(t *testing.T) {
	testenv.RequireRoot(t)
	t.Run("backend=afpacket", testKilledRunCleanedAtStart)
}

func testKilledRunCleanedAtStart(t *testing.T) {
	for _, shield := range []string{"nftables", "tcx"} {
		t.Run(shield, func(t *testing.T) {
			r := startLabShield(t, bench.TopologyDR, "dr", 80, false, shield)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if out, err := exec.CommandContext(ctx, "ip", "netns", "pids", r.lab.Director.NS).Output(); err != nil {
				t.Fatal(err)
			} else {
				for _, pid := range strings.Fields(string(out)) {
					_ = exec.Command("kill", "-9", pid).Run()
				}
			}
			<-r.dir.Exited()
			out, err := r.lab.Director.Command(ctx, "nft", "list", "tables").CombinedOutput()
			if err != nil {
				t.Fatal(err)
			}
			left := strings.Contains(string(out), "netdev uvs")
			if shield == "nftables" && !left {
				t.Fatalf("expected the killed run's nftables shield to remain: %s", out)
			}
			if shield == "tcx" && (left || tcxPrograms(t, r.lab.Director, "eth0") != 0) {
				t.Fatalf("a killed tcx run left a shield: tables %q, tcx programs %d", out, tcxPrograms(t, r.lab.Director, "eth0"))
			}
			cfg := filepath.Join(t.TempDir(), "uvs.toml")
			writeFile(t, cfg, r.lab.Config("dr", "rr", 80, 80, filepath.Dir(cfg)))
			r.runDirector(cfg)
			checkEven(t, "after restart", r.distribution(20), 20)
			r.stopAndCheckClean()
		})
	}
}
