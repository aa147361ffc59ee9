package vrrp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pcapFrames returns the frames of a classic pcap file (Ethernet link type).
func pcapFrames(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		t.Fatalf("%s: not a little-endian classic pcap", path)
	}
	var out [][]byte
	for o := 24; o+16 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[o+8:]))
		o += 16
		if o+n > len(b) {
			t.Fatalf("%s: truncated record", path)
		}
		out = append(out, b[o:o+n])
		o += n
	}
	return out
}

// goldenAdverts returns the IPv4 packets of protocol 112 in a capture.
func goldenAdverts(t *testing.T, name string) [][]byte {
	var out [][]byte
	for _, f := range pcapFrames(t, filepath.Join("testdata", "keepalived-"+name+".pcap")) {
		if len(f) > 34 && f[12] == 0x08 && f[13] == 0x00 && f[23] == Protocol {
			out = append(out, f[14:])
		}
	}
	if len(out) < 2 {
		t.Fatalf("%s: %d adverts, want at least 2", name, len(out))
	}
	return out
}

func TestGoldenKeepalived(t *testing.T) {
	vip := netip.MustParseAddr("198.18.5.100")
	src := netip.MustParseAddr("198.18.5.1")
	peer := netip.MustParseAddr("198.18.5.2")
	var secret [8]byte
	copy(secret[:], "secret1")
	tests := []struct {
		name     string
		ver      uint8
		prio     uint8
		interval time.Duration
		auth     uint8
		pass     [8]byte
		dst      netip.Addr
		sum      Checksum
		exact    bool // our encoder must give the same bytes
	}{
		{"v2", 2, 100, time.Second, AuthNone, [8]byte{}, Group, ChecksumPlain, true},
		{"v2pass", 2, 100, time.Second, AuthPass, secret, Group, ChecksumPlain, true},
		{"v2prio", 2, 200, 2 * time.Second, AuthNone, [8]byte{}, Group, ChecksumPlain, true},
		{"v3", 3, 100, time.Second, AuthNone, [8]byte{}, Group, ChecksumPseudo, true},
		{"v3uni", 3, 100, time.Second, AuthNone, [8]byte{}, peer, ChecksumPseudo, true},
		{"v3old", 3, 100, time.Second, AuthNone, [8]byte{}, peer, ChecksumPseudoGroup, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkts := goldenAdverts(t, tt.name)
			for i, p := range pkts {
				var h IPv4
				m, d := ParseIPv4(p, &h)
				if d != DropNone {
					t.Fatalf("packet %d: ParseIPv4: %v", i, d)
				}
				if h.TTL != TTL || h.TOS != TOS || h.Src != src || h.Dst != tt.dst {
					t.Fatalf("packet %d: header %+v", i, h)
				}
				var a Advert
				if d := Decode(m, h.Src, h.Dst, &a); d != DropNone {
					t.Fatalf("packet %d: Decode: %v", i, d)
				}
				// The last advert is the priority 0 one keepalived sends on SIGTERM.
				wantPrio := tt.prio
				if i == len(pkts)-1 {
					wantPrio = 0
				}
				if a.Version != tt.ver || a.VRID != 51 || a.Priority != wantPrio || a.Interval != tt.interval ||
					a.AuthType != tt.auth || a.Auth != tt.pass || a.Checksum != tt.sum ||
					len(a.Addrs) != 1 || a.Addrs[0] != vip {
					t.Fatalf("packet %d: decoded %+v", i, a)
				}
				if !tt.exact {
					continue
				}
				id := binary.BigEndian.Uint16(p[4:6])
				got := AppendPacket(nil, &a, h.Src, h.Dst, id)
				if !bytes.Equal(got, p) {
					t.Fatalf("packet %d: encode\n got %x\nwant %x", i, got, p)
				}
			}
		})
	}
}

// TestChecksumVariants checks that a v3 advert verifies in each variant and that a flipped
// bit fails in all of them.
func TestChecksumVariants(t *testing.T) {
	src := netip.MustParseAddr("198.18.5.1")
	peer := netip.MustParseAddr("198.18.5.2")
	for _, tt := range []struct {
		name string
		dst  netip.Addr
		send Checksum
	}{
		{"pseudo multicast", Group, ChecksumPseudo},
		{"plain multicast", Group, ChecksumPlain},
		{"pseudo unicast", peer, ChecksumPseudo},
		{"plain unicast", peer, ChecksumPlain},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := Advert{Version: 3, VRID: 7, Priority: 150, Interval: 50 * time.Millisecond,
				Addrs: []netip.Addr{netip.MustParseAddr("198.18.5.100"), netip.MustParseAddr("198.18.6.1")}, Checksum: tt.send}
			m := AppendMessage(nil, &a, src, tt.dst)
			var b Advert
			if d := Decode(m, src, tt.dst, &b); d != DropNone || b.Checksum != tt.send || b.Interval != a.Interval || len(b.Addrs) != 2 {
				t.Fatalf("Decode = %v, %+v", d, b)
			}
			m[2] ^= 1
			if d := Decode(m, src, tt.dst, &b); d != DropChecksum {
				t.Fatalf("corrupted: Decode = %v, want checksum", d)
			}
		})
	}
}

func TestDecodeDrops(t *testing.T) {
	src := netip.MustParseAddr("198.18.5.1")
	good := AppendMessage(nil, &Advert{Version: 2, VRID: 1, Priority: 100, Interval: time.Second,
		Addrs: []netip.Addr{netip.MustParseAddr("198.18.5.100")}}, src, Group)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		m    []byte
		want Drop
	}{
		{"good", good, DropNone},
		{"empty", nil, DropShort},
		{"header only", good[:8], DropShort},
		{"no auth data", good[:12], DropShort},
		{"count too big", mod(func(b []byte) []byte { b[3] = 5; return b }), DropShort},
		{"version 1", mod(func(b []byte) []byte { b[0] = 0x11; return b }), DropVersion},
		{"type 2", mod(func(b []byte) []byte { b[0] = 0x22; return b }), DropType},
		{"checksum", mod(func(b []byte) []byte { b[6] ^= 0xff; return b }), DropChecksum},
		{"trailing padding", mod(func(b []byte) []byte { return append(b, 0, 0) }), DropNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Advert
			if d := Decode(tt.m, src, Group, &a); d != tt.want {
				t.Fatalf("Decode = %v, want %v", d, tt.want)
			}
		})
	}
}

func TestParseIPv4Drops(t *testing.T) {
	src := netip.MustParseAddr("198.18.5.1")
	good := AppendPacket(nil, &Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second}, src, Group, 1)
	mod := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	tests := []struct {
		name string
		p    []byte
		want Drop
	}{
		{"good", good, DropNone},
		{"short", good[:19], DropShort},
		{"ipv6", mod(func(b []byte) { b[0] = 0x65 }), DropIPHeader},
		{"ihl 4", mod(func(b []byte) { b[0] = 0x44 }), DropIPHeader},
		{"total too long", mod(func(b []byte) { b[3] = 200 }), DropIPHeader},
		{"fragment", mod(func(b []byte) { b[6] = 0x20 }), DropIPHeader},
		{"udp", mod(func(b []byte) { b[9] = 17 }), DropIPHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h IPv4
			if _, d := ParseIPv4(tt.p, &h); d != tt.want {
				t.Fatalf("ParseIPv4 = %v, want %v", d, tt.want)
			}
		})
	}
}

func TestDecodeAllocs(t *testing.T) {
	src := netip.MustParseAddr("198.18.5.1")
	m := AppendMessage(nil, &Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second,
		Addrs: []netip.Addr{netip.MustParseAddr("198.18.5.100")}}, src, Group)
	a := Advert{Addrs: make([]netip.Addr, 0, MaxAddrs)}
	if n := testing.AllocsPerRun(100, func() { Decode(m, src, Group, &a) }); n != 0 {
		t.Fatalf("Decode allocates %v times", n)
	}
}

// TestGoldenGARP checks BuildGARP against keepalived's gratuitous ARPs, and that keepalived
// sent garp_master_repeat (5) of them at once on becoming master.
func TestGoldenGARP(t *testing.T) {
	mac := [6]byte{0x02, 0, 0, 0, 0x05, 0x01}
	want := make([]byte, GARPLen)
	BuildGARP(want, mac, netip.MustParseAddr("198.18.5.100"))
	n := 0
	for _, f := range pcapFrames(t, filepath.Join("testdata", "keepalived-v2.pcap")) {
		if len(f) >= 14 && f[12] == 0x08 && f[13] == 0x06 {
			if !bytes.Equal(f, want) {
				t.Fatalf("ARP frame\n got %x\nwant %x", want, f)
			}
			n++
		}
	}
	if n != 5 {
		t.Fatalf("%d gratuitous ARPs in the capture, want 5", n)
	}
}
