package realserver

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// ip6 builds an IPv6 packet of n payload bytes and next header proto.
func ip6(n int, proto byte) []byte {
	b := make([]byte, 40+n)
	b[0], b[6], b[7] = 0x60, proto, 64
	binary.BigEndian.PutUint16(b[4:6], uint16(n))
	return b
}

// sixIn4 wraps inner in an outer IPv4 header of protocol 41.
func sixIn4(inner []byte) []byte {
	b := append(make([]byte, 20), inner...)
	b[0], b[9] = 0x45, 41
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	return b
}

func TestInnerPacket6(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		ok   bool
		csum bool
	}{
		{"6in4", sixIn4(ip6(100, 6)), true, false},
		{"6in4 gro merged", sixIn4(ip6(3000, 6)), true, true},
		{"6in4 carrying ipv4", sixIn4(ipip(100, 6)[20:]), false, false},
		{"ipip carrying ipv6", func() []byte { b := sixIn4(ip6(100, 6)); b[9] = 4; return b }(), false, false},
		{"6in4 inner length", func() []byte { b := sixIn4(ip6(100, 6)); b[25] = 99; return b }(), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end, hdr, ok := innerPacket(tt.b, 1480)
			if ok != tt.ok {
				t.Fatalf("ok %v", ok)
			}
			if ok && (start != 20 || end != len(tt.b) || (hdr[0] == 1) != tt.csum ||
				tt.csum && (binary.LittleEndian.Uint16(hdr[6:]) != 40 || binary.LittleEndian.Uint16(hdr[8:]) != 16)) {
				t.Fatalf("inner [%d:%d] hdr %x", start, end, hdr)
			}
		})
	}
	// AF_INET6 sockets hand over the inner packet alone (6in6, 4in6).
	for _, in := range [][]byte{ip6(50, 17), ipip(50, 17)[20:]} {
		if _, ok := innerHeader(in, 1480); !ok {
			t.Fatalf("inner %x refused", in[:1])
		}
	}
	if _, ok := innerHeader(ip6(50, 17)[:60], 1480); ok {
		t.Fatal("a truncated IPv6 packet accepted")
	}
}

func FuzzInnerHeader(f *testing.F) {
	f.Add(ip6(100, 6), 1480)
	f.Add(ip6(3000, 17), 1480)
	f.Add(ipip(100, 6)[20:], 1480)
	f.Fuzz(func(t *testing.T, b []byte, mtu int) {
		hdr, ok := innerHeader(b, mtu)
		if ok && hdr[0] == 1 && int(binary.LittleEndian.Uint16(hdr[6:]))+int(binary.LittleEndian.Uint16(hdr[8:]))+2 > len(b) {
			t.Fatalf("checksum offsets %x beyond %d bytes", hdr, len(b))
		}
	})
}

// TestDeliverHeadroomAllocs runs the AF_INET6 per-packet step into a pipe: the TUN device
// gets the virtio_net_hdr and the inner packet, nothing allocated.
func TestDeliverHeadroomAllocs(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	d := &decapper{tun: p[1], mtu: 1480}
	pkt := append(make([]byte, vnetHdrLen), ip6(1000, 6)...)
	buf := make([]byte, 4096)
	out := make([]byte, 4096)
	allocs := testing.AllocsPerRun(1000, func() {
		b := append(buf[:0], pkt...)
		d.deliverHeadroom(b)
		_, _ = unix.Read(p[0], out)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet", allocs)
	}
	if d.stats.packets.Load() == 0 || d.stats.malformed.Load() != 0 || out[vnetHdrLen]>>4 != 6 {
		t.Fatalf("packets %d malformed %d", d.stats.packets.Load(), d.stats.malformed.Load())
	}
}
