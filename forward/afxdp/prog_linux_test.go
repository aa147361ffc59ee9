//go:build linux

package afxdp

import (
	"encoding/binary"
	"math/rand/v2"
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
	fds := progFDs{xsks: xsks.FD(), vips: x.vips.FD(), persist: x.persist.FD(), natsteer: x.natsteer.FD(),
		natreal: x.natreal.FD(), nataddr: x.nataddr.FD(), local: x.local.FD()}
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
				t.Errorf("%s: ret %#x, want XDP_PASS", name, ret)
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
		f := frame(testMAC, 0x0800, ipv4(src, dst, proto, frag, l4))
		if rng.IntN(10) == 0 {
			f = append(f, make([]byte, rng.IntN(20))...) // Ethernet padding
		}
		// What uvs takes: see the program's comment.
		ours := false
		// The program reads ports where the frame has the bytes, Ethernet padding included.
		hasPorts := len(f) >= 14+20+4
		if hasPorts {
			sp, dp = binary.BigEndian.Uint16(f[34:]), binary.BigEndian.Uint16(f[36:])
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
					ours = len(f) >= 35 && (f[34] == 3 || f[34] == 11 || f[34] == 12)
				case proto != 6 && proto != 17:
				case frag&0x1fff != 0:
					ours = true
				case len(f) >= 14+20+2:
					sp := binary.BigEndian.Uint16(f[34:])
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
