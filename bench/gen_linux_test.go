package bench

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// TestFrameChecksums checks setFlow's incremental checksums against a full
// computation for every frame kind and a spread of flows.
func TestFrameChecksums(t *testing.T) {
	for _, p := range []GenProto{GenUDP, GenSYN, GenACK} {
		for _, size := range []int{64, 65, 1400, 9018} {
			cfg := GenConfig{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
				Dst: netip.MustParseAddrPort("198.18.1.100:9000"), Proto: p, Size: size, Flows: 1 << 20}
			tmpl := buildFrame(cfg)
			f := append([]byte(nil), tmpl.b...)
			for _, i := range []int{0, 1, 4095, 4096, 123456, 1<<20 - 1} {
				tmpl.setFlow(f, i)
				if len(f) != size-4 {
					t.Fatalf("%v %d: frame %d bytes", p, size, len(f))
				}
				ip := f[14:34]
				if fold(sum16(ip)) != 0xffff {
					t.Errorf("%v %d flow %d: bad IPv4 header checksum", p, size, i)
				}
				l4 := f[34:]
				ps := sum16(ip[12:20]) + uint32(ip[9]) + uint32(len(l4)) + sum16(l4)
				if fold(ps) != 0xffff {
					t.Errorf("%v %d flow %d: bad L4 checksum", p, size, i)
				}
				src := netip.AddrFrom4([4]byte(ip[12:16]))
				if !netip.MustParsePrefix("198.19.128.0/20").Contains(src) || binary.BigEndian.Uint16(l4) < genSrcPort0 {
					t.Errorf("flow %d: source %v:%d outside the generator space", i, src, binary.BigEndian.Uint16(l4))
				}
			}
		}
	}
}
