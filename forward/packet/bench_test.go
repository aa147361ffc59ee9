package packet

import (
	"testing"

	"github.com/google/gopacket/layers"
)

// benchFrame returns a TCP frame of exactly size bytes (size >= 54).
func benchFrame(tb testing.TB, size int) []byte {
	f := build(tb, defaultSpec(layers.IPProtocolTCP, size-54))
	if len(f) != size {
		tb.Fatalf("frame is %d bytes, want %d", len(f), size)
	}
	return f
}

var benchSizes = []struct {
	name string
	size int
}{{"64", 64}, {"1400", 1400}}

// TestHotPathAllocs asserts that the per-packet functions allocate nothing.
func TestHotPathAllocs(t *testing.T) {
	f := benchFrame(t, 1400)
	pf := func() []byte {
		s := defaultSpec(layers.IPProtocolUDP, 100)
		s.vlan, s.partial = true, true
		return build(t, s)
	}()
	arp := make([]byte, 60)
	BuildGratuitousARP(arp, macA, vip)
	out := make([]byte, 2048)
	var p Packet
	var a ARP
	var vh VnetHdr
	vhb := make([]byte, VnetHdrLen)
	allocs := testing.AllocsPerRun(1000, func() {
		ParseL3(f, &p)
		ParseL4(f, &p)
		f[22] = 64 // keep the TTL from running out; checksum fixed below
		SetEthernet(f, &p, macC, macD)
		RewriteDst(f, &p, false, realSrv, 8080)
		RewriteSrc(f, &p, false, vip, 80)
		EncapIPIP(out, f[p.L3:p.L3+p.IPLen], macC, macD, vip, realSrv, 1)
		BuildICMPError(out, f, &p, 3, 4, 1480, vip, macC, macD)
		fixIP(f, 14)

		ParseL3(pf, &p)
		ParseL4(pf, &p)
		vh = VnetHdr{Flags: VnetNeedsCsum, CsumStart: uint16(p.L4), CsumOffset: UDPCsumOff}
		vh.Encode(vhb)
		vh.Decode(vhb)
		vh.Check(&p, len(pf))
		RewriteDst(pf, &p, true, realSrv, 8080)
		FinishChecksum(pf[:p.L3+p.IPLen], &vh)

		ParseL3(arp, &p)
		ParseARP(arp, &p, &a)
		BuildARPReply(out, &a, macB)
		BuildGratuitousARP(out, macB, vip)
		_ = FaultFragment.String()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}

func BenchmarkParse(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			f := benchFrame(b, bs.size)
			var p Packet
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			for b.Loop() {
				if ParseL3(f, &p) != ClassIPv4 || ParseL4(f, &p) != FaultNone {
					b.Fatal("parse")
				}
			}
		})
	}
}

func BenchmarkRewriteDR(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			f := benchFrame(b, bs.size)
			var p Packet
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			for b.Loop() {
				if ParseL3(f, &p) != ClassIPv4 || ParseL4(f, &p) != FaultNone || SetEthernet(f, &p, macC, macD) != 0 {
					b.Fatal("dr")
				}
			}
		})
	}
}

func BenchmarkRewriteNAT(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			f := benchFrame(b, bs.size)
			var p Packet
			// Rewrite once to the target, then restore TTL and checksum, so
			// each iteration does the full work on an identical frame.
			ParseL3(f, &p)
			ParseL4(f, &p)
			RewriteDst(f, &p, false, realSrv, 8080)
			f[22] = 64
			fixIP(f, 14)
			var saved [4]byte
			copy(saved[:], f[22:26])
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			for b.Loop() {
				if ParseL3(f, &p) != ClassIPv4 || ParseL4(f, &p) != FaultNone || RewriteDst(f, &p, false, realSrv, 8080) != FaultNone {
					b.Fatal("nat")
				}
				copy(f[22:26], saved[:])
			}
		})
	}
}

func BenchmarkEncapIPIP(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			f := benchFrame(b, bs.size)
			out := make([]byte, 2048)
			inner := f[14:]
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			for b.Loop() {
				if EncapIPIP(out, inner, macC, macD, vip, realSrv, 7) == 0 {
					b.Fatal("encap")
				}
			}
		})
	}
}

func BenchmarkFinishChecksum(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			f := benchFrame(b, bs.size)
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			for b.Loop() {
				vh := VnetHdr{Flags: VnetNeedsCsum, CsumStart: 34, CsumOffset: TCPCsumOff}
				if !FinishChecksum(f, &vh) {
					b.Fatal("finish")
				}
			}
		})
	}
}
