package shield

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netns"

	"github.com/uvs-project/uvs/internal/testenv"
	"golang.org/x/sys/unix"
)

// shieldFrame builds an Ethernet + IPv4 frame with a 4-byte L4 header start (ports).
func shieldFrame(etype uint16, src, dst [4]byte, proto uint8, sport, dport uint16, fragOff uint16, l4 bool) []byte {
	b := make([]byte, 14+20+8)
	binary.BigEndian.PutUint16(b[12:], etype)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 28)
	binary.BigEndian.PutUint16(ip[6:], fragOff)
	ip[8] = 64
	ip[9] = proto
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(b[34:], sport)
	binary.BigEndian.PutUint16(b[36:], dport)
	if !l4 {
		b = b[:34]
		binary.BigEndian.PutUint16(ip[2:], 20)
	}
	// The kernel's test run wants at least ETH_HLEN bytes; pad to 60 as a NIC would.
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

// TestIntegrationTCXProgramVerdicts runs the shield's program on frames (BPF_PROG_TEST_RUN):
// what it drops and what it passes, as the nftables shield's rules say, VRRP, BGP and IPVS
// sync always passed.
func TestIntegrationTCXProgramVerdicts(t *testing.T) {
	testenv.RequireRoot(t)
	ns, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	s := &tcxShield{ns: ns, haveVIP: map[string]bool{}, haveNAT: map[string]bool{}}
	mk := func(key, max uint32) *ebpf.Map {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: key, ValueSize: 1, MaxEntries: max, Flags: unix.BPF_F_NO_PREALLOC})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	s.vips, s.nat, s.locals = mk(4, 16), mk(8, 16), mk(4, tcxMaxLocals)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL", Instructions: tcxProgram(s.vips, s.nat, s.locals)})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	vip := [4]byte{198, 18, 1, 100}
	natReal := [4]byte{198, 18, 3, 11}
	client := [4]byte{198, 18, 2, 10}
	local := [4]byte{198, 18, 3, 1}
	if err := s.Update([][4]byte{vip}, []NATReal{{Addr: natReal, Proto: unix.IPPROTO_TCP, Port: 80}}); err != nil {
		t.Fatal(err)
	}
	if err := s.locals.Put(local[:], []byte{1}); err != nil {
		t.Fatal(err)
	}
	const pass, drop = tcxNext, tcxDrop
	for _, tt := range []struct {
		name  string
		frame []byte
		want  int32
	}{
		{"tcp to vip", shieldFrame(unix.ETH_P_IP, client, vip, unix.IPPROTO_TCP, 40000, 80, 0, true), drop},
		{"udp to vip", shieldFrame(unix.ETH_P_IP, client, vip, unix.IPPROTO_UDP, 40000, 53, 0, true), drop},
		{"icmp to vip", shieldFrame(unix.ETH_P_IP, client, vip, unix.IPPROTO_ICMP, 0x0800, 0, 0, true), drop},
		{"later fragment to vip", shieldFrame(unix.ETH_P_IP, client, vip, unix.IPPROTO_UDP, 1, 2, 185, true), drop},
		{"vip, no l4 bytes", shieldFrame(unix.ETH_P_IP, client, vip, unix.IPPROTO_UDP, 0, 0, 0, false), drop},
		{"vrrp to vip", shieldFrame(unix.ETH_P_IP, client, vip, 112, 0, 0, 0, true), pass},
		{"bgp to vip", shieldFrame(unix.ETH_P_IP, client, vip, unix.IPPROTO_TCP, 40000, 179, 0, true), pass},
		{"bgp from vip peer", shieldFrame(unix.ETH_P_IP, client, vip, unix.IPPROTO_TCP, 179, 40000, 0, true), pass},
		{"sync to vip", shieldFrame(unix.ETH_P_IP, client, vip, unix.IPPROTO_UDP, 40000, 8848, 0, true), pass},
		{"udp 179 to vip", shieldFrame(unix.ETH_P_IP, client, vip, unix.IPPROTO_UDP, 40000, 179, 0, true), drop},
		{"other address", shieldFrame(unix.ETH_P_IP, client, local, unix.IPPROTO_TCP, 40000, 80, 0, true), pass},
		{"arp", shieldFrame(unix.ETH_P_ARP, client, vip, 0, 0, 0, 0, true), pass},
		{"ipv6", shieldFrame(unix.ETH_P_IPV6, client, vip, 0, 0, 0, 0, true), pass},
		{"nat reply to client", shieldFrame(unix.ETH_P_IP, natReal, client, unix.IPPROTO_TCP, 80, 40000, 0, true), drop},
		{"nat reply first fragment", shieldFrame(unix.ETH_P_IP, natReal, client, unix.IPPROTO_TCP, 80, 40000, 0x2000, true), drop},
		{"nat reply later fragment", shieldFrame(unix.ETH_P_IP, natReal, client, unix.IPPROTO_TCP, 80, 40000, 0x2000|185, true), pass},
		{"nat real to director (health check)", shieldFrame(unix.ETH_P_IP, natReal, local, unix.IPPROTO_TCP, 80, 40000, 0, true), pass},
		{"nat real other port", shieldFrame(unix.ETH_P_IP, natReal, client, unix.IPPROTO_TCP, 81, 40000, 0, true), pass},
		{"nat real udp same port", shieldFrame(unix.ETH_P_IP, natReal, client, unix.IPPROTO_UDP, 80, 40000, 0, true), pass},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ret, err := prog.Run(&ebpf.RunOptions{Data: tt.frame})
			if err != nil {
				t.Fatal(err)
			}
			if int32(ret) != tt.want {
				t.Errorf("verdict %d, want %d", int32(ret), tt.want)
			}
		})
	}
}

// BenchmarkTCXProgram times the shield's program in the kernel (BPF_PROG_TEST_RUN with a
// repeat count) on a frame to a VIP (dropped), a NAT reply (two lookups, dropped) and other
// traffic (passed). It reports the kernel's ns per run; b.N only scales the repeat count.
func BenchmarkTCXProgram(b *testing.B) {
	testenv.RequireRoot(b)
	ns, err := netns.Get()
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Close()
	s := &tcxShield{ns: ns, haveVIP: map[string]bool{}, haveNAT: map[string]bool{}}
	mk := func(key, max uint32) *ebpf.Map {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: key, ValueSize: 1, MaxEntries: max, Flags: unix.BPF_F_NO_PREALLOC})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close() })
		return m
	}
	s.vips, s.nat, s.locals = mk(4, tcxMaxVIPs), mk(8, tcxMaxNAT), mk(4, tcxMaxLocals)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL", Instructions: tcxProgram(s.vips, s.nat, s.locals)})
	if err != nil {
		b.Fatal(err)
	}
	defer prog.Close()
	vip, natReal, client := [4]byte{198, 18, 1, 100}, [4]byte{198, 18, 3, 11}, [4]byte{198, 18, 2, 10}
	if err := s.Update([][4]byte{vip}, []NATReal{{Addr: natReal, Proto: unix.IPPROTO_TCP, Port: 80}}); err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		frame []byte
	}{
		{"vip", shieldFrame(unix.ETH_P_IP, client, vip, unix.IPPROTO_UDP, 40000, 53, 0, true)},
		{"nat-reply", shieldFrame(unix.ETH_P_IP, natReal, client, unix.IPPROTO_TCP, 80, 40000, 0, true)},
		{"other", shieldFrame(unix.ETH_P_IP, client, natReal, unix.IPPROTO_TCP, 40000, 80, 0, true)},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			_, per, err := prog.Benchmark(tt.frame, max(b.N, 1000), b.ResetTimer)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(per.Nanoseconds()), "kernel-ns/run")
		})
	}
}
