package steer

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"
)

// IPv6 steering. The rule is IPv4's, on IPv6 addresses folded to 32 bits by XOR of their four
// words (IPVS folds IPv6 addresses the same way for its sh and dh hashes: ip_vs_sh_hashkey), so
// a client keeps its worker whatever its family:
//
//   - to an IPv6 VIP (all 128 bits compared): the folded source and the source port, or for a
//     persistent service the source masked to the persistence prefix (0..128) and folded;
//   - from an IPv6 NAT real server: the folded destination (and port, or masked);
//   - ICMPv6 errors (types 1 to 4): the quoted packet turned around, as for ICMP.
//
// Ports are read right after the fixed header, which is where they are unless extension
// headers come first: then (next header not TCP, UDP or ICMPv6) the folded address alone is
// hashed, like an IPv4 fragment, and a quoted packet is assumed to have none. A connection
// whose packets carry extension headers only sometimes may then meet two workers; that is
// rare enough to cost a table miss, never a wrong rewrite.

// IPv6 offsets: the fixed header, and in an ICMPv6 error the quoted header after the 8-byte
// ICMPv6 header.
const (
	ip6Next    = 6
	ip6Src     = 8
	ip6Dst     = 24
	ip6L4      = 40
	quote6Src  = ip6L4 + 8 + ip6Src
	quote6Dst  = ip6L4 + 8 + ip6Dst
	quote6Port = ip6L4 + 8 + ip6L4
)

// fold6 is the 32-bit XOR fold of an IPv6 address masked to bits.
func fold6(a [16]byte, bits int) uint32 {
	var f uint32
	for w := 0; w < 4; w++ {
		f ^= binary.BigEndian.Uint32(a[4*w:]) & maskBits(bits-32*w)
	}
	return f
}

// steerHash6 is steerHash for an IPv6 packet (no L2 header).
func steerHash6(ip []byte, vips []SteerVIP, nat []SteerNAT) uint32 {
	if len(ip) < ip6L4 {
		return 0
	}
	u16 := func(off int) (uint16, bool) {
		if off+2 > len(ip) {
			return 0, false
		}
		return binary.BigEndian.Uint16(ip[off:]), true
	}
	addr := func(off int) ([16]byte, bool) {
		if off+16 > len(ip) {
			return [16]byte{}, false
		}
		return [16]byte(ip[off : off+16]), true
	}
	next := ip[ip6Next]
	if next == 58 {
		if len(ip) <= ip6L4 {
			return 0
		}
		if t := ip[ip6L4]; t >= 1 && t <= 4 {
			s, ok1 := addr(quote6Dst)
			d, ok2 := addr(quote6Src)
			if !ok1 || !ok2 {
				return 0
			}
			sp, ok3 := u16(quote6Port + 2)
			dp, ok4 := u16(quote6Port)
			return steerRule6(s, d, sp, dp, ok3, ok4, false, vips, nat)
		}
	}
	s, _ := addr(ip6Src)
	d, _ := addr(ip6Dst)
	sp, ok1 := u16(ip6L4)
	dp, ok2 := u16(ip6L4 + 2)
	noPorts := next != 6 && next != 17 && next != 58
	return steerRule6(s, d, sp, dp, ok1, ok2, noPorts, vips, nat)
}

// steerRule6 is SteerRule for IPv6 addresses; noPorts plays the part of frag.
func steerRule6(s, d [16]byte, sp, dp uint16, okS, okD, noPorts bool, vips []SteerVIP, nat []SteerNAT) uint32 {
	for _, v := range vips {
		if !v.V6 || v.Addr6 != d {
			continue
		}
		for _, p := range v.Persist {
			if p.Port == 0 {
				return steerAddr(fold6(s, p.Bits))
			}
			if !okD {
				return 0
			}
			if dp == p.Port {
				return steerAddr(fold6(s, p.Bits))
			}
		}
		if noPorts {
			return steerAddr(fold6(s, 128))
		}
		if !okS {
			return 0
		}
		return steerAddrPort(fold6(s, 128), sp)
	}
	for _, n := range nat {
		if !n.V6 || n.Addr6 != s {
			continue
		}
		if !okS {
			return 0
		}
		if n.Port == 0 || sp == n.Port {
			return steerAddr(fold6(d, n.Bits))
		}
	}
	if noPorts {
		return steerAddr(fold6(d, 128))
	}
	if !okD {
		return 0
	}
	return steerAddrPort(fold6(d, 128), dp)
}

// view6 says where one application of the IPv6 rule finds its fields, all at absolute offsets.
type view6 struct {
	prefix       string
	src, dst     uint32
	sport, dport uint32
	noPorts      bool // check M[1], set when the next header is not TCP, UDP or ICMPv6
}

// fold emits A = fold6(address at off, bits), using M[2].
func (a *steerAsm) fold(off uint32, bits int) {
	for w := 0; w < 4; w++ {
		a.emit(bpf.LoadAbsolute{Off: off + uint32(4*w), Size: 4})
		if m := maskBits(bits - 32*w); m != 0xffffffff {
			a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: m})
		}
		if w > 0 {
			a.emit(bpf.LoadScratch{Dst: bpf.RegX, N: 2})
			a.emit(bpf.ALUOpX{Op: bpf.ALUOpXor})
		}
		if w < 3 {
			a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 2})
		}
	}
}

// jumpUnless128 jumps to l unless the address at off is addr.
func (a *steerAsm) jumpUnless128(off uint32, addr [16]byte, l string) {
	for w := 0; w < 4; w++ {
		a.emit(bpf.LoadAbsolute{Off: off + uint32(4*w), Size: 4})
		a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(addr[4*w:]), SkipTrue: 1})
		a.jump(l)
	}
}

// hashEnd6 ends an IPv6 rule by hashing the folded address at addr and the port at port, or
// the address alone when M[1] says there are no ports.
func (a *steerAsm) hashEnd6(v view6, addr, port uint32) {
	if v.noPorts {
		a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 1})
		a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 1})
		a.jump(v.prefix + "addronly")
	}
	a.fold(addr, 128)
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.emit(bpf.LoadAbsolute{Off: port, Size: 2})
	a.jump("hashport")
	if v.noPorts {
		a.label(v.prefix + "addronly")
		a.fold(addr, 128)
		a.jump("hashaddr")
	}
}

// rule6 emits the IPv6 steering rule for one view; every path ends in a jump to hashaddr or
// hashport.
func (a *steerAsm) rule6(v view6, vips []SteerVIP, nat []SteerNAT) {
	l := func(s string) string { return v.prefix + s }
	n := 0
	for i, vip := range vips {
		if !vip.V6 {
			continue
		}
		n++
		next := l(fmt.Sprintf("vip%dno", i))
		a.jumpUnless128(v.dst, vip.Addr6, next)
		for j, p := range vip.Persist {
			if p.Port == 0 {
				a.fold(v.src, p.Bits)
				a.jump("hashaddr")
				break
			}
			pn := l(fmt.Sprintf("vip%dp%d", i, j))
			a.emit(bpf.LoadAbsolute{Off: v.dport, Size: 2})
			a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(p.Port), SkipTrue: 1})
			a.jump(pn)
			a.fold(v.src, p.Bits)
			a.jump("hashaddr")
			a.label(pn)
		}
		a.hashEnd6(view6{prefix: l(fmt.Sprintf("vip%d", i)), noPorts: v.noPorts}, v.src, v.sport)
		a.label(next)
	}
	for i, r := range nat {
		if !r.V6 {
			continue
		}
		next := l(fmt.Sprintf("nat%dno", i))
		a.jumpUnless128(v.src, r.Addr6, next)
		if r.Port != 0 {
			a.emit(bpf.LoadAbsolute{Off: v.sport, Size: 2})
			a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(r.Port), SkipTrue: 1})
			a.jump(next)
		}
		a.fold(v.dst, r.Bits)
		a.jump("hashaddr")
		a.label(next)
	}
	a.hashEnd6(view6{prefix: l("plain"), noPorts: v.noPorts}, v.dst, v.dport)
}

// program6 emits the IPv6 part of the steering program, entered at label "v6" with nothing
// loaded.
func (a *steerAsm) program6(vips []SteerVIP, nat []SteerNAT) {
	a.label("v6")
	// M[1] = 1 unless the next header is TCP, UDP or ICMPv6 (ports right after the header).
	a.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: 0})
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 1})
	a.emit(bpf.LoadAbsolute{Off: ip6Next, Size: 1})
	a.jumpIfEq(58, "icmp6")
	a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipTrue: 3})
	a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 17, SkipTrue: 2})
	a.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: 1})
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 1})
	a.jump("v6normal")
	// ICMPv6: errors (types 1..4) take the reversed quoted header.
	a.label("icmp6")
	a.emit(bpf.LoadAbsolute{Off: ip6L4, Size: 1})
	a.emit(bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: 4, SkipTrue: 1})
	a.emit(bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: 1, SkipTrue: 1})
	a.jump("v6normal")
	a.rule6(view6{prefix: "e6_", src: quote6Dst, dst: quote6Src, sport: quote6Port + 2, dport: quote6Port}, vips, nat)
	a.label("v6normal")
	a.rule6(view6{prefix: "n6_", src: ip6Src, dst: ip6Dst, sport: ip6L4, dport: ip6L4 + 2, noPorts: true}, vips, nat)
}
