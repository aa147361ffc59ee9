package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary packets to ParseIPv4 and Decode: no panic, and an accepted
// advert re-encodes to a message that decodes to the same advert.
func FuzzDecode(f *testing.F) {
	src := netip.MustParseAddr("198.18.5.1")
	for _, v := range []uint8{2, 3} {
		f.Add(AppendPacket(nil, &Advert{Version: v, VRID: 51, Priority: 100, Interval: time.Second,
			Addrs: []netip.Addr{netip.MustParseAddr("198.18.5.100")}}, src, Group, 1))
	}
	f.Add([]byte{0x45, 0, 0, 20})
	f.Fuzz(func(t *testing.T, p []byte) {
		var h IPv4
		m, d := ParseIPv4(p, &h)
		if d != DropNone {
			return
		}
		var a Advert
		if Decode(m, h.Src, h.Dst, &a) != DropNone {
			return
		}
		if a.Checksum == ChecksumPseudoGroup {
			a.Checksum = ChecksumPseudo
		}
		out := AppendMessage(nil, &a, h.Src, h.Dst)
		var b Advert
		if d := Decode(out, h.Src, h.Dst, &b); d != DropNone {
			t.Fatalf("re-encoded advert does not decode: %v", d)
		}
		if b.Version != a.Version || b.VRID != a.VRID || b.Priority != a.Priority || b.Interval != a.Interval ||
			len(b.Addrs) != len(a.Addrs) || b.Auth != a.Auth {
			t.Fatalf("round trip: %+v != %+v", b, a)
		}
	})
}
