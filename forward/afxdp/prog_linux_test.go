//go:build linux

package afxdp

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/uvs-project/uvs/forward/steer"
	"github.com/uvs-project/uvs/internal/testenv"
)

var testMAC = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}

// loadTestProgram loads the program in test mode with sets in its maps; workers 1<<16 makes
// the returned index the steering hash itself.
func loadTestProgram(t *testing.T, workers int, s Sets) *ebpf.Program {
	t.Helper()
	testenv.RequireRoot(t)
	x, err := NewXDP(workers, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Close)
	xsks, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { xsks.Close() })
	if err := x.Update(s); err != nil {
		t.Fatal(err)
	}
	fds := x.fds(xsks)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: ProgName, Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: buildProgram(fds, progParams{mac: testMAC, workers: workers, testIndex: true})})
	if err != nil {
		t.Fatalf("load: %+v", err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

func frame(dstMAC [6]byte, ethType uint16, l3 []byte) []byte {
	b := make([]byte, 14, 14+len(l3))
	copy(b, dstMAC[:])
	copy(b[6:], []byte{2, 0, 0, 0, 0, 9})
	binary.BigEndian.PutUint16(b[12:], ethType)
	return append(b, l3...)
}

func ipv4(src, dst [4]byte, proto uint8, fragOff uint16, l4 []byte) []byte {
	b := make([]byte, 20, 20+len(l4))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(l4)))
	binary.BigEndian.PutUint16(b[6:], fragOff)
	b[8] = 64
	b[9] = proto
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	return append(b, l4...)
}

// ipv4opts is ipv4 with a header of ihl bytes (options: NOPs).
func ipv4opts(src, dst [4]byte, proto uint8, fragOff uint16, ihl int, l4 []byte) []byte {
	b := ipv4(src, dst, proto, fragOff, nil)
	b[0] = 0x40 | byte(ihl/4)
	for len(b) < ihl {
		b = append(b, 1)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(ihl+len(l4)))
	return append(b, l4...)
}

func ports(sp, dp uint16, n int) []byte {
	b := make([]byte, max(n, 4))
	binary.BigEndian.PutUint16(b, sp)
	binary.BigEndian.PutUint16(b[2:], dp)
	return b[:n]
}

// TestIntegrationXDPSteeringMatchesFanout runs the program (BPF_PROG_TEST_RUN) over many
// packets and checks that it redirects exactly the frames uvs handles, to the socket steer's
// hash picks, and passes the rest.
func TestIntegrationXDPSteeringMatchesFanout(t *testing.T) {
	vip := [4]byte{198, 18, 1, 100}
	vips := []steer.SteerVIP{
		{Addr: vip},
		{Addr: [4]byte{198, 18, 1, 101}, Persist: []steer.SteerPersist{{Port: 443, Bits: 24}, {Port: 80, Bits: 32}}},
		{Addr: [4]byte{198, 18, 1, 102}, Persist: []steer.SteerPersist{{Port: 0, Bits: 16}}},
		{Addr: [4]byte{198, 18, 1, 103}, Persist: []steer.SteerPersist{{Port: 53, Bits: 8}, {Port: 0, Bits: 24}}},
	}
	nat := []steer.SteerNAT{
		{Addr: [4]byte{198, 18, 3, 11}, Port: 8443, Bits: 24},
		{Addr: [4]byte{198, 18, 3, 11}, Port: 8080, Bits: 32},
		{Addr: [4]byte{198, 18, 3, 12}, Port: 8443, Bits: 24},
		{Addr: [4]byte{198, 18, 3, 13}, Port: 0, Bits: 16},
	}
	reals := []NATReal{
		{Addr: [4]byte{198, 18, 3, 11}, Proto: 6, Port: 8443}, {Addr: [4]byte{198, 18, 3, 11}, Proto: 6, Port: 8080},
		{Addr: [4]byte{198, 18, 3, 12}, Proto: 17, Port: 8443}, {Addr: [4]byte{198, 18, 3, 13}, Proto: 6, Port: 0},
		{Addr: [4]byte{198, 18, 3, 14}, Proto: 6, Port: 80}, // not persistent: plain steering
	}
	local := [4]byte{198, 18, 0, 1}
	owned := [4]byte{198, 18, 3, 1} // a VRRP-owned NAT gateway: ours, steered as plain traffic
	const workers = 1 << 16
	prog := loadTestProgram(t, workers, Sets{VIPs: vips, Owned: [][4]byte{owned}, SteerNAT: nat, NATReals: reals, Local: [][4]byte{local}})

	run := func(f []byte) uint32 {
		t.Helper()
		ret, err := prog.Run(&ebpf.RunOptions{Data: f})
		if err != nil {
			t.Fatalf("test run: %v", err)
		}
		return ret
	}
	check := func(name string, f []byte, ours bool) {
		t.Helper()
		ret := run(f)
		if !ours {
			if ret != xdpPass {
				t.Errorf("%s: ret %#x, want XDP_PASS (frame % x)", name, ret, f)
			}
			return
		}
		l3 := 14
		if binary.BigEndian.Uint16(f[12:]) == 0x8100 {
			l3 = 18
		}
		want := steer.Hash(f[l3:], vips, nat)
		if ret != testBase+want {
			t.Errorf("%s: ret %#x, want socket %#x (frame % x)", name, ret, testBase+want, f)
		}
	}

	// Fixed cases.
	client := [4]byte{198, 19, 7, 9}
	check("tcp to vip", frame(testMAC, 0x0800, ipv4(client, vip, 6, 0, ports(40000, 80, 20))), true)
	check("icmp to an owned address", frame(testMAC, 0x0800, ipv4(client, owned, 1, 0, []byte{8, 0, 0, 0, 0, 1, 0, 1})), true)
	arpOwned := make([]byte, 28)
	copy(arpOwned[24:], owned[:])
	check("arp for an owned address", frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0x0806, arpOwned), true)
	tagged := frame(testMAC, 0x8100, append([]byte{0, 7, 0x08, 0x00}, ipv4(client, vip, 6, 0, ports(40000, 80, 20))...))
	check("tagged tcp to vip", tagged, true)
	check("tagged ipv6", frame(testMAC, 0x8100, append([]byte{0, 7, 0x86, 0xdd}, make([]byte, 40)...)), false)
	check("vrrp", frame(testMAC, 0x0800, ipv4(client, vip, 112, 0, ports(0, 0, 8))), false)
	check("bgp to vip", frame(testMAC, 0x0800, ipv4(client, vip, 6, 0, ports(40000, 179, 20))), false)
	check("sync to vip", frame(testMAC, 0x0800, ipv4(client, vip, 17, 0, ports(8848, 8848, 8))), false)
	check("other mac", frame([6]byte{2, 1, 1, 1, 1, 1}, 0x0800, ipv4(client, vip, 6, 0, ports(40000, 80, 20))), false)
	check("not a vip", frame(testMAC, 0x0800, ipv4(client, [4]byte{198, 18, 9, 9}, 6, 0, ports(40000, 80, 20))), false)
	check("nat reply", frame(testMAC, 0x0800, ipv4(reals[0].Addr, client, 6, 0, ports(8443, 40000, 20))), true)
	check("nat real, other port", frame(testMAC, 0x0800, ipv4(reals[0].Addr, client, 6, 0, ports(22, 40000, 20))), false)
	check("nat real to this host", frame(testMAC, 0x0800, ipv4(reals[0].Addr, local, 6, 0, ports(8443, 40000, 20))), false)
	check("nat real any port", frame(testMAC, 0x0800, ipv4(reals[3].Addr, client, 6, 0, ports(1234, 40000, 20))), true)
	check("nat real wrong proto", frame(testMAC, 0x0800, ipv4(reals[3].Addr, client, 17, 0, ports(1234, 40000, 8))), false)
	arp := make([]byte, 28)
	copy(arp[24:], vip[:])
	check("arp for vip", frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0x0806, arp), true)
	copy(arp[24:], local[:])
	check("arp for host", frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0x0806, arp), false)
	check("bcast ipv4", frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0x0800, ipv4(client, vip, 17, 0, ports(1, 2, 8))), false)

	// Random packets: every VIP and NAT real, protocols, fragments, truncation, ICMP errors
	// quoting either direction.
	rng := rand.New(rand.NewPCG(1, 19))
	addrs := [][4]byte{client, local, {198, 19, 0, 0}, {198, 19, 255, 254}}
	for _, v := range vips {
		addrs = append(addrs, v.Addr)
	}
	for _, r := range reals {
		addrs = append(addrs, r.Addr)
	}
	addrs = append(addrs, owned)
	pick := func() [4]byte {
		if rng.IntN(3) == 0 {
			return [4]byte{198, 19, byte(rng.IntN(256)), byte(rng.IntN(256))}
		}
		return addrs[rng.IntN(len(addrs))]
	}
	portOf := func() uint16 {
		ps := []uint16{80, 443, 53, 8443, 8080, 0, 179, 8848}
		if rng.IntN(2) == 0 {
			return ps[rng.IntN(len(ps))]
		}
		return uint16(rng.IntN(65536))
	}
	isVIP := func(a [4]byte) bool {
		if a == owned {
			return true
		}
		for _, v := range vips {
			if v.Addr == a {
				return true
			}
		}
		return false
	}
	redirected := 0
	for i := 0; i < 20000; i++ {
		src, dst := pick(), pick()
		proto := []uint8{6, 17, 1, 112, 47}[rng.IntN(5)]
		var frag uint16
		if rng.IntN(8) == 0 {
			frag = uint16(rng.IntN(0x4000))
		}
		sp, dp := portOf(), portOf()
		var l4 []byte
		if proto == 1 {
			typ := []byte{3, 11, 12, 0, 8}[rng.IntN(5)]
			q := ipv4(pick(), pick(), []uint8{6, 17}[rng.IntN(2)], 0, ports(portOf(), portOf(), 8))
			l4 = append([]byte{typ, 0, 0, 0, 0, 0, 0, 0}, q...)
		} else {
			l4 = ports(sp, dp, 20)
		}
		l4 = l4[:rng.IntN(len(l4)+1)] // truncated anywhere, down to no L4 at all
		ihl := 20
		var f []byte
		if rng.IntN(6) == 0 { // options: the program reads after them with bpf_xdp_load_bytes
			ihl = 4 * (6 + rng.IntN(10))
			f = frame(testMAC, 0x0800, ipv4opts(src, dst, proto, frag, ihl, l4))
		} else {
			f = frame(testMAC, 0x0800, ipv4(src, dst, proto, frag, l4))
		}
		at := 14 + ihl // the L4 header
		if rng.IntN(10) == 0 {
			f = append(f, make([]byte, rng.IntN(20))...) // Ethernet padding
		}
		// What uvs takes: see the program's comment.
		ours := false
		// The program reads ports where the frame has the bytes, Ethernet padding included.
		hasPorts := len(f) >= at+4
		if hasPorts {
			sp, dp = binary.BigEndian.Uint16(f[at:]), binary.BigEndian.Uint16(f[at+2:])
		}
		reserved := hasPorts && (proto == 17 && (sp == 8848 || dp == 8848) || proto == 6 && (sp == 179 || dp == 179))
		switch {
		case proto == 112 || reserved:
		case isVIP(dst):
			ours = true
		case dst == local:
		default:
			for _, r := range reals {
				if r.Addr != src {
					continue
				}
				switch {
				case proto == 1:
					ours = len(f) >= at+1 && (f[at] == 3 || f[at] == 11 || f[at] == 12)
				case proto != 6 && proto != 17:
				case frag&0x1fff != 0:
					ours = true
				case len(f) >= at+2:
					sp := binary.BigEndian.Uint16(f[at:])
					for _, r2 := range reals {
						if r2.Addr == src && r2.Proto == proto && (r2.Port == 0 || r2.Port == sp) {
							ours = true
						}
					}
				}
				break
			}
		}
		if ours {
			redirected++
		}
		if rng.IntN(8) == 0 { // the same frame behind an 802.1Q tag
			tagged := append(append(append([]byte{}, f[:12]...), 0x81, 0x00, 0, 7), f[12:]...)
			check("random tagged", tagged, ours)
		}
		check("random", f, ours)
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("%d of 20000 random frames redirected", redirected)
	if redirected < 1000 {
		t.Errorf("only %d frames redirected: the random mix does not exercise the hash", redirected)
	}
}

func a6(s string) [16]byte { return netip.MustParseAddr(s).As16() }

// ipv6 builds an IPv6 packet with next header next and payload l4.
func ipv6(src, dst [16]byte, next uint8, l4 []byte) []byte {
	b := make([]byte, 40, 40+len(l4))
	b[0], b[6], b[7] = 0x60, next, 64
	binary.BigEndian.PutUint16(b[4:], uint16(len(l4)))
	copy(b[8:], src[:])
	copy(b[24:], dst[:])
	return append(b, l4...)
}

// nsFor is a neighbour solicitation for target (ICMPv6 type 135, RFC 4861 section 4.3).
func nsFor(target [16]byte) []byte {
	b := make([]byte, 24)
	b[0] = 135
	copy(b[8:], target[:])
	return b
}

// solicitedNode returns the solicited-node multicast address of a and its MAC.
func solicitedNode(a [16]byte) ([16]byte, [6]byte) {
	g := a6("ff02::1:ff00:0")
	copy(g[13:], a[13:])
	return g, [6]byte{0x33, 0x33, g[12], g[13], g[14], g[15]}
}

// TestIntegrationXDPSteeringMatchesFanout6 is TestIntegrationXDPSteeringMatchesFanout for
// IPv6: every verdict of the IPv6 part (VIP traffic, NAT replies, neighbour solicitations for
// VIPs, ICMPv6 errors, what passes), and over random frames the socket steer's IPv6 hash picks.
func TestIntegrationXDPSteeringMatchesFanout6(t *testing.T) {
	vip := a6("2001:2:0:6::100")
	vips := []steer.SteerVIP{
		{Addr: [4]byte{198, 18, 1, 100}},
		{V6: true, Addr6: vip},
		{V6: true, Addr6: a6("2001:2:0:6::101"), Persist: []steer.SteerPersist{{Port: 443, Bits: 64}, {Port: 80, Bits: 128}}},
		{V6: true, Addr6: a6("2001:2:0:6::102"), Persist: []steer.SteerPersist{{Port: 0, Bits: 48}}},
		{V6: true, Addr6: a6("2001:2:0:6::103"), Persist: []steer.SteerPersist{{Port: 53, Bits: 100}, {Port: 0, Bits: 56}}},
	}
	r1, r2, r3 := a6("2001:2:0:6:1::11"), a6("2001:2:0:6:1::12"), a6("2001:2:0:6:1::13")
	nat := []steer.SteerNAT{
		{Addr: [4]byte{198, 18, 3, 11}, Port: 8443, Bits: 24},
		{V6: true, Addr6: r1, Port: 8443, Bits: 64},
		{V6: true, Addr6: r1, Port: 8080, Bits: 128},
		{V6: true, Addr6: r2, Port: 0, Bits: 56},
	}
	reals := []NATReal{
		{Addr: [4]byte{198, 18, 3, 11}, Proto: 6, Port: 8443},
		{V6: true, Addr6: r1, Proto: 6, Port: 8443}, {V6: true, Addr6: r1, Proto: 6, Port: 8080},
		{V6: true, Addr6: r2, Proto: 17, Port: 0},
		{V6: true, Addr6: r3, Proto: 17, Port: 53}, // not persistent: plain steering
	}
	local := a6("2001:2:0:6:2::1")
	owned := a6("2001:2:0:6:3::1")
	const workers = 1 << 16
	prog := loadTestProgram(t, workers, Sets{VIPs: vips, Owned6: [][16]byte{owned}, SteerNAT: nat, NATReals: reals, Local6: [][16]byte{local}})

	run := func(f []byte) uint32 {
		t.Helper()
		ret, err := prog.Run(&ebpf.RunOptions{Data: f})
		if err != nil {
			t.Fatalf("test run: %v", err)
		}
		return ret
	}
	check := func(name string, f []byte, ours bool) {
		t.Helper()
		ret := run(f)
		if !ours {
			if ret != xdpPass {
				t.Errorf("%s: ret %#x, want XDP_PASS (frame % x)", name, ret, f)
			}
			return
		}
		l3 := 14
		if binary.BigEndian.Uint16(f[12:]) == 0x8100 {
			l3 = 18
		}
		want := steer.Hash(f[l3:], vips, nat)
		if ret != testBase+want {
			t.Errorf("%s: ret %#x, want socket %#x (frame % x)", name, ret, testBase+want, f)
		}
	}
	tcp := func(sp, dp uint16) []byte { return ports(sp, dp, 20) }
	client := a6("2001:2:0:6:9::7")
	e6 := func(l3 []byte) []byte { return frame(testMAC, 0x86dd, l3) }

	// Every verdict.
	check("tcp to vip", e6(ipv6(client, vip, 6, tcp(40000, 80))), true)
	check("udp to vip", e6(ipv6(client, vip, 17, ports(40000, 53, 8))), true)
	check("icmpv6 echo to vip", e6(ipv6(client, vip, 58, []byte{128, 0, 0, 0, 0, 1, 0, 1})), true)
	check("extension header to vip", e6(ipv6(client, vip, 60, make([]byte, 16))), true)
	check("persistent vip, port 443", e6(ipv6(client, vips[2].Addr6, 6, tcp(40000, 443))), true)
	check("persistent vip, port-0 service", e6(ipv6(client, vips[3].Addr6, 17, ports(1, 2, 8))), true)
	check("persistent vip, no ports", e6(ipv6(client, vips[4].Addr6, 6, nil)), true)
	check("owned address", e6(ipv6(client, owned, 58, []byte{128, 0, 0, 0, 0, 1, 0, 1})), true)
	tagged := frame(testMAC, 0x8100, append([]byte{0, 7, 0x86, 0xdd}, ipv6(client, vip, 6, tcp(40000, 80))...))
	check("tagged tcp to vip", tagged, true)
	check("vrrp to vip", e6(ipv6(client, vip, 112, make([]byte, 8))), false)
	check("bgp to vip", e6(ipv6(client, vip, 6, tcp(40000, 179))), false)
	check("sync to vip", e6(ipv6(client, vip, 17, ports(8848, 8848, 8))), false)
	check("other mac", frame([6]byte{2, 1, 1, 1, 1, 1}, 0x86dd, ipv6(client, vip, 6, tcp(40000, 80))), false)
	check("broadcast mac", frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0x86dd, ipv6(client, vip, 6, tcp(40000, 80))), false)
	check("not a vip", e6(ipv6(client, a6("2001:2:0:6::999"), 6, tcp(40000, 80))), false)
	check("truncated header", e6(ipv6(client, vip, 6, nil)[:39]), false)
	check("to this host", e6(ipv6(client, local, 6, tcp(40000, 22))), false)
	check("nat reply", e6(ipv6(r1, client, 6, tcp(8443, 40000))), true)
	check("nat reply, persistent 128", e6(ipv6(r1, client, 6, tcp(8080, 40000))), true)
	check("nat real, other port", e6(ipv6(r1, client, 6, tcp(22, 40000))), false)
	check("nat real, any port", e6(ipv6(r2, client, 17, ports(5353, 40000, 8))), true)
	check("nat real, wrong proto", e6(ipv6(r2, client, 6, tcp(5353, 40000))), false)
	check("nat real, plain", e6(ipv6(r3, client, 17, ports(53, 40000, 8))), true)
	check("nat real to this host", e6(ipv6(r1, local, 6, tcp(8443, 40000))), false)
	check("nat real, extension header", e6(ipv6(r1, client, 60, tcp(8443, 40000))), false)
	check("nat real, no ports", e6(ipv6(r1, client, 6, []byte{0x20})), false)
	quoted := ipv6(client, r1, 6, tcp(40000, 8443))
	check("icmpv6 error from nat real", e6(ipv6(r1, client, 58, append([]byte{1, 4, 0, 0, 0, 0, 0, 0}, quoted...))), true)
	check("icmpv6 echo from nat real", e6(ipv6(r1, client, 58, []byte{129, 0, 0, 0, 0, 1, 0, 1})), false)
	ptb := ipv6(a6("2001:2:0:6:8::1"), vip, 58, append([]byte{2, 0, 0, 0, 0, 0, 5, 0}, ipv6(vip, client, 6, tcp(80, 40000))...))
	check("packet too big about a vip connection", e6(ptb), true)
	check("icmpv6 error, quote truncated", e6(ptb[:40+8+30]), true)
	check("icmpv6 without a type", e6(ipv6(client, vip, 58, nil)), true)
	group, gmac := solicitedNode(vip)
	check("ns for vip, solicited-node", frame(gmac, 0x86dd, ipv6(client, group, 58, nsFor(vip))), true)
	check("ns for vip, unicast", e6(ipv6(client, vip, 58, nsFor(vip))), true)
	check("ns for owned", frame(gmac, 0x86dd, ipv6(client, group, 58, nsFor(owned))), true)
	check("ns for vip, tagged", frame(gmac, 0x8100, append([]byte{0, 7, 0x86, 0xdd}, ipv6(client, group, 58, nsFor(vip))...)), true)
	g2, gmac2 := solicitedNode(local)
	check("ns for this host", frame(gmac2, 0x86dd, ipv6(client, g2, 58, nsFor(local))), false)
	check("ns truncated", frame(gmac, 0x86dd, ipv6(client, group, 58, nsFor(vip)[:20])), false)
	check("na for vip to multicast", frame(gmac, 0x86dd, ipv6(client, group, 58, append([]byte{136}, nsFor(vip)[1:]...))), false)
	check("mld to multicast", frame([6]byte{0x33, 0x33, 0, 0, 0, 0x16}, 0x86dd, ipv6(client, a6("ff02::16"), 0, make([]byte, 28))), false)
	check("ipv4 to multicast mac", frame(gmac, 0x0800, ipv4([4]byte{198, 19, 7, 9}, [4]byte{198, 18, 1, 100}, 6, 0, ports(40000, 80, 20))), false)
	check("ipv4 still steered", frame(testMAC, 0x0800, ipv4([4]byte{198, 19, 7, 9}, [4]byte{198, 18, 1, 100}, 6, 0, ports(40000, 80, 20))), true)

	// Random frames: addresses from the sets and elsewhere, next headers, truncation, ICMPv6
	// errors quoting either direction.
	rng := rand.New(rand.NewPCG(6, 19))
	addrs := [][16]byte{client, local, owned, r1, r2, r3, a6("2001:2:0:6:9::8"), a6("2001:2:0:6:9:1::8")}
	for _, v := range vips[1:] {
		addrs = append(addrs, v.Addr6)
	}
	pick := func() [16]byte {
		a := addrs[rng.IntN(len(addrs))]
		if rng.IntN(4) == 0 {
			a[15], a[9] = byte(rng.IntN(256)), byte(rng.IntN(256))
		}
		return a
	}
	portOf := func() uint16 {
		ps := []uint16{80, 443, 53, 8443, 8080, 0, 179, 8848, 5353}
		if rng.IntN(2) == 0 {
			return ps[rng.IntN(len(ps))]
		}
		return uint16(rng.IntN(65536))
	}
	isVIP := func(a [16]byte) bool {
		if a == owned {
			return true
		}
		for _, v := range vips {
			if v.V6 && v.Addr6 == a {
				return true
			}
		}
		return false
	}
	redirected := 0
	for i := 0; i < 20000; i++ {
		src, dst := pick(), pick()
		next := []uint8{6, 17, 58, 112, 60, 44}[rng.IntN(6)]
		var l4 []byte
		if next == 58 {
			typ := []byte{1, 2, 3, 4, 128, 135, 136}[rng.IntN(7)]
			if typ == 135 {
				l4 = nsFor(pick())
			} else {
				q := ipv6(pick(), pick(), []uint8{6, 17}[rng.IntN(2)], ports(portOf(), portOf(), 8))
				l4 = append([]byte{typ, 0, 0, 0, 0, 0, 0, 0}, q...)
			}
		} else {
			l4 = ports(portOf(), portOf(), 20)
		}
		l4 = l4[:rng.IntN(len(l4)+1)]
		l3 := ipv6(src, dst, next, l4)
		dmac := testMAC
		mcast := rng.IntN(6) == 0
		if mcast {
			var g [16]byte
			g, dmac = solicitedNode(pick())
			copy(l3[24:], g[:])
		}
		f := frame(dmac, 0x86dd, l3)
		if rng.IntN(10) == 0 {
			f = append(f, make([]byte, rng.IntN(20))...)
		}
		ip := f[14:]
		hasPorts := len(ip) >= 44
		var sp, dp uint16
		if len(ip) >= 42 {
			sp = binary.BigEndian.Uint16(ip[40:])
		}
		if hasPorts {
			dp = binary.BigEndian.Uint16(ip[42:])
		}
		d := [16]byte(ip[24:40])
		reserved := next == 112 || hasPorts && (next == 17 && (sp == 8848 || dp == 8848) || next == 6 && (sp == 179 || dp == 179))
		ours := false
		switch {
		case reserved:
		case mcast:
			ours = next == 58 && len(ip) >= 64 && ip[40] == 135 && isVIP([16]byte(ip[48:64]))
		case isVIP(d):
			ours = true
		case d == local:
		default:
			for _, r := range reals {
				if !r.V6 || r.Addr6 != src {
					continue
				}
				switch {
				case next == 58:
					ours = len(ip) > 40 && ip[40] >= 1 && ip[40] <= 4
				case next == 6 || next == 17:
					if len(ip) >= 42 && r.Proto == next && (r.Port == 0 || r.Port == sp) {
						ours = true
					}
				}
				if ours {
					break
				}
			}
		}
		if ours {
			redirected++
		}
		if rng.IntN(8) == 0 {
			tagged := append(append(append([]byte{}, f[:12]...), 0x81, 0x00, 0, 7), f[12:]...)
			check("random tagged", tagged, ours)
		}
		check("random", f, ours)
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("%d of 20000 random frames redirected", redirected)
	if redirected < 1000 {
		t.Errorf("only %d frames redirected: the random mix does not exercise the hash", redirected)
	}
}

// BenchmarkXDPProgram times the XDP program in the kernel (BPF_PROG_TEST_RUN with a repeat
// count) on IPv4 and IPv6 frames: VIP traffic and a NAT reply (redirected), a neighbour
// solicitation for a VIP, and traffic for the host (passed). The test build returns the
// socket index instead of calling bpf_redirect_map; b.N only scales the repeat count.
func BenchmarkXDPProgram(b *testing.B) {
	vip6, real6, client6 := a6("2001:2:0:6::100"), a6("2001:2:0:6:1::11"), a6("2001:2:0:6:9::7")
	vips := []steer.SteerVIP{{Addr: [4]byte{198, 18, 1, 100}}, {V6: true, Addr6: vip6}}
	reals := []NATReal{{Addr: [4]byte{198, 18, 3, 11}, Proto: 6, Port: 80}, {V6: true, Addr6: real6, Proto: 6, Port: 80}}
	prog := loadBenchProgram(b, Sets{VIPs: vips, NATReals: reals})
	client := [4]byte{198, 19, 7, 9}
	group, gmac := solicitedNode(vip6)
	for _, tt := range []struct {
		name  string
		frame []byte
	}{
		{"vip", frame(testMAC, 0x0800, ipv4(client, vips[0].Addr, 17, 0, ports(40000, 53, 8)))},
		{"nat-reply", frame(testMAC, 0x0800, ipv4(reals[0].Addr, client, 6, 0, ports(80, 40000, 20)))},
		{"other", frame(testMAC, 0x0800, ipv4(client, [4]byte{198, 18, 0, 1}, 6, 0, ports(40000, 22, 20)))},
		{"vip6", frame(testMAC, 0x86dd, ipv6(client6, vip6, 17, ports(40000, 53, 8)))},
		{"nat-reply6", frame(testMAC, 0x86dd, ipv6(real6, client6, 6, ports(80, 40000, 20)))},
		{"ns6", frame(gmac, 0x86dd, ipv6(client6, group, 58, nsFor(vip6)))},
		{"other6", frame(testMAC, 0x86dd, ipv6(client6, a6("2001:2:0:6:2::1"), 6, ports(40000, 22, 20)))},
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

// loadBenchProgram is loadTestProgram for a benchmark: one worker per hash value.
func loadBenchProgram(b *testing.B, s Sets) *ebpf.Program {
	b.Helper()
	testenv.RequireRoot(b)
	x, err := NewXDP(4, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(x.Close)
	xsks, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { xsks.Close() })
	if err := x.Update(s); err != nil {
		b.Fatal(err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: ProgName, Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: buildProgram(x.fds(xsks), progParams{mac: testMAC, workers: 4, testIndex: true})})
	if err != nil {
		b.Fatalf("load: %+v", err)
	}
	b.Cleanup(func() { prog.Close() })
	return prog
}
