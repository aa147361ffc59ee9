package steer

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"

	"github.com/uvs-project/uvs/forward/packet"
)

// Fanout steering.
//
// PACKET_FANOUT_HASH keeps one 5-tuple on one worker, but a NAT request (client -> VIP) and its
// reply (real -> client) have different 5-tuples, and persistence needs every connection of one
// client on the worker that holds the client's template. So the fanout group runs a classic BPF
// program (PACKET_FANOUT_CBPF) that hashes on the client side of the packet:
//
//   - to a VIP: the source address and port (the client);
//   - otherwise (NAT replies, and anything else, which the worker leaves to the kernel): the
//     destination address and port (the client again, for a NAT reply);
//   - for a persistent service, the client address masked to the persistence netmask and no
//     port, on both directions, so that one template serves every connection of the client;
//   - for IPv4 fragments, the address alone (ports are absent from later fragments).
//
// The kernel runs the program at fanout demux, where skb->data is the network header, so loads
// are relative to the IP header. IPv6 has a rule of its own, on folded addresses (steer6.go).
// It costs a few tens of instructions per frame in softirq
// context, once per group, and it lets each worker own its connection table without locks.

// SteerVIP describes one VIP for the steering program.
type SteerVIP struct {
	Addr [4]byte
	// V6 marks an IPv6 VIP, whose address is Addr6 (Addr is then unused).
	V6    bool
	Addr6 [16]byte
	// Persist lists the persistent services on this VIP.
	Persist []SteerPersist
}

// SteerPersist is one persistent service: Port 0 means every port (IPVS port-0 service).
type SteerPersist struct {
	Port uint16
	Bits int // persistence netmask length
}

// SteerNAT is the reply side of a persistent NAT service: replies from Addr:Port are keyed by
// the destination (client) address masked to Bits. Port 0 matches every port.
type SteerNAT struct {
	Addr [4]byte
	// V6 marks an IPv6 real server, whose address is Addr6; Bits is then 0..128.
	V6    bool
	Addr6 [16]byte
	Port  uint16
	Bits  int
}

// steerMaxInsns is BPF_MAXINSNS (include/uapi/linux/bpf_common.h).
const steerMaxInsns = 4096

// Multipliers of the steering hash: the 32-bit golden ratio and murmur3's fmix constant. The
// kernel takes the result modulo the number of sockets, so the program returns the well-mixed
// high half of the product.
const (
	steerK1 = 0x9E3779B1
	steerK2 = 0x85EBCA6B
)

// Offsets in an ICMP error of the quoted packet's fields, counted from the start of the ICMP
// header and assuming a 20-byte quoted IPv4 header (uvs drops IP options on the way in, so the
// packets it forwarded have none).
const (
	quoteSrc   = 8 + 12
	quoteDst   = 8 + 16
	quoteSport = 8 + 20
	quoteDport = 8 + 22
)

// steerHash is the value the steering program computes, written plainly; tests compare the two.
// ip is the IPv4 or IPv6 packet (no L2 header).
//
// An ICMP error is steered like the packet it quotes, turned around: the quoted packet went
// from the ICMP error's destination (the VIP, or a NAT real server) to the peer, so reversed it
// is a packet of the same connection in the direction the rule expects.
func steerHash(ip []byte, vips []SteerVIP, nat []SteerNAT) uint32 {
	if len(ip) > 0 && ip[0]>>4 == 6 {
		return steerHash6(ip, vips, nat)
	}
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return 0
	}
	ihl := int(ip[0]&0xf) * 4
	u16 := func(off int) (uint16, bool) {
		if off+2 > len(ip) || off < 0 {
			return 0, false
		}
		return binary.BigEndian.Uint16(ip[off:]), true
	}
	u32 := func(off int) (uint32, bool) {
		if off+4 > len(ip) || off < 0 {
			return 0, false
		}
		return binary.BigEndian.Uint32(ip[off:]), true
	}
	if ip[9] == 1 && ihl >= len(ip) {
		return 0 // the program's load of the ICMP type runs past the packet
	}
	if ip[9] == 1 && packet.ICMPIsError(ip[ihl]) {
		s, ok1 := u32(ihl + quoteDst)
		d, ok2 := u32(ihl + quoteSrc)
		if !ok1 || !ok2 {
			return 0
		}
		sp, ok3 := u16(ihl + quoteDport)
		dp, ok4 := u16(ihl + quoteSport)
		return SteerRule(s, d, sp, dp, ok3, ok4, false, vips, nat)
	}
	frag := binary.BigEndian.Uint16(ip[6:])&0x3fff != 0
	sp, ok1 := u16(ihl)
	dp, ok2 := u16(ihl + 2)
	return SteerRule(binary.BigEndian.Uint32(ip[12:]), binary.BigEndian.Uint32(ip[16:]), sp, dp, ok1, ok2, frag, vips, nat)
}

// SteerRule is the steering rule for a packet from s:sp to d:dp (okS, okD: whether those ports
// could be read; the program returns 0 when a load runs past the packet).
func SteerRule(s, d uint32, sp, dp uint16, okS, okD, frag bool, vips []SteerVIP, nat []SteerNAT) uint32 {
	for _, v := range vips {
		if v.V6 || binary.BigEndian.Uint32(v.Addr[:]) != d {
			continue
		}
		for _, p := range v.Persist {
			if p.Port == 0 {
				return steerAddr(s & maskBits(p.Bits))
			}
			if !okD {
				return 0
			}
			if dp == p.Port {
				return steerAddr(s & maskBits(p.Bits))
			}
		}
		if frag {
			return steerAddr(s)
		}
		if !okS {
			return 0
		}
		return steerAddrPort(s, sp)
	}
	for _, n := range nat {
		if n.V6 || binary.BigEndian.Uint32(n.Addr[:]) != s {
			continue
		}
		if !okS {
			return 0
		}
		if n.Port == 0 || sp == n.Port {
			return steerAddr(d & maskBits(n.Bits))
		}
	}
	if frag {
		return steerAddr(d)
	}
	if !okD {
		return 0
	}
	return steerAddrPort(d, dp)
}

func steerAddr(a uint32) uint32 { return (a * steerK1 * steerK2) >> 16 }

func steerAddrPort(a uint32, p uint16) uint32 { return ((a * steerK1) ^ uint32(p)) * steerK2 >> 16 }

// hasV4 reports whether nat has an IPv4 entry.
func hasV4(nat []SteerNAT) bool {
	for _, n := range nat {
		if !n.V6 {
			return true
		}
	}
	return false
}

func maskBits(bits int) uint32 {
	if bits <= 0 {
		return 0
	}
	if bits >= 32 {
		return 0xffffffff
	}
	return ^uint32(0) << (32 - bits)
}

// steerAsm assembles a program with symbolic labels. Conditional jumps only ever skip one
// instruction, and every real branch is an unconditional "ja" with a 32-bit offset, so the
// program has no 255-instruction reach limit however many VIPs it compares.
type steerAsm struct {
	insns  []bpf.Instruction
	labels map[string]int
	fixups map[int]string // index of a ja -> target label
}

func (a *steerAsm) emit(i bpf.Instruction) { a.insns = append(a.insns, i) }
func (a *steerAsm) label(l string)         { a.labels[l] = len(a.insns) }
func (a *steerAsm) jump(l string) {
	a.fixups[len(a.insns)] = l
	a.emit(bpf.Jump{})
}

// jumpIfEq jumps to l when A == v.
func (a *steerAsm) jumpIfEq(v uint32, l string) {
	a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipTrue: 0, SkipFalse: 1})
	a.jump(l)
}

// steerView says where one application of the rule finds its fields. Addresses and ports are
// loaded relative to X, which holds the IPv4 header length, or absolute when abs is set.
type steerView struct {
	prefix       string // label prefix, unique per view
	srcAbs       bool   // addresses at absolute offsets (the outer header)
	src, dst     uint32 // address offsets
	sport, dport uint32 // port offsets, relative to X
	frag         bool   // check the fragment flag kept in M[1]
}

func (a *steerAsm) loadAddr(v steerView, off uint32) {
	if v.srcAbs {
		a.emit(bpf.LoadAbsolute{Off: off, Size: 4})
		return
	}
	a.emit(bpf.LoadMemShift{Off: 0})
	a.emit(bpf.LoadIndirect{Off: off, Size: 4})
}

func (a *steerAsm) loadPort(off uint32) {
	a.emit(bpf.LoadMemShift{Off: 0})
	a.emit(bpf.LoadIndirect{Off: off, Size: 2})
}

// rule emits the steering rule for one view; every path ends in a jump to hashaddr or
// hashport.
func (a *steerAsm) rule(v steerView, vips []SteerVIP, nat []SteerNAT) {
	l := func(s string) string { return v.prefix + s }
	a.loadAddr(v, v.dst)
	for i, vip := range vips {
		if !vip.V6 {
			a.jumpIfEq(binary.BigEndian.Uint32(vip.Addr[:]), l(fmt.Sprintf("vip%d", i)))
		}
	}
	a.jump(l("nonvip"))

	for i, vip := range vips {
		if vip.V6 {
			continue
		}
		a.label(l(fmt.Sprintf("vip%d", i)))
		for j, p := range vip.Persist {
			if p.Port == 0 {
				a.loadAddr(v, v.src)
				a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: maskBits(p.Bits)})
				a.jump("hashaddr")
				break
			}
			next := l(fmt.Sprintf("vip%dp%d", i, j))
			a.loadPort(v.dport)
			a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(p.Port), SkipTrue: 1})
			a.jump(next)
			a.loadAddr(v, v.src)
			a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: maskBits(p.Bits)})
			a.jump("hashaddr")
			a.label(next)
		}
		a.hashEnd(v, v.src, v.sport)
	}

	a.label(l("nonvip"))
	if hasV4(nat) {
		// Group the NAT entries by address so each address is compared once and every jump
		// goes forward (classic BPF has no backward jumps).
		var addrs [][4]byte
		byAddr := map[[4]byte][]SteerNAT{}
		for _, n := range nat {
			if n.V6 {
				continue
			}
			if _, ok := byAddr[n.Addr]; !ok {
				addrs = append(addrs, n.Addr)
			}
			byAddr[n.Addr] = append(byAddr[n.Addr], n)
		}
		a.loadAddr(v, v.src)
		for i, addr := range addrs {
			a.jumpIfEq(binary.BigEndian.Uint32(addr[:]), l(fmt.Sprintf("nat%d", i)))
		}
		a.jump(l("plain"))
		for i, addr := range addrs {
			a.label(l(fmt.Sprintf("nat%d", i)))
			a.loadPort(v.sport)
			wild := false
			for _, n := range byAddr[addr] {
				if n.Port == 0 {
					// Any port: no comparison, and nothing after it is reachable.
					a.loadAddr(v, v.dst)
					a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: maskBits(n.Bits)})
					a.jump("hashaddr")
					wild = true
					break
				}
				a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(n.Port), SkipTrue: 0, SkipFalse: 1})
				a.jump(l(fmt.Sprintf("nat%dport%d", i, n.Port)))
			}
			if !wild {
				a.jump(l("plain"))
			}
			for _, n := range byAddr[addr] {
				if n.Port == 0 {
					break
				}
				a.label(l(fmt.Sprintf("nat%dport%d", i, n.Port)))
				a.loadAddr(v, v.dst)
				a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: maskBits(n.Bits)})
				a.jump("hashaddr")
			}
		}
	}
	a.label(l("plain"))
	a.hashEnd(v, v.dst, v.dport)
}

// hashEnd ends a rule by hashing one end of the flow: the address at addr and the port at
// port, or for a fragment (scratch 1 non-zero: no ports) the address alone.
func (a *steerAsm) hashEnd(v steerView, addr, port uint32) {
	if v.frag {
		a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 1})
		a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 2})
		a.loadAddr(v, addr)
		a.jump("hashaddr")
	}
	a.loadAddr(v, addr)
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.loadPort(port)
	a.jump("hashport")
}

// BuildSteerProgram returns the classic BPF steering program for the fanout group.
func BuildSteerProgram(vips []SteerVIP, nat []SteerNAT) ([]bpf.RawInstruction, error) {
	a := &steerAsm{labels: map[string]int{}, fixups: map[int]string{}}
	// IPv6 has a rule of its own (steer6.go); anything else goes to socket 0, and the worker
	// leaves it (ARP aside) to the kernel.
	a.emit(bpf.LoadAbsolute{Off: 0, Size: 1})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	a.jumpIfEq(0x60, "v6")
	a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x40, SkipTrue: 1})
	a.emit(bpf.RetConstant{Val: 0})
	// M[1] = fragment offset and MF bits.
	a.emit(bpf.LoadAbsolute{Off: 6, Size: 2})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x3fff})
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 1})
	// ICMP errors take the reversed quoted header.
	a.emit(bpf.LoadAbsolute{Off: 9, Size: 1})
	a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipTrue: 0, SkipFalse: 1})
	a.jump("icmp")
	a.label("normal")
	a.rule(steerView{prefix: "n_", srcAbs: true, src: 12, dst: 16, sport: 0, dport: 2, frag: true}, vips, nat)
	a.label("icmp")
	a.emit(bpf.LoadMemShift{Off: 0})
	a.emit(bpf.LoadIndirect{Off: 0, Size: 1}) // ICMP type
	a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 3, SkipTrue: 3})
	a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 11, SkipTrue: 2})
	a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 12, SkipTrue: 1})
	a.jump("normal_again")
	a.rule(steerView{prefix: "i_", src: quoteDst, dst: quoteSrc, sport: quoteDport, dport: quoteSport}, vips, nat)
	// Not an error (echo and the like): steered as any other packet. Classic BPF cannot
	// jump back to "normal", so the normal rule is emitted once more.
	a.label("normal_again")
	a.rule(steerView{prefix: "m_", srcAbs: true, src: 12, dst: 16, sport: 0, dport: 2, frag: true}, vips, nat)
	a.program6(vips, nat)

	// hashport: A = port, M[0] = address.
	a.label("hashport")
	a.emit(bpf.TAX{})
	a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 0})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: steerK1})
	a.emit(bpf.ALUOpX{Op: bpf.ALUOpXor})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: steerK2})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16})
	a.emit(bpf.RetA{})
	// hashaddr: A = (masked) address.
	a.label("hashaddr")
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: steerK1})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: steerK2})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16})
	a.emit(bpf.RetA{})

	for at, l := range a.fixups {
		target, ok := a.labels[l]
		if !ok {
			return nil, fmt.Errorf("forward: steering program: no label %q", l)
		}
		if target <= at {
			return nil, fmt.Errorf("forward: steering program: backward jump to %q", l)
		}
		a.insns[at] = bpf.Jump{Skip: uint32(target - at - 1)}
	}
	if len(a.insns) > steerMaxInsns {
		return nil, fmt.Errorf("forward: steering program needs %d instructions, the kernel allows %d: too many VIPs and persistent NAT reals", len(a.insns), steerMaxInsns)
	}
	raw, err := bpf.Assemble(a.insns)
	if err != nil {
		return nil, fmt.Errorf("forward: steering program: %w", err)
	}
	return raw, nil
}
