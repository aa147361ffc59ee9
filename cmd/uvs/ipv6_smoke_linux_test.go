package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// TestIntegrationIPv6DRSmoke is the IPv6 engine's end-to-end smoke: the DR lab gets IPv6
// addresses in 2001:2:0:61::/64 (nodad), each real server the IPv6 VIP on lo and an HTTP
// server on [::]:8086, the director an IPv6 DR service beside the lab's IPv4 ones (the
// nftables shield: the tcx one is IPv4 only). `curl -6` from the client must reach a real
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
	addr := func(n *bench.Node, a string, dev string, bits int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := n.Command(ctx, "ip", "-6", "addr", "add", fmt.Sprintf("%s/%d", a, bits), "dev", dev, "nodad").CombinedOutput(); err != nil {
			t.Fatalf("%s: ip addr add %s: %v: %s", n, a, err, out)
		}
	}
	// The lab's namespaces have IPv6 off; turn it on where the smoke needs it.
	for _, n := range append([]*bench.Node{lab.Client, lab.Director}, lab.Reals...) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := n.Command(ctx, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0",
			"net.ipv6.conf.default.disable_ipv6=0", "net.ipv6.conf.eth0.disable_ipv6=0", "net.ipv6.conf.lo.disable_ipv6=0").CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s: enable IPv6: %v: %s", n, err, out)
		}
	}
	addr(lab.Client, prefix+"10", "eth0", 64)
	addr(lab.Director, prefix+"2", "eth0", 64)
	var reals []string
	for i, r := range lab.Reals {
		a := fmt.Sprintf("%s%d", prefix, 11+i)
		reals = append(reals, a)
		addr(r, a, "eth0", 64)
		addr(r, vip6.String(), "lo", 128)
		name := r.Name
		var ln net.Listener
		if err := r.Do(func() (err error) {
			ln, err = net.Listen("tcp6", "[::]:8086")
			return err
		}); err != nil {
			t.Fatalf("%s: listen: %v", r, err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "%s\n", name)
		}), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "uvs.toml")
	text := lab.Config("dr", "rr", 80, 80, tmp)
	text = strings.Replace(text, "[director]\n", "[director]\nshield = \"nftables\"\n", 1)
	text += fmt.Sprintf("\n[[service]]\nname = \"dr6\"\nvip = %q\nprotocol = \"tcp\"\nport = 8086\nscheduler = \"rr\"\nforward = \"dr\"\n", vip6)
	for _, a := range reals {
		text += fmt.Sprintf("\n  [[service.real]]\n  address = %q\n", a)
	}
	writeFile(t, cfgPath, text)
	r := newRun(t, lab)
	r.runDirector(cfgPath)

	seen := map[string]int{}
	deadline := time.Now().Add(20 * time.Second)
	for n := 0; n < 10; {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := lab.Client.Command(ctx, "curl", "-6", "-sS", "--max-time", "3", fmt.Sprintf("http://[%s]:8086/", vip6)).CombinedOutput()
		cancel()
		if err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("curl -6 through the IPv6 DR VIP: %v: %s\ndirector stderr:\n%s", err, out, r.stderr.String())
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		seen[strings.TrimSpace(string(out))]++
		n++
	}
	if len(seen) != len(lab.Reals) {
		t.Fatalf("10 curls reached %v, want every one of %d real servers", seen, len(lab.Reals))
	}
	t.Logf("curl -6 through %s: %v", vip6, seen)
}
