package shield

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/forward/internal/netnstest"
)

// TestIntegrationShieldIPv6 is the VIP and NAT-reply shield for IPv6, beside IPv4 entries,
// with each shield (nftables, tcx): B's kernel stops forwarding datagrams to an IPv6 VIP and
// replies from an IPv6 NAT real's service port, AF_PACKET still sees them, and other IPv6
// traffic is forwarded. Lab addresses go without duplicate address detection (nodad).
func TestIntegrationShieldIPv6(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	for _, mode := range []config.ShieldMode{config.ShieldNftables, config.ShieldTCX} {
		t.Run("shield="+mode.String(), func(t *testing.T) { testShieldIPv6(t, mode) })
	}
}

func testShieldIPv6(t *testing.T, mode config.ShieldMode) {
	l := newShieldLab(t)
	for _, c := range [][]string{
		{l.a, "addr", "add", "2001:db8:20::1/64", "dev", "a0", "nodad"},
		{l.a, "route", "add", "2001:db8:21::/64", "via", "2001:db8:20::2"},
		{l.b, "addr", "add", "2001:db8:20::2/64", "dev", "b0", "nodad"},
		{l.b, "addr", "add", "2001:db8:23::1/64", "dev", "b1", "nodad"},
		{l.c, "addr", "add", "2001:db8:23::2/64", "dev", "c0", "nodad"},
		{l.b, "route", "add", "2001:db8:21::/64", "via", "2001:db8:23::2"},
	} {
		netnstest.Sh(t, append([]string{"ip", "-n", c[0]}, c[1:]...)...)
	}
	netnstest.Sysctl(t, l.b, "net.ipv6.conf.all.forwarding=1")
	forwarded := func(src, dst string) uint64 {
		before := netnstest.Nstat(t, l.b, "Ip6OutForwDatagrams")
		netnstest.SendUDP(t, l.a, src, dst, 5)
		time.Sleep(50 * time.Millisecond)
		return netnstest.Nstat(t, l.b, "Ip6OutForwDatagrams") - before
	}
	// The route to the sink resolves once; then the counter moves.
	deadline := time.Now().Add(5 * time.Second)
	for forwarded("[2001:db8:20::1]:0", "[2001:db8:21::10]:9") < 5 {
		if time.Now().After(deadline) {
			t.Fatal("without shield: IPv6 is not forwarded")
		}
	}

	s := newShieldIn(t, l.b, mode, "b0")
	vip := netip.MustParseAddr("2001:db8:21::10")
	nr := NATReal{V6: true, Addr6: netip.MustParseAddr("2001:db8:20::1").As16(), Proto: unix.IPPROTO_UDP, Port: 8080}
	if err := s.UpdateAddrs([]netip.Addr{vip, netip.MustParseAddr("198.18.1.10"), vip}, []NATReal{nr, {Addr: netnstest.Addr4("198.18.0.1"), Proto: unix.IPPROTO_UDP, Port: 53}}); err != nil {
		t.Fatal(err)
	}
	tap := netnstest.ListenAll(t, l.b, "b0", unix.ETH_P_ALL)
	if n := forwarded("[2001:db8:20::1]:0", "[2001:db8:21::10]:9"); n != 0 {
		t.Errorf("IPv6 VIP: Ip6OutForwDatagrams grew by %d, want 0", n)
	}
	if !netnstest.AwaitFrame(tap, time.Second, func(f []byte) bool {
		return len(f) >= 54 && binary.BigEndian.Uint16(f[12:]) == unix.ETH_P_IPV6 && [16]byte(f[38:54]) == vip.As16()
	}) {
		t.Error("IPv6 VIP: AF_PACKET saw no datagram")
	}
	if n := forwarded("[2001:db8:20::1]:8080", "[2001:db8:21::50]:40000"); n != 0 {
		t.Errorf("IPv6 NAT reply: Ip6OutForwDatagrams grew by %d, want 0", n)
	}
	if n := forwarded("[2001:db8:20::1]:8081", "[2001:db8:21::50]:40000"); n < 5 {
		t.Errorf("other port: Ip6OutForwDatagrams grew by %d, want >= 5", n)
	}
	if n := forwarded("[2001:db8:20::1]:0", "[2001:db8:21::11]:9"); n < 5 {
		t.Errorf("not a VIP: Ip6OutForwDatagrams grew by %d, want >= 5", n)
	}
	// IPv4 entries of the same update work as before.
	if n := l.forwarded(t, "198.18.0.1:0", "198.18.1.10:9"); n != 0 {
		t.Errorf("IPv4 VIP beside IPv6: IpForwDatagrams grew by %d", n)
	}
}
