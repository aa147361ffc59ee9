package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// TestIntegrationIPv6DRSmoke is the IPv6 engine's end-to-end smoke: the DR lab gets IPv6
// addresses in 2001:2:0:61::/64 (nodad), each real server the IPv6 VIP on lo and an HTTP
// server on [::]:8086, the director an IPv6 DR service beside the lab's IPv4 ones (shield
// auto, which then takes nftables: the tcx program is IPv4 only). `curl -6` from the client must reach a real
// server through the VIP, which only works if uvs answers the client's neighbour
// solicitation for the VIP and forwards the IPv6 frames. The full matrix (NAT, TUN,
// offloads, backends, PMTU, barrage) is the IPv6 e2e tests'.
func TestIntegrationIPv6DRSmoke(t *testing.T) {
	testenv.RequireRoot(t)
	lab := newLab(t, bench.LabSpec{Topology: bench.TopologyDR, DirectorTxOff: true})
	if err := lab.PrepareReals("dr"); err != nil {
		t.Fatal(err)
	}
	startServers(t, lab, 80, bench.UDPPort)
	const prefix = "2001:2:0:61::"
	vip6 := netip.MustParseAddr(prefix + "100")
	enableIPv6(t, append([]*bench.Node{lab.Client, lab.Director}, lab.Reals...)...)
	addr6(t, lab.Client, prefix+"10/64", "eth0")
	addr6(t, lab.Director, prefix+"2/64", "eth0")
	var reals []string
	for i, r := range lab.Reals {
		a := fmt.Sprintf("%s%d", prefix, 11+i)
		reals = append(reals, a)
		addr6(t, r, a+"/64", "eth0")
		addr6(t, r, vip6.String()+"/128", "lo")
		serve6(t, r, 8086)
	}
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "uvs.toml")
	text := lab.Config("dr", "rr", 80, 80, tmp)
	text += fmt.Sprintf("\n[[service]]\nname = \"dr6\"\nvip = %q\nprotocol = \"tcp\"\nport = 8086\nscheduler = \"rr\"\nforward = \"dr\"\n", vip6)
	for _, a := range reals {
		text += fmt.Sprintf("\n  [[service.real]]\n  address = %q\n", a)
	}
	writeFile(t, cfgPath, text)
	r := newRun(t, lab)
	r.runDirector(cfgPath)
	if !waitLog(r, "shield installed", "shield=nftables") {
		t.Fatalf("shield auto did not take nftables for an IPv6 VIP:\n%s", r.stderr.String())
	}
	curl6(t, r, lab, vip6, len(lab.Reals))
	// ipvsadm's IPv6 layout: [addr]:port for the service, its reals and the connections.
	socket := filepath.Join(tmp, "uvs.sock")
	list := uvsOut(t, "list", "-n", "--socket", socket)
	if !strings.Contains(list, "TCP  ["+vip6.String()+"]:8086 rr") || !strings.Contains(list, "["+reals[0]+"]:8086") {
		t.Errorf("uvs list -n:\n%s", list)
	}
	if conns := uvsOut(t, "list", "--conns", "--socket", socket); !strings.Contains(conns, "["+prefix+"10]:") ||
		!strings.Contains(conns, "["+vip6.String()+"]:8086") {
		t.Errorf("uvs list --conns:\n%s", conns)
	}
}

// uvsOut runs the uvs binary with args and returns its output.
func uvsOut(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("uvs %v: %v: %s", args, err, out)
	}
	return string(out)
}

// TestIntegrationIPv6NATSmoke is the NAT counterpart: the NAT lab's two segments get
// 2001:2:0:62::/64 (client side) and 2001:2:0:63::/64 (real side, the director its gateway),
// the IPv6 service maps VIP:8086 to port 8087 on the reals, and `curl -6` must come back
// through the director with the VIP as the source.
func TestIntegrationIPv6NATSmoke(t *testing.T) {
	testenv.RequireRoot(t)
	lab := newLab(t, bench.LabSpec{Topology: bench.TopologyNAT, DirectorTxOff: true})
	if err := lab.PrepareReals("nat"); err != nil {
		t.Fatal(err)
	}
	startServers(t, lab, 80, bench.UDPPort)
	const front, back = "2001:2:0:62::", "2001:2:0:63::"
	vip6 := netip.MustParseAddr(front + "100")
	enableIPv6(t, append([]*bench.Node{lab.Client, lab.Director}, lab.Reals...)...)
	addr6(t, lab.Client, front+"10/64", "eth0")
	addr6(t, lab.Director, front+"2/64", "eth0")
	addr6(t, lab.Director, back+"1/64", "eth1")
	var reals []string
	for i, r := range lab.Reals {
		a := fmt.Sprintf("%s%d", back, 11+i)
		reals = append(reals, a)
		addr6(t, r, a+"/64", "eth0")
		run6(t, r, "ip", "-6", "route", "add", "default", "via", back+"1")
		serve6(t, r, 8087)
	}
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "uvs.toml")
	text := lab.Config("nat", "rr", 80, 80, tmp)
	text += fmt.Sprintf("\n[[service]]\nname = \"nat6\"\nvip = %q\nprotocol = \"tcp\"\nport = 8086\nscheduler = \"rr\"\nforward = \"nat\"\n", vip6)
	for _, a := range reals {
		text += fmt.Sprintf("\n  [[service.real]]\n  address = %q\n  port = 8087\n", a)
	}
	writeFile(t, cfgPath, text)
	r := newRun(t, lab)
	r.runDirector(cfgPath)
	curl6(t, r, lab, vip6, len(lab.Reals))
}

func enableIPv6(t *testing.T, nodes ...*bench.Node) {
	t.Helper()
	for _, n := range nodes {
		run6(t, n, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0", "net.ipv6.conf.lo.disable_ipv6=0")
		for _, ifc := range n.Ifaces {
			run6(t, n, "sysctl", "-qw", "net.ipv6.conf."+ifc.Name+".disable_ipv6=0")
		}
	}
}

func addr6(t *testing.T, n *bench.Node, prefix, dev string) {
	t.Helper()
	run6(t, n, "ip", "-6", "addr", "add", prefix, "dev", dev, "nodad")
}

func run6(t *testing.T, n *bench.Node, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := n.Command(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %s %v: %v: %s", n, name, args, err, out)
	}
}

// serve6 serves HTTP on [::]:port in n's namespace, answering with n's name, until the test
// ends.
func serve6(t *testing.T, n *bench.Node, port int) {
	t.Helper()
	var ln net.Listener
	if err := n.Do(func() (err error) {
		ln, err = net.Listen("tcp6", fmt.Sprintf("[::]:%d", port))
		return err
	}); err != nil {
		t.Fatalf("%s: listen: %v", n, err)
	}
	name := n.Name
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost {
			n, _ := io.Copy(io.Discard, req.Body)
			fmt.Fprintf(w, "%s %d\n", name, n)
			return
		}
		fmt.Fprintf(w, "%s\n", name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// curl6 runs 10 `curl -6` to [vip]:8086 from the lab's client (retrying for up to 20 s while
// the path comes up) and checks that they reached want real servers.
func curl6(t *testing.T, r *labRun, lab *bench.Lab, vip netip.Addr, want int) {
	t.Helper()
	seen := map[string]int{}
	deadline := time.Now().Add(20 * time.Second)
	for n := 0; n < 10; {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := lab.Client.Command(ctx, "curl", "-6", "-sS", "--max-time", "3", fmt.Sprintf("http://[%s]:8086/", vip)).CombinedOutput()
		cancel()
		if err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("curl -6 through %s: %v: %s\ndirector stderr:\n%s", vip, err, out, r.stderr.String())
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		seen[strings.TrimSpace(string(out))]++
		n++
	}
	if len(seen) != want {
		t.Fatalf("10 curls reached %v, want %d real servers", seen, want)
	}
	t.Logf("curl -6 through %s: %v", vip, seen)
}

// TestIntegrationIPv6TUNSmoke is the 6in6 counterpart: the TUN lab (client, director and
// router on 2001:2:0:64::/64, the router forwarding to the real servers on 2001:2:0:65::/64)
// with `uvs realserver` decapsulating in user space on each real server, for the lab's IPv4
// VIP and the IPv6 one, offloads on. `curl -6` must reach both real servers (their answers go
// back through the router, never the director), and a 4 MB upload must arrive whole.
func TestIntegrationIPv6TUNSmoke(t *testing.T) {
	testenv.RequireRoot(t)
	lab := newLab(t, bench.LabSpec{Topology: bench.TopologyTUN})
	const front, back = "2001:2:0:64::", "2001:2:0:65::"
	vip6 := netip.MustParseAddr(front + "100")
	enableIPv6(t, append([]*bench.Node{lab.Client, lab.Director, lab.Router}, lab.Reals...)...)
	run6(t, lab.Router, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	addr6(t, lab.Client, front+"10/64", "eth0")
	addr6(t, lab.Director, front+"2/64", "eth0")
	addr6(t, lab.Router, front+"1/64", "eth0")
	addr6(t, lab.Router, back+"1/64", "eth1")
	run6(t, lab.Director, "ip", "-6", "route", "add", back+"/64", "via", front+"1")
	var reals []string
	for i, r := range lab.Reals {
		a := fmt.Sprintf("%s%d", back, 11+i)
		reals = append(reals, a)
		addr6(t, r, a+"/64", "eth0")
		run6(t, r, "ip", "-6", "route", "add", "default", "via", back+"1")
		p := startRealserverVIPs(t, r, lab.VIP.String()+","+vip6.String())
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("realserver %s:\n%s", p.node.Name, p.out.String())
			}
		})
		serve6(t, r, 8086)
	}
	startServers(t, lab, 80, bench.UDPPort)
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "uvs.toml")
	text := lab.Config("tun", "rr", 80, 80, tmp)
	text += fmt.Sprintf("\n[[service]]\nname = \"tun6\"\nvip = %q\nprotocol = \"tcp\"\nport = 8086\nscheduler = \"rr\"\nforward = \"tun\"\n", vip6)
	for _, a := range reals {
		text += fmt.Sprintf("\n  [[service.real]]\n  address = %q\n", a)
	}
	writeFile(t, cfgPath, text)
	r := newRun(t, lab)
	r.runDirector(cfgPath)
	curl6(t, r, lab, vip6, len(lab.Reals))
	// A 4 MB upload: with offloads on, the client's segments reach the director as GSO
	// super-frames, which it segments for the 6in6 tunnel.
	body := filepath.Join(tmp, "body")
	writeFile(t, body, strings.Repeat("uvs-ipv6-", 4<<20/9))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := lab.Client.Command(ctx, "curl", "-6", "-sS", "--max-time", "20", "--data-binary", "@"+body,
		fmt.Sprintf("http://[%s]:8086/", vip6)).CombinedOutput()
	if want := fmt.Sprintf(" %d", 4<<20/9*9); err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), want) {
		t.Fatalf("4 MB upload through 6in6: %v: %q, want a reply ending in %q\ndirector stderr:\n%s", err, out, want, r.stderr.String())
	}
	if err := r.dir.Stop(); err != nil {
		t.Fatalf("director stop: %v", err)
	}
	c := r.stoppedCounters()
	t.Logf("director counters: tun_frames %d tun_segmented %d tun_gso_unsupported %d", c["tun_frames"], c["tun_segmented"], c["tun_gso_unsupported"])
	if c["tun_gso_unsupported"] != 0 {
		t.Errorf("GSO frames refused: %v", c)
	}
}
