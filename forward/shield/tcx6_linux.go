package shield

import (
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// The IPv6 part of the tcx program, entered at label "ip6" with R6 = ctx. It mirrors the
// nftables shield's IPv6 rules:
//
//	meta l4proto 112 (VRRP), tcp port 179 (BGP), udp port 8848 (IPVS sync): pass
//	ip6 daddr @vips6: drop (every fragment)
//	ip6 saddr . meta l4proto . th sport @nat_reals6, daddr not local: drop
//	  (not later fragments, which carry no ports)
//	anything else (neighbour discovery, MLD, router advertisements): pass
//
// meta l4proto is what the kernel's ipv6_find_hdr finds after the extension headers
// (hop-by-hop, routing, destination options, fragment, AH); the program walks up to
// tcx6MaxExt of them with bpf_skb_load_bytes, and a chain longer than that has no upper-layer
// protocol here (the VIP rule still applies). A later fragment has its protocol but no ports,
// as ipv6_find_hdr reports it; one whose next header is another extension header has neither.

// tcx6MaxExt bounds the extension headers walked: forward/packet accepts at most 8.
const tcx6MaxExt = 8

// Stack slots of the IPv6 part (8-byte aligned where words are loaded from them).
const (
	tcx6Hdr  = -112 // the fixed IPv6 header, 40 bytes: source at -104, destination at -88
	tcx6Src  = tcx6Hdr + 8
	tcx6Dst  = tcx6Hdr + 24
	tcx6Key  = -136 // the nat_reals6 key, 20 bytes: source, proto, 0, sport
	tcx6Ext  = -144 // the first 4 bytes of an extension header
	tcx6Port = -24  // sport, dport as loaded (shared with the IPv4 part)
)

// IPv6 extension headers (include/uapi/linux/in6.h) ipv6_find_hdr walks.
const (
	nextHop      = 0
	nextRouting  = 43
	nextFragment = 44
	nextAH       = 51
	nextDest     = 60
)

// tcxProgram6 emits the IPv6 part; it ends in jumps to "drop" and "pass".
func tcxProgram6(vips6, nat6, locals6 int) asm.Instructions {
	const (
		rCtx   = asm.R6
		rNext  = asm.R7 // next header
		rPorts = asm.R8
		rOff   = asm.R9 // offset of the next header from the frame start
	)
	R0, R1, R2, R3, R4, R5, FP := asm.R0, asm.R1, asm.R2, asm.R3, asm.R4, asm.R5, asm.RFP
	var in asm.Instructions
	add := func(is ...asm.Instruction) { in = append(in, is...) }
	label := func(l string, i asm.Instruction) { in = append(in, i.WithSymbol(l)) }
	// load copies n bytes at rOff+off into the stack at slot, or jumps to fail.
	load := func(off int32, slot int16, n int32, fail string) {
		add(asm.Mov.Reg(R1, rCtx), asm.Mov.Reg(R2, rOff))
		if off != 0 {
			add(asm.Add.Imm(R2, off))
		}
		add(asm.Mov.Reg(R3, FP), asm.Add.Imm(R3, int32(slot)), asm.Mov.Imm(R4, n),
			asm.FnSkbLoadBytes.Call(), asm.JNE.Imm(R0, 0, fail))
	}
	lookup := func(mapFD int, slot int16) {
		add(asm.LoadMapPtr(R1, mapFD), asm.Mov.Reg(R2, FP), asm.Add.Imm(R2, int32(slot)), asm.FnMapLookupElem.Call())
	}

	label("ip6", asm.Mov.Imm(rOff, 14))
	load(0, tcx6Hdr, 40, "pass")
	add(asm.LoadMem(rNext, FP, tcx6Hdr+6, asm.Byte), asm.Mov.Imm(rOff, 54), asm.Mov.Imm(rPorts, 0))
	for i := 0; i < tcx6MaxExt; i++ {
		w := func(s string) string { return "ip6w" + string(rune('0'+i)) + s }
		next := "ip6w" + string(rune('0'+i+1))
		if i == tcx6MaxExt-1 {
			next = "ip6nol4"
		}
		label(w(""), asm.JEq.Imm(rNext, nextHop, w("opt")))
		add(asm.JEq.Imm(rNext, nextRouting, w("opt")),
			asm.JEq.Imm(rNext, nextDest, w("opt")),
			asm.JEq.Imm(rNext, nextAH, w("ah")),
			asm.JEq.Imm(rNext, nextFragment, w("frag")),
			asm.Ja.Label("ip6l4"))
		// Options, routing: (length+1)*8 bytes; AH: (length+2)*4 (RFC 4302).
		label(w("opt"), asm.Mov.Imm(R0, 0))
		load(0, tcx6Ext, 2, "ip6nol4")
		add(asm.LoadMem(rNext, FP, tcx6Ext, asm.Byte), asm.LoadMem(R1, FP, tcx6Ext+1, asm.Byte),
			asm.Add.Imm(R1, 1), asm.LSh.Imm(R1, 3), asm.Add.Reg(rOff, R1), asm.Ja.Label(next))
		label(w("ah"), asm.Mov.Imm(R0, 0))
		load(0, tcx6Ext, 2, "ip6nol4")
		add(asm.LoadMem(rNext, FP, tcx6Ext, asm.Byte), asm.LoadMem(R1, FP, tcx6Ext+1, asm.Byte),
			asm.Add.Imm(R1, 2), asm.LSh.Imm(R1, 2), asm.Add.Reg(rOff, R1), asm.Ja.Label(next))
		// Fragment: 8 bytes; a later fragment (offset not 0) ends the walk without ports.
		label(w("frag"), asm.Mov.Imm(R0, 0))
		load(0, tcx6Ext, 4, "ip6nol4")
		add(asm.LoadMem(rNext, FP, tcx6Ext, asm.Byte), asm.Add.Imm(rOff, 8),
			asm.LoadMem(R1, FP, tcx6Ext+2, asm.Half), asm.And.Imm(R1, be16(0xfff8)),
			asm.JNE.Imm(R1, 0, "ip6later"), asm.Ja.Label(next))
	}
	// A later fragment: its upper-layer protocol, unless another extension header follows.
	label("ip6later", asm.JEq.Imm(rNext, nextHop, "ip6nol4"))
	add(asm.JEq.Imm(rNext, nextRouting, "ip6nol4"), asm.JEq.Imm(rNext, nextDest, "ip6nol4"),
		asm.JEq.Imm(rNext, nextAH, "ip6nol4"), asm.JEq.Imm(rNext, nextFragment, "ip6nol4"),
		asm.JEq.Imm(rNext, protoVRRP, "pass"),
		asm.Ja.Label("ip6vip"))
	// The upper-layer header at rOff.
	label("ip6l4", asm.JEq.Imm(rNext, protoVRRP, "pass"))
	load(0, tcx6Port, 4, "ip6vip")
	add(asm.LoadMem(rPorts, FP, tcx6Port, asm.Word),
		asm.Mov.Reg(R4, rPorts), asm.And.Imm(R4, 0xffff), // sport
		asm.Mov.Reg(R5, rPorts), asm.RSh.Imm(R5, 16), // dport
		asm.JNE.Imm(rNext, unix.IPPROTO_TCP, "ip6udp"),
		asm.JEq.Imm(R4, be16(portBGP), "pass"),
		asm.JEq.Imm(R5, be16(portBGP), "pass"),
		asm.Ja.Label("ip6vip"))
	label("ip6udp", asm.JNE.Imm(rNext, unix.IPPROTO_UDP, "ip6vip"))
	add(asm.JEq.Imm(R4, be16(portSync), "pass"),
		asm.JEq.Imm(R5, be16(portSync), "pass"),
		asm.Ja.Label("ip6vip"))
	label("ip6nol4", asm.Mov.Imm(rPorts, 0))
	// ip6 daddr @vips6 drop
	label("ip6vip", asm.Mov.Imm(R0, 0))
	lookup(vips6, tcx6Dst)
	add(asm.JNE.Imm(R0, 0, "drop"),
		// ip6 saddr . meta l4proto . th sport @nat_reals6, daddr not local: drop
		asm.JEq.Imm(rPorts, 0, "pass"))
	for w := int16(0); w < 4; w++ {
		add(asm.LoadMem(R1, FP, tcx6Src+4*w, asm.Word), asm.StoreMem(FP, tcx6Key+4*w, R1, asm.Word))
	}
	add(asm.StoreMem(FP, tcx6Key+16, rNext, asm.Byte),
		asm.StoreImm(FP, tcx6Key+17, 0, asm.Byte),
		asm.LoadMem(R1, FP, tcx6Port, asm.Half),
		asm.StoreMem(FP, tcx6Key+18, R1, asm.Half))
	lookup(nat6, tcx6Key)
	add(asm.JEq.Imm(R0, 0, "pass"))
	lookup(locals6, tcx6Dst)
	add(asm.JNE.Imm(R0, 0, "pass"), asm.Ja.Label("drop"))
	return in
}

// natKey6 is the nat_reals6 key of n: address, protocol, 0, port in network order.
func natKey6(n NATReal) []byte {
	k := make([]byte, 20)
	copy(k, n.Addr6[:])
	k[16] = n.Proto
	k[18], k[19] = byte(n.Port>>8), byte(n.Port)
	return k
}
