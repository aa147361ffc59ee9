package forward

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"
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
// are relative to the IPv4 header. It costs a few tens of instructions per frame in softirq
// context, once per group, and it lets each worker own its connection table without locks.

// SteerVIP describes one VIP for the steering program.
type SteerVIP struct {
	Addr [4]byte
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
	Port uint16
	Bits int
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

// SteerHash is the value the steering program computes, written plainly; tests compare the two.
// ip is the IPv4 packet (no L2 header).
func SteerHash(ip []byte, vips []SteerVIP, nat []SteerNAT) uint32 {
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return 0
	}
	ihl := int(ip[0]&0xf) * 4
	frag := binary.BigEndian.Uint16(ip[6:])&0x3fff != 0
	src := binary.BigEndian.Uint32(ip[12:])
	dst := binary.BigEndian.Uint32(ip[16:])
	port := func(off int) (uint16, bool) {
		if ihl+off+2 > len(ip) {
			return 0, false
		}
		return binary.BigEndian.Uint16(ip[ihl+off:]), true
	}
	for _, v := range vips {
		if binary.BigEndian.Uint32(v.Addr[:]) != dst {
			continue
		}
		for _, p := range v.Persist {
			if p.Port == 0 {
				return steerAddr(src & maskBits(p.Bits))
			}
			dport, ok := port(2)
			if !ok {
				return 0
			}
			if dport == p.Port {
				return steerAddr(src & maskBits(p.Bits))
			}
		}
		if frag {
			return steerAddr(src)
		}
		sport, ok := port(0)
		if !ok {
			return 0
		}
		return steerAddrPort(src, sport)
	}
	for _, n := range nat {
		if binary.BigEndian.Uint32(n.Addr[:]) != src {
			continue
		}
		sport, ok := port(0)
		if !ok {
			return 0
		}
		if n.Port == 0 || sport == n.Port {
			return steerAddr(dst & maskBits(n.Bits))
		}
	}
	if frag {
		return steerAddr(dst)
	}
	dport, ok := port(2)
	if !ok {
		return 0
	}
	return steerAddrPort(dst, dport)
}

func steerAddr(a uint32) uint32 { return (a * steerK1 * steerK2) >> 16 }

func steerAddrPort(a uint32, p uint16) uint32 { return ((a * steerK1) ^ uint32(p)) * steerK2 >> 16 }

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

// BuildSteerProgram returns the classic BPF steering program for the fanout group.
func BuildSteerProgram(vips []SteerVIP, nat []SteerNAT) ([]bpf.RawInstruction, error) {
	a := &steerAsm{labels: map[string]int{}, fixups: map[int]string{}}
	// Not IPv4: socket 0; the worker leaves such frames (ARP aside) to the kernel.
	a.emit(bpf.LoadAbsolute{Off: 0, Size: 1})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x40, SkipTrue: 1})
	a.emit(bpf.RetConstant{Val: 0})
	// M[1] = fragment offset and MF bits.
	a.emit(bpf.LoadAbsolute{Off: 6, Size: 2})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x3fff})
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 1})
	a.emit(bpf.LoadAbsolute{Off: 16, Size: 4}) // daddr
	for i, v := range vips {
		a.jumpIfEq(binary.BigEndian.Uint32(v.Addr[:]), fmt.Sprintf("vip%d", i))
	}
	a.jump("nonvip")

	for i, v := range vips {
		a.label(fmt.Sprintf("vip%d", i))
		for _, p := range v.Persist {
			if p.Port == 0 {
				a.emit(bpf.LoadAbsolute{Off: 12, Size: 4})
				a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: maskBits(p.Bits)})
				a.jump("hashaddr")
				break
			}
			a.emit(bpf.LoadMemShift{Off: 0})
			a.emit(bpf.LoadIndirect{Off: 2, Size: 2}) // dport
			a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(p.Port), SkipTrue: 0, SkipFalse: 3})
			a.emit(bpf.LoadAbsolute{Off: 12, Size: 4})
			a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: maskBits(p.Bits)})
			a.jump("hashaddr")
		}
		// Fragment: source address alone.
		a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 1})
		a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 2})
		a.emit(bpf.LoadAbsolute{Off: 12, Size: 4})
		a.jump("hashaddr")
		a.emit(bpf.LoadAbsolute{Off: 12, Size: 4})
		a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
		a.emit(bpf.LoadMemShift{Off: 0})
		a.emit(bpf.LoadIndirect{Off: 0, Size: 2}) // sport
		a.jump("hashport")
	}

	a.label("nonvip")
	if len(nat) > 0 {
		// Group the NAT entries by address so each address is compared once and every jump
		// goes forward (classic BPF has no backward jumps).
		var addrs [][4]byte
		byAddr := map[[4]byte][]SteerNAT{}
		for _, n := range nat {
			if _, ok := byAddr[n.Addr]; !ok {
				addrs = append(addrs, n.Addr)
			}
			byAddr[n.Addr] = append(byAddr[n.Addr], n)
		}
		a.emit(bpf.LoadAbsolute{Off: 12, Size: 4}) // saddr
		for i, addr := range addrs {
			a.jumpIfEq(binary.BigEndian.Uint32(addr[:]), fmt.Sprintf("nat%d", i))
		}
		a.jump("plain")
		for i, addr := range addrs {
			a.label(fmt.Sprintf("nat%d", i))
			a.emit(bpf.LoadMemShift{Off: 0})
			a.emit(bpf.LoadIndirect{Off: 0, Size: 2}) // sport
			wild := false
			for _, n := range byAddr[addr] {
				if n.Port == 0 {
					// Any port: no comparison, and nothing after it is reachable.
					a.emit(bpf.LoadAbsolute{Off: 16, Size: 4})
					a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: maskBits(n.Bits)})
					a.jump("hashaddr")
					wild = true
					break
				}
				a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(n.Port), SkipTrue: 0, SkipFalse: 3})
				a.emit(bpf.LoadAbsolute{Off: 16, Size: 4})
				a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: maskBits(n.Bits)})
				a.jump("hashaddr")
			}
			if !wild {
				a.jump("plain")
			}
		}
	}
	a.label("plain")
	a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 1})
	a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 2})
	a.emit(bpf.LoadAbsolute{Off: 16, Size: 4})
	a.jump("hashaddr")
	a.emit(bpf.LoadAbsolute{Off: 16, Size: 4})
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.emit(bpf.LoadMemShift{Off: 0})
	a.emit(bpf.LoadIndirect{Off: 2, Size: 2}) // dport
	a.jump("hashport")

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
