package shield

import (
	"encoding/binary"
	"net/netip"
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
	s, prog := newTestTCX(t, ns)
	vip := [4]byte{198, 18, 1, 100}
	natReal := [4]byte{198, 18, 3, 11}
	client := [4]byte{198, 18, 2, 10}
	local := [4]byte{198, 18, 3, 1}
	if err := s.Update([]netip.Addr{netip.AddrFrom4(vip), netip.MustParseAddr("2001:2:0:7::100")}, []NATReal{{Addr: natReal, Proto: unix.IPPROTO_TCP, Port: 80}, {V6: true, Addr6: netip.MustParseAddr("2001:2:0:7:1::11").As16(), Proto: unix.IPPROTO_TCP, Port: 80}}); err != nil {
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
		{"not ipv6 after all", shieldFrame(unix.ETH_P_IPV6, client, vip, 0, 0, 0, 0, true), pass},
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
// traffic (passed), IPv4 and IPv6 (and a neighbour solicitation, passed). It reports the kernel's ns per run; b.N only scales the repeat count.
func BenchmarkTCXProgram(b *testing.B) {
	testenv.RequireRoot(b)
	ns, err := netns.Get()
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Close()
	s, prog := newTestTCX(b, ns)
	vip, natReal, client := [4]byte{198, 18, 1, 100}, [4]byte{198, 18, 3, 11}, [4]byte{198, 18, 2, 10}
	client6 := netip.MustParseAddr("2001:2:0:7:9::7").As16()
	if err := s.Update([]netip.Addr{netip.AddrFrom4(vip), netip.MustParseAddr("2001:2:0:7::100")}, []NATReal{{Addr: natReal, Proto: unix.IPPROTO_TCP, Port: 80}, {V6: true, Addr6: netip.MustParseAddr("2001:2:0:7:1::11").As16(), Proto: unix.IPPROTO_TCP, Port: 80}}); err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		frame []byte
	}{
		{"vip", shieldFrame(unix.ETH_P_IP, client, vip, unix.IPPROTO_UDP, 40000, 53, 0, true)},
		{"nat-reply", shieldFrame(unix.ETH_P_IP, natReal, client, unix.IPPROTO_TCP, 80, 40000, 0, true)},
		{"other", shieldFrame(unix.ETH_P_IP, client, natReal, unix.IPPROTO_TCP, 40000, 80, 0, true)},
		{"vip6", shieldFrame6(client6, netip.MustParseAddr("2001:2:0:7::100").As16(), unix.IPPROTO_UDP, ports6(40000, 53))},
		{"nat-reply6", shieldFrame6(netip.MustParseAddr("2001:2:0:7:1::11").As16(), client6, unix.IPPROTO_TCP, ports6(80, 40000))},
		{"other6", shieldFrame6(client6, netip.MustParseAddr("2001:2:0:7:1::11").As16(), unix.IPPROTO_TCP, ports6(40000, 80))},
		{"nd6", shieldFrame6(client6, netip.MustParseAddr("ff02::1:ff00:100").As16(), 58, append([]byte{135, 0, 0, 0, 0, 0, 0, 0}, netip.MustParseAddr("2001:2:0:7::100").AsSlice()...))},
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

// newTestTCX returns a tcx shield's maps and program, not attached anywhere, for test runs.
func newTestTCX(tb testing.TB, ns netns.NsHandle) (*tcxShield, *ebpf.Program) {
	tb.Helper()
	s := &tcxShield{ns: ns, haveVIP: map[string]bool{}, haveNAT: map[string]bool{}}
	mk := func(key, max uint32) *ebpf.Map {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: key, ValueSize: 1, MaxEntries: max, Flags: unix.BPF_F_NO_PREALLOC})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { m.Close() })
		return m
	}
	s.vips, s.nat, s.locals = mk(4, tcxMaxVIPs), mk(8, tcxMaxNAT), mk(4, tcxMaxLocals)
	s.vips6, s.nat6, s.locals6 = mk(16, tcxMaxVIPs), mk(20, tcxMaxNAT), mk(16, tcxMaxLocals)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL", Instructions: tcxProgram(s.tcxMaps)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { prog.Close() })
	return s, prog
}

// shieldFrame6 builds an Ethernet + IPv6 frame with next header next and payload l4.
func shieldFrame6(src, dst [16]byte, next uint8, l4 []byte) []byte {
	b := make([]byte, 14+40, 14+40+len(l4))
	binary.BigEndian.PutUint16(b[12:], unix.ETH_P_IPV6)
	ip := b[14:]
	ip[0], ip[6], ip[7] = 0x60, next, 64
	binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
	copy(ip[8:], src[:])
	copy(ip[24:], dst[:])
	return append(b, l4...)
}

func ports6(sp, dp uint16) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b, sp)
	binary.BigEndian.PutUint16(b[2:], dp)
	return b
}

// ext6 is an extension header (hop-by-hop, routing, destination options: 8 bytes; AH: 12)
// followed by rest, whose first header is next.
func ext6(kind, next uint8, rest []byte) []byte {
	switch kind {
	case 51:
		return append([]byte{next, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, rest...)
	case 44:
		return append([]byte{next, 0, 0, 0, 0, 0, 0, 1}, rest...)
	}
	return append([]byte{next, 0, 1, 4, 0, 0, 0, 0}, rest...)
}

// TestIntegrationTCXProgramVerdicts6 is TestIntegrationTCXProgramVerdicts for IPv6: the
// nftables shield's vips6 and nat_reals6 rules, the control protocols after any extension
// headers, neighbour discovery passed.
func TestIntegrationTCXProgramVerdicts6(t *testing.T) {
	testenv.RequireRoot(t)
	ns, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	s, prog := newTestTCX(t, ns)
	a := func(s string) [16]byte { return netip.MustParseAddr(s).As16() }
	vip, natReal, client, local := a("2001:2:0:7::100"), a("2001:2:0:7:1::11"), a("2001:2:0:7:9::7"), a("2001:2:0:7:2::1")
	if err := s.Update([]netip.Addr{netip.AddrFrom16(vip), netip.MustParseAddr("198.18.1.100")},
		[]NATReal{{V6: true, Addr6: natReal, Proto: unix.IPPROTO_TCP, Port: 80}, {Addr: [4]byte{198, 18, 3, 11}, Proto: unix.IPPROTO_TCP, Port: 80}}); err != nil {
		t.Fatal(err)
	}
	if err := s.locals6.Put(local[:], []byte{1}); err != nil {
		t.Fatal(err)
	}
	frag := func(off uint16, next uint8, rest []byte) []byte {
		h := []byte{next, 0, byte(off >> 5), byte(off << 3), 0, 0, 0, 1}
		return append(h, rest...)
	}
	ns6 := append([]byte{135, 0, 0, 0, 0, 0, 0, 0}, vip[:]...)
	const pass, drop = tcxNext, tcxDrop
	for _, tt := range []struct {
		name  string
		frame []byte
		want  int32
	}{
		{"tcp to vip", shieldFrame6(client, vip, unix.IPPROTO_TCP, ports6(40000, 80)), drop},
		{"udp to vip", shieldFrame6(client, vip, unix.IPPROTO_UDP, ports6(40000, 53)), drop},
		{"icmpv6 echo to vip", shieldFrame6(client, vip, 58, []byte{128, 0, 0, 0, 0, 1, 0, 1}), drop},
		{"ns to vip (unicast)", shieldFrame6(client, vip, 58, ns6), drop},
		{"ns for vip to solicited-node", shieldFrame6(client, a("ff02::1:ff00:100"), 58, ns6), pass},
		{"vip, no l4 bytes", shieldFrame6(client, vip, unix.IPPROTO_UDP, nil), drop},
		{"vip, later fragment", shieldFrame6(client, vip, 44, frag(185, unix.IPPROTO_UDP, ports6(1, 2))), drop},
		{"vip, destination options", shieldFrame6(client, vip, 60, ext6(60, unix.IPPROTO_TCP, ports6(40000, 80))), drop},
		{"vrrp to vip", shieldFrame6(client, vip, 112, make([]byte, 8)), pass},
		{"vrrp to vip behind hop-by-hop", shieldFrame6(client, vip, 0, ext6(0, 112, make([]byte, 8))), pass},
		{"bgp to vip", shieldFrame6(client, vip, unix.IPPROTO_TCP, ports6(40000, 179)), pass},
		{"bgp from vip peer", shieldFrame6(client, vip, unix.IPPROTO_TCP, ports6(179, 40000)), pass},
		{"bgp to vip behind AH", shieldFrame6(client, vip, 51, ext6(51, unix.IPPROTO_TCP, ports6(40000, 179))), pass},
		{"bgp to vip behind routing and options", shieldFrame6(client, vip, 43, ext6(43, 60, ext6(60, unix.IPPROTO_TCP, ports6(179, 40000)))), pass},
		{"bgp to vip, later fragment", shieldFrame6(client, vip, 44, frag(185, unix.IPPROTO_TCP, ports6(40000, 179))), drop},
		{"sync to vip", shieldFrame6(client, vip, unix.IPPROTO_UDP, ports6(40000, 8848)), pass},
		{"sync to vip behind first fragment", shieldFrame6(client, vip, 44, frag(0, unix.IPPROTO_UDP, ports6(8848, 8848))), pass},
		{"udp 179 to vip", shieldFrame6(client, vip, unix.IPPROTO_UDP, ports6(40000, 179)), drop},
		{"other address", shieldFrame6(client, local, unix.IPPROTO_TCP, ports6(40000, 80)), pass},
		{"nat reply to client", shieldFrame6(natReal, client, unix.IPPROTO_TCP, ports6(80, 40000)), drop},
		{"nat reply behind destination options", shieldFrame6(natReal, client, 60, ext6(60, unix.IPPROTO_TCP, ports6(80, 40000))), drop},
		{"nat reply first fragment", shieldFrame6(natReal, client, 44, frag(0, unix.IPPROTO_TCP, ports6(80, 40000))), drop},
		{"nat reply later fragment", shieldFrame6(natReal, client, 44, frag(185, unix.IPPROTO_TCP, ports6(80, 40000))), pass},
		{"nat real to director (health check)", shieldFrame6(natReal, local, unix.IPPROTO_TCP, ports6(80, 40000)), pass},
		{"nat real other port", shieldFrame6(natReal, client, unix.IPPROTO_TCP, ports6(81, 40000)), pass},
		{"nat real udp same port", shieldFrame6(natReal, client, unix.IPPROTO_UDP, ports6(80, 40000)), pass},
		{"nat real icmpv6", shieldFrame6(natReal, client, 58, []byte{1, 4, 0, 0, 0, 0, 0, 0}), pass},
		{"nat real, chain too long", shieldFrame6(natReal, client, 60, ext6(60, 60, ext6(60, 60, ext6(60, 60, ext6(60, 60, ext6(60, 60, ext6(60, 60, ext6(60, 60, ext6(60, unix.IPPROTO_TCP, ports6(80, 40000)))))))))), pass},
		{"nat real, chain of eight", shieldFrame6(natReal, client, 60, ext6(60, 60, ext6(60, 60, ext6(60, 60, ext6(60, 60, ext6(60, 60, ext6(60, 60, ext6(60, unix.IPPROTO_TCP, ports6(80, 40000))))))))), drop},
		{"extension header cut", shieldFrame6(natReal, client, 60, []byte{6, 4}), pass},
		{"ipv4 still", shieldFrame(unix.ETH_P_IP, [4]byte{198, 18, 2, 10}, [4]byte{198, 18, 1, 100}, unix.IPPROTO_TCP, 40000, 80, 0, true), drop},
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
	// Stale entries leave on the next update.
	if err := s.Update(nil, nil); err != nil {
		t.Fatal(err)
	}
	if ret, err := prog.Run(&ebpf.RunOptions{Data: shieldFrame6(client, vip, unix.IPPROTO_TCP, ports6(40000, 80))}); err != nil || int32(ret) != pass {
		t.Errorf("after the VIP left: verdict %d (%v), want pass", int32(ret), err)
	}
}
