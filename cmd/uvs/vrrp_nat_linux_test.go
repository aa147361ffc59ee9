//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
)

// segment2 adds a second bridge (br1 in the switch namespace) with e1 on each of hosts,
// addressed 198.18.10.N/24 (N = position in hosts + 1), and returns the switch port names.
func (v *vrrpNet) segment2(hosts ...string) []string {
	v.t.Helper()
	sw := v.ns("sw")
	v.must("ip", "-n", sw, "link", "add", "br1", "type", "bridge")
	v.must("ip", "-n", sw, "link", "set", "br1", "up")
	var ports []string
	for i, h := range hosts {
		port := fmt.Sprintf("q%d", i)
		v.must("ip", "link", "add", "e1", "netns", v.ns(h), "type", "veth", "peer", "name", port, "netns", sw)
		v.must("ip", "-n", sw, "link", "set", port, "master", "br1")
		v.must("ip", "-n", sw, "link", "set", port, "up")
		v.must("ip", "-n", v.ns(h), "addr", "add", fmt.Sprintf("198.18.10.%d/24", i+1), "dev", "e1")
		v.must("ip", "-n", v.ns(h), "link", "set", "e1", "up")
		ports = append(ports, port)
	}
	return ports
}

// states returns every instance's state on host, by name.
func (v *vrrpNet) states(host string) map[string]string {
	bin, _ := uvsBinary()
	out, err := v.in(host, bin, "list", "--json", "--socket", filepath.Join(v.dir, host+".sock"))
	if err != nil {
		return nil
	}
	var st struct {
		VRRP []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"vrrp"`
	}
	if json.Unmarshal([]byte(out), &st) != nil {
		return nil
	}
	m := map[string]string{}
	for _, s := range st.VRRP {
		m[s.Name] = s.State
	}
	return m
}

func (v *vrrpNet) both(host, state string) bool {
	s := v.states(host)
	return s["VI_1"] == state && s["VI_2"] == state
}

// macOf is the MAC of host's interface ifname.
func (v *vrrpNet) macOf(host, ifname string) string {
	out := v.must("ip", "-n", v.ns(host), "-o", "link", "show", ifname)
	m := regexp.MustCompile(`link/ether ([0-9a-f:]{17})`).FindStringSubmatch(out)
	if m == nil {
		v.t.Fatalf("no MAC in %q", out)
	}
	return m[1]
}

// TestIntegrationVRRPNATSyncGroup: a NAT service whose real server routes through a floating
// gateway address. The client-side VIP (VI_1) and the gateway (VI_2) are in one sync group, so
// they move as one: when d1 loses its real-side link, d2 takes both; d1 preempts both when the
// link is back; when d1 is killed, d2 takes both again. Requests started after each failover
// work, and the real server's neighbour entry for the gateway holds the new master's MAC.
func TestIntegrationVRRPNATSyncGroup(t *testing.T) {
	n := newVRRPNet(t, "d1", "d2", "client", "real")
	// The real server lives on the second segment only: its replies must go through the
	// gateway, never straight to the client.
	n.must("ip", "-n", n.ns("real"), "link", "del", "e0")
	ports := n.segment2("d1", "d2", "real")
	const gw = "198.18.10.254"
	realAddr := "198.18.10.3"
	n.must("ip", "-n", n.ns("real"), "route", "add", "default", "via", gw)
	var ln net.Listener
	if err := (&bench.Node{NS: n.ns("real")}).Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", ":80")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	conf := func(prio int) string {
		return fmt.Sprintf(`[[service]]
vip = %q
port = 80
forward = "nat"
  [[service.real]]
  address = %q
[[vrrp_sync_group]]
name = "G1"
instances = ["VI_1", "VI_2"]
[[vrrp]]
name = "VI_1"
interface = "e0"
virtual_router_id = 51
priority = %d
[[vrrp]]
name = "VI_2"
interface = "e1"
virtual_router_id = 52
priority = %d
vips = [%q]
`, vrrpVIP, realAddr, prio, prio, gw)
	}
	n.ifaces = `["e0", "e1"]`
	d1, _ := n.uvs("d1", conf(150))
	waitFor(t, masterDown(time.Second, 150)+3*time.Second, "d1 master of both", func() bool { return n.both("d1", "master") })
	n.uvs("d2", conf(100))
	waitFor(t, 5*time.Second, "d2 backup of both", func() bool { return n.both("d2", "backup") })
	d1e1, d2e1 := n.macOf("d1", "e1"), n.macOf("d2", "e1")
	waitFor(t, 5*time.Second, "a NAT request through d1", func() bool { return n.curlOnce("client") })
	n.wantARP("d1 master", "client", vrrpVIP, n.mac("d1"))
	if got := n.arpRepliersOn("real", "e1", realAddr, gw); !slices.Equal(got, []string{d1e1}) {
		t.Fatalf("gateway ARP from the real server answered by %v, want d1's %s", got, d1e1)
	}
	realNode := &bench.Node{NS: n.ns("real")}
	if err := realNode.Ping(t.Context(), netip.MustParseAddr(gw)); err != nil {
		t.Fatalf("the master does not answer ping for the gateway address: %v", err)
	}

	// d1 loses its real-side link: VI_2 goes to fault, and the group with it.
	n.must("ip", "-n", n.ns("sw"), "link", "set", ports[0], "down")
	waitFor(t, masterDown(time.Second, 100)+2*time.Second, "d2 master of both after d1's link loss", func() bool {
		return n.both("d2", "master") && n.both("d1", "fault")
	})
	waitFor(t, 5*time.Second, "a NAT request through d2", func() bool { return n.curlOnce("client") })
	waitFor(t, 3*time.Second, "the real server follows the gateway to d2", func() bool { return n.neighMAC("real", gw) == d2e1 })
	n.wantARP("d2 master (client side)", "client", vrrpVIP, n.mac("d2"))

	// The link is back: d1 preempts both.
	n.must("ip", "-n", n.ns("sw"), "link", "set", ports[0], "up")
	waitFor(t, masterDown(time.Second, 150)+masterDown(time.Second, 150)+2*time.Second, "d1 preempts both", func() bool {
		return n.both("d1", "master") && n.both("d2", "backup")
	})
	waitFor(t, 5*time.Second, "a NAT request through d1 again", func() bool { return n.curlOnce("client") })

	// SIGKILL d1: d2 takes both.
	d1.stop(t, syscall.SIGKILL)
	waitFor(t, masterDown(time.Second, 100), "d2 master of both after SIGKILL", func() bool { return n.both("d2", "master") })
	waitFor(t, 5*time.Second, "a NAT request through d2 after SIGKILL", func() bool { return n.curlOnce("client") })
	waitFor(t, 3*time.Second, "the real server follows the gateway to d2 again", func() bool { return n.neighMAC("real", gw) == d2e1 })
	if got := n.arpRepliersOn("real", "e1", realAddr, gw); !slices.Equal(got, []string{d2e1}) {
		t.Fatalf("gateway ARP answered by %v, want only d2's %s", got, d2e1)
	}
	if err := realNode.Ping(t.Context(), netip.MustParseAddr(gw)); err != nil {
		t.Fatalf("the new master does not answer ping for the gateway address: %v", err)
	}
}
