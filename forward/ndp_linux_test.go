package forward

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/forward/internal/netnstest"
	"github.com/uvs-project/uvs/forward/packet"
)

// TestIntegrationUnsolicitedNA: a peer's kernel takes the advertisement (it updates an entry
// it has, as after a failover), and the frame is byte for byte packet.BuildUnsolicitedNA's.
func TestIntegrationUnsolicitedNA(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	p := netnstest.NSPrefix(t)
	a, b := netnstest.NewNS(t, p+"-a"), netnstest.NewNS(t, p+"-b")
	netnstest.VethPair(t, a, "a0", b, "b0")
	netnstest.Sh(t, "ip", "-n", b, "addr", "add", "2001:db8:30::2/64", "dev", "b0", "nodad")
	vip := netip.MustParseAddr("2001:db8:30::10")
	// A stale entry with another MAC, which the override flag must replace.
	netnstest.Sh(t, "ip", "-n", b, "neigh", "replace", vip.String(), "lladdr", "02:00:00:00:00:99", "dev", "b0", "nud", "stale")
	mac := netnstest.MACOf(t, a, "a0")
	tap := netnstest.ListenAll(t, b, "b0", unix.ETH_P_IPV6)
	netnstest.MustInNS(t, a, func() error { return sendUnsolicitedNA("a0", vip.As16(), 3, 20*time.Millisecond) })
	want := make([]byte, 128)
	want = want[:packet.BuildUnsolicitedNA(want, mac, vip.As16())]
	if !netnstest.AwaitFrame(tap, time.Second, func(f []byte) bool { return bytes.Equal(f, want) }) {
		t.Fatal("peer saw no unsolicited advertisement")
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		out := netnstest.Sh(t, "ip", "-n", b, "neigh", "show", vip.String(), "dev", "b0")
		if strings.Contains(out, net.HardwareAddr(mac[:]).String()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer neighbour table: %q, want %v", out, net.HardwareAddr(mac[:]))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIntegrationSolicitedNodeGroups: the director's socket joins each IPv6 VIP's
// solicited-node group on each interface (the kernel lists it in /proc/net/igmp6), leaves
// groups of VIPs that went, and leaves all on close.
func TestIntegrationSolicitedNodeGroups(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	p := netnstest.NSPrefix(t)
	a, b := netnstest.NewNS(t, p+"-a"), netnstest.NewNS(t, p+"-b")
	netnstest.VethPair(t, a, "a0", b, "b0")
	groups := func() string {
		return netnstest.Sh(t, "ip", "netns", "exec", a, "cat", "/proc/net/igmp6")
	}
	var g *ndGroups
	var ix int
	netnstest.MustInNS(t, a, func() error {
		ifi, err := net.InterfaceByName("a0")
		if err != nil {
			return err
		}
		ix = ifi.Index
		g, err = newNDGroups()
		if err != nil {
			return err
		}
		return g.set([]int{ix}, []netip.Addr{netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("2001:db8::1:10"), netip.MustParseAddr("198.18.0.1")})
	})
	defer g.close()
	if out := groups(); strings.Count(out, "ff0200000000000000000001ff010010") != 1 || !strings.Contains(out, "ff0200000000000000000001ff000010") {
		t.Fatalf("groups after set:\n%s", out)
	}
	if err := g.set([]int{ix}, []netip.Addr{netip.MustParseAddr("2001:db8::1:10")}); err != nil {
		t.Fatal(err)
	}
	if out := groups(); strings.Contains(out, "ff0200000000000000000001ff000010") || !strings.Contains(out, "ff0200000000000000000001ff010010") {
		t.Fatalf("groups after a VIP went:\n%s", out)
	}
	g.close()
	if out := groups(); strings.Contains(out, "ff0200000000000000000001ff010010") {
		t.Fatalf("groups after close:\n%s", out)
	}
}
