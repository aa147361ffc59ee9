package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/internal/testenv"
)

const (
	testHTTPPort = 8080
	testUDPPort  = 9000
	// testBase starts this package's test prefixes: testBase + pid + tag.
	// Specific to bench, so that CleanupStale never meets the labs of
	// other packages' tests running at the same time.
	testBase = "uvbench"
)

// testPrefix returns a namespace prefix unique to this process and test, and
// removes its leftovers when the test ends.
func testPrefix(t *testing.T, tag string) string {
	t.Helper()
	if err := cleanupStaleTests(); err != nil {
		t.Fatal(err)
	}
	p := fmt.Sprintf("%s%d%s-", testBase, os.Getpid(), tag)
	if err := CleanupPrefix(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := CleanupPrefix(p); err != nil {
			t.Error(err)
		}
	})
	return p
}

// cleanupStaleTests removes the labs of killed test processes, once.
var cleanupStaleTests = sync.OnceValue(func() error { return CleanupStale(testBase) })

func newTestLab(t *testing.T, spec LabSpec) *Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := NewLab(ctx, spec)
	if err != nil {
		t.Fatalf("NewLab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		assertNoNamespaces(t, spec.Prefix)
	})
	return l
}

func assertNoNamespaces(t *testing.T, prefix string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(netnsDir, prefix+"*"))
	if len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// httpGet fetches http://addr:testHTTPPort/path from n.
func httpGet(t *testing.T, n *Node, addr netip.Addr, path string) string {
	t.Helper()
	url := "http://" + netip.AddrPortFrom(addr, testHTTPPort).String() + path
	body, err := Get(testCtx(t), n.HTTPClient(), url)
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	return string(body)
}

// udpAsk sends payload from n to addr:testUDPPort on a connected socket, so
// that only a reply from addr itself is received, and returns the reply.
func udpAsk(n *Node, addr netip.Addr, payload string) (string, error) {
	c, err := n.Dial(context.Background(), "udp4", netip.AddrPortFrom(addr, testUDPPort).String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte(payload)); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	m, err := c.Read(buf)
	return string(buf[:m]), err
}

func readSysctl(t *testing.T, n *Node, key string) string {
	t.Helper()
	var v []byte
	if err := n.Do(func() error {
		var err error
		v, err = os.ReadFile(filepath.Join("/proc/sys/net", key))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(v))
}

func output(t *testing.T, n *Node, name string, args ...string) string {
	t.Helper()
	out, err := n.Command(testCtx(t), name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %s %v: %v: %s", n.Name, name, args, err, out)
	}
	return string(out)
}

// checkReals checks that from reaches every real server of l by its own
// address: ping, HTTP (name and a /bytes body) and UDP echo.
func checkReals(t *testing.T, l *Lab, from *Node) {
	t.Helper()
	for i, rs := range l.Reals {
		a := l.RealAddrs[i]
		if err := from.Ping(testCtx(t), a); err != nil {
			t.Errorf("ping %s from %s: %v", a, from.Name, err)
		}
		if got := httpGet(t, from, a, "/"); got != rs.Name+"\n" {
			t.Errorf("GET / on %s from %s = %q, want %q", a, from.Name, got, rs.Name+"\n")
		}
		const n = 300_000
		body := httpGet(t, from, a, fmt.Sprintf("/bytes?n=%d", n))
		sum := sha256.Sum256([]byte(body))
		if len(body) != n || hex.EncodeToString(sum[:]) != ExpectedSHA256(n) {
			t.Errorf("GET /bytes?n=%d on %s from %s: %d bytes, wrong content", n, a, from.Name, len(body))
		}
		got, err := udpAsk(from, a, "hi")
		if want := rs.Name + ":hi"; err != nil || got != want {
			t.Errorf("udp echo %s from %s = %q, %v; want %q", a, from.Name, got, err, want)
		}
	}
}

// checkCommon checks what every topology promises.
func checkCommon(t *testing.T, l *Lab) {
	t.Helper()
	for _, n := range append(append([]*Node{l.Director}, l.Clients...), l.Reals...) {
		if got := readSysctl(t, n, "ipv6/conf/all/disable_ipv6"); got != "1" {
			t.Errorf("%s: disable_ipv6 = %s", n.Name, got)
		}
		if addrs := output(t, n, "ip", "-br", "addr"); strings.Contains(addrs, l.VIP.String()+"/") {
			t.Errorf("%s has the VIP before PrepareReals:\n%s", n.Name, addrs)
		}
	}
	if got := readSysctl(t, l.Director, "ipv4/ip_forward"); got != "0" {
		t.Errorf("director ip_forward = %s", got)
	}
	if err := l.Client.Ping(testCtx(t), l.Director.Addr); err != nil {
		t.Errorf("client to director: %v", err)
	}
	if !l.VIP.Is4() || !l.Client.Ifaces[0].Prefix.Contains(l.VIP) {
		t.Errorf("VIP %s not on the client's segment %s", l.VIP, l.Client.Ifaces[0].Prefix)
	}
}

func TestIntegrationLabDR(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	l := newTestLab(t, LabSpec{Prefix: testPrefix(t, "dr"), Topology: TopologyDR, Reals: 3})
	if _, err := l.StartServers(testHTTPPort, testUDPPort); err != nil {
		t.Fatal(err)
	}
	checkCommon(t, l)
	if want := []string{"eth0"}; fmt.Sprint(l.DirectorIfaces) != fmt.Sprint(want) {
		t.Errorf("DirectorIfaces = %v, want %v", l.DirectorIfaces, want)
	}
	checkReals(t, l, l.Client)
	checkReals(t, l, l.Director)
	if err := l.PrepareReals("dr"); err != nil {
		t.Fatal(err)
	}
	if err := l.PrepareReals("dr"); err != nil {
		t.Fatalf("PrepareReals is not idempotent: %v", err)
	}
	rs1 := l.Reals[0]
	for _, key := range []string{"ipv4/conf/all/arp_ignore", "ipv4/conf/lo/arp_ignore"} {
		if got := readSysctl(t, rs1, key); got != "1" {
			t.Errorf("%s = %s", key, got)
		}
	}
	for _, key := range []string{"ipv4/conf/all/arp_announce", "ipv4/conf/lo/arp_announce"} {
		if got := readSysctl(t, rs1, key); got != "2" {
			t.Errorf("%s = %s", key, got)
		}
	}
	if lo := output(t, rs1, "ip", "-br", "addr", "show", "dev", "lo"); !strings.Contains(lo, l.VIP.String()+"/32") {
		t.Errorf("rs1 lo lacks the VIP: %s", lo)
	}
	// Nobody answers ARP for the VIP: the real servers ignore it, and
	// only the director (not running) would answer.
	if c, err := l.Client.Dial(testCtx(t), "tcp4", netip.AddrPortFrom(l.VIP, testHTTPPort).String()); err == nil {
		c.Close()
		t.Fatal("client reached the VIP without a director")
	}
	// Play director by hand: point the client's neighbour entry for the
	// VIP at rs1, as DR's MAC rewrite does. rs1 must accept VIP traffic
	// and answer from the VIP (UDP included, through IP_PKTINFO).
	mac := strings.TrimSpace(output(t, rs1, "cat", "/sys/class/net/eth0/address"))
	output(t, l.Client, "ip", "neigh", "replace", l.VIP.String(), "lladdr", mac, "dev", "eth0", "nud", "permanent")
	if got := httpGet(t, l.Client, l.VIP, "/"); got != "rs1\n" {
		t.Errorf("GET / on VIP via rs1's MAC = %q", got)
	}
	if got, err := udpAsk(l.Client, l.VIP, "x"); err != nil || got != "rs1:x" {
		t.Errorf("udp echo on VIP via rs1's MAC = %q, %v", got, err)
	}
}

func TestIntegrationLabNAT(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	l := newTestLab(t, LabSpec{Prefix: testPrefix(t, "nat"), Topology: TopologyNAT})
	if _, err := l.StartServers(testHTTPPort, testUDPPort); err != nil {
		t.Fatal(err)
	}
	checkCommon(t, l)
	if want := []string{"eth0", "eth1"}; fmt.Sprint(l.DirectorIfaces) != fmt.Sprint(want) {
		t.Errorf("DirectorIfaces = %v, want %v", l.DirectorIfaces, want)
	}
	if err := l.PrepareReals("nat"); err != nil {
		t.Fatal(err)
	}
	gw, ok := l.Director.AddrOn(segNATB)
	if !ok {
		t.Fatal("director has no segment-B address")
	}
	for _, rs := range l.Reals {
		if r := output(t, rs, "ip", "route", "show", "default"); !strings.Contains(r, "via "+gw.String()) {
			t.Errorf("%s default route = %q, want via %s", rs.Name, r, gw)
		}
	}
	// Segment B is reachable from the director only: it does not forward.
	checkReals(t, l, l.Director)
	if err := l.Client.Ping(testCtx(t), l.RealAddrs[0]); err == nil {
		t.Error("client reached a real server through a non-forwarding director")
	}
	if err := l.PrepareReals("tun"); !errors.Is(err, ErrMethod) {
		t.Errorf("PrepareReals(tun) = %v, want ErrMethod", err)
	}
}

func TestIntegrationLabTUN(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	l := newTestLab(t, LabSpec{Prefix: testPrefix(t, "tun"), Topology: TopologyTUN, Clients: 2})
	if _, err := l.StartServers(testHTTPPort, testUDPPort); err != nil {
		t.Fatal(err)
	}
	checkCommon(t, l)
	if l.Router == nil || readSysctl(t, l.Router, "ipv4/ip_forward") != "1" {
		t.Fatal("no forwarding router")
	}
	// The real servers answer the clients through the router, not the
	// director.
	for _, c := range l.Clients {
		checkReals(t, l, c)
	}
	checkReals(t, l, l.Director)
	r := output(t, l.Reals[0], "ip", "route", "get", l.Client.Addr.String())
	if want, _ := l.Router.AddrOn(segTUNC); !strings.Contains(r, "via "+want.String()) {
		t.Errorf("rs1 route to the client = %q, want via the router %s", r, want)
	}
	if err := l.PrepareReals("nat"); !errors.Is(err, ErrMethod) {
		t.Errorf("PrepareReals(nat) on TUN = %v, want ErrMethod", err)
	}
}

func TestIntegrationLabOptions(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	l := newTestLab(t, LabSpec{Prefix: testPrefix(t, "opt"), Topology: TopologyNAT, Reals: 1, Clients: 3, MTU: 9000, DirectorTxOff: true})
	if len(l.Clients) != 3 || l.Clients[2].Name != "client3" || len(l.Reals) != 1 {
		t.Fatalf("nodes: %d clients, %d reals", len(l.Clients), len(l.Reals))
	}
	for _, dev := range l.DirectorIfaces {
		if out := output(t, l.Director, "ip", "link", "show", dev); !strings.Contains(out, "mtu 9000") {
			t.Errorf("director %s: %s", dev, out)
		}
		if out := output(t, l.Director, "ethtool", "-k", dev); !strings.Contains(out, "tx-checksumming: off") {
			t.Errorf("director %s tx offload still on", dev)
		}
		sw := &Node{Name: "switch", NS: l.switchNS}
		if out := output(t, sw, "ethtool", "-k", "director-"+dev); !strings.Contains(out, "tx-checksumming: off") {
			t.Errorf("switch director-%s tx offload still on", dev)
		}
	}
	if out := output(t, l.Client, "ethtool", "-k", "eth0"); !strings.Contains(out, "tx-checksumming: on") {
		t.Error("client tx offload turned off too")
	}
	for _, c := range l.Clients {
		if err := c.Ping(testCtx(t), l.Director.Addr); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
}

func TestIntegrationServersStopStart(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	l := newTestLab(t, LabSpec{Prefix: testPrefix(t, "ss"), Topology: TopologyDR})
	s, err := l.StartServers(testHTTPPort, testUDPPort)
	if err != nil {
		t.Fatal(err)
	}
	rs1, rs2 := l.Reals[0], l.Reals[1]
	if err := s.Stop(rs1); err != nil {
		t.Fatal(err)
	}
	_, err = Get(testCtx(t), l.Client.HTTPClient(), "http://"+netip.AddrPortFrom(rs1.Addr, testHTTPPort).String()+"/")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("GET on stopped rs1: %v, want connection refused", err)
	}
	if got := httpGet(t, l.Client, rs2.Addr, "/"); got != "rs2\n" {
		t.Errorf("rs2 = %q", got)
	}
	if err := s.Start(rs1); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(rs1); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if got := httpGet(t, l.Client, rs1.Addr, "/"); got != "rs1\n" {
		t.Errorf("restarted rs1 = %q", got)
	}
	if err := s.Stop(l.Client); !errors.Is(err, ErrNoNode) {
		t.Errorf("Stop(client) = %v, want ErrNoNode", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := udpAsk(l.Client, rs1.Addr, "x"); err == nil {
		t.Error("udp echo answered after Close")
	}
}

func TestIntegrationLabCleanup(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	prefix := testPrefix(t, "cl")
	ctx := testCtx(t)

	// A namespace that is in the way is reported, and left alone.
	if _, err := run(ctx, "", "ip", "netns", "add", prefix+"rs2"); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLab(ctx, LabSpec{Prefix: prefix, Topology: TopologyDR}); err == nil {
		t.Fatal("NewLab over an existing namespace succeeded")
	}
	left, _ := filepath.Glob(filepath.Join(netnsDir, prefix+"*"))
	if len(left) != 1 || filepath.Base(left[0]) != prefix+"rs2" {
		t.Fatalf("after failed NewLab: %v, want only the foreign %srs2", left, prefix)
	}
	if err := CleanupPrefix(prefix); err != nil {
		t.Fatal(err)
	}

	// A killed run leaves a lab and processes in it; CleanupPrefix removes
	// both.
	l, err := NewLab(ctx, LabSpec{Prefix: prefix, Topology: TopologyTUN})
	if err != nil {
		t.Fatal(err)
	}
	sleep := l.Reals[0].Command(context.Background(), "sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	if err := CleanupPrefix(prefix); err != nil {
		t.Fatal(err)
	}
	if err := sleep.Wait(); err == nil {
		t.Error("process in the lab survived CleanupPrefix")
	}
	assertNoNamespaces(t, prefix)
	if err := l.Close(); err != nil {
		t.Errorf("Close after CleanupPrefix: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// A cancelled context stops NewLab and leaves nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := NewLab(cctx, LabSpec{Prefix: prefix, Topology: TopologyNAT}); err == nil {
		t.Error("NewLab with a cancelled context succeeded")
	}
	assertNoNamespaces(t, prefix)
}

func TestIntegrationNstat(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	l := newTestLab(t, LabSpec{Prefix: testPrefix(t, "ns"), Topology: TopologyDR, Reals: 1})
	before, err := Nstat(testCtx(t), l.Client)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Client.Ping(testCtx(t), l.RealAddrs[0]); err != nil {
		t.Fatal(err)
	}
	after, err := Nstat(testCtx(t), l.Client)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"IcmpOutEchos", "IcmpInEchoReps"} {
		if after[k] != before[k]+1 {
			t.Errorf("%s: %d -> %d, want +1", k, before[k], after[k])
		}
	}
	if _, ok := after["TcpOutRsts"]; !ok {
		t.Error("no TcpOutRsts")
	}
}

func TestIntegrationDoRestoresNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	l := newTestLab(t, LabSpec{Prefix: testPrefix(t, "do"), Topology: TopologyDR, Reals: 1})
	self := func() string {
		s, err := os.Readlink("/proc/thread-self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	outside := self()
	var inside string
	if err := l.Client.Do(func() error { inside = self(); return nil }); err != nil {
		t.Fatal(err)
	}
	if inside == outside {
		t.Fatal("Do did not switch namespace")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic in fn was not re-raised")
			}
		}()
		_ = l.Client.Do(func() error { panic("boom") })
	}()
	// Many goroutines afterwards must all be in the original namespace.
	errs := make(chan error, 64)
	for range cap(errs) {
		go func() {
			if s, _ := os.Readlink("/proc/thread-self/ns/net"); s != outside {
				errs <- fmt.Errorf("thread in %s", s)
				return
			}
			errs <- nil
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	wantErr := errors.New("x")
	if err := l.Client.Do(func() error { return wantErr }); err != wantErr {
		t.Errorf("Do error = %v", err)
	}
	if err := (&Node{Name: "x", NS: "uvt-does-not-exist"}).Do(func() error { return nil }); err == nil {
		t.Error("Do in a missing namespace succeeded")
	}
}

func TestIntegrationCleanupStale(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	ctx := testCtx(t)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("uvsstale%d", gone.Process.Pid)
	live := fmt.Sprintf("uvsstale%d", os.Getpid())
	names := []string{dead + "a-x", dead + "b-y", live + "a-x", dead + "7-x"}
	for _, n := range names {
		if _, err := run(ctx, "", "ip", "netns", "add", n); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, n := range names {
			_ = deleteNS(context.Background(), n)
		}
	})
	if err := CleanupStale("uvsstale"); err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		_, err := os.Stat(filepath.Join(netnsDir, n))
		// dead+"7" is another pid, alive or not: this test only knows that
		// it must not be taken for dead's.
		if wantGone := i < 2; wantGone != (err != nil) && i != 3 {
			t.Errorf("%s: exists = %v, want %v", n, err == nil, !wantGone)
		}
	}
}
