//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// malformed is one class of bad frame and the drop counter it must land in.
type malformed struct {
	name    string
	counter string
	frame   func(ip []byte) []byte // gets a valid IPv4+TCP packet, returns the IP part to send
}

func ipChecksum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

func fixIPChecksum(ip []byte) {
	ihl := int(ip[0]&0xf) * 4
	if ihl < 20 || ihl > len(ip) {
		ihl = 20
	}
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip[:ihl]))
}

// validTCP returns an IPv4 SYN from src to dst:80.
func validTCP(src, dst [4]byte, sport uint16) []byte {
	ip := make([]byte, 40)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 40)
	ip[8] = 64
	ip[9] = 6
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	binary.BigEndian.PutUint16(ip[20:], sport)
	binary.BigEndian.PutUint16(ip[22:], 80)
	ip[32] = 5 << 4 // data offset
	ip[33] = 0x02   // SYN
	fixIPChecksum(ip)
	return ip
}

var malformedClasses = []malformed{
	{"truncated tcp header", "drop_truncated_l4", func(ip []byte) []byte {
		binary.BigEndian.PutUint16(ip[2:], 30)
		fixIPChecksum(ip)
		return ip[:30]
	}},
	{"total length past the frame", "drop_truncated_ip", func(ip []byte) []byte {
		binary.BigEndian.PutUint16(ip[2:], 1400)
		fixIPChecksum(ip)
		return ip
	}},
	{"bad ihl", "drop_bad_ihl", func(ip []byte) []byte {
		ip[0] = 0x43
		fixIPChecksum(ip)
		return ip
	}},
	{"total length below header", "drop_bad_ip_length", func(ip []byte) []byte {
		binary.BigEndian.PutUint16(ip[2:], 12)
		fixIPChecksum(ip)
		return ip
	}},
	{"ip options", "drop_ip_options", func(ip []byte) []byte {
		out := make([]byte, 44)
		copy(out, ip[:20])
		out[0] = 0x46
		out[20] = 1 // NOP options
		out[21], out[22], out[23] = 1, 1, 0
		copy(out[24:], ip[20:])
		binary.BigEndian.PutUint16(out[2:], 44)
		fixIPChecksum(out)
		return out
	}},
	// Lone fragments are held by the kernel's bounded reassembly (PACKET_FANOUT_FLAG_DEFRAG)
	// and never reach a worker: counted by the kernel (IpReasmReqds), checked below.
	{"fragment", "", func(ip []byte) []byte {
		binary.BigEndian.PutUint16(ip[6:], 0x2000) // MF
		fixIPChecksum(ip)
		return ip
	}},
	{"bad header checksum", "drop_bad_ip_checksum", func(ip []byte) []byte {
		ip[10] ^= 0xff
		return ip
	}},
	{"bad tcp data offset", "drop_bad_tcp_offset", func(ip []byte) []byte {
		ip[32] = 2 << 4
		return ip
	}},
}

func TestIntegrationMalformedBarrage(t *testing.T) {
	testenv.RequireRoot(t)
	eachBackend(t, testMalformedBarrage)
}

func testMalformedBarrage(t *testing.T) {
	// With afxdp the XDP program hands lone fragments to a worker, whose bounded reassembly
	// gives them up under "fragment" (they all share one IP id, so they overlap), and passes
	// frames that are not for a VIP to the kernel uncounted.
	xdp := testBackend(t) == "afxdp"
	r := startLab(t, bench.TopologyDR, "dr", 80, false)
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

	// A curl loop runs through the VIP for the whole barrage; none may fail.
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
	src := r.lab.Client.Addr.As4()
	vip := r.vip.As4()
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
		for _, c := range malformedClasses {
			for i := 0; i < perClass; i++ {
				ip := c.frame(validTCP(src, vip, uint16(20000+i)))
				frame := make([]byte, 14+len(ip))
				copy(frame[0:6], dirMAC)
				copy(frame[6:12], ifc.HardwareAddr)
				binary.BigEndian.PutUint16(frame[12:], 0x0800)
				copy(frame[14:], ip)
				if err := unix.Sendto(fd, frame, 0, sa); err != nil {
					return err
				}
			}
		}
		// Frames that are not IPv4 to a VIP are left to the kernel (counted as such):
		// IPv6, random bytes, broadcast frames, and one-tag 802.1Q frames, which uvs parses
		// (a tagged SYN to the VIP is a valid new connection).
		rng := rand.New(rand.NewPCG(7, 9))
		for i := 0; i < perClass; i++ {
			frames := [][]byte{}
			v6 := make([]byte, 14+40)
			copy(v6[0:6], dirMAC)
			copy(v6[6:12], ifc.HardwareAddr)
			binary.BigEndian.PutUint16(v6[12:], 0x86dd)
			v6[14] = 0x60
			frames = append(frames, v6)
			junk := make([]byte, 14+rng.IntN(200))
			for j := range junk {
				junk[j] = byte(rng.Uint32())
			}
			copy(junk[0:6], dirMAC)
			frames = append(frames, junk)
			bc := make([]byte, 14+40)
			copy(bc[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
			copy(bc[6:12], ifc.HardwareAddr)
			binary.BigEndian.PutUint16(bc[12:], 0x0800)
			copy(bc[14:], validTCP(src, [4]byte{198, 18, 1, 255}, uint16(30000+i)))
			frames = append(frames, bc)
			tagged := make([]byte, 18+40)
			copy(tagged[0:6], dirMAC)
			copy(tagged[6:12], ifc.HardwareAddr)
			binary.BigEndian.PutUint16(tagged[12:], 0x8100)
			binary.BigEndian.PutUint16(tagged[14:], 7)
			binary.BigEndian.PutUint16(tagged[16:], 0x0800)
			copy(tagged[18:], validTCP(src, vip, uint16(40000+i)))
			frames = append(frames, tagged)
			for _, f := range frames {
				if err := unix.Sendto(fd, f, 0, sa); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Two more curls complete after the barrage was sent: at least one of them ran while
	// the director was still working through it.
	for n0, deadline := curls.Load(), time.Now().Add(30*time.Second); curls.Load() < n0+2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the curl loop stalled after the barrage:\n%s", r.stderr.String())
		}
	}
	close(stop)
	wg.Wait()
	if curlErr != nil {
		t.Errorf("curl through the VIP failed during the barrage: %v", curlErr)
	}
	if curls.Load() == 0 {
		t.Error("no curl ran during the barrage")
	}
	r.distribution(10) // still forwarding afterwards
	r.kernelQuiet()
	ns, err := bench.Nstat(ctx, r.lab.Director)
	if err != nil {
		t.Fatal(err)
	}
	if d := ns["IpReasmReqds"] - r.nstat0["IpReasmReqds"]; d < perClass && !xdp {
		t.Errorf("lone fragments: kernel reassembly saw %d, want at least %d", d, perClass)
	}
	r.stopAndCheckClean()
	got := r.stoppedCounters()
	// IPv6 frames are unicast to the director, so at least those reach it and are left to the
	// kernel (the bridge drops random frames with invalid source MACs, and may not flood
	// broadcasts). Every frame the director received lands in exactly one counter.
	if got["left_to_kernel"] < perClass && !xdp {
		t.Errorf("IPv6, random and broadcast frames: left_to_kernel %d, want at least %d", got["left_to_kernel"], perClass)
	}
	var drops uint64
	for k, v := range got {
		if strings.HasPrefix(k, "drop_") {
			drops += v
		}
	}
	if sum := drops + got["forwarded"] + got["left_to_kernel"] + got["arp_replies"]; sum != got["rx"] {
		t.Errorf("frames unaccounted for: rx %d, drops+forwarded+left_to_kernel+arp %d (%v)", got["rx"], sum, got)
	}
	for _, c := range malformedClasses {
		if c.counter == "" && xdp {
			c.counter = "drop_fragment"
		}
		if c.counter == "" {
			continue
		}
		if got[c.counter] < perClass {
			t.Errorf("%s: counter %s = %d, want at least %d", c.name, c.counter, got[c.counter], perClass)
		}
	}
}
