package shield

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/forward/privilege"
)

// Return codes of a tcx program (include/uapi/linux/bpf.h, enum tcx_action_base); a cls_bpf
// direct-action program reads -1 as TC_ACT_UNSPEC and 2 as TC_ACT_SHOT, the same meanings.
const (
	tcxNext = -1 // TCX_NEXT: the next program, or the stack if there is none
	tcxDrop = 2  // TCX_DROP
)

// Offsets in struct __sk_buff (include/uapi/linux/bpf.h) of the direct packet pointers.
const (
	skbData    = 76
	skbDataEnd = 80
)

// Traffic the shield never drops, whatever the sets say: the director's own control
// protocols, which may be addressed to a VIP (VRRP unicast peers, BGP on a VIP).
const (
	protoVRRP = 112  // IANA protocol number of VRRP (RFC 5798)
	portBGP   = 179  // TCP, RFC 4271
	portSync  = 8848 // UDP, the IPVS sync daemon's default port
)

// Map sizes bound the memory the kernel allocates for the shield (hash maps are allocated on
// update, not up front, with BPF_F_NO_PREALLOC).
const (
	tcxMaxVIPs   = 1 << 16
	tcxMaxNAT    = 1 << 18
	tcxMaxLocals = 1 << 12
)

// be16 returns the value a little-endian load of v's network-order bytes gives: how the
// program sees a 16-bit header field it did not byte-swap. uvs runs on little-endian hosts
// only (forward/vnet.go).
func be16(v uint16) int32 { return int32(v>>8 | v<<8&0xff00) }

// tcxProgram builds the shield's classifier, written with cilium/ebpf's asm package (no C
// compiler, CGO_ENABLED=0 builds). It mirrors the nftables shield (shield_linux.go):
//
//	ip protocol 112 (VRRP), tcp port 179 (BGP), udp port 8848 (IPVS sync): pass
//	ip daddr @vips: drop (every fragment: the address is in each)
//	ip saddr . ip protocol . th sport @nat_reals, daddr not local: drop
//	  (first fragments only: later ones carry no ports, as nft_payload gives up on them)
//	IPv6: the same with vips6, nat_reals6 and locals6 (tcx6_linux.go)
//	anything else, ARP included: pass
func tcxProgram(m tcxMaps) asm.Instructions {
	vips, nat, locals := m.vips, m.nat, m.locals
	const (
		rCtx   = asm.R6
		rProto = asm.R7
		rPorts = asm.R8 // sport | dport<<16 as loaded; 0 when the frame has no readable ports
		rIHL   = asm.R9
	)
	return append(asm.Instructions{
		asm.Mov.Reg(rCtx, asm.R1),
		asm.LoadMem(asm.R2, rCtx, skbData, asm.Word),
		asm.LoadMem(asm.R3, rCtx, skbDataEnd, asm.Word),
		// Ethernet (14) and the fixed IPv4 header (20), read in place from the linear area,
		// or copied to the stack (fp-66..fp-33, placed so that the word loads below are
		// aligned, as the verifier wants for the stack) when the frame has them in page
		// fragments: one an AF_PACKET TX ring built and a veth handed on (tpacket_snd puts
		// the data in frags). Passing those would hand every such VIP frame to the stack
		// (ip_rcv, then ip_error: IpInAddrErrors); pulling them (bpf_skb_pull_data) can
		// reallocate the head, a copy costs less. R3 is not used after this point.
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 34),
		asm.JLE.Reg(asm.R4, asm.R3, "linear"),
		asm.Mov.Reg(asm.R1, rCtx),
		asm.Mov.Imm(asm.R2, 0),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -66),
		asm.Mov.Imm(asm.R4, 34),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "pass"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -66),
		asm.LoadMem(asm.R4, asm.R2, 12, asm.Half).WithSymbol("linear"),
		asm.JEq.Imm(asm.R4, be16(unix.ETH_P_IPV6), "ip6"),
		asm.JNE.Imm(asm.R4, be16(unix.ETH_P_IP), "pass"),
		asm.LoadMem(rProto, asm.R2, 23, asm.Byte),
		asm.JEq.Imm(rProto, protoVRRP, "pass"),
		asm.LoadMem(rIHL, asm.R2, 14, asm.Byte),
		asm.And.Imm(rIHL, 0x0f),
		asm.LSh.Imm(rIHL, 2),
		asm.JLT.Imm(rIHL, 20, "pass"),
		// Keys on the stack: daddr at fp-4; the NAT key {saddr, proto, 0, sport} at fp-16.
		asm.LoadMem(asm.R4, asm.R2, 30, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R4, asm.Word),
		asm.LoadMem(asm.R4, asm.R2, 26, asm.Word),
		asm.StoreMem(asm.RFP, -16, asm.R4, asm.Word),
		asm.StoreMem(asm.RFP, -12, rProto, asm.Byte),
		asm.StoreImm(asm.RFP, -11, 0, asm.Byte),
		asm.StoreImm(asm.RFP, -10, 0, asm.Half),
		// Ports: first fragments (offset 0) whose L4 header's first 4 bytes are present,
		// read with bpf_skb_load_bytes: a packet pointer plus a variable offset is refused
		// to a loader without CAP_PERFMON (the verifier's Spectre v1 rule), and uvs keeps
		// only CAP_BPF.
		asm.Mov.Imm(rPorts, 0),
		asm.LoadMem(asm.R4, asm.R2, 20, asm.Half),
		asm.And.Imm(asm.R4, be16(0x1fff)),
		asm.JNE.Imm(asm.R4, 0, "vip"),
		asm.Mov.Reg(asm.R1, rCtx),
		asm.Mov.Reg(asm.R2, rIHL),
		asm.Add.Imm(asm.R2, 14),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -24),
		asm.Mov.Imm(asm.R4, 4),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "vip"),
		asm.LoadMem(rPorts, asm.RFP, -24, asm.Word),
		asm.LoadMem(asm.R4, asm.RFP, -24, asm.Half),
		asm.StoreMem(asm.RFP, -10, asm.R4, asm.Half),
		// The control protocols.
		asm.Mov.Reg(asm.R4, rPorts),
		asm.And.Imm(asm.R4, 0xffff), // sport
		asm.Mov.Reg(asm.R5, rPorts),
		asm.RSh.Imm(asm.R5, 16), // dport
		asm.JNE.Imm(rProto, unix.IPPROTO_TCP, "udp"),
		asm.JEq.Imm(asm.R4, be16(portBGP), "pass"),
		asm.JEq.Imm(asm.R5, be16(portBGP), "pass"),
		asm.Ja.Label("vip"),
		asm.JNE.Imm(rProto, unix.IPPROTO_UDP, "vip").WithSymbol("udp"),
		asm.JEq.Imm(asm.R4, be16(portSync), "pass"),
		asm.JEq.Imm(asm.R5, be16(portSync), "pass"),
		// ip daddr @vips drop
		asm.LoadMapPtr(asm.R1, vips.FD()).WithSymbol("vip"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),
		// ip saddr . ip protocol . th sport @nat_reals, fib daddr type != local: drop
		asm.JEq.Imm(rPorts, 0, "pass"),
		asm.LoadMapPtr(asm.R1, nat.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMapPtr(asm.R1, locals.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "pass"),
		asm.Mov.Imm(asm.R0, tcxDrop).WithSymbol("drop"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, tcxNext).WithSymbol("pass"),
		asm.Return(),
	}, tcxProgram6(m.vips6.FD(), m.nat6.FD(), m.locals6.FD())...)
}

// tcxMaps are the shield program's maps: IPv4 VIPs, NAT reals and local addresses, and the
// same for IPv6 (keys: the address; NAT reals: address, protocol, 0, port in network order).
type tcxMaps struct {
	vips, nat, locals    *ebpf.Map
	vips6, nat6, locals6 *ebpf.Map
}

func (m tcxMaps) all() []*ebpf.Map {
	return []*ebpf.Map{m.vips, m.nat, m.locals, m.vips6, m.nat6, m.locals6}
}

// tcxShield is the shield as a tcx ingress program on each interface (Linux 6.6+). tcx runs
// after the AF_PACKET taps, as nftables' netdev ingress hook does, and costs one program run
// per frame instead of a chain walk. Its links belong to this process: the kernel detaches
// them when the process exits, killed or not, so no leftover can outlive a run. Not safe
// for concurrent use; Shield serialises calls.
type tcxShield struct {
	log *slog.Logger
	ns  netns.NsHandle // where the addresses are listed (the caller's of NewShield)
	tcxMaps
	prog             *ebpf.Program
	links            []link.Link
	haveVIP, haveNAT map[string]bool // keys of vips and vips6, nat and nat6 (by length)
}

func natKey(n NATReal) []byte {
	k := make([]byte, 8)
	copy(k, n.Addr[:])
	k[4] = n.Proto
	binary.BigEndian.PutUint16(k[6:], n.Port)
	return k
}

// newTCXShield loads the program and attaches it to every interface in the calling thread's
// namespace (ns is that namespace, kept for listing its addresses later).
func newTCXShield(ifaces []string, ns netns.NsHandle, log *slog.Logger) (_ *tcxShield, err error) {
	s := &tcxShield{log: log, ns: ns, haveVIP: map[string]bool{}, haveNAT: map[string]bool{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	mk := func(name string, key, max uint32) (*ebpf.Map, error) {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: ebpf.Hash, KeySize: key, ValueSize: 1, MaxEntries: max, Flags: unix.BPF_F_NO_PREALLOC})
		if err != nil {
			return nil, fmt.Errorf("forward: shield: bpf map %s: %w", name, err)
		}
		return m, nil
	}
	if s.vips, err = mk("uvs_vips", 4, tcxMaxVIPs); err != nil {
		return nil, err
	}
	if s.nat, err = mk("uvs_nat_reals", 8, tcxMaxNAT); err != nil {
		return nil, err
	}
	if s.locals, err = mk("uvs_locals", 4, tcxMaxLocals); err != nil {
		return nil, err
	}
	if s.vips6, err = mk("uvs_vips6", 16, tcxMaxVIPs); err != nil {
		return nil, err
	}
	if s.nat6, err = mk("uvs_nat_reals6", 20, tcxMaxNAT); err != nil {
		return nil, err
	}
	if s.locals6, err = mk("uvs_locals6", 16, tcxMaxLocals); err != nil {
		return nil, err
	}
	s.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "uvs_shield", Type: ebpf.SchedCLS, License: "GPL",
		Instructions: tcxProgram(s.tcxMaps)})
	if err != nil {
		return nil, fmt.Errorf("forward: shield: load tcx program: %w", err)
	}
	if err := s.refreshLocals(); err != nil {
		return nil, err
	}
	for _, name := range ifaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("forward: shield: %w", err)
		}
		l, err := link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: s.prog, Attach: ebpf.AttachTCXIngress, Anchor: link.Head()})
		if err != nil {
			return nil, fmt.Errorf("forward: shield: attach tcx ingress on %s: %w", name, err)
		}
		s.links = append(s.links, l)
	}
	return s, nil
}

// refreshLocals loads the namespace's addresses into the locals and locals6 maps, so that replies from
// a NAT real server to the director itself (health checks) reach its stack. The nftables
// shield asks "fib daddr type local" per frame instead; here an address added later counts
// from the next Update (every snapshot publish: reload, health change, route or neighbour
// change).
func (s *tcxShield) refreshLocals() error {
	// Entering the namespace needs CAP_SYS_ADMIN, which uvs does not keep: only a caller
	// on another namespace's thread (tests) has the handle opened there.
	h := &netlink.Handle{}
	if !privilege.InNetNS(s.ns) {
		var err error
		if h, err = netlink.NewHandleAt(s.ns); err != nil {
			return fmt.Errorf("forward: shield: netlink handle: %w", err)
		}
		defer h.Close()
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("forward: shield: list addresses: %w", err)
	}
	want4, want6 := map[string]bool{}, map[string]bool{}
	for _, a := range addrs {
		if v4 := a.IP.To4(); v4 != nil {
			want4[string(v4)] = true
		} else if v6 := a.IP.To16(); v6 != nil {
			want6[string(v6)] = true
		}
	}
	if err := syncSet(s.locals, want4); err != nil {
		return err
	}
	return syncSet(s.locals6, want6)
}

// syncSet makes the keys of m (a map of 1-byte values) exactly want.
func syncSet(m *ebpf.Map, want map[string]bool) error {
	one := []byte{1}
	for k := range want {
		if err := m.Put([]byte(k), one); err != nil {
			return fmt.Errorf("forward: shield: locals: %w", err)
		}
	}
	k := make([]byte, m.KeySize())
	var v [1]byte
	it := m.Iterate()
	var stale []string
	for it.Next(&k, &v) {
		if !want[string(k)] {
			stale = append(stale, string(k))
		}
	}
	for _, k := range stale {
		_ = m.Delete([]byte(k))
	}
	return nil
}

// Update puts the new entries in before it takes the old ones out: a frame may briefly meet
// a stale entry, never a missing one.
func (s *tcxShield) Update(vips []netip.Addr, nat []NATReal) error {
	if err := s.refreshLocals(); err != nil {
		return err
	}
	one := []byte{1}
	// Keys are told apart by length: 4 and 16 bytes (VIPs), 8 and 20 (NAT reals).
	vipMap := func(k string) *ebpf.Map {
		if len(k) == 16 {
			return s.vips6
		}
		return s.vips
	}
	natMap := func(k string) *ebpf.Map {
		if len(k) == 20 {
			return s.nat6
		}
		return s.nat
	}
	nv := map[string]bool{}
	for _, v := range vips {
		k := string(v.Unmap().AsSlice())
		if !nv[k] {
			nv[k] = true
			if err := vipMap(k).Put([]byte(k), one); err != nil {
				return fmt.Errorf("forward: shield update: vip %s: %w", v, err)
			}
		}
	}
	nn := map[string]bool{}
	for _, n := range nat {
		k := string(natKey(n))
		if n.V6 {
			k = string(natKey6(n))
		}
		if !nn[k] {
			nn[k] = true
			if err := natMap(k).Put([]byte(k), one); err != nil {
				return fmt.Errorf("forward: shield update: nat real: %w", err)
			}
		}
	}
	for k := range s.haveVIP {
		if !nv[k] {
			_ = vipMap(k).Delete([]byte(k))
		}
	}
	for k := range s.haveNAT {
		if !nn[k] {
			_ = natMap(k).Delete([]byte(k))
		}
	}
	s.haveVIP, s.haveNAT = nv, nn
	return nil
}

// Close detaches the program from every interface and frees it.
func (s *tcxShield) Close() error {
	var errs []error
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	s.links = nil
	if s.prog != nil {
		errs = append(errs, s.prog.Close())
	}
	for _, m := range s.all() {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}
