package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkDecode checks an advert (header, checksum, addresses) of each family.
func BenchmarkDecode(b *testing.B) {
	for _, tt := range []struct {
		name     string
		src, vip netip.Addr
	}{
		{"ipv4", netip.MustParseAddr("198.18.5.1"), netip.MustParseAddr("198.18.5.100")},
		{"ipv6", netip.MustParseAddr("fe80::ff:fe00:501"), netip.MustParseAddr("2001:2:0:5::100")},
	} {
		b.Run(tt.name, func(b *testing.B) {
			dst := GroupFor(tt.src)
			m := AppendMessage(nil, &Advert{Version: 3, VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{tt.vip}}, tt.src, dst)
			a := Advert{Addrs: make([]netip.Addr, 0, MaxAddrs)}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if Decode(m, tt.src, dst, &a) != DropNone {
					b.Fatal("drop")
				}
			}
		})
	}
}
