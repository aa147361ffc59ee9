package afxdp

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
)

// The XDP program, written with cilium/ebpf's asm package (no C compiler, no object file).
//
// It redirects to a worker's AF_XDP socket:
//   - IPv4 to a VIP (any protocol, malformed or not: the worker counts what it drops),
//     except VRRP (protocol 112), IPVS sync (UDP 8848) and BGP (TCP 179);
//   - ARP whose target is a VIP (to worker 0, as the fanout program sends non-IPv4);
//   - NAT replies: TCP or UDP from a NAT real's (address, protocol, port), and ICMP errors and
//     later fragments from a NAT real's address, unless addressed to this host (health
//     checks, the director's own connections);
//   - IPv6: the same for IPv6 VIPs and NAT reals, and neighbour solicitations for a VIP
//     (prog6.go);
//
// and passes everything else to the stack, frames for other MAC addresses included. The
// socket is xsks[rx_queue_index*workers + hash%workers], where hash is package steer's
// steering hash of the packet: the same worker as the AF_PACKET fanout would pick, so NAT
// replies and persistent clients keep their worker.
//
// Map keys and values are in host byte order.

// Map value flags of vipValue.
const (
	vipPersist   = 1 // the VIP has persistent services (entries in the persist map)
	vipFirstWild = 2 // its first persistent service is a port-0 one (mask in FirstMask)
	vipSteer     = 4 // a service VIP, which the steering rule hashes as a VIP; without it
	//                  (an address a VRRP instance owns, say) the frame is ours, hashed as
	//                  any other traffic, as the fanout program does

)

// vipValue is the value of the vips map.
type vipValue struct {
	Flags     uint32
	FirstMask uint32
}

// The other maps hold two u32 words per key and value:
//   - persist and natsteer: key (address, port), value (mask, position in steer's rule order;
//     the first matching entry wins); in natsteer, port natMarker says "this address has
//     entries";
//   - natreal: key (address, protocol<<16|port; port 0 is any port), value 1;
//   - nataddr and local: key address, value 1.

// natMarker is the port of natsteer's per-address marker entry (beyond any real port).
const natMarker = 0x10000

// Steering constants, as package steer's.
const (
	steerK1 = 0x9E3779B1
	steerK2 = 0x85EBCA6B
)

// XDP actions and ctx offsets (include/uapi/linux/bpf.h: enum xdp_action, struct xdp_md).
const (
	xdpDrop = 1
	xdpPass = 2

	mdData       = 0
	mdDataEnd    = 4
	mdRxQueueIdx = 16
)

// Stack slots (offsets from R10).
const (
	stKey   = -8  // 8-byte map key
	stS     = -12 // s (host order)
	stD     = -16 // d
	stSP    = -20 // sp
	stDP    = -24 // dp
	stFlags = -28 // okS | okD<<1 | frag<<2
	stMask  = -32 // best rule's mask
	stPos   = -36 // best rule's position
	stProto = -40
	stL4    = -44 // offset of the L4 header from the frame start (L3 + IHL)
	stL3    = -48 // offset of the IPv4 header: 14, or 18 behind one 802.1Q tag
	stBuf   = -64 // 16 bytes that bpf_xdp_load_bytes copies into
)

const (
	flOkS  = 1
	flOkD  = 2
	flFrag = 4
)

// progFDs are the maps one interface's program uses.
type progFDs struct {
	xsks, vips, persist, natsteer, natreal, nataddr, local int
	v6                                                     fds6 // the IPv6 maps (prog6.go)
}

// progParams are the constants one interface's program is built with.
type progParams struct {
	mac     [6]byte
	workers int
	// testIndex makes the program return testBase+socket index instead of redirecting, so
	// that a BPF_PROG_TEST_RUN shows which socket a frame would go to.
	testIndex bool
}

// testBase is added to the socket index a test program returns (above every XDP action).
const testBase = 0x10000

// be16 returns the value a little-endian 16-bit load gives for the big-endian v.
func be16(v uint16) int32 { return int32(v>>8 | v<<8&0xff00) }

// buildProgram returns the XDP program of one interface.
func buildProgram(fd progFDs, p progParams) asm.Instructions {
	R0, R1, R2, R3, R4, R6, R7, R8, R9, FP := asm.R0, asm.R1, asm.R2, asm.R3, asm.R4, asm.R6, asm.R7, asm.R8, asm.R9, asm.RFP
	k1, k2 := uint32(steerK1), uint32(steerK2)
	macLo := int32(uint32(p.mac[0]) | uint32(p.mac[1])<<8 | uint32(p.mac[2])<<16 | uint32(p.mac[3])<<24)
	macHi := int32(uint32(p.mac[4]) | uint32(p.mac[5])<<8)
	var in asm.Instructions
	add := func(is ...asm.Instruction) { in = append(in, is...) }
	label := func(l string, i asm.Instruction) { in = append(in, i.WithSymbol(l)) }
	// lookup calls bpf_map_lookup_elem(map, FP+stKey); R0 = value or NULL.
	lookup := func(mapFD int) {
		add(asm.LoadMapPtr(R1, mapFD), asm.Mov.Reg(R2, FP), asm.Add.Imm(R2, stKey), asm.FnMapLookupElem.Call())
	}
	// key32 stores the u32 at stack slot src as a 4-byte key (the upper half zeroed).
	keyFrom := func(slot int16, port int32, portSlot int16) {
		add(asm.LoadMem(R1, FP, slot, asm.Word), asm.StoreMem(FP, stKey, R1, asm.Word))
		if portSlot != 0 {
			add(asm.LoadMem(R1, FP, portSlot, asm.Word), asm.StoreMem(FP, stKey+4, R1, asm.Word))
		} else {
			add(asm.StoreImm(FP, stKey+4, int64(port), asm.Word))
		}
	}
	// better keeps the rule value in R0 (if any) when it comes before the best so far.
	better := func(l string) {
		add(asm.JEq.Imm(R0, 0, l),
			asm.LoadMem(R1, R0, 4, asm.Word),
			asm.LoadMem(R2, FP, stPos, asm.Word),
			asm.JGE.Reg32(R1, R2, l),
			asm.StoreMem(FP, stPos, R1, asm.Word),
			asm.LoadMem(R1, R0, 0, asm.Word),
			asm.StoreMem(FP, stMask, R1, asm.Word))
		label(l, asm.Mov.Imm(R0, 0))
	}

	add(asm.Mov.Reg(R6, R1),
		asm.LoadMem(R7, R6, mdData, asm.Word),
		asm.LoadMem(R8, R6, mdDataEnd, asm.Word),
		asm.Mov.Reg(R1, R7), asm.Add.Imm(R1, 14),
		asm.JGT.Reg(R1, R8, "pass"),
		asm.Mov.Imm(R9, 0),
		asm.StoreImm(FP, stMcast, 0, asm.Word),
		asm.LoadMem(R2, R7, 0, asm.Word),
		asm.LoadMem(R3, R7, 4, asm.Half),
		asm.JNE.Imm32(R2, macLo, "bcast"),
		asm.JEq.Imm32(R3, macHi, "macok"))
	label("bcast", asm.JNE.Imm32(R2, -1, "mcast6"))
	add(asm.JNE.Imm32(R3, 0xffff, "pass"), asm.Mov.Imm(R9, 1), asm.Ja.Label("macok"))
	// An IPv6 multicast MAC (33:33:..., RFC 2464 section 7): a neighbour solicitation to a
	// VIP's solicited-node address may be ours (prog6.go), nothing else is.
	label("mcast6", asm.Mov.Reg(R1, R2))
	add(asm.And.Imm(R1, 0xffff), asm.JNE.Imm(R1, 0x3333, "pass"),
		asm.StoreImm(FP, stMcast, 1, asm.Word), asm.Mov.Imm(R9, 2))
	label("macok", asm.LoadMem(R2, R7, 12, asm.Half))
	add(asm.JEq.Imm32(R2, be16(0x0806), "arp"),
		asm.JEq.Imm(R9, 1, "pass"), // broadcast: only ARP is ours
		asm.JEq.Imm32(R2, be16(0x8100), "vlan"),
		asm.JEq.Imm32(R2, be16(0x86dd), "eth6"),
		asm.JNE.Imm32(R2, be16(0x0800), "pass"),
		asm.Mov.Reg(R1, R7), asm.Add.Imm(R1, 34),
		asm.JGT.Reg(R1, R8, "pass"),
		asm.Mov.Reg(R9, R7), asm.Add.Imm(R9, 14), // R9 = IPv4 header
		asm.StoreImm(FP, stL3, 14, asm.Word),
		asm.Ja.Label("ipv4"))
	// One 802.1Q tag inline (a device without VLAN offload, such as veth): the IPv4 header
	// follows it, and the hash is the untagged packet's, as the kernel untags before the
	// AF_PACKET fanout.
	label("eth6", asm.Mov.Reg(R9, R7))
	add(asm.Add.Imm(R9, 14), asm.Ja.Label("ipv6"))
	label("vlan", asm.Mov.Reg(R1, R7))
	add(asm.Add.Imm(R1, 38), asm.JGT.Reg(R1, R8, "pass"),
		asm.LoadMem(R2, R7, 16, asm.Half),
		asm.JEq.Imm32(R2, be16(0x86dd), "vlan6"),
		asm.JNE.Imm32(R2, be16(0x0800), "pass"),
		asm.Mov.Reg(R9, R7), asm.Add.Imm(R9, 18),
		asm.StoreImm(FP, stL3, 18, asm.Word))
	// IPv4 to a multicast MAC is not ours.
	label("ipv4", asm.LoadMem(R1, FP, stMcast, asm.Word))
	add(asm.JNE.Imm(R1, 0, "pass"), asm.LoadMem(R2, R9, 16, asm.Word))
	add(asm.HostTo(asm.BE, R2, asm.Word), asm.StoreMem(FP, stD, R2, asm.Word),
		asm.LoadMem(R2, R9, 12, asm.Word), asm.HostTo(asm.BE, R2, asm.Word), asm.StoreMem(FP, stS, R2, asm.Word),
		asm.LoadMem(R2, R9, 9, asm.Byte), asm.StoreMem(FP, stProto, R2, asm.Word),
		asm.JEq.Imm(R2, 112, "pass"), // VRRP
		// Ports, where the packet has them: sync and BGP always go to the stack.
		asm.Mov.Imm(R1, 0), asm.StoreMem(FP, stSP, R1, asm.Word), asm.StoreMem(FP, stDP, R1, asm.Word),
		asm.StoreMem(FP, stFlags, R1, asm.Word), asm.StoreMem(FP, stMask, R1, asm.Word), asm.StoreMem(FP, stPos, R1, asm.Word))
	// Bytes at a variable offset (after the IPv4 header, whose length varies) are read with
	// bpf_xdp_load_bytes (Linux 5.18) into the stack: adding a variable to a packet pointer
	// needs CAP_PERFMON (the verifier's Spectre v1 rule), which uvs does not keep.
	add(asm.LoadMem(R2, R9, 0, asm.Byte), asm.And.Imm(R2, 0xf), asm.LSh.Imm(R2, 2),
		asm.LoadMem(R3, FP, stL3, asm.Word), asm.Add.Reg(R2, R3),
		asm.StoreMem(FP, stL4, R2, asm.Word))
	// lb copies n (1, 2, 4 or 8) bytes at L4+off into stBuf, or jumps to fail where the frame
	// is shorter. Behind the usual 20-byte header (IHL 5) the bytes are at a constant offset
	// from R9 and read in place; after options they are copied by the helper.
	nlb := 0
	lb := func(off, n int32, fail string) {
		nlb++
		slow, done := fmt.Sprintf("lb%d_slow", nlb), fmt.Sprintf("lb%d_done", nlb)
		add(asm.LoadMem(R2, FP, stL4, asm.Word), asm.LoadMem(R3, FP, stL3, asm.Word), asm.Add.Imm(R3, 20),
			asm.JNE.Reg(R2, R3, slow),
			asm.Mov.Reg(R1, R9), asm.Add.Imm(R1, 20+off+n), asm.JGT.Reg(R1, R8, fail))
		switch n {
		case 1:
			add(asm.LoadMem(R2, R9, int16(20+off), asm.Byte), asm.StoreMem(FP, stBuf, R2, asm.Byte))
		case 2:
			add(asm.LoadMem(R2, R9, int16(20+off), asm.Half), asm.StoreMem(FP, stBuf, R2, asm.Half))
		case 4:
			add(asm.LoadMem(R2, R9, int16(20+off), asm.Word), asm.StoreMem(FP, stBuf, R2, asm.Word))
		case 8:
			add(asm.LoadMem(R2, R9, int16(20+off), asm.DWord), asm.StoreMem(FP, stBuf, R2, asm.DWord))
		default:
			panic("afxdp: lb of " + fmt.Sprint(n) + " bytes")
		}
		add(asm.Ja.Label(done))
		label(slow, asm.Mov.Reg(R1, R6))
		add(asm.LoadMem(R2, FP, stL4, asm.Word), asm.Add.Imm(R2, off),
			asm.Mov.Reg(R3, FP), asm.Add.Imm(R3, stBuf), asm.Mov.Imm(R4, n),
			asm.FnXdpLoadBytes.Call(),
			asm.JNE.Imm(R0, 0, fail))
		label(done, asm.Mov.Imm(R0, 0))
	}
	lb(0, 4, "classify")
	add(asm.LoadMem(R2, FP, stBuf, asm.Half), asm.HostTo(asm.BE, R2, asm.Half),
		asm.LoadMem(R4, FP, stBuf+2, asm.Half), asm.HostTo(asm.BE, R4, asm.Half),
		asm.LoadMem(R1, FP, stProto, asm.Word),
		asm.JNE.Imm(R1, 17, "notudp"),
		asm.JEq.Imm(R2, 8848, "pass"), asm.JEq.Imm(R4, 8848, "pass"))
	label("notudp", asm.JNE.Imm(R1, 6, "classify"))
	add(asm.JEq.Imm(R2, 179, "pass"), asm.JEq.Imm(R4, 179, "pass"))

	// Classify: to a VIP?
	label("classify", asm.Mov.Imm(R0, 0))
	keyFrom(stD, 0, 0)
	lookup(fd.vips)
	add(asm.JNE.Imm(R0, 0, "ours"))
	// To this host: the stack's.
	lookup(fd.local)
	add(asm.JNE.Imm(R0, 0, "pass"))
	// From a NAT real's address?
	keyFrom(stS, 0, 0)
	lookup(fd.nataddr)
	add(asm.JEq.Imm(R0, 0, "pass"),
		asm.LoadMem(R2, R9, 6, asm.Half), asm.HostTo(asm.BE, R2, asm.Half), asm.And.Imm(R2, 0x1fff),
		asm.LoadMem(R1, FP, stProto, asm.Word),
		asm.JEq.Imm(R1, 1, "naticmp"),
		asm.JEq.Imm(R1, 6, "natl4"),
		asm.JNE.Imm(R1, 17, "pass"))
	label("natl4", asm.JNE.Imm(R2, 0, "ours")) // a later fragment: no ports to match
	lb(0, 2, "pass")
	add(asm.LoadMem(R2, FP, stBuf, asm.Half), asm.HostTo(asm.BE, R2, asm.Half),
		asm.LoadMem(R1, FP, stProto, asm.Word), asm.LSh.Imm(R1, 16), asm.Or.Reg(R2, R1),
		asm.StoreMem(FP, stKey+4, R2, asm.Word))
	lookup(fd.natreal)
	add(asm.JNE.Imm(R0, 0, "ours"),
		asm.LoadMem(R1, FP, stProto, asm.Word), asm.LSh.Imm(R1, 16), asm.StoreMem(FP, stKey+4, R1, asm.Word))
	lookup(fd.natreal)
	add(asm.JNE.Imm(R0, 0, "ours"), asm.Ja.Label("pass"))
	label("naticmp", asm.Mov.Imm(R0, 0))
	lb(0, 1, "pass")
	add(asm.LoadMem(R2, FP, stBuf, asm.Byte),
		asm.JEq.Imm(R2, 3, "ours"), asm.JEq.Imm(R2, 11, "ours"), asm.JEq.Imm(R2, 12, "ours"),
		asm.Ja.Label("pass"))

	// Ours: compute steer's hash. ICMP errors take the reversed quoted header.
	label("ours", asm.Mov.Imm(R0, 0))
	add(asm.LoadMem(R1, FP, stProto, asm.Word),
		asm.JNE.Imm(R1, 1, "normal"))
	lb(0, 1, "hash0")
	add(asm.LoadMem(R2, FP, stBuf, asm.Byte),
		asm.JEq.Imm(R2, 3, "icmperr"), asm.JEq.Imm(R2, 11, "icmperr"), asm.JNE.Imm(R2, 12, "normal"))
	label("icmperr", asm.Mov.Imm(R0, 0))
	lb(20, 8, "hash0")
	add(asm.LoadMem(R2, FP, stBuf+4, asm.Word), asm.HostTo(asm.BE, R2, asm.Word), asm.StoreMem(FP, stS, R2, asm.Word),
		asm.LoadMem(R2, FP, stBuf, asm.Word), asm.HostTo(asm.BE, R2, asm.Word), asm.StoreMem(FP, stD, R2, asm.Word),
		asm.Mov.Imm(R7, 0)) // R7 (data) is not needed any more: the flags
	lb(28, 2, "icmp_flags")
	add(asm.LoadMem(R2, FP, stBuf, asm.Half), asm.HostTo(asm.BE, R2, asm.Half), asm.StoreMem(FP, stDP, R2, asm.Word),
		asm.Or.Imm(R7, flOkD))
	lb(30, 2, "icmp_flags")
	add(asm.LoadMem(R2, FP, stBuf, asm.Half), asm.HostTo(asm.BE, R2, asm.Half), asm.StoreMem(FP, stSP, R2, asm.Word),
		asm.Or.Imm(R7, flOkS))
	label("icmp_flags", asm.Mov.Reg(R4, R7))
	add(asm.Ja.Label("rule_flags"))
	label("normal", asm.Mov.Imm(R7, 0))
	add(asm.LoadMem(R2, R9, 6, asm.Half), asm.HostTo(asm.BE, R2, asm.Half), asm.And.Imm(R2, 0x3fff),
		asm.JEq.Imm(R2, 0, "nofrag"), asm.Or.Imm(R7, flFrag))
	label("nofrag", asm.Mov.Imm(R0, 0))
	lb(0, 2, "normal_flags")
	add(asm.LoadMem(R2, FP, stBuf, asm.Half), asm.HostTo(asm.BE, R2, asm.Half), asm.StoreMem(FP, stSP, R2, asm.Word),
		asm.Or.Imm(R7, flOkS))
	lb(2, 2, "normal_flags")
	add(asm.LoadMem(R2, FP, stBuf, asm.Half), asm.HostTo(asm.BE, R2, asm.Half), asm.StoreMem(FP, stDP, R2, asm.Word),
		asm.Or.Imm(R7, flOkD))
	label("normal_flags", asm.Mov.Reg(R4, R7))
	label("rule_flags", asm.StoreMem(FP, stFlags, R4, asm.Word))

	// steer.SteerRule: a VIP first.
	keyFrom(stD, 0, 0)
	lookup(fd.vips)
	add(asm.JEq.Imm(R0, 0, "rule_nat"),
		asm.LoadMem(R1, R0, 0, asm.Word),
		asm.JSet.Imm(R1, vipSteer, "vip_steer"),
		asm.Ja.Label("rule_nat"))
	label("vip_steer", asm.JSet.Imm(R1, vipPersist, "persist"))
	add(asm.Ja.Label("vip_plain"))
	label("persist", asm.LoadMem(R2, FP, stFlags, asm.Word))
	add(asm.JSet.Imm(R2, flOkD, "persist_ok"),
		asm.JSet.Imm(R1, vipFirstWild, "persist_first"),
		asm.Ja.Label("hash0"))
	label("persist_first", asm.LoadMem(R2, R0, 4, asm.Word))
	add(asm.LoadMem(R1, FP, stS, asm.Word), asm.And.Reg32(R2, R1), asm.Ja.Label("hashaddr"))
	label("persist_ok", asm.Mov.Imm32(R1, -1))
	add(asm.StoreMem(FP, stPos, R1, asm.Word))
	keyFrom(stD, 0, stDP)
	lookup(fd.persist)
	better("persist_b1")
	keyFrom(stD, 0, 0)
	lookup(fd.persist)
	better("persist_b2")
	add(asm.LoadMem(R1, FP, stPos, asm.Word),
		asm.JEq.Imm32(R1, -1, "vip_plain"),
		asm.LoadMem(R2, FP, stMask, asm.Word), asm.LoadMem(R1, FP, stS, asm.Word), asm.And.Reg32(R2, R1),
		asm.Ja.Label("hashaddr"))
	label("vip_plain", asm.LoadMem(R1, FP, stFlags, asm.Word))
	add(asm.JSet.Imm(R1, flFrag, "vip_frag"),
		asm.JSet.Imm(R1, flOkS, "vip_port"),
		asm.Ja.Label("hash0"))
	label("vip_frag", asm.LoadMem(R2, FP, stS, asm.Word))
	add(asm.Ja.Label("hashaddr"))
	label("vip_port", asm.LoadMem(R2, FP, stS, asm.Word))
	add(asm.LoadMem(R3, FP, stSP, asm.Word), asm.Ja.Label("hashport"))

	// Then the reply side of persistent NAT services.
	label("rule_nat", asm.Mov.Imm(R0, 0))
	keyFrom(stS, natMarker, 0)
	lookup(fd.natsteer)
	add(asm.JEq.Imm(R0, 0, "plain"),
		asm.LoadMem(R1, FP, stFlags, asm.Word),
		asm.JSet.Imm(R1, flOkS, "nat_ok"),
		asm.Ja.Label("hash0"))
	label("nat_ok", asm.Mov.Imm32(R1, -1))
	add(asm.StoreMem(FP, stPos, R1, asm.Word))
	keyFrom(stS, 0, stSP)
	lookup(fd.natsteer)
	better("nat_b1")
	keyFrom(stS, 0, 0)
	lookup(fd.natsteer)
	better("nat_b2")
	add(asm.LoadMem(R1, FP, stPos, asm.Word),
		asm.JEq.Imm32(R1, -1, "plain"),
		asm.LoadMem(R2, FP, stMask, asm.Word), asm.LoadMem(R1, FP, stD, asm.Word), asm.And.Reg32(R2, R1),
		asm.Ja.Label("hashaddr"))

	label("plain", asm.LoadMem(R1, FP, stFlags, asm.Word))
	add(asm.JSet.Imm(R1, flFrag, "plain_frag"),
		asm.JSet.Imm(R1, flOkD, "plain_port"),
		asm.Ja.Label("hash0"))
	label("plain_frag", asm.LoadMem(R2, FP, stD, asm.Word))
	add(asm.Ja.Label("hashaddr"))
	label("plain_port", asm.LoadMem(R2, FP, stD, asm.Word))
	add(asm.LoadMem(R3, FP, stDP, asm.Word), asm.Ja.Label("hashport"))

	// hashport: R2 = address, R3 = port.
	label("hashport", asm.Mul.Imm32(R2, int32(k1)))
	add(asm.Xor.Reg32(R2, R3), asm.Mul.Imm32(R2, int32(k2)), asm.RSh.Imm32(R2, 16), asm.Ja.Label("redirect"))
	// hashaddr: R2 = (masked) address.
	label("hashaddr", asm.Mul.Imm32(R2, int32(k1)))
	add(asm.Mul.Imm32(R2, int32(k2)), asm.RSh.Imm32(R2, 16), asm.Ja.Label("redirect"))

	// ARP for a VIP: worker 0.
	label("arp", asm.Mov.Reg(R1, R7))
	add(asm.Add.Imm(R1, 42), asm.JGT.Reg(R1, R8, "pass"),
		asm.LoadMem(R2, R7, 38, asm.Word), asm.HostTo(asm.BE, R2, asm.Word), asm.StoreMem(FP, stKey, R2, asm.Word),
		asm.StoreImm(FP, stKey+4, 0, asm.Word))
	lookup(fd.vips)
	add(asm.JEq.Imm(R0, 0, "pass"))
	label("hash0", asm.Mov.Imm(R2, 0))

	// redirect: R2 = hash; socket = queue*workers + hash%workers.
	label("redirect", asm.Mod.Imm32(R2, int32(p.workers)))
	add(asm.LoadMem(R3, R6, mdRxQueueIdx, asm.Word),
		asm.Mul.Imm32(R3, int32(p.workers)),
		asm.Add.Reg32(R2, R3))
	if p.testIndex {
		add(asm.Mov.Reg(R0, R2), asm.Add.Imm(R0, testBase), asm.Return())
	} else {
		add(asm.LoadMapPtr(R1, fd.xsks),
			asm.Mov.Imm(R3, xdpDrop),
			asm.FnRedirectMap.Call(),
			asm.Return())
	}
	label("pass", asm.Mov.Imm(R0, xdpPass))
	add(asm.Return())
	label("vlan6", asm.Mov.Reg(R9, R7))
	add(asm.Add.Imm(R9, 18), asm.Ja.Label("ipv6"))
	return append(in, program6(fd.v6)...)
}
