//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/forward/packet"
	"github.com/uvs-project/uvs/internal/testenv"
)

// ext6 is one IPv6 extension header of a test packet: its type and its bytes, whose first
// (the next header) ipv6SYN fills in.
type ext6 struct {
	typ  byte
	body []byte
}

// IPv6 extension header types (RFC 8200 section 4).
const (
	extHopByHop = 0
	extRouting  = 43
	extFragment = 44
	extDstOpts  = 60
)

// padExt is an 8-byte options header (hop-by-hop or destination options) holding one PadN.
func padExt(typ byte) ext6 { return ext6{typ, []byte{0, 0, 1, 4, 0, 0, 0, 0}} }

// ipv6SYN returns an IPv6 packet from src to dst:80 with hop limit 64, the extension headers
// exts chained in order, and a TCP SYN with a valid checksum.
func ipv6SYN(src, dst [16]byte, sport uint16, exts ...ext6) []byte {
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	tcp[12] = 5 << 4
	tcp[13] = 0x02
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	binary.BigEndian.PutUint16(tcp[16:], ^packet.Checksum(tcp, packet.PseudoHeaderSum6(src, dst, packet.ProtoTCP, uint32(len(tcp)))))
	var payload []byte
	for i, e := range exts {
		b := append([]byte(nil), e.body...)
		b[0] = packet.ProtoTCP
		if i+1 < len(exts) {
			b[0] = exts[i+1].typ
		}
		payload = append(payload, b...)
	}
	payload = append(payload, tcp...)
	ip := make([]byte, 40, 40+len(payload))
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(payload)))
	ip[6] = packet.ProtoTCP
	if len(exts) > 0 {
		ip[6] = exts[0].typ
	}
	ip[7] = 64
	copy(ip[8:], src[:])
	copy(ip[24:], dst[:])
	return append(ip, payload...)
}

// malformed6 is one class of bad IPv6 frame and the drop counter it must land in.
type malformed6 struct {
	name    string
	counter string
	frame   func(src, dst [16]byte, sport uint16) []byte
}

var malformed6Classes = []malformed6{
	// Shorter than the fixed header, a frame cannot be classified (the IPv4 rule too): it is
	// the kernel's, which drops it, and counted as left_to_kernel.
	{"truncated ipv6 header", "left_to_kernel", func(s, d [16]byte, p uint16) []byte {
		return ipv6SYN(s, d, p)[:30]
	}},
	{"payload length past the frame", "drop_truncated_ip", func(s, d [16]byte, p uint16) []byte {
		ip := ipv6SYN(s, d, p)
		binary.BigEndian.PutUint16(ip[4:], 1400)
		return ip
	}},
	{"truncated tcp header", "drop_truncated_l4", func(s, d [16]byte, p uint16) []byte {
		ip := ipv6SYN(s, d, p)
		binary.BigEndian.PutUint16(ip[4:], 10)
		return ip[:50]
	}},
	{"bad tcp data offset", "drop_bad_tcp_offset", func(s, d [16]byte, p uint16) []byte {
		ip := ipv6SYN(s, d, p)
		ip[52] = 2 << 4
		return ip
	}},
	{"hop limit 0", "drop_ttl_exceeded", func(s, d [16]byte, p uint16) []byte {
		ip := ipv6SYN(s, d, p)
		ip[7] = 0
		return ip
	}},
	// RFC 2675: payload length 0 and a jumbo payload option in the hop-by-hop header.
	{"jumbogram", "drop_jumbogram", func(s, d [16]byte, p uint16) []byte {
		ip := ipv6SYN(s, d, p, ext6{extHopByHop, []byte{0, 0, 0xc2, 4, 0, 0, 0, 68}})
		binary.BigEndian.PutUint16(ip[4:], 0)
		return ip
	}},
	{"jumbo option with a payload length", "drop_jumbogram", func(s, d [16]byte, p uint16) []byte {
		return ipv6SYN(s, d, p, ext6{extHopByHop, []byte{0, 0, 0xc2, 4, 0, 0, 0, 68}})
	}},
	{"hop-by-hop not first", "drop_bad_ext_header", func(s, d [16]byte, p uint16) []byte {
		return ipv6SYN(s, d, p, padExt(extDstOpts), padExt(extHopByHop))
	}},
	{"extension header past the payload", "drop_bad_ext_header", func(s, d [16]byte, p uint16) []byte {
		return ipv6SYN(s, d, p, ext6{extDstOpts, []byte{0, 10, 1, 4, 0, 0, 0, 0}})
	}},
	{"nine extension headers", "drop_bad_ext_header", func(s, d [16]byte, p uint16) []byte {
		var exts []ext6
		for range 9 {
			exts = append(exts, padExt(extDstOpts))
		}
		return ipv6SYN(s, d, p, exts...)
	}},
	{"option past its header", "drop_bad_ext_header", func(s, d [16]byte, p uint16) []byte {
		return ipv6SYN(s, d, p, ext6{extDstOpts, []byte{0, 0, 1, 9, 0, 0, 0, 0}})
	}},
	{"routing header with segments left", "drop_routing_header", func(s, d [16]byte, p uint16) []byte {
		rh := make([]byte, 24)
		rh[1], rh[2], rh[3] = 2, 2, 1 // 24 bytes, type 2, one segment left
		return ipv6SYN(s, d, p, ext6{extRouting, rh})
	}},
	{"fragment", "drop_fragment", func(s, d [16]byte, p uint16) []byte {
		return ipv6SYN(s, d, p, ext6{extFragment, []byte{0, 0, 0, 8 << 3, 0, 0, 0, 7}})
	}},
}

// TestIntegrationIPv6MalformedBarrage sends every class of malformed IPv6 frame (bad
// extension-header chains, truncated headers, jumbograms, hop limit 0) to the IPv6 VIP of a
// DR director while curl -6 runs through it: every frame lands in its drop counter, no curl
// fails, and the director still forwards afterwards.
func TestIntegrationIPv6MalformedBarrage(t *testing.T) {
	testenv.RequireRoot(t)
	ipv6Backends(t, testIPv6MalformedBarrage)
}

func testIPv6MalformedBarrage(t *testing.T) {
	r := startLab6(t, bench.TopologyDR, "dr", 80, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mac, err := r.lab.Director.Command(ctx, "cat", "/sys/class/net/eth0/address").Output()
	if err != nil {
		t.Fatal(err)
	}
	dirMAC, err := net.ParseMAC(strings.TrimSpace(string(mac)))
	if err != nil {
		t.Fatal(err)
	}
	// Valid frames of the same shape get through: the builder is right, so a drop is the
	// class's doing.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var curlErr error
	var curls atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := r.curl(ctx, "/"); err != nil && curlErr == nil {
				curlErr = err
			}
			curls.Add(1)
		}
	}()

	const perClass = 200
	src, vip := r.lab.Client.Addr6.As16(), r.vip.As16()
	err = r.lab.Client.Do(func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6}
		copy(sa.Addr[:], dirMAC)
		for _, c := range malformed6Classes {
			for i := 0; i < perClass; i++ {
				ip := c.frame(src, vip, uint16(20000+i))
				frame := make([]byte, 14+len(ip))
				copy(frame[0:6], dirMAC)
				copy(frame[6:12], ifc.HardwareAddr)
				binary.BigEndian.PutUint16(frame[12:], 0x86dd)
				copy(frame[14:], ip)
				if err := unix.Sendto(fd, frame, 0, sa); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for n0, deadline := curls.Load(), time.Now().Add(30*time.Second); curls.Load() < n0+2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the curl -6 loop stalled after the barrage:\n%s", r.stderr.String())
		}
	}
	close(stop)
	wg.Wait()
	if curlErr != nil {
		t.Errorf("curl -6 through the VIP failed during the barrage: %v", curlErr)
	}
	checkEven(t, "curl -6 after the barrage", r.distribution(10), 10)
	checkEven(t, "IPv4 after the barrage", r.v4().distribution(10), 10)
	r.kernelQuiet()
	r.stopAndCheckClean()
	got := r.stoppedCounters()
	want := map[string]uint64{}
	for _, c := range malformed6Classes {
		if c.counter == "left_to_kernel" && testBackend(t) == "afxdp" {
			continue // the XDP program passes these to the stack: uvs never sees them
		}
		want[c.counter] += perClass
	}
	for k, v := range want {
		if got[k] < v {
			t.Errorf("counter %s = %d, want at least %d", k, got[k], v)
		}
	}
	// Every frame the director received lands in exactly one counter.
	var drops uint64
	for k, v := range got {
		if strings.HasPrefix(k, "drop_") {
			drops += v
		}
	}
	if sum := drops + got["forwarded"] + got["left_to_kernel"] + got["arp_replies"]; sum != got["rx"] {
		t.Errorf("frames unaccounted for: rx %d, drops+forwarded+left_to_kernel+arp %d", got["rx"], sum)
	}
	t.Logf("counters %v", got)
}

// TestIPv6SYNBuilder checks the barrage's builder against the parser: the valid packet
// parses, with and without a harmless chain, so the classes differ from it only where meant.
func TestIPv6SYNBuilder(t *testing.T) {
	src, dst := [16]byte{0x20, 1, 0, 2, 15: 10}, [16]byte{0x20, 1, 0, 2, 15: 100}
	for _, exts := range [][]ext6{nil, {padExt(extHopByHop), padExt(extDstOpts)}, {{extFragment, []byte{0, 0, 0, 0, 0, 0, 0, 7}}}} {
		ip := ipv6SYN(src, dst, 1234, exts...)
		frame := append(make([]byte, 14), ip...)
		binary.BigEndian.PutUint16(frame[12:], 0x86dd)
		var p packet.Packet
		if c := packet.ParseL3(frame, &p); c != packet.ClassIPv6 {
			t.Fatalf("%d extension headers: class %v", len(exts), c)
		}
		if f := packet.ParseL4(frame, &p); f != packet.FaultNone || p.Proto != packet.ProtoTCP || p.DstPort != 80 {
			t.Fatalf("%d extension headers: %v", len(exts), f)
		}
	}
}

// TestMalformed6Classes checks each barrage class against the parser, with no director: it
// is refused with the fault its counter names (hop limit 0 parses, and is the rewrite's).
func TestMalformed6Classes(t *testing.T) {
	src, dst := [16]byte{0x20, 1, 0, 2, 15: 10}, [16]byte{0x20, 1, 0, 2, 15: 100}
	for _, c := range malformed6Classes {
		t.Run(c.name, func(t *testing.T) {
			frame := append(make([]byte, 14), c.frame(src, dst, 1234)...)
			binary.BigEndian.PutUint16(frame[12:], 0x86dd)
			var p packet.Packet
			cl := packet.ParseL3(frame, &p)
			if c.counter == "left_to_kernel" {
				if cl != packet.ClassOther {
					t.Errorf("class %v, want other", cl)
				}
				return
			}
			if cl != packet.ClassIPv6 {
				t.Fatalf("class %v", cl)
			}
			f := packet.ParseL4(frame, &p)
			want := strings.TrimPrefix(c.counter, "drop_")
			if want == "ttl_exceeded" {
				if f != packet.FaultNone || p.TTL != 0 {
					t.Errorf("fault %v, hop limit %d: want a packet that parses, with hop limit 0", f, p.TTL)
				}
				return
			}
			if f.String() != want {
				t.Errorf("fault %v, want %s", f, want)
			}
		})
	}
}
