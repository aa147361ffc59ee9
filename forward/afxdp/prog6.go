package afxdp

import (
	"github.com/cilium/ebpf/asm"
)

// The IPv6 part of the XDP program, entered at label "ipv6" with R9 = the IPv6 header (14 or
// 18 bytes into the frame), R6 = ctx, R7 = data, R8 = data_end. It redirects:
//   - IPv6 to an IPv6 VIP or owned address (any next header), except VRRP (112), IPVS sync
//     (UDP 8848) and BGP (TCP 179) right after the fixed header;
//   - neighbour solicitations whose target is a VIP, to the solicited-node multicast address
//     (a 33:33 destination MAC) or unicast;
//   - NAT replies: TCP or UDP right after the fixed header from a NAT real's (address,
//     protocol, port), and ICMPv6 errors (types 1 to 4) from a NAT real's address, unless
//     addressed to this host;
//
// and passes the rest: neighbour discovery for other addresses, MLD, router advertisements,
// and NAT-real packets whose transport header follows extension headers (rare; the stack
// sees them as it would without uvs). Every offset is constant from the IPv6 header, so
// packet bytes are read in place (no bpf_xdp_load_bytes).
//
// The socket is chosen by package steer's IPv6 rule (steer6.go): addresses XOR-folded to 32
// bits, VIP traffic by the client's folded address and port (or folded and masked for a
// persistent service), NAT replies by the destination, ICMPv6 errors by the packet they quote
// turned around, and the address alone when the next header is not TCP, UDP or ICMPv6.
//
// Addresses are kept on the stack, and used as map keys, as four host-order words.

// Stack slots of the IPv6 part (below the IPv4 part's; the shared ones are reused).
const (
	stMcast = -68  // 1: the frame's destination MAC is an IPv6 multicast one (33:33:...)
	stS6    = -84  // source address, 4 host-order words
	stD6    = -100 // destination
	stKey6  = -120 // 20-byte map key: address words, then a u32 (port, or proto<<16|port)
	stMask6 = -136 // best rule's mask, 4 words
)

// vip6Value is the value of the vips6 map: vipValue with a 128-bit mask.
type vip6Value struct {
	Flags     uint32
	FirstMask [4]uint32
}

// IPv6 ICMP types (RFC 4443, RFC 4861).
const (
	icmp6ErrFirst = 1   // destination unreachable; 2 packet too big, 3 time exceeded,
	icmp6ErrLast  = 4   // 4 parameter problem
	icmp6NS       = 135 // neighbour solicitation
)

// Offsets from the IPv6 header (steer6.go's names).
const (
	off6Next      = 6
	off6Src       = 8
	off6Dst       = 24
	off6L4        = 40
	off6NSTarget  = off6L4 + 8
	off6QuoteSrc  = off6L4 + 8 + off6Src
	off6QuoteDst  = off6L4 + 8 + off6Dst
	off6QuotePort = off6L4 + 8 + off6L4
)

// fds6 are the IPv6 maps.
type fds6 struct {
	vips, persist, natsteer, natreal, nataddr, local int
}

// program6 emits the IPv6 part; it ends in jumps to the IPv4 part's "hashaddr" (R2 = folded
// address), "hashport" (R2 = folded address, R3 = port), "hash0" and "pass".
func program6(fd fds6) asm.Instructions {
	R0, R1, R2, R3, R4, R6, R8, R9, FP := asm.R0, asm.R1, asm.R2, asm.R3, asm.R4, asm.R6, asm.R8, asm.R9, asm.RFP
	_ = R6
	var in asm.Instructions
	add := func(is ...asm.Instruction) { in = append(in, is...) }
	label := func(l string, i asm.Instruction) { in = append(in, i.WithSymbol(l)) }
	// need jumps to fail unless the frame has n bytes from the IPv6 header on.
	need := func(n int32, fail string) {
		add(asm.Mov.Reg(R1, R9), asm.Add.Imm(R1, n), asm.JGT.Reg(R1, R8, fail))
	}
	// addr copies the address at IPv6 offset off into stack slot dst as host-order words.
	addr := func(off int16, dst int16) {
		for w := int16(0); w < 4; w++ {
			add(asm.LoadMem(R2, R9, off+4*w, asm.Word), asm.HostTo(asm.BE, R2, asm.Word), asm.StoreMem(FP, dst+4*w, R2, asm.Word))
		}
	}
	// key sets stKey6 to the address in slot a and the u32 in slot portSlot (or imm).
	key := func(a int16, imm int32, portSlot int16) {
		for w := int16(0); w < 4; w++ {
			add(asm.LoadMem(R1, FP, a+4*w, asm.Word), asm.StoreMem(FP, stKey6+4*w, R1, asm.Word))
		}
		if portSlot != 0 {
			add(asm.LoadMem(R1, FP, portSlot, asm.Word), asm.StoreMem(FP, stKey6+16, R1, asm.Word))
		} else {
			add(asm.StoreImm(FP, stKey6+16, int64(imm), asm.Word))
		}
	}
	lookup := func(mapFD int) {
		add(asm.LoadMapPtr(R1, mapFD), asm.Mov.Reg(R2, FP), asm.Add.Imm(R2, stKey6), asm.FnMapLookupElem.Call())
	}
	// fold leaves in R2 the XOR of the four words at slot a, each masked by the word at
	// slot mask (none: unmasked).
	fold := func(a int16, mask int16) {
		add(asm.Mov.Imm(R2, 0))
		for w := int16(0); w < 4; w++ {
			add(asm.LoadMem(R1, FP, a+4*w, asm.Word))
			if mask != 0 {
				add(asm.LoadMem(R3, FP, mask+4*w, asm.Word), asm.And.Reg32(R1, R3))
			}
			add(asm.Xor.Reg32(R2, R1))
		}
	}
	// better keeps the rule value in R0 (mask words, then position) when it comes before the
	// best so far.
	better := func(l string) {
		add(asm.JEq.Imm(R0, 0, l),
			asm.LoadMem(R1, R0, 16, asm.Word),
			asm.LoadMem(R2, FP, stPos, asm.Word),
			asm.JGE.Reg32(R1, R2, l),
			asm.StoreMem(FP, stPos, R1, asm.Word))
		for w := int16(0); w < 4; w++ {
			add(asm.LoadMem(R1, R0, 4*w, asm.Word), asm.StoreMem(FP, stMask6+4*w, R1, asm.Word))
		}
		label(l, asm.Mov.Imm(R0, 0))
	}

	// zeroMask initialises stMask6: without CAP_PERFMON the verifier refuses a read of stack
	// bytes no path has written.
	zeroMask := func() {
		for w := int16(0); w < 4; w++ {
			add(asm.StoreImm(FP, stMask6+4*w, 0, asm.Word))
		}
	}

	label("ipv6", asm.Mov.Reg(R1, R9))
	add(asm.Add.Imm(R1, off6L4), asm.JGT.Reg(R1, R8, "pass"))
	addr(off6Src, stS6)
	addr(off6Dst, stD6)
	add(asm.LoadMem(R2, R9, off6Next, asm.Byte), asm.StoreMem(FP, stProto, R2, asm.Word),
		asm.JEq.Imm(R2, 112, "pass"), // VRRP (v3 over IPv6)
		asm.Mov.Imm(R1, 0), asm.StoreMem(FP, stSP, R1, asm.Word), asm.StoreMem(FP, stDP, R1, asm.Word),
		asm.StoreMem(FP, stMask, R1, asm.Word), asm.StoreMem(FP, stPos, R1, asm.Word),
		// flags: no ports unless TCP, UDP or ICMPv6 follows the fixed header.
		asm.Mov.Imm(R4, 0),
		asm.JEq.Imm(R2, 6, "v6ports"), asm.JEq.Imm(R2, 17, "v6ports"), asm.JEq.Imm(R2, 58, "v6ports"),
		asm.Mov.Imm(R4, flFrag))
	// The two 16-bit fields after the fixed header, where the frame has them (steer reads them
	// whatever the next header).
	label("v6ports", asm.Mov.Reg(R1, R9))
	add(asm.Add.Imm(R1, off6L4+2), asm.JGT.Reg(R1, R8, "v6flags"),
		asm.LoadMem(R3, R9, off6L4, asm.Half), asm.HostTo(asm.BE, R3, asm.Half), asm.StoreMem(FP, stSP, R3, asm.Word),
		asm.Or.Imm(R4, flOkS),
		asm.Mov.Reg(R1, R9), asm.Add.Imm(R1, off6L4+4), asm.JGT.Reg(R1, R8, "v6flags"),
		asm.LoadMem(R3, R9, off6L4+2, asm.Half), asm.HostTo(asm.BE, R3, asm.Half), asm.StoreMem(FP, stDP, R3, asm.Word),
		asm.Or.Imm(R4, flOkD),
		// Sync and BGP always go to the stack.
		asm.LoadMem(R1, FP, stSP, asm.Word),
		asm.JNE.Imm(R2, 17, "v6notudp"),
		asm.JEq.Imm(R1, 8848, "pass"), asm.JEq.Imm(R3, 8848, "pass"))
	label("v6notudp", asm.JNE.Imm(R2, 6, "v6flags"))
	add(asm.JEq.Imm(R1, 179, "pass"), asm.JEq.Imm(R3, 179, "pass"))
	label("v6flags", asm.StoreMem(FP, stFlags, R4, asm.Word))

	// Classify. From a multicast MAC only a solicitation for a VIP is ours.
	add(asm.LoadMem(R1, FP, stMcast, asm.Word), asm.JNE.Imm(R1, 0, "v6ns"))
	key(stD6, 0, 0)
	lookup(fd.vips)
	add(asm.JNE.Imm(R0, 0, "v6ours"))
	lookup(fd.local)
	add(asm.JNE.Imm(R0, 0, "pass"))
	key(stS6, 0, 0)
	lookup(fd.nataddr)
	add(asm.JEq.Imm(R0, 0, "pass"),
		asm.LoadMem(R1, FP, stProto, asm.Word),
		asm.JEq.Imm(R1, 58, "v6naticmp"),
		asm.JEq.Imm(R1, 6, "v6natl4"),
		asm.JNE.Imm(R1, 17, "pass"))
	label("v6natl4", asm.LoadMem(R2, FP, stFlags, asm.Word))
	add(asm.JSet.Imm(R2, flOkS, "v6natport"), asm.Ja.Label("pass"))
	label("v6natport", asm.LSh.Imm(R1, 16))
	add(asm.LoadMem(R2, FP, stSP, asm.Word), asm.Or.Reg(R2, R1), asm.StoreMem(FP, stKey6+16, R2, asm.Word))
	lookup(fd.natreal)
	add(asm.JNE.Imm(R0, 0, "v6ours"),
		asm.LoadMem(R1, FP, stProto, asm.Word), asm.LSh.Imm(R1, 16), asm.StoreMem(FP, stKey6+16, R1, asm.Word))
	lookup(fd.natreal)
	add(asm.JNE.Imm(R0, 0, "v6ours"), asm.Ja.Label("pass"))
	label("v6naticmp", asm.Mov.Reg(R1, R9))
	add(asm.Add.Imm(R1, off6L4+1), asm.JGT.Reg(R1, R8, "pass"),
		asm.LoadMem(R2, R9, off6L4, asm.Byte),
		asm.JLT.Imm(R2, icmp6ErrFirst, "pass"), asm.JGT.Imm(R2, icmp6ErrLast, "pass"),
		asm.Ja.Label("v6ours"))
	label("v6ns", asm.LoadMem(R1, FP, stProto, asm.Word))
	add(asm.JNE.Imm(R1, 58, "pass"))
	need(off6NSTarget+16, "pass")
	add(asm.LoadMem(R2, R9, off6L4, asm.Byte), asm.JNE.Imm(R2, icmp6NS, "pass"))
	addr(off6NSTarget, stKey6)
	add(asm.StoreImm(FP, stKey6+16, 0, asm.Word))
	lookup(fd.vips)
	add(asm.JEq.Imm(R0, 0, "pass"))

	// Ours: steer's IPv6 hash. An ICMPv6 error takes its quoted packet turned around; an
	// ICMPv6 packet too short for its type hashes to 0, as in steer.
	label("v6ours", asm.LoadMem(R1, FP, stProto, asm.Word))
	add(asm.JNE.Imm(R1, 58, "v6rule"))
	need(off6L4+1, "hash0")
	add(asm.LoadMem(R2, R9, off6L4, asm.Byte),
		asm.JLT.Imm(R2, icmp6ErrFirst, "v6rule"), asm.JGT.Imm(R2, icmp6ErrLast, "v6rule"))
	need(off6QuoteDst+16, "hash0")
	addr(off6QuoteDst, stS6)
	addr(off6QuoteSrc, stD6)
	add(asm.Mov.Imm(R4, 0))
	need(off6QuotePort+2, "v6qflags")
	add(asm.LoadMem(R3, R9, off6QuotePort, asm.Half), asm.HostTo(asm.BE, R3, asm.Half), asm.StoreMem(FP, stDP, R3, asm.Word),
		asm.Or.Imm(R4, flOkD))
	need(off6QuotePort+4, "v6qflags")
	add(asm.LoadMem(R3, R9, off6QuotePort+2, asm.Half), asm.HostTo(asm.BE, R3, asm.Half), asm.StoreMem(FP, stSP, R3, asm.Word),
		asm.Or.Imm(R4, flOkS))
	label("v6qflags", asm.StoreMem(FP, stFlags, R4, asm.Word))

	// steer.steerRule6: an IPv6 VIP first.
	label("v6rule", asm.Mov.Imm(R0, 0))
	key(stD6, 0, 0)
	lookup(fd.vips)
	add(asm.JEq.Imm(R0, 0, "v6rule_nat"),
		asm.LoadMem(R1, R0, 0, asm.Word),
		asm.JSet.Imm(R1, vipSteer, "v6vip_steer"),
		asm.Ja.Label("v6rule_nat"))
	label("v6vip_steer", asm.JSet.Imm(R1, vipPersist, "v6persist"))
	add(asm.Ja.Label("v6vip_plain"))
	label("v6persist", asm.LoadMem(R2, FP, stFlags, asm.Word))
	add(asm.JSet.Imm(R2, flOkD, "v6persist_ok"),
		asm.JSet.Imm(R1, vipFirstWild, "v6persist_first"),
		asm.Ja.Label("hash0"))
	label("v6persist_first", asm.LoadMem(R1, R0, 4, asm.Word))
	for w := int16(0); w < 4; w++ {
		if w > 0 {
			add(asm.LoadMem(R1, R0, 4+4*w, asm.Word))
		}
		add(asm.StoreMem(FP, stMask6+4*w, R1, asm.Word))
	}
	fold(stS6, stMask6)
	add(asm.Ja.Label("hashaddr"))
	label("v6persist_ok", asm.Mov.Imm32(R1, -1))
	add(asm.StoreMem(FP, stPos, R1, asm.Word))
	zeroMask()
	key(stD6, 0, stDP)
	lookup(fd.persist)
	better("v6persist_b1")
	key(stD6, 0, 0)
	lookup(fd.persist)
	better("v6persist_b2")
	add(asm.LoadMem(R1, FP, stPos, asm.Word), asm.JEq.Imm32(R1, -1, "v6vip_plain"))
	fold(stS6, stMask6)
	add(asm.Ja.Label("hashaddr"))
	label("v6vip_plain", asm.LoadMem(R1, FP, stFlags, asm.Word))
	add(asm.JSet.Imm(R1, flFrag, "v6vip_addr"),
		asm.JSet.Imm(R1, flOkS, "v6vip_port"),
		asm.Ja.Label("hash0"))
	label("v6vip_addr", asm.Mov.Imm(R0, 0))
	fold(stS6, 0)
	add(asm.Ja.Label("hashaddr"))
	label("v6vip_port", asm.Mov.Imm(R0, 0))
	fold(stS6, 0)
	add(asm.LoadMem(R3, FP, stSP, asm.Word), asm.Ja.Label("hashport"))

	// Then the reply side of persistent NAT services.
	label("v6rule_nat", asm.Mov.Imm(R0, 0))
	key(stS6, natMarker, 0)
	lookup(fd.natsteer)
	add(asm.JEq.Imm(R0, 0, "v6plain"),
		asm.LoadMem(R1, FP, stFlags, asm.Word),
		asm.JSet.Imm(R1, flOkS, "v6nat_ok"),
		asm.Ja.Label("hash0"))
	label("v6nat_ok", asm.Mov.Imm32(R1, -1))
	add(asm.StoreMem(FP, stPos, R1, asm.Word))
	zeroMask()
	key(stS6, 0, stSP)
	lookup(fd.natsteer)
	better("v6nat_b1")
	key(stS6, 0, 0)
	lookup(fd.natsteer)
	better("v6nat_b2")
	add(asm.LoadMem(R1, FP, stPos, asm.Word), asm.JEq.Imm32(R1, -1, "v6plain"))
	fold(stD6, stMask6)
	add(asm.Ja.Label("hashaddr"))

	label("v6plain", asm.LoadMem(R1, FP, stFlags, asm.Word))
	add(asm.JSet.Imm(R1, flFrag, "v6plain_addr"),
		asm.JSet.Imm(R1, flOkD, "v6plain_port"),
		asm.Ja.Label("hash0"))
	label("v6plain_addr", asm.Mov.Imm(R0, 0))
	fold(stD6, 0)
	add(asm.Ja.Label("hashaddr"))
	label("v6plain_port", asm.Mov.Imm(R0, 0))
	fold(stD6, 0)
	add(asm.LoadMem(R3, FP, stDP, asm.Word), asm.Ja.Label("hashport"))
	return in
}
