package sched

import (
	"net/netip"
	"testing"
)

func TestMaskAddr6(t *testing.T) {
	a := netip.MustParseAddr("2001:db8:1234:5678:9abc:def0:1357:2468").As16()
	for _, tt := range []struct {
		bits int
		want string
	}{
		{-1, "::"}, {0, "::"}, {16, "2001::"}, {35, "2001:db8::"}, {36, "2001:db8:1000::"}, {64, "2001:db8:1234:5678::"},
		{127, "2001:db8:1234:5678:9abc:def0:1357:2468"}, {128, "2001:db8:1234:5678:9abc:def0:1357:2468"}, {200, "2001:db8:1234:5678:9abc:def0:1357:2468"},
	} {
		if got := netip.AddrFrom16(MaskAddr6(a, tt.bits)); got != netip.MustParseAddr(tt.want) {
			t.Errorf("MaskAddr6 /%d = %v, want %s", tt.bits, got, tt.want)
		}
		// The reference: the prefix netip computes.
		if p, err := netip.AddrFrom16(a).Prefix(min(max(tt.bits, 0), 128)); err != nil || p.Addr().As16() != MaskAddr6(a, tt.bits) {
			t.Errorf("/%d disagrees with netip: %v %v", tt.bits, p, err)
		}
	}
}

func TestFold6(t *testing.T) {
	a := netip.MustParseAddr("2001:db8::1").As16()
	if got, want := Fold6(a), [4]byte{0x20, 0x01, 0x0d, 0xb9}; got != want {
		t.Fatalf("Fold6 = %v, want %v", got, want)
	}
}
