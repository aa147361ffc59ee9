package packet

import (
	"testing"

	"github.com/google/gopacket/layers"
)

// IPv6 beside the IPv4 benchmarks of bench_test.go: the same frame sizes and steps, so the
// cost per packet of the family can be read side by side.

// benchFrame6 returns an IPv6 TCP frame of size bytes, with ext extension headers (hop-by-hop,
// destination options) when ext is set; at least the headers (74 bytes, 98 with ext), so
// the "64" size is the smallest IPv6 TCP frame.
func benchFrame6(tb testing.TB, size int, ext bool) []byte {
	s := defaultSpec6(layers.IPProtocolTCP, 0)
	over := 74
	if ext {
		s.ext, s.extProto = [][]byte{extHBH, extDst}, []uint8{0, 60}
		over += len(extHBH) + len(extDst)
	}
	size = max(size, over)
	s.payload = make([]byte, size-over)
	f := build6(tb, s)
	if len(f) != size {
		tb.Fatalf("frame is %d bytes, want %d", len(f), size)
	}
	return f
}

func BenchmarkParse6(b *testing.B) {
	for _, bs := range benchSizes {
		for _, ext := range []bool{false, true} {
			name := bs.name
			if ext {
				name += "/ext"
			}
			b.Run(name, func(b *testing.B) {
				f := benchFrame6(b, bs.size, ext)
				var p Packet
				b.SetBytes(int64(len(f)))
				b.ReportAllocs()
				for b.Loop() {
					if ParseL3(f, &p) != ClassIPv6 || ParseL4(f, &p) != FaultNone {
						b.Fatal("parse")
					}
				}
			})
		}
	}
}

func BenchmarkRewriteDR6(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			f := benchFrame6(b, bs.size, false)
			var p Packet
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			for b.Loop() {
				f[21] = 64 // the hop limit, which no checksum covers
				if ParseL3(f, &p) != ClassIPv6 || ParseL4(f, &p) != FaultNone || DecHopLimit(f, &p) != FaultNone ||
					SetEthernet(f, &p, macC, macD) != 0 {
					b.Fatal("dr")
				}
			}
		})
	}
}

func BenchmarkRewriteNAT6(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			f := benchFrame6(b, bs.size, false)
			var p Packet
			// Rewrite once to the target, so each iteration does the full work on an
			// identical frame (the address and port are already the new ones).
			ParseL3(f, &p)
			ParseL4(f, &p)
			RewriteDst6(f, &p, false, real6, 8080)
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			for b.Loop() {
				f[21] = 64
				if ParseL3(f, &p) != ClassIPv6 || ParseL4(f, &p) != FaultNone || RewriteDst6(f, &p, false, real6, 8080) != FaultNone {
					b.Fatal("nat")
				}
			}
		})
	}
}

func BenchmarkEncapIP6(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			f := benchFrame6(b, bs.size, false)
			out := make([]byte, 2048)
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			for b.Loop() {
				if EncapIP6(out, f[14:], macC, macD, vip6, real6) == 0 {
					b.Fatal("encap")
				}
			}
		})
	}
}

func BenchmarkNDP(b *testing.B) {
	f := nsFrame(b, client6, vip6)
	out := make([]byte, 128)
	var p Packet
	var ns NS
	b.ReportAllocs()
	for b.Loop() {
		if ParseL3(f, &p) != ClassIPv6 || ParseL4(f, &p) != FaultNone || !ParseNS(f, &p, &ns) || BuildNAReply(out, &ns, macD) == 0 {
			b.Fatal("ndp")
		}
	}
}
