package egress

import (
	"net/netip"
	"testing"
	"time"

	"github.com/uvs-project/uvs/forward/internal/netnstest"
)

// TestIntegrationResolverIPv6 resolves an on-link IPv6 real server and one behind a router
// (lab addresses added with nodad, so duplicate address detection cannot delay them): the
// source is the device's global address, the next hop the router, the MAC from neighbour
// discovery, which the resolver starts itself.
func TestIntegrationResolverIPv6(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	l := newEgressLab(t)
	for _, c := range [][]string{
		{l.d, "addr", "add", "2001:db8:10::1/64", "dev", "d0", "nodad"},
		{l.d, "addr", "add", "2001:db8:14::1/64", "dev", "d1", "nodad"},
		{l.d, "route", "add", "2001:db8:15::/64", "via", "2001:db8:14::2"},
		{l.r1, "addr", "add", "2001:db8:10::2/64", "dev", "r0", "nodad"},
		{l.g, "addr", "add", "2001:db8:14::2/64", "dev", "g0", "nodad"},
	} {
		netnstest.Sh(t, append([]string{"ip", "-n", c[0]}, c[1:]...)...)
	}
	r, _ := startResolver(t, l.d)
	real1, real2 := netip.MustParseAddr("2001:db8:10::2"), netip.MustParseAddr("2001:db8:15::2")
	r.SetAddrs([]netip.Addr{real1, real2, netip.MustParseAddr("198.18.0.2")})
	await := func(a netip.Addr) Egress {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			e := r.LookupAddr(a)
			if e.Valid {
				return e
			}
			if time.Now().After(deadline) {
				t.Fatalf("Lookup(%v) = %+v", a, e)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	e := await(real1)
	if e.Ifname != "d0" || e.SrcAddr6 != netip.MustParseAddr("2001:db8:10::1").As16() || e.Gateway6 != ([16]byte{}) ||
		e.DstMAC != netnstest.MACOf(t, l.r1, "r0") || e.SrcAddr != ([4]byte{}) {
		t.Fatalf("on-link: %+v", e)
	}
	e = await(real2)
	if e.Ifname != "d1" || e.Gateway6 != netip.MustParseAddr("2001:db8:14::2").As16() || e.DstMAC != netnstest.MACOf(t, l.g, "g0") ||
		e.SrcAddr6 != netip.MustParseAddr("2001:db8:14::1").As16() {
		t.Fatalf("via router: %+v", e)
	}
	if e := await(netip.MustParseAddr("198.18.0.2")); e.SrcAddr != netnstest.Addr4("198.18.0.1") {
		t.Fatalf("IPv4 beside IPv6: %+v", e)
	}
	if got := r.Snapshot(); len(got) != 1 {
		t.Fatalf("Snapshot has %d IPv4 targets, want 1", len(got))
	}
}
