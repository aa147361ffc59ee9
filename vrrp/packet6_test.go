package vrrp

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/uvs-project/uvs/forward/packet"
)

// goldenAdverts6 returns the IPv6 packets of next header 112 in a capture.
func goldenAdverts6(t *testing.T, name string) [][]byte {
	var out [][]byte
	for _, f := range pcapFrames(t, filepath.Join("testdata", "keepalived-"+name+".pcap")) {
		if len(f) > 14+ipv6HdrLen && f[12] == 0x86 && f[13] == 0xdd && f[14+6] == Protocol {
			out = append(out, f[14:])
		}
	}
	if len(out) < 2 {
		t.Fatalf("%s: %d adverts, want at least 2", name, len(out))
	}
	return out
}

// TestGoldenKeepalivedIPv6 decodes keepalived's adverts over IPv6, VRRPv3 and its VRRPv2
// over IPv6 (no authentication data, IPv6 pseudo-header checksum), and re-encodes them byte
// for byte, header included.
func TestGoldenKeepalivedIPv6(t *testing.T) {
	vip := netip.MustParseAddr("2001:2:0:5::100")
	for _, tt := range []struct {
		name string
		ver  uint8
	}{{"v3ipv6", 3}, {"v2ipv6", 2}} {
		t.Run(tt.name, func(t *testing.T) {
			pkts := goldenAdverts6(t, tt.name)
			for i, p := range pkts {
				var h IPv4
				m, d := ParseIPv6(p, &h)
				if d != DropNone {
					t.Fatalf("packet %d: ParseIPv6: %v", i, d)
				}
				if h.TTL != HopLimit || h.TOS != TrafficClass || !h.Src.IsLinkLocalUnicast() || h.Dst != Group6 {
					t.Fatalf("packet %d: header %+v", i, h)
				}
				var a Advert
				if d := Decode(m, h.Src, h.Dst, &a); d != DropNone {
					t.Fatalf("packet %d: Decode: %v", i, d)
				}
				wantPrio := uint8(100)
				if i == len(pkts)-1 {
					wantPrio = 0 // sent on SIGTERM
				}
				if a.Version != tt.ver || a.VRID != 52 || a.Priority != wantPrio || a.Interval != time.Second ||
					a.Checksum != ChecksumPseudo || a.AuthType != AuthNone || len(a.Addrs) != 1 || a.Addrs[0] != vip {
					t.Fatalf("packet %d: decoded %+v", i, a)
				}
				if len(m) != headerLen+16 {
					t.Fatalf("packet %d: message of %d bytes", i, len(m))
				}
				// The kernel picked a flow label (auto_flowlabels); everything else is ours.
				got := AppendPacket6(nil, &a, h.Src, h.Dst)
				got[1], got[2], got[3] = got[1]&0xf0|p[1]&0x0f, p[2], p[3]
				if !bytes.Equal(got, p) {
					t.Fatalf("packet %d: encode\n got %x\nwant %x", i, got, p)
				}
			}
		})
	}
}

// TestGoldenUnsolicitedNA checks that the neighbour advertisement the speaker sends on
// takeover (forward/packet's BuildUnsolicitedNA) is keepalived's, byte for byte, and that
// keepalived sent garp_master_repeat (5) of them at once.
func TestGoldenUnsolicitedNA(t *testing.T) {
	mac := [6]byte{0x02, 0, 0, 0, 0x05, 0x01}
	var buf [128]byte
	want := buf[:packet.BuildUnsolicitedNA(buf[:], mac, netip.MustParseAddr("2001:2:0:5::100").As16())]
	n := 0
	for _, f := range pcapFrames(t, filepath.Join("testdata", "keepalived-v3ipv6.pcap")) {
		// ICMPv6 type 136, neighbour advertisement.
		if len(f) > 54 && f[12] == 0x86 && f[13] == 0xdd && f[20] == 58 && f[54] == 136 {
			if !bytes.Equal(f, want) {
				t.Fatalf("NA frame\n got %x\nwant %x", want, f)
			}
			n++
		}
	}
	if n != 5 {
		t.Fatalf("%d neighbour advertisements in the capture, want 5", n)
	}
}

func TestChecksumIPv6(t *testing.T) {
	src := netip.MustParseAddr("fe80::1")
	peer := netip.MustParseAddr("fe80::2")
	for _, dst := range []netip.Addr{Group6, peer} {
		t.Run(dst.String(), func(t *testing.T) {
			a := Advert{Version: 3, VRID: 7, Priority: 150, Interval: 50 * time.Millisecond,
				Addrs: []netip.Addr{netip.MustParseAddr("2001:2:0:5::100"), netip.MustParseAddr("2001:2:0:6::1")}}
			m := AppendMessage(nil, &a, src, dst)
			if len(m) != headerLen+2*16 {
				t.Fatalf("message is %d bytes", len(m))
			}
			var b Advert
			if d := Decode(m, src, dst, &b); d != DropNone || b.Checksum != ChecksumPseudo || len(b.Addrs) != 2 || b.Addrs[1] != a.Addrs[1] {
				t.Fatalf("Decode = %v, %+v", d, b)
			}
			// The IPv4 plain variant does not exist for IPv6.
			a.Checksum = ChecksumPlain
			if m2 := AppendMessage(nil, &a, src, dst); !bytes.Equal(m2, m) {
				t.Fatal("ChecksumPlain changed an IPv6 message")
			}
			if d := Decode(m, netip.MustParseAddr("fe80::3"), dst, &b); d != DropChecksum {
				t.Fatalf("other source: Decode = %v, want checksum", d)
			}
			m[2] ^= 1
			if d := Decode(m, src, dst, &b); d != DropChecksum {
				t.Fatalf("corrupted: Decode = %v, want checksum", d)
			}
		})
	}
}

func TestDecodeDropsIPv6(t *testing.T) {
	src := netip.MustParseAddr("fe80::1")
	good := AppendMessage(nil, &Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second,
		Addrs: []netip.Addr{netip.MustParseAddr("2001:2:0:5::100")}}, src, Group6)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		m    []byte
		dst  netip.Addr
		want Drop
	}{
		{"good", good, Group6, DropNone},
		{"ipv4 address length", good[:12], Group6, DropShort},
		{"count too big", mod(func(b []byte) []byte { b[3] = 2; return b }), Group6, DropShort},
		{"version 1", mod(func(b []byte) []byte { b[0] = 0x11; return b }), Group6, DropVersion},
		{"version 2, v3 checksum", mod(func(b []byte) []byte { b[0] = 0x21; return b }), Group6, DropChecksum},
		{"checksum", mod(func(b []byte) []byte { b[7] ^= 0xff; return b }), Group6, DropChecksum},
		{"mixed families", good, Group, DropIPHeader},
		{"trailing padding", mod(func(b []byte) []byte { return append(b, 0, 0) }), Group6, DropNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Advert
			if d := Decode(tt.m, src, tt.dst, &a); d != tt.want {
				t.Fatalf("Decode = %v, want %v", d, tt.want)
			}
		})
	}
}

func TestParseIPv6Drops(t *testing.T) {
	src := netip.MustParseAddr("fe80::1")
	good := AppendPacket6(nil, &Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second,
		Addrs: []netip.Addr{netip.MustParseAddr("2001:2:0:5::100")}}, src, Group6)
	mod := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	tests := []struct {
		name string
		p    []byte
		want Drop
	}{
		{"good", good, DropNone},
		{"short", good[:39], DropShort},
		{"ipv4", mod(func(b []byte) { b[0] = 0x4c }), DropIPHeader},
		{"payload too long", mod(func(b []byte) { b[5] = 200 }), DropIPHeader},
		{"jumbogram", mod(func(b []byte) { b[4], b[5] = 0, 0 }), DropIPHeader},
		{"hop-by-hop header", mod(func(b []byte) { b[6] = 0 }), DropIPHeader},
		{"fragment header", mod(func(b []byte) { b[6] = 44 }), DropIPHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h IPv4
			if _, d := ParseIPv6(tt.p, &h); d != tt.want {
				t.Fatalf("ParseIPv6 = %v, want %v", d, tt.want)
			}
		})
	}
}

func TestDecodeAllocsIPv6(t *testing.T) {
	src := netip.MustParseAddr("fe80::1")
	m := AppendMessage(nil, &Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second,
		Addrs: []netip.Addr{netip.MustParseAddr("2001:2:0:5::100")}}, src, Group6)
	a := Advert{Addrs: make([]netip.Addr, 0, MaxAddrs)}
	if n := testing.AllocsPerRun(100, func() { Decode(m, src, Group6, &a) }); n != 0 {
		t.Fatalf("Decode allocates %v times", n)
	}
}

// TestIPv6Version2 round-trips keepalived's VRRPv2 over IPv6: whole seconds, no auth data.
func TestIPv6Version2(t *testing.T) {
	src := netip.MustParseAddr("fe80::1")
	a := Advert{Version: 2, VRID: 9, Priority: 120, Interval: 3 * time.Second, Addrs: []netip.Addr{netip.MustParseAddr("2001:2:0:5::100")}}
	m := AppendMessage(nil, &a, src, Group6)
	if len(m) != headerLen+16 || m[0] != 0x21 || m[5] != 3 {
		t.Fatalf("message %x", m)
	}
	var b Advert
	if d := Decode(m, src, Group6, &b); d != DropNone || b.Version != 2 || b.Interval != 3*time.Second || b.Addrs[0] != a.Addrs[0] {
		t.Fatalf("Decode = %v, %+v", d, b)
	}
}
