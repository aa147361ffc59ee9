package steer

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

// ipv6Packet builds a minimal IPv6 packet with next header proto and a port pair after the
// fixed header.
func ipv6Packet(src, dst [16]byte, proto uint8, sport, dport uint16) []byte {
	b := make([]byte, 40+8)
	b[0], b[6], b[7] = 0x60, proto, 64
	binary.BigEndian.PutUint16(b[4:], 8)
	copy(b[8:], src[:])
	copy(b[24:], dst[:])
	binary.BigEndian.PutUint16(b[40:], sport)
	binary.BigEndian.PutUint16(b[42:], dport)
	return b
}

// icmp6Error wraps quoted (an IPv6 packet) in an ICMPv6 error of type typ from src to dst.
func icmp6Error(src, dst [16]byte, typ uint8, quoted []byte) []byte {
	b := append(ipv6Packet(src, dst, 58, 0, 0)[:48], quoted...)
	b[40], b[41] = typ, 0
	return b
}

func a6(s string) [16]byte { return netip.MustParseAddr(s).As16() }

func steer6Fixture() ([]SteerVIP, []SteerNAT) {
	vips := []SteerVIP{
		{Addr: [4]byte{198, 18, 1, 100}},
		{V6: true, Addr6: a6("2001:db8::100")},
		{V6: true, Addr6: a6("2001:db8::101"), Persist: []SteerPersist{{Port: 443, Bits: 64}, {Port: 80, Bits: 128}}},
		{V6: true, Addr6: a6("2001:db8::102"), Persist: []SteerPersist{{Port: 0, Bits: 48}}},
	}
	nat := []SteerNAT{
		{Addr: [4]byte{198, 18, 3, 11}, Port: 8443, Bits: 24},
		{V6: true, Addr6: a6("fd00::11"), Port: 8443, Bits: 64},
		{V6: true, Addr6: a6("fd00::12"), Port: 0, Bits: 56},
	}
	return vips, nat
}

func steer6VM(t *testing.T, vips []SteerVIP, nat []SteerNAT) *bpf.VM {
	t.Helper()
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
	return vm
}

func TestSteerProgramMatchesReference6(t *testing.T) {
	vips, nat := steer6Fixture()
	vm := steer6VM(t, vips, nat)
	addrs := [][16]byte{a6("2001:db8::100"), a6("2001:db8::101"), a6("2001:db8::102"), a6("fd00::11"), a6("fd00::12"),
		a6("2001:db8:1::7"), a6("2001:db8:1:0:ffff::9")}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		src, dst := addrs[r.IntN(len(addrs))], addrs[r.IntN(len(addrs))]
		if r.IntN(3) == 0 {
			src[15] = byte(r.IntN(256))
			src[7] = byte(r.IntN(256))
		}
		proto := []uint8{6, 17, 58, 0, 44}[r.IntN(5)]
		pkt := ipv6Packet(src, dst, proto, uint16(r.IntN(4)*8080/3+443), []uint16{80, 443, 8443, 53}[r.IntN(4)])
		if proto == 58 && r.IntN(2) == 0 {
			pkt = icmp6Error(dst, src, uint8(r.IntN(5)), pkt)
		}
		if r.IntN(10) == 0 {
			pkt = pkt[:r.IntN(len(pkt))]
		}
		want := steerHash(pkt, vips, nat)
		if got := runSteer(t, vm, pkt); got != want {
			t.Fatalf("packet %x: program %#x, reference %#x", pkt, got, want)
		}
	}
}

func TestSteerKeepsIPv6FlowsTogether(t *testing.T) {
	vips, nat := steer6Fixture()
	vm := steer6VM(t, vips, nat)
	client := a6("2001:db8:1::7")
	for sport := uint16(1024); sport < 1100; sport++ {
		// NAT: request to the VIP and reply from the real server, persistent /64 on 443.
		req := runSteer(t, vm, ipv6Packet(client, a6("2001:db8::101"), 6, sport, 443))
		rep := runSteer(t, vm, ipv6Packet(a6("fd00::11"), client, 6, 8443, sport))
		if req != rep {
			t.Fatalf("sport %d: request %#x, reply %#x", sport, req, rep)
		}
		// Another client of the same /64 lands with it.
		other := client
		other[15] = byte(sport)
		if got := runSteer(t, vm, ipv6Packet(other, a6("2001:db8::101"), 6, sport+7, 443)); got != req {
			t.Fatalf("same /64: %#x != %#x", got, req)
		}
		// A packet too big about a reply the client's path could not carry follows it.
		ptb := icmp6Error(a6("2001:db8:ffff::1"), a6("2001:db8::101"), 2, ipv6Packet(a6("2001:db8::101"), client, 6, 443, sport))
		if got := runSteer(t, vm, ptb); got != req {
			t.Fatalf("packet too big steered %#x, connection %#x", got, req)
		}
		// Non-persistent DR VIP: request, and the NAT-less reply goes elsewhere (the real
		// answers the client directly); the request hash is the client's.
		if runSteer(t, vm, ipv6Packet(client, a6("2001:db8::100"), 17, sport, 53)) != steerAddrPort(fold6(client, 128), sport) {
			t.Fatal("plain VIP")
		}
	}
	// Port-0 persistence on a /48: every port of every client in it.
	want := runSteer(t, vm, ipv6Packet(client, a6("2001:db8::102"), 6, 1, 1))
	c2 := a6("2001:db8:1:ffff::1")
	if got := runSteer(t, vm, ipv6Packet(c2, a6("2001:db8::102"), 17, 9, 9)); got != want {
		t.Fatalf("/48: %#x != %#x", got, want)
	}
	// An extension header first: the client address alone, the same for its fragments.
	if runSteer(t, vm, ipv6Packet(client, a6("2001:db8::100"), 0, 1, 2)) != steerAddr(fold6(client, 128)) {
		t.Fatal("extension header")
	}
}
