package steer

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"golang.org/x/net/bpf"
)

// ipv4Packet builds a minimal IPv4 packet with a TCP/UDP port pair after the header.
func ipv4Packet(src, dst [4]byte, proto uint8, sport, dport uint16, fragOff uint16) []byte {
	b := make([]byte, 20+8)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[6:], fragOff)
	b[8] = 64
	b[9] = proto
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	binary.BigEndian.PutUint16(b[20:], sport)
	binary.BigEndian.PutUint16(b[22:], dport)
	return b
}

func runSteer(t *testing.T, vm *bpf.VM, pkt []byte) uint32 {
	t.Helper()
	v, err := vm.Run(pkt)
	if err != nil {
		t.Fatalf("vm: %v", err)
	}
	return uint32(v)
}

func TestSteerProgramMatchesReference(t *testing.T) {
	vip := [4]byte{198, 18, 1, 100}
	vip2 := [4]byte{198, 18, 1, 101}
	vips := []SteerVIP{
		{Addr: vip},
		{Addr: vip2, Persist: []SteerPersist{{Port: 443, Bits: 24}, {Port: 80, Bits: 32}}},
		{Addr: [4]byte{198, 18, 1, 102}, Persist: []SteerPersist{{Port: 0, Bits: 16}}},
	}
	nat := []SteerNAT{
		{Addr: [4]byte{198, 18, 3, 11}, Port: 8443, Bits: 24},
		{Addr: [4]byte{198, 18, 3, 11}, Port: 8080, Bits: 32},
		{Addr: [4]byte{198, 18, 3, 12}, Port: 8443, Bits: 24},
		{Addr: [4]byte{198, 18, 3, 13}, Port: 0, Bits: 16},
	}
	raw, err := BuildSteerProgram(vips, nat)
	if err != nil {
		t.Fatal(err)
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	addrs := [][4]byte{vip, vip2, {198, 18, 1, 102}, {198, 18, 3, 11}, {198, 18, 3, 12}, {198, 18, 3, 13}, {198, 18, 2, 10}, {198, 18, 2, 11}}
	for i := 0; i < 20000; i++ {
		src := addrs[rng.IntN(len(addrs))]
		dst := addrs[rng.IntN(len(addrs))]
		ports := []uint16{80, 443, 8080, 8443, uint16(rng.IntN(65536))}
		sp := ports[rng.IntN(len(ports))]
		dp := ports[rng.IntN(len(ports))]
		var frag uint16
		if rng.IntN(10) == 0 {
			frag = 0x2000
		}
		pkt := ipv4Packet(src, dst, 6, sp, dp, frag)
		if rng.IntN(4) == 0 {
			q := ipv4Packet(addrs[rng.IntN(len(addrs))], addrs[rng.IntN(len(addrs))], 6, ports[rng.IntN(len(ports))], ports[rng.IntN(len(ports))], 0)
			pkt = icmpError(src, dst, []uint8{0, 3, 8, 11, 12}[rng.IntN(5)], q)
		}
		if rng.IntN(20) == 0 {
			pkt = pkt[:20+rng.IntN(8)] // truncated L4
		}
		want := steerHash(pkt, vips, nat)
		if got := runSteer(t, vm, pkt); got != want {
			t.Fatalf("packet %d %v->%v %d->%d frag %x len %d: program %d, reference %d", i, src, dst, sp, dp, frag, len(pkt), got, want)
		}
	}
}

func TestSteerKeepsNATFlowsAndPersistenceTogether(t *testing.T) {
	vip := [4]byte{198, 18, 2, 100}
	dest := [4]byte{198, 18, 3, 11}
	client := [4]byte{198, 18, 2, 10}
	vips := []SteerVIP{{Addr: vip}, {Addr: [4]byte{198, 18, 2, 101}, Persist: []SteerPersist{{Port: 80, Bits: 24}, {Port: 443, Bits: 24}}}}
	nat := []SteerNAT{{Addr: [4]byte{198, 18, 3, 12}, Port: 8080, Bits: 24}}
	for sport := uint16(1024); sport < 1100; sport++ {
		req := steerHash(ipv4Packet(client, vip, 6, sport, 80, 0), vips, nat)
		rep := steerHash(ipv4Packet(dest, client, 6, 8080, sport, 0), vips, nat)
		if req != rep {
			t.Fatalf("sport %d: request %d, reply %d", sport, req, rep)
		}
	}
	// Persistent: all ports of one /24 client on one key, both services, and NAT replies.
	want := steerHash(ipv4Packet(client, [4]byte{198, 18, 2, 101}, 6, 1024, 80, 0), vips, nat)
	for sport := uint16(1024); sport < 1100; sport++ {
		c := client
		c[3] = byte(sport)
		for _, dport := range []uint16{80, 443} {
			if got := steerHash(ipv4Packet(c, [4]byte{198, 18, 2, 101}, 6, sport, dport, 0), vips, nat); got != want {
				t.Fatalf("persistent client %v:%d -> :%d: %d, want %d", c, sport, dport, got, want)
			}
		}
		if got := steerHash(ipv4Packet([4]byte{198, 18, 3, 12}, c, 6, 8080, sport, 0), vips, nat); got != want {
			t.Fatalf("persistent NAT reply to %v:%d: %d, want %d", c, sport, got, want)
		}
	}
}

func TestSteerSpreadsFlows(t *testing.T) {
	vips := []SteerVIP{{Addr: [4]byte{198, 18, 1, 100}}}
	for _, workers := range []uint32{2, 3, 8, 32} {
		counts := make([]int, workers)
		for sport := 0; sport < 10000; sport++ {
			h := steerHash(ipv4Packet([4]byte{198, 18, 1, 10}, [4]byte{198, 18, 1, 100}, 17, uint16(20000+sport), 9000, 0), vips, nil)
			counts[h%workers]++
		}
		for w, c := range counts {
			exp := 10000 / int(workers)
			if c < exp*8/10 || c > exp*12/10 {
				t.Errorf("%d workers: worker %d got %d of 10000 flows (want about %d)", workers, w, c, exp)
			}
		}
	}
}

func TestSteerProgramTooLarge(t *testing.T) {
	vips := make([]SteerVIP, 2100)
	for i := range vips {
		vips[i].Addr = [4]byte{198, 18, byte(i >> 8), byte(i)}
	}
	if _, err := BuildSteerProgram(vips, nil); err == nil {
		t.Fatal("want an error for a program over BPF_MAXINSNS")
	}
}

// icmpError builds an IPv4 ICMP error from src to dst quoting the packet q (IPv4, at least
// 28 bytes used).
func icmpError(src, dst [4]byte, typ uint8, q []byte) []byte {
	b := make([]byte, 20+8+28)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 64
	b[9] = 1
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	b[20] = typ
	copy(b[28:], q[:28])
	return b
}

func TestSteerICMPErrorsFollowTheirConnection(t *testing.T) {
	vip := [4]byte{198, 18, 1, 100}
	client := [4]byte{198, 18, 1, 10}
	router := [4]byte{198, 18, 9, 1}
	realSrv := [4]byte{198, 18, 3, 11}
	vips := []SteerVIP{{Addr: vip}, {Addr: [4]byte{198, 18, 1, 101}, Persist: []SteerPersist{{Port: 443, Bits: 24}}}}
	nat := []SteerNAT{{Addr: [4]byte{198, 18, 3, 12}, Port: 8443, Bits: 24}}
	raw, err := BuildSteerProgram(vips, nat)
	if err != nil {
		t.Fatal(err)
	}
	insns, _ := bpf.Disassemble(raw)
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	for sport := uint16(30000); sport < 30200; sport++ {
		req := ipv4Packet(client, vip, 6, sport, 80, 0)
		want := steerHash(req, vips, nil)
		cases := map[string][]byte{
			// A router on the client's path: frag-needed about the reply VIP -> client.
			"to the VIP": icmpError(router, vip, 3, ipv4Packet(vip, client, 6, 80, sport, 0)),
			// A NAT real server's host about the rewritten request client -> real.
			"from a NAT real": icmpError(realSrv, client, 3, ipv4Packet(client, realSrv, 6, sport, 8080, 0)),
			"time exceeded":   icmpError(router, vip, 11, ipv4Packet(vip, client, 6, 80, sport, 0)),
		}
		for name, pkt := range cases {
			if got := steerHash(pkt, vips, nat); got != want {
				t.Fatalf("%s, port %d: %d, want the connection's %d", name, sport, got, want)
			}
			if got := runSteer(t, vm, pkt); got != want {
				t.Fatalf("%s, port %d: program %d, want %d", name, sport, got, want)
			}
		}
		// Persistent service: the masked client, for a NAT reply's ICMP too.
		preq := steerHash(ipv4Packet(client, [4]byte{198, 18, 1, 101}, 6, sport, 443, 0), vips, nat)
		perr := icmpError(router, [4]byte{198, 18, 1, 101}, 3, ipv4Packet([4]byte{198, 18, 1, 101}, client, 6, 443, sport, 0))
		if got := runSteer(t, vm, perr); got != preq {
			t.Fatalf("persistent: program %d, want %d", got, preq)
		}
	}
}
