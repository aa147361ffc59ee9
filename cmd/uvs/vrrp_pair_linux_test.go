//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// pairConfig is a DR service on the VIP with one real server, and one VRRP instance.
func (v *vrrpNet) pairConfig(prio int, extra string) string {
	return fmt.Sprintf("[[service]]\nvip = %q\nport = 80\nforward = \"dr\"\n  [[service.real]]\n  address = %q\n"+
		"[[vrrp]]\nname = \"VI_1\"\ninterface = \"e0\"\nvirtual_router_id = 51\npriority = %d\n%s",
		vrrpVIP, v.addr("real"), prio, extra)
}

// startReal makes host a DR real server of the VIP with an HTTP server on port 80 that
// answers "ok" (the listener is opened in host's namespace, served from this process).
func (v *vrrpNet) startReal(host string) {
	v.t.Helper()
	bin, err := uvsBinary()
	if err != nil {
		v.t.Fatal(err)
	}
	if out, err := v.in(host, bin, "realserver", "--vip", vrrpVIP, "--method", "dr"); err != nil {
		v.t.Fatalf("uvs realserver: %v\n%s", err, out)
	}
	var ln net.Listener
	if err := (&bench.Node{NS: v.ns(host)}).Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", ":80")
		return err
	}); err != nil {
		v.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	v.t.Cleanup(func() { _ = srv.Close() })
}

// neighMAC is the client's neighbour entry for addr, without refreshing it.
func (v *vrrpNet) neighMAC(client, addr string) string {
	out, _ := v.in(client, "ip", "neigh", "show", "to", addr)
	if m := regexp.MustCompile(`lladdr ([0-9a-f:]{17})`).FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// curlOnce fetches the VIP once from client (a new connection), with a 1 s bound.
func (v *vrrpNet) curlOnce(client string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b, err := bench.Get(ctx, (&bench.Node{NS: v.ns(client)}).HTTPClient(), "http://"+vrrpVIP+"/")
	return err == nil && string(b) == "ok"
}

// request is one request of a curl loop.
type request struct {
	start, end time.Time
	ok         bool
}

// curlLoop requests the VIP from client until stop is closed.
func (v *vrrpNet) curlLoop(client string, stop chan struct{}) func() []request {
	var mu sync.Mutex
	var reqs []request
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			r := request{start: time.Now()}
			r.ok = v.curlOnce(client)
			r.end = time.Now()
			mu.Lock()
			reqs = append(reqs, r)
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return func() []request { <-done; mu.Lock(); defer mu.Unlock(); return reqs }
}

// TestIntegrationVRRPPair runs two uvs directors in one segment with a DR real server: the
// master is killed with SIGKILL during a loop of curls; the backup is master within
// 3 × advert_int + skew + 1 s, only requests in that window fail, the client's neighbour entry
// for the VIP holds the new master's MAC; the old master returns with its higher priority and
// preempts. A nopreempt pair stays as it is.
func TestIntegrationVRRPPair(t *testing.T) {
	for _, nopreempt := range []bool{false, true} {
		t.Run(fmt.Sprintf("nopreempt=%v", nopreempt), func(t *testing.T) {
			n := newVRRPNet(t, "d1", "d2", "client", "real")
			n.startReal("real")
			extra := ""
			if nopreempt {
				extra = "nopreempt = true\n"
			}
			d1MAC, d2MAC := n.mac("d1"), n.mac("d2")
			d1, _ := n.uvs("d1", n.pairConfig(150, extra))
			waitFor(t, masterDown(time.Second, 150)+2*time.Second, "d1 master", func() bool { return n.vrrpState("d1") == "master" })
			n.uvs("d2", n.pairConfig(100, extra))
			waitFor(t, 5*time.Second, "d2 backup", func() bool { return n.vrrpState("d2") == "backup" })
			n.wantARP("d1 master", "client", vrrpVIP, d1MAC)
			waitFor(t, 5*time.Second, "a request through d1", func() bool { return n.curlOnce("client") })

			stop := make(chan struct{})
			results := n.curlLoop("client", stop)
			time.Sleep(time.Second)
			killed := time.Now()
			d1.stop(t, syscall.SIGKILL)
			took := waitFor(t, masterDown(time.Second, 100), "d2 takes over", func() bool { return n.vrrpState("d2") == "master" })
			master := time.Now()
			t.Logf("d2 master %v after SIGKILL (bound %v)", took, masterDown(time.Second, 100))
			// Requests keep going until one started after the takeover has succeeded.
			waitFor(t, 5*time.Second, "a request through d2", func() bool { return n.curlOnce("client") })
			time.Sleep(time.Second)
			close(stop)
			// The window: from the kill to the takeover, plus one curl timeout for a
			// request that started inside it and the gratuitous ARP's way to the client.
			grace := master.Add(300 * time.Millisecond)
			var failed, total int
			for _, r := range results() {
				total++
				if r.ok {
					continue
				}
				failed++
				if r.end.Before(killed) || r.start.After(grace) {
					t.Errorf("request %v..%v failed outside the failover window %v..%v", r.start.Format("15:04:05.000"), r.end.Format("15:04:05.000"), killed.Format("15:04:05.000"), grace.Format("15:04:05.000"))
				}
			}
			t.Logf("%d of %d requests failed, all inside the failover window", failed, total)
			if got := n.neighMAC("client", vrrpVIP); got != d2MAC {
				t.Errorf("client's neighbour entry for the VIP: %q, want d2's %s", got, d2MAC)
			}
			n.wantARP("d2 master", "client", vrrpVIP, d2MAC)

			// d1 comes back with its higher priority.
			d1, _ = n.uvs("d1", n.pairConfig(150, extra))
			if nopreempt {
				// Bounded by what preemption would take: d1's master down interval.
				deadline := time.Now().Add(masterDown(time.Second, 150) + 2*time.Second)
				for time.Now().Before(deadline) {
					if s := n.vrrpState("d1"); s == "master" {
						t.Fatal("nopreempt: d1 took over from d2")
					}
					time.Sleep(200 * time.Millisecond)
				}
				if n.vrrpState("d1") != "backup" || n.vrrpState("d2") != "master" {
					t.Fatalf("nopreempt: d1 %s, d2 %s; want backup, master", n.vrrpState("d1"), n.vrrpState("d2"))
				}
				n.wantARP("nopreempt, d2 stays master", "client", vrrpVIP, d2MAC)
				return
			}
			waitFor(t, masterDown(time.Second, 150)+2*time.Second, "d1 preempts", func() bool {
				return n.vrrpState("d1") == "master" && n.vrrpState("d2") == "backup"
			})
			n.wantARP("d1 preempted", "client", vrrpVIP, d1MAC)
			waitFor(t, 3*time.Second, "client follows d1's gratuitous ARP", func() bool { return n.neighMAC("client", vrrpVIP) == d1MAC })
			if !n.curlOnce("client") {
				t.Error("no request through d1 after it preempted")
			}
			// A graceful stop: d1 sends priority 0, and d2 takes over after its skew time
			// ((256-100)/256 s), not the whole master-down interval (+1 s of slack).
			d1.stop(t, syscall.SIGTERM)
			took = waitFor(t, 156*time.Second/256+time.Second, "d2 takes over after d1's priority 0", func() bool { return n.vrrpState("d2") == "master" })
			t.Logf("d2 master %v after SIGTERM of d1", took)
		})
	}
}

// TestIntegrationVRRPSplitBrain blocks adverts between two uvs directors in the switch
// (both become master), then heals: exactly one master within one advert interval (polled,
// with the slack of polling), and the winner sends gratuitous ARP: the client's neighbour
// entry, which followed the loser's takeover, comes back to it.
func TestIntegrationVRRPSplitBrain(t *testing.T) {
	n := newVRRPNet(t, "d1", "d2", "client", "real")
	n.startReal("real")
	d1MAC, d2MAC := n.mac("d1"), n.mac("d2")
	n.uvs("d1", n.pairConfig(150, ""))
	waitFor(t, masterDown(time.Second, 150)+2*time.Second, "d1 master", func() bool { return n.vrrpState("d1") == "master" })
	n.uvs("d2", n.pairConfig(100, ""))
	waitFor(t, 5*time.Second, "d2 backup", func() bool { return n.vrrpState("d2") == "backup" })
	waitFor(t, 5*time.Second, "a request through d1", func() bool { return n.curlOnce("client") })

	sw := n.ns("sw")
	n.must("ip", "netns", "exec", sw, "nft", "add table bridge uvsvrrp")
	n.must("ip", "netns", "exec", sw, "nft", "add chain bridge uvsvrrp block { type filter hook forward priority 0 ; }")
	n.must("ip", "netns", "exec", sw, "nft", "add rule bridge uvsvrrp block ip protocol 112 drop")
	waitFor(t, masterDown(time.Second, 100)+2*time.Second, "split brain: both master", func() bool {
		return n.vrrpState("d1") == "master" && n.vrrpState("d2") == "master"
	})
	// d2's takeover moved the client to d2 (gratuitous ARP).
	waitFor(t, 3*time.Second, "client follows d2", func() bool { return n.neighMAC("client", vrrpVIP) == d2MAC })

	n.must("ip", "netns", "exec", sw, "nft", "delete table bridge uvsvrrp")
	healed := time.Now()
	took := waitFor(t, 2*time.Second, "one master after heal", func() bool {
		return n.vrrpState("d1") == "master" && n.vrrpState("d2") == "backup"
	})
	t.Logf("one master %v after heal (advert_int 1s; polling adds up to 100 ms plus a uvs list)", took)
	waitFor(t, 2*time.Second, "winner's gratuitous ARP reaches the client", func() bool { return n.neighMAC("client", vrrpVIP) == d1MAC })
	t.Logf("client back on d1 %v after heal", time.Since(healed))
	n.wantARP("healed", "client", vrrpVIP, d1MAC)
}

// TestIntegrationDemoFailover runs `uvs demo --failover`: two directors, SIGKILL of the
// master, takeover, preemption; it must succeed and say so.
func TestIntegrationDemoFailover(t *testing.T) {
	testenv.RequireRoot(t)
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "demo", "--failover").CombinedOutput()
	if err != nil {
		t.Fatalf("uvs demo --failover: %v\n%s", err, out)
	}
	for _, want := range []string{"d2 master", "master again", "answered by rs"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("%s", out)
}

// TestIntegrationLabPair: `uvs lab up` with [[vrrp]] lays out a director pair (a floating
// NAT gateway in a sync group): both directors run, one is master of both instances, the
// DR and NAT services answer, and after the master is stopped the other takes over and they
// still answer; lab down removes everything.
func TestIntegrationLabPair(t *testing.T) {
	testenv.RequireRoot(t)
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("uvt%d-vp-", os.Getpid()%100000)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pair.toml")
	src := fmt.Sprintf(`[director]
interfaces = ["eth0", "eth1"]
workers = 1
control_socket = %q
[lab]
prefix = %q
[[service]]
vip = "198.18.1.100"
port = 80
forward = "dr"
  [[service.real]]
  address = "198.18.1.11"
[[service]]
vip = "198.18.1.101"
port = 80
forward = "nat"
  [[service.real]]
  address = "198.18.3.11"
[[vrrp_sync_group]]
name = "G1"
instances = ["VI_1", "VI_2"]
[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
[[vrrp]]
name = "VI_2"
interface = "eth1"
virtual_router_id = 52
vips = ["198.18.3.1"]
`, filepath.Join(dir, "d1.sock"), prefix)
	writeFile(t, cfg, src)
	t.Cleanup(func() {
		_, _ = uvsCmd(t, bin, "lab", "down", "-c", cfg)
		assertNoNamespaces(t, prefix)
	})
	if out, err := uvsCmd(t, bin, "lab", "up", "-c", cfg); err != nil {
		t.Fatalf("lab up: %v\n%s", err, out)
	}
	st, err := bench.ReadState(prefix)
	if err != nil {
		t.Fatal(err)
	}
	sockets := map[string]string{"director": filepath.Join(dir, "d1.sock"), "director2": st.Director2Socket()}
	states := func(d string) map[string]string {
		out, err := exec.Command(bin, "list", "--json", "--socket", sockets[d]).Output()
		if err != nil {
			return nil
		}
		var v struct {
			VRRP []struct{ Name, State string } `json:"vrrp"`
		}
		_ = json.Unmarshal(out, &v)
		m := map[string]string{}
		for _, s := range v.VRRP {
			m[s.Name] = s.State
		}
		return m
	}
	master := ""
	waitFor(t, 10*time.Second, "one director master of both instances, the other backup", func() bool {
		a, b := states("director"), states("director2")
		switch {
		case a["VI_1"] == "master" && a["VI_2"] == "master" && b["VI_1"] == "backup" && b["VI_2"] == "backup":
			master = "director"
		case b["VI_1"] == "master" && b["VI_2"] == "master" && a["VI_1"] == "backup" && a["VI_2"] == "backup":
			master = "director2"
		default:
			return false
		}
		return true
	})
	curl := func(vip string) error {
		out, err := uvsCmd(t, bin, "lab", "exec", "-c", cfg, "client", "--", "curl", "-sS", "--max-time", "2", "http://"+vip+"/")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	for _, vip := range []string{"198.18.1.100", "198.18.1.101"} {
		if err := curl(vip); err != nil {
			t.Fatalf("curl %s through %s: %v", vip, master, err)
		}
	}
	status, _ := uvsCmd(t, bin, "lab", "status", "-c", cfg)
	if !strings.Contains(status, "director2") || strings.Contains(status, "EXITED") {
		t.Fatalf("lab status:\n%s", status)
	}
	// Stop the master (SIGTERM: priority 0): the other takes both instances over.
	for _, p := range st.Procs {
		if p.Role == "director" && p.Node == master {
			p.Stop()
		}
	}
	other := map[string]string{"director": "director2", "director2": "director"}[master]
	waitFor(t, 6*time.Second, other+" master of both", func() bool {
		s := states(other)
		return s["VI_1"] == "master" && s["VI_2"] == "master"
	})
	for _, vip := range []string{"198.18.1.100", "198.18.1.101"} {
		waitFor(t, 5*time.Second, "curl "+vip+" through "+other, func() bool { return curl(vip) == nil })
	}
}
