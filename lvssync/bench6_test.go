package lvssync

import (
	"net/netip"
	"testing"
)

// BenchmarkRecords encodes and decodes full 1472-byte messages of IPv4 and of IPv6 records:
// the cost per record of each family (ns/op is per record; ReportAllocs must stay at 0).
func BenchmarkRecords(b *testing.B) {
	for _, fam := range []string{"ipv4", "ipv6"} {
		c := Conn{Protocol: ProtoTCP, Flags: FlagDRoute, State: TCPEstablished, Timeout: 900, CPort: 40000, VPort: 80, DPort: 80,
			Client: netip.MustParseAddr("198.18.0.1"), VIP: netip.MustParseAddr("198.18.100.1"), Real: netip.MustParseAddr("198.18.200.2")}
		if fam == "ipv6" {
			c.Client, c.VIP, c.Real = netip.MustParseAddr("2001:2:0:c7::1"), netip.MustParseAddr("2001:2:0:c7:100::1"), netip.MustParseAddr("2001:2:0:c7:200::2")
		}
		b.Run("encode/"+fam, func(b *testing.B) {
			bl := NewBuilder(1472, 1, false)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if !bl.Add(&c) {
					bl.Reset()
					bl.Add(&c)
				}
			}
		})
		b.Run("decode/"+fam, func(b *testing.B) {
			bl := NewBuilder(1472, 1, false)
			for bl.Add(&c) {
			}
			msg := bl.Bytes()
			h, _ := ParseHeader(msg)
			per := int(h.Count)
			var d Conn
			fn := func(*Conn, Reason) {}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += per {
				Decode(msg, h, &d, fn)
			}
		})
	}
}
