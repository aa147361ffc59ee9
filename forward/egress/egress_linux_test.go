package egress

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uvs-project/uvs/forward/internal/netnstest"
	"github.com/uvs-project/uvs/internal/testenv"
)

func TestResolverTargets(t *testing.T) {
	r, err := NewResolver(ResolverConfig{})
	if err != nil {
		testenv.SkipOrFail(t, "no rtnetlink: %v", err)
	}
	a, b := netnstest.Addr4("198.18.0.1"), netnstest.Addr4("198.18.0.2")
	tests := []struct {
		name    string
		targets [][4]byte
		addr    [4]byte
		reason  string
	}{
		{"before any target", nil, a, egressNotTarget},
		{"new target is pending", [][4]byte{a, b, a}, a, egressPending},
		{"dropped target", [][4]byte{b}, a, egressNotTarget},
		{"kept target", [][4]byte{b}, b, egressPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.targets != nil {
				r.SetTargets(tt.targets)
			}
			e := r.Lookup(tt.addr)
			if e.Valid || e.Reason != tt.reason {
				t.Errorf("Lookup(%v) = %+v, want invalid with reason %q", tt.addr, e, tt.reason)
			}
			if n := len(r.Snapshot()); n != len(dedup(tt.targets)) && tt.targets != nil {
				t.Errorf("Snapshot has %d entries, want %d", n, len(dedup(tt.targets)))
			}
		})
	}
}

// TestResolverCloseBeforeRun: a resolver that never ran releases its handles on Close, and
// will not run after it; Close after Close does nothing.
func TestResolverCloseBeforeRun(t *testing.T) {
	r, err := NewResolver(ResolverConfig{})
	if err != nil {
		testenv.SkipOrFail(t, "no rtnetlink: %v", err)
	}
	r.Close()
	if r.ns.IsOpen() {
		t.Error("namespace handle still open after Close")
	}
	r.Close()
	if err := r.Run(context.Background()); err == nil {
		t.Error("Run after Close started")
	}
}

func dedup(a [][4]byte) map[[4]byte]bool {
	m := map[[4]byte]bool{}
	for _, x := range a {
		m[x] = true
	}
	return m
}

// egressLab is director namespace D with
//   - d0 198.18.0.1/24 on-link with real R1 (r0 198.18.0.2/24),
//   - d1 198.18.4.1/24 to router G (g0 198.18.4.2/24), which reaches real
//     R2 (r0 198.18.5.2/24) on g1 198.18.5.1/24; D routes 198.18.5.0/24
//     via G.
type egressLab struct {
	d, r1, g, r2 string
}

func newEgressLab(t *testing.T) egressLab {
	t.Helper()
	p := netnstest.NSPrefix(t)
	l := egressLab{d: netnstest.NewNS(t, p+"-d"), r1: netnstest.NewNS(t, p+"-r1"), g: netnstest.NewNS(t, p+"-g"), r2: netnstest.NewNS(t, p+"-r2")}
	netnstest.VethPair(t, l.d, "d0", l.r1, "r0")
	netnstest.VethPair(t, l.d, "d1", l.g, "g0")
	netnstest.VethPair(t, l.g, "g1", l.r2, "r0")
	for _, c := range [][]string{
		{l.d, "addr", "add", "198.18.0.1/24", "dev", "d0"},
		{l.d, "addr", "add", "198.18.4.1/24", "dev", "d1"},
		{l.d, "route", "add", "198.18.5.0/24", "via", "198.18.4.2"},
		{l.r1, "addr", "add", "198.18.0.2/24", "dev", "r0"},
		{l.g, "addr", "add", "198.18.4.2/24", "dev", "g0"},
		{l.g, "addr", "add", "198.18.5.1/24", "dev", "g1"},
		{l.r2, "addr", "add", "198.18.5.2/24", "dev", "r0"},
	} {
		netnstest.Sh(t, append([]string{"ip", "-n", c[0]}, c[1:]...)...)
	}
	// Let a neighbour update override the entry at once (default 1 s).
	netnstest.Sysctl(t, l.d, "net.ipv4.neigh.d0.locktime=0")
	return l
}

// startResolver runs a resolver for targets in namespace ns until the test
// ends, counting OnChange calls.
func startResolver(t *testing.T, ns string, targets ...[4]byte) (*Resolver, *atomic.Int64) {
	t.Helper()
	var changes atomic.Int64
	var r *Resolver
	netnstest.MustInNS(t, ns, func() error {
		var err error
		r, err = NewResolver(ResolverConfig{Logger: testLogger(t), OnChange: func() { changes.Add(1) }})
		return err
	})
	r.SetTargets(targets)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r, &changes
}

// awaitEgress polls r until ok accepts the result for addr.
func awaitEgress(t *testing.T, r *Resolver, addr [4]byte, timeout time.Duration, what string, ok func(Egress) bool) Egress {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		e := r.Lookup(addr)
		if ok(e) {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: after %v Lookup(%v) = %+v", what, timeout, net.IP(addr[:]), e)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestIntegrationResolverOnLinkAndGateway(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	l := newEgressLab(t)
	real1, real2 := netnstest.Addr4("198.18.0.2"), netnstest.Addr4("198.18.5.2")
	r, changes := startResolver(t, l.d, real1, real2)

	e := awaitEgress(t, r, real1, 3*time.Second, "on-link real", func(e Egress) bool { return e.Valid })
	want := Egress{Ifindex: e.Ifindex, Ifname: "d0", MTU: 1500, SrcMAC: netnstest.MACOf(t, l.d, "d0"),
		DstMAC: netnstest.MACOf(t, l.r1, "r0"), SrcAddr: netnstest.Addr4("198.18.0.1"), Valid: true}
	if e != want || e.Ifindex == 0 {
		t.Errorf("on-link real: got %+v, want %+v", e, want)
	}

	e = awaitEgress(t, r, real2, 3*time.Second, "real behind router", func(e Egress) bool { return e.Valid })
	want = Egress{Ifindex: e.Ifindex, Ifname: "d1", MTU: 1500, SrcMAC: netnstest.MACOf(t, l.d, "d1"),
		DstMAC: netnstest.MACOf(t, l.g, "g0"), SrcAddr: netnstest.Addr4("198.18.4.1"), Gateway: netnstest.Addr4("198.18.4.2"), Valid: true}
	if e != want {
		t.Errorf("real behind router: got %+v, want %+v", e, want)
	}
	if changes.Load() == 0 {
		t.Error("OnChange was not called")
	}
	if got := r.Snapshot(); len(got) != 2 || got[real1].DstMAC != netnstest.MACOf(t, l.r1, "r0") {
		t.Errorf("Snapshot = %+v", got)
	}

	// Link change: the device MTU follows.
	netnstest.Sh(t, "ip", "-n", l.d, "link", "set", "d0", "mtu", "1450")
	awaitEgress(t, r, real1, time.Second, "link MTU change", func(e Egress) bool { return e.Valid && e.MTU == 1450 })

	// Route change: R2's network now via R1 on d0, with a route MTU.
	netnstest.Sh(t, "ip", "-n", l.d, "route", "replace", "198.18.5.0/24", "via", "198.18.0.2", "mtu", "1400")
	e = awaitEgress(t, r, real2, time.Second, "route change", func(e Egress) bool {
		return e.Valid && e.Gateway == netnstest.Addr4("198.18.0.2")
	})
	if e.Ifname != "d0" || e.DstMAC != netnstest.MACOf(t, l.r1, "r0") || e.MTU != 1400 || e.SrcAddr != netnstest.Addr4("198.18.0.1") {
		t.Errorf("after route change: %+v", e)
	}
	// Route removed: unresolvable, with a reason.
	netnstest.Sh(t, "ip", "-n", l.d, "route", "del", "198.18.5.0/24")
	e = awaitEgress(t, r, real2, time.Second, "route removed", func(e Egress) bool { return !e.Valid })
	if !strings.HasPrefix(e.Reason, egressNoRoutePfx) {
		t.Errorf("after route removal: reason %q", e.Reason)
	}
	// Link down: the connected route goes, so does the real.
	netnstest.Sh(t, "ip", "-n", l.d, "link", "set", "d0", "down")
	awaitEgress(t, r, real1, time.Second, "link down", func(e Egress) bool { return !e.Valid })
	netnstest.Sh(t, "ip", "-n", l.d, "link", "set", "d0", "up")
	awaitEgress(t, r, real1, 3*time.Second, "link up", func(e Egress) bool { return e.Valid })
	// Route back through a preferred source address.
	netnstest.Sh(t, "ip", "-n", l.d, "addr", "add", "198.18.4.9/24", "dev", "d1")
	netnstest.Sh(t, "ip", "-n", l.d, "route", "add", "198.18.5.0/24", "via", "198.18.4.2", "src", "198.18.4.9")
	e = awaitEgress(t, r, real2, time.Second, "route restored", func(e Egress) bool { return e.Valid })
	if e.Ifname != "d1" || e.SrcAddr != netnstest.Addr4("198.18.4.9") || e.DstMAC != netnstest.MACOf(t, l.g, "g0") {
		t.Errorf("after route restored: %+v", e)
	}
}

func TestIntegrationResolverMACChange(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	l := newEgressLab(t)
	real1 := netnstest.Addr4("198.18.0.2")
	r, _ := startResolver(t, l.d, real1)
	awaitEgress(t, r, real1, 3*time.Second, "on-link real", func(e Egress) bool { return e.Valid })

	tests := []struct {
		name string
		mac  string
		// announce makes the real tell the director about its new MAC.
		announce func(t *testing.T)
	}{
		{"arp_notify gratuitous ARP", "02:00:5e:00:00:01", func(t *testing.T) {}},
		{"ARP request from real", "02:00:5e:00:00:02", func(t *testing.T) {
			netnstest.Sh(t, "ip", "-n", l.r1, "neigh", "flush", "dev", "r0")
			netnstest.SendUDP(t, l.r1, "198.18.0.2:0", "198.18.0.1:9", 1)
		}},
	}
	netnstest.Sysctl(t, l.r1, "net.ipv4.conf.r0.arp_notify=1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hw, _ := net.ParseMAC(tt.mac)
			netnstest.Sh(t, "ip", "-n", l.r1, "link", "set", "dev", "r0", "address", tt.mac)
			start := time.Now()
			tt.announce(t)
			awaitEgress(t, r, real1, time.Second, "MAC change", func(e Egress) bool {
				return e.Valid && e.DstMAC == [6]byte(hw)
			})
			t.Logf("followed in %v", time.Since(start))
		})
	}
}

func TestIntegrationResolverUnresolvable(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	l := newEgressLab(t)
	absent, noRoute, local := netnstest.Addr4("198.18.0.77"), netnstest.Addr4("198.19.99.1"), netnstest.Addr4("198.18.0.1")
	r, _ := startResolver(t, l.d, absent, noRoute, local)

	e := awaitEgress(t, r, absent, 6*time.Second, "absent on-link host", func(e Egress) bool {
		return e.Reason == egressNeighFail
	})
	if e.Valid || e.Ifname != "d0" {
		t.Errorf("absent host: %+v", e)
	}
	e = awaitEgress(t, r, noRoute, time.Second, "no route", func(e Egress) bool {
		return strings.HasPrefix(e.Reason, egressNoRoutePfx)
	})
	if e.Valid {
		t.Errorf("no route: %+v", e)
	}
	e = awaitEgress(t, r, local, time.Second, "local", func(e Egress) bool { return e.Reason == egressLocal })
	if e.Valid {
		t.Errorf("local: %+v", e)
	}
	// The resolver keeps retrying: a host that appears later resolves.
	netnstest.Sh(t, "ip", "-n", l.r1, "addr", "add", "198.18.0.77/24", "dev", "r0")
	awaitEgress(t, r, absent, 2*egressBackstop, "host appeared", func(e Egress) bool { return e.Valid })
	// A dropped target is forgotten.
	r.SetTargets([][4]byte{local})
	if e := r.Lookup(absent); e.Valid || e.Reason != egressNotTarget {
		t.Errorf("dropped target: %+v", e)
	}
}

func TestIntegrationResolverRunTwice(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	l := newEgressLab(t)
	r, _ := startResolver(t, l.d)
	// The first Run has claimed the resolver once running is set; poll for that state.
	deadline := time.Now().Add(5 * time.Second)
	for !r.running.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the first Run never started")
		}
		time.Sleep(time.Millisecond)
	}
	if err := r.Run(context.Background()); err == nil {
		t.Error("second Run succeeded")
	}
}

// testLogger returns a logger writing to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// TestIntegrationResolverKeepsMACWhileResolving: a next hop's neighbour entry that goes away
// (garbage-collected, flushed, missing from an interrupted dump) keeps its last MAC while the
// kernel asks again, and becomes unresolvable only when the kernel gives up (FAILED).
func TestIntegrationResolverKeepsMACWhileResolving(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	l := newEgressLab(t)
	real1 := netnstest.Addr4("198.18.0.2")
	r, _ := startResolver(t, l.d, real1)
	mac := netnstest.MACOf(t, l.r1, "r0")
	awaitEgress(t, r, real1, 3*time.Second, "on-link real", func(e Egress) bool { return e.Valid && e.DstMAC == mac })

	// The real stops answering ARP, and the director's entry for it goes.
	netnstest.Sh(t, "ip", "netns", "exec", l.r1, "nft", "add table arp uvstest { chain in { type filter hook input priority 0; policy drop; }; }")
	netnstest.Sh(t, "ip", "-n", l.d, "neigh", "del", "198.18.0.2", "dev", "d0")
	// Until the kernel's entry is FAILED (3 unanswered requests, about 3 s), the real keeps
	// its MAC; every look in between must say so.
	deadline := time.Now().Add(10 * time.Second)
	looks := 0
	for !strings.Contains(netnstest.Sh(t, "ip", "-n", l.d, "neigh", "show", "198.18.0.2", "dev", "d0"), "FAILED") {
		if time.Now().After(deadline) {
			t.Fatal("the kernel's entry for the silent real never became FAILED")
		}
		if e := r.Lookup(real1); !e.Valid || e.DstMAC != mac {
			t.Fatalf("while the kernel resolves again: Lookup = %+v, want the last MAC %v", e, net.HardwareAddr(mac[:]))
		}
		looks++
		time.Sleep(10 * time.Millisecond)
	}
	if looks < 50 {
		t.Fatalf("only %d looks before FAILED: the test saw too little", looks)
	}
	e := awaitEgress(t, r, real1, 2*time.Second, "kernel gave up", func(e Egress) bool { return !e.Valid })
	if e.Reason != egressNeighFail {
		t.Errorf("after FAILED: reason %q, want %q", e.Reason, egressNeighFail)
	}
	// The real answers again: resolved on the resolver's next try.
	netnstest.Sh(t, "ip", "netns", "exec", l.r1, "nft", "delete", "table", "arp", "uvstest")
	awaitEgress(t, r, real1, 2*egressBackstop+time.Second, "real answers again", func(e Egress) bool { return e.Valid && e.DstMAC == mac })
}
