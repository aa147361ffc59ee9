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

// TestFrameChecksums6 checks the IPv6 frames' checksums (pseudo-header included) against a
// full computation, and that the frames parse as the director will parse them.
func TestFrameChecksums6(t *testing.T) {
	dst := netip.MustParseAddrPort("[2001:2:0:1::100]:9000")
	for _, p := range []GenProto{GenUDP, GenSYN, GenACK} {
		for _, size := range []int{MinFrameSize(dst.Addr(), p), 79, 1400, 9018} {
			cfg := GenConfig{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
				Dst: dst, Proto: p, Size: size, Flows: 1 << 20}
			tmpl := buildFrame(cfg)
			f := append([]byte(nil), tmpl.b...)
			for _, i := range []int{0, 1, 4095, 4096, 123456, 1<<20 - 1} {
				tmpl.setFlow6(f, i)
				if len(f) != size-4 || binary.BigEndian.Uint16(f[12:]) != 0x86dd {
					t.Fatalf("%v %d: frame %d bytes", p, size, len(f))
				}
				ip := f[14:54]
				l4 := f[54:]
				if int(binary.BigEndian.Uint16(ip[4:])) != len(l4) {
					t.Errorf("%v %d: payload length %d, want %d", p, size, binary.BigEndian.Uint16(ip[4:]), len(l4))
				}
				ps := sum16(ip[8:40]) + uint32(len(l4)) + uint32(ip[6]) + sum16(l4)
				if fold(ps) != 0xffff {
					t.Errorf("%v %d flow %d: bad L4 checksum", p, size, i)
				}
				src := netip.AddrFrom16([16]byte(ip[8:24]))
				if !netip.MustParsePrefix("2001:2:0:1128::/116").Contains(src) || binary.BigEndian.Uint16(l4) < genSrcPort0 {
					t.Errorf("flow %d: source [%v]:%d outside the generator space", i, src, binary.BigEndian.Uint16(l4))
				}
			}
		}
	}
	if MinFrameSize(netip.MustParseAddr("198.18.1.100"), GenUDP) != 64 || MinFrameUDP6 != 66 || MinFrameTCP6 != 78 {
		t.Error("minimum frame sizes")
	}
}
