package realserver

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/config"
)

// ipip builds an IPIP datagram around an inner IPv4 packet of n payload bytes and protocol.
func ipip(n int, proto byte) []byte {
	b := make([]byte, 40+n)
	b[0], b[9] = 0x45, 4
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	in := b[20:]
	in[0], in[9] = 0x45, proto
	binary.BigEndian.PutUint16(in[2:4], uint16(len(in)))
	return b
}

func TestInnerPacket(t *testing.T) {
	tests := []struct {
		name  string
		b     func() []byte
		ok    bool
		csum  bool
		start int
	}{
		{"plain", func() []byte { return ipip(100, 6) }, true, false, 20},
		{"gro merged tcp", func() []byte { return ipip(3000, 6) }, true, true, 20},
		{"not ipip", func() []byte { b := ipip(100, 6); b[9] = 6; return b }, false, false, 0},
		{"outer length beyond buffer", func() []byte { b := ipip(100, 6); return b[:100] }, false, false, 0},
		{"inner length mismatch", func() []byte { b := ipip(100, 6); b[23] = 10; return b }, false, false, 0},
		{"inner not v4", func() []byte { b := ipip(100, 6); b[20] = 0x65; return b }, false, false, 0},
		{"short", func() []byte { return ipip(100, 6)[:30] }, false, false, 0},
		{"outer ihl too small", func() []byte { b := ipip(100, 6); b[0] = 0x44; return b }, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b()
			start, end, hdr, ok := innerPacket(b, 1480)
			if ok != tt.ok {
				t.Fatalf("ok %v", ok)
			}
			if !ok {
				return
			}
			if start != tt.start || end != len(b) {
				t.Fatalf("inner [%d:%d] of %d", start, end, len(b))
			}
			if (hdr[0] == 1) != tt.csum || tt.csum && (binary.LittleEndian.Uint16(hdr[6:]) != 20 || binary.LittleEndian.Uint16(hdr[8:]) != 16) {
				t.Fatalf("vnet hdr %x", hdr)
			}
		})
	}
}

func FuzzInnerPacket(f *testing.F) {
	f.Add(ipip(100, 6), 1480)
	f.Add(ipip(3000, 17), 1480)
	f.Fuzz(func(t *testing.T, b []byte, mtu int) {
		start, end, _, ok := innerPacket(b, mtu)
		if ok && (start < 20 || start > end || end > len(b) || int(binary.BigEndian.Uint16(b[start+2:])) != end-start) {
			t.Fatalf("inner [%d:%d] of %d", start, end, len(b))
		}
	})
}

// TestDeliverAllocs runs the per-packet step into a pipe instead of a TUN device.
func TestDeliverAllocs(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	d := &decapper{tun: p[1], mtu: 1480}
	pkt := ipip(1000, 6)
	buf := make([]byte, 4096)
	allocs := testing.AllocsPerRun(1000, func() {
		b := append(buf[:0], pkt...)
		d.deliver(b)
		_, _ = unix.Read(p[0], buf[len(pkt):])
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet", allocs)
	}
	if d.stats.packets.Load() == 0 || d.stats.malformed.Load() != 0 {
		t.Fatalf("packets %d malformed %d", d.stats.packets.Load(), d.stats.malformed.Load())
	}
}

func TestParse(t *testing.T) {
	if v, err := ParseVIPs("198.18.0.1, 198.18.0.2, 2001:db8::1"); err != nil || len(v) != 3 || !v[2].Is6() {
		t.Fatalf("%v %v", v, err)
	}
	for _, bad := range []string{"", "x", "::ffff:198.18.0.1", "fe80::1%eth0", "198.18.0.1,nope"} {
		if _, err := ParseVIPs(bad); err == nil {
			t.Errorf("ParseVIPs(%q) accepted", bad)
		}
	}
	if m, err := ParseMethod("tun"); err != nil || m != config.TUN || m.String() != "tun" {
		t.Fatal(m, err)
	}
	if _, err := ParseMethod("nat"); err == nil {
		t.Fatal("nat accepted: a NAT real server needs no preparation but a route")
	}
	if d, err := ParseDecap("user"); err != nil || d != DecapUser {
		t.Fatal(d, err)
	}
}
