package shield

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/forward/privilege"
)

// The shield's nftables objects. The table lives in the netdev family so that
// its chains run on the ingress hook of each device, before the IP stack
// (ip_rcv) sees the frame, but after AF_PACKET ETH_P_ALL taps have been
// given their copy (__netif_receive_skb_core delivers to ptype_all before
// nf_ingress; net/core/dev.c).
const (
	// shieldTable is the name of the netdev table the shield owns.
	shieldTable = "uvs"
	// shieldSetVIPs holds the virtual IPv4 addresses (type ipv4_addr).
	shieldSetVIPs = "vips"
	// shieldSetNATReals holds ipv4_addr . inet_proto . inet_service of
	// NAT real servers, whose replies must reach only uvs.
	shieldSetNATReals = "nat_reals"
	// shieldSetVIPs6 and shieldSetNATReals6 are the IPv6 sets (ipv6_addr,
	// ipv6_addr . inet_proto . inet_service), matched by rules of their own
	// on "meta protocol ip6".
	shieldSetVIPs6     = "vips6"
	shieldSetNATReals6 = "nat_reals6"
	// shieldPriority places the ingress chains before any other netdev
	// ingress chain a host is likely to have.
	shieldPriority = -500
	// shieldSndbuf bounds one Update: nftables.Conn.Flush sends the whole
	// batch in one sendmsg, which netlink rejects with EMSGSIZE above the
	// socket's send buffer (netlink_sendmsg). Elements cost about 40 (vips)
	// and 48 (nat_reals) bytes, so the default 212992-byte buffer stops
	// near 2,500 of each; 32 MiB allows several hundred thousand. Memory
	// is charged only while a batch is in flight.
	shieldSndbuf = 32 << 20
	// shieldElemsPerMsg splits set elements over several NEWSETELEM
	// messages of the same batch: all elements of a message sit in one
	// nested attribute, whose length field is 16 bits. An element takes
	// at most 4 (elem) + 4 (key) + 4+12 (value) = 24 bytes; 1024 of them
	// stay well below 64 KiB.
	shieldElemsPerMsg = 1024
)

// Log attribute keys used by the shield.
const (
	shieldKeyErr = "err"
)

// ShieldConfig configures a Shield. The zero value of each field means its
// default.
type ShieldConfig struct {
	// Interfaces are the devices uvs listens on; each gets an ingress chain.
	// At least one is required. Kernels that bind netdev hooks by name
	// (6.18 does) accept a device that does not exist yet and attach the
	// chain when it appears, also after it is deleted and re-created;
	// older kernels make NewShield fail.
	Interfaces []string
	// Logger receives setup and teardown messages; nil discards them.
	Logger *slog.Logger
	// Mode chooses the mechanism: config.ShieldTCX (an eBPF program on the tcx ingress
	// hook, Linux 6.6+), config.ShieldNftables (the netdev table), or config.ShieldAuto
	// (zero too): tcx where the kernel has it, nftables otherwise.
	Mode config.ShieldMode
}

// Kinds of shield, as Kind reports them.
const (
	KindTCX      = "tcx"
	KindNftables = "nftables"
)

// Shield keeps the director's own kernel from handling VIP traffic and NAT
// replies: with it in place the kernel neither answers (RST, ICMP) nor
// forwards those frames, while AF_PACKET sockets still receive them.
//
// A Shield is bound to the network namespace of the thread that called
// NewShield: its netlink socket is opened there, and reopened there after a
// failed batch. Its methods are safe for concurrent use.
type Shield struct {
	log *slog.Logger

	ns netns.NsHandle // namespace of NewShield's caller; closed by Close

	mu     sync.Mutex // guards everything below
	tcx    *tcxShield // the tcx shield; nil for nftables
	conn   *nftables.Conn
	table  *nftables.Table
	vips   *nftables.Set
	nat    *nftables.Set
	vips6  *nftables.Set
	nat6   *nftables.Set
	closed bool
}

// NewShield removes any "uvs" netdev table left behind by a killed run and
// installs a fresh one with an ingress chain for each of cfg.Interfaces and
// empty sets. Removal and installation are one nftables transaction, so
// there is no moment without a shield when a previous one existed.
func NewShield(cfg ShieldConfig) (*Shield, error) {
	if len(cfg.Interfaces) == 0 {
		return nil, errors.New("forward: new shield: no interfaces")
	}
	seen := make(map[string]bool, len(cfg.Interfaces))
	for _, name := range cfg.Interfaces {
		if name == "" || len(name) >= unix.IFNAMSIZ {
			return nil, fmt.Errorf("forward: new shield: bad interface name %q", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("forward: new shield: interface %q listed twice", name)
		}
		seen[name] = true
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("forward: new shield: get network namespace: %w", err)
	}
	s := &Shield{log: log, ns: ns}
	if cfg.Mode != config.ShieldNftables {
		t, err := newTCXShield(cfg.Interfaces, ns, log)
		if err == nil {
			// A netdev table a killed nftables run left would go on dropping beside us.
			if err := removeLeftoverShield(); err != nil {
				log.Warn("shield: remove leftover nftables table", shieldKeyErr, err)
			}
			s.tcx = t
			log.Info("shield installed", "shield", KindTCX, "interfaces", cfg.Interfaces)
			return s, nil
		}
		if cfg.Mode == config.ShieldTCX {
			ns.Close()
			return nil, fmt.Errorf("forward: new shield: %w", err)
		}
		log.Info("shield: tcx not available, using nftables", shieldKeyErr, err)
	}
	if s.conn, err = s.dial(); err != nil {
		ns.Close()
		return nil, fmt.Errorf("forward: new shield: %w", err)
	}
	if err := s.install(cfg.Interfaces); err != nil {
		_ = s.conn.CloseLasting()
		ns.Close()
		return nil, err
	}
	log.Info("shield installed", "shield", KindNftables, "table", shieldTable, "interfaces", cfg.Interfaces)
	return s, nil
}

// Kind returns KindTCX or KindNftables: the mechanism that runs.
func (s *Shield) Kind() string {
	if s.tcx != nil {
		return KindTCX
	}
	return KindNftables
}

// dial opens the shield's lasting nftables connection in its namespace, entering it only
// when the calling thread is elsewhere (inNetNS).
func (s *Shield) dial() (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(growSendBuffer)}
	if !privilege.InNetNS(s.ns) {
		opts = append(opts, nftables.WithNetNSFd(int(s.ns)))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink: %w", err)
	}
	return c, nil
}

// redial replaces the connection after a failed batch: messages queued but
// not sent, or acknowledgements left unread after ENOBUFS, must not leak
// into the next batch. Called with s.mu held.
func (s *Shield) redial() {
	c, err := s.dial()
	if err != nil {
		s.log.Warn("shield: reopen nftables netlink", shieldKeyErr, err)
		return
	}
	_ = s.conn.CloseLasting()
	s.conn = c
}

// install queues and commits the whole table in one batch.
func (s *Shield) install(ifaces []string) error {
	c := s.conn
	t := &nftables.Table{Name: shieldTable, Family: nftables.TableFamilyNetdev}
	// "add" does not fail on an existing table; deleting it right after
	// clears whatever a previous run left, in the same transaction.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)

	vips := &nftables.Set{Table: t, Name: shieldSetVIPs, KeyType: nftables.TypeIPAddr}
	if err := c.AddSet(vips, nil); err != nil {
		return fmt.Errorf("forward: new shield: add set %s: %w", shieldSetVIPs, err)
	}
	natType, err := nftables.ConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	if err != nil {
		return fmt.Errorf("forward: new shield: set type %s: %w", shieldSetNATReals, err)
	}
	nat := &nftables.Set{Table: t, Name: shieldSetNATReals, KeyType: natType, Concatenation: true}
	if err := c.AddSet(nat, nil); err != nil {
		return fmt.Errorf("forward: new shield: add set %s: %w", shieldSetNATReals, err)
	}

	vips6 := &nftables.Set{Table: t, Name: shieldSetVIPs6, KeyType: nftables.TypeIP6Addr}
	if err := c.AddSet(vips6, nil); err != nil {
		return fmt.Errorf("forward: new shield: add set %s: %w", shieldSetVIPs6, err)
	}
	nat6Type, err := nftables.ConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService)
	if err != nil {
		return fmt.Errorf("forward: new shield: set type %s: %w", shieldSetNATReals6, err)
	}
	nat6 := &nftables.Set{Table: t, Name: shieldSetNATReals6, KeyType: nat6Type, Concatenation: true}
	if err := c.AddSet(nat6, nil); err != nil {
		return fmt.Errorf("forward: new shield: add set %s: %w", shieldSetNATReals6, err)
	}

	policy := nftables.ChainPolicyAccept
	for _, name := range ifaces {
		ch := c.AddChain(&nftables.Chain{
			Name:     "ingress-" + name,
			Table:    t,
			Type:     nftables.ChainTypeFilter,
			Hooknum:  nftables.ChainHookIngress,
			Priority: nftables.ChainPriorityRef(shieldPriority),
			Policy:   &policy,
			Device:   name,
		})
		for _, e := range controlAcceptExprs() {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e})
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: vipDropExprs(vips)})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: natReplyDropExprs(nat)})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: vipDropExprs6(vips6)})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: natReplyDropExprs6(nat6)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("forward: new shield: commit table %s on %v: %w", shieldTable, ifaces, err)
	}
	s.table, s.vips, s.nat, s.vips6, s.nat6 = t, vips, nat, vips6, nat6
	return nil
}

// growSendBuffer raises the netlink socket's send buffer to shieldSndbuf,
// past net.core.wmem_max with SO_SNDBUFFORCE (CAP_NET_ADMIN, which changing
// nftables needs anyway), else as far as SO_SNDBUF allows.
func growSendBuffer(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("forward: shield: netlink raw conn: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, shieldSndbuf)
		if serr != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, shieldSndbuf)
		}
	}); err != nil {
		return fmt.Errorf("forward: shield: netlink control: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("forward: shield: setsockopt SO_SNDBUF: %w", serr)
	}
	return nil
}

// nft registers (include/uapi/linux/netfilter/nf_tables.h). NFT_REG_1 is the
// 16-byte alias of NFT_REG32_00..03; concatenations use consecutive 32-bit
// registers, each field padded to 4 bytes.
const (
	nftReg1    = unix.NFT_REG_1
	nftReg3200 = unix.NFT_REG32_00
	nftReg3201 = unix.NFT_REG32_01
	nftReg3202 = unix.NFT_REG32_02
)

// ipv4Check is "meta protocol ip": netdev chains see every ethertype.
func ipv4Check() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: nftReg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: nftReg1, Data: binary.BigEndian.AppendUint16(nil, unix.ETH_P_IP)},
	}
}

// controlAcceptExprs are the rules that keep the director's own control traffic away from
// the drops below, whatever the sets hold (a VRRP unicast peer or a BGP session on a VIP):
// "meta l4proto 112 accept" (VRRP), "tcp sport 179 accept", "tcp dport 179 accept" (BGP),
// "udp sport 8848 accept", "udp dport 8848 accept" (IPVS sync). The tcx program has the
// same exceptions.
func controlAcceptExprs() [][]expr.Any {
	l4 := func(proto uint8) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: nftReg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: nftReg1, Data: []byte{proto}},
		}
	}
	port := func(proto uint8, off uint32, p uint16) []expr.Any {
		return append(l4(proto),
			&expr.Payload{DestRegister: nftReg1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: nftReg1, Data: binary.BigEndian.AppendUint16(nil, p)},
			&expr.Verdict{Kind: expr.VerdictAccept},
		)
	}
	return [][]expr.Any{
		append(l4(protoVRRP), &expr.Verdict{Kind: expr.VerdictAccept}),
		port(unix.IPPROTO_TCP, 0, portBGP), port(unix.IPPROTO_TCP, 2, portBGP),
		port(unix.IPPROTO_UDP, 0, portSync), port(unix.IPPROTO_UDP, 2, portSync),
	}
}

// vipDropExprs is "meta protocol ip ip daddr @vips drop".
func vipDropExprs(vips *nftables.Set) []expr.Any {
	return append(ipv4Check(),
		&expr.Payload{DestRegister: nftReg1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: nftReg1, SetName: vips.Name, SetID: vips.ID},
		&expr.Verdict{Kind: expr.VerdictDrop},
	)
}

// vipDropExprs6 is "meta protocol ip6 ip6 daddr @vips6 drop".
func vipDropExprs6(vips *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: nftReg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: nftReg1, Data: binary.BigEndian.AppendUint16(nil, unix.ETH_P_IPV6)},
		&expr.Payload{DestRegister: nftReg1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
		&expr.Lookup{SourceRegister: nftReg1, SetName: vips.Name, SetID: vips.ID},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// natReplyDropExprs6 is natReplyDropExprs for IPv6: "meta protocol ip6 ip6 saddr . meta
// l4proto . th sport @nat_reals6 fib daddr type != local drop". The address takes four
// 32-bit registers, so the concatenation starts at NFT_REG32_00 and goes on at _04 and _05.
// meta l4proto is the upper-layer protocol after any extension headers.
func natReplyDropExprs6(nat *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: nftReg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: nftReg1, Data: binary.BigEndian.AppendUint16(nil, unix.ETH_P_IPV6)},
		&expr.Payload{DestRegister: nftReg3200, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: unix.NFT_REG32_04},
		&expr.Payload{DestRegister: unix.NFT_REG32_05, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
		&expr.Lookup{SourceRegister: nftReg3200, SetName: nat.Name, SetID: nat.ID},
		&expr.Fib{Register: nftReg1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: nftReg1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// natReplyDropExprs is "meta protocol ip ip saddr . meta l4proto . th sport
// @nat_reals fib daddr type != local drop". The fib test keeps replies to
// the director's own connections (health checks) flowing to its stack.
// Non-first fragments carry no ports and are not matched (nft_payload breaks
// on a transport base when fragoff != 0).
func natReplyDropExprs(nat *nftables.Set) []expr.Any {
	return append(ipv4Check(),
		&expr.Payload{DestRegister: nftReg3200, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: nftReg3201},
		&expr.Payload{DestRegister: nftReg3202, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
		&expr.Lookup{SourceRegister: nftReg3200, SetName: nat.Name, SetID: nat.ID},
		&expr.Fib{Register: nftReg1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: nftReg1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
		&expr.Verdict{Kind: expr.VerdictDrop},
	)
}

// NATReal names a NAT real server's service: replies from Addr with transport protocol Proto
// (unix.IPPROTO_TCP, unix.IPPROTO_UDP, ...) and source port Port are dropped before the
// kernel's IP stack, unless they are addressed to the director itself.
type NATReal struct {
	Addr  [4]byte
	Proto uint8
	Port  uint16
	// V6 marks an IPv6 real server, whose address is Addr6 (Addr is then unused).
	V6    bool
	Addr6 [16]byte
}

// natRealKey encodes n as a nat_reals element: address, protocol padded to 4
// bytes, port in network order padded to 4 bytes.
func natRealKey(n NATReal) []byte {
	if n.V6 {
		k := make([]byte, 24)
		copy(k[0:16], n.Addr6[:])
		k[16] = n.Proto
		binary.BigEndian.PutUint16(k[20:22], n.Port)
		return k
	}
	k := make([]byte, 12)
	copy(k[0:4], n.Addr[:])
	k[4] = n.Proto
	binary.BigEndian.PutUint16(k[8:10], n.Port)
	return k
}

// Update replaces the contents of the sets with the IPv4 vips and nat (IPv4 and
// IPv6 reals). Flushing and refilling are one netlink batch, which the kernel
// commits atomically: packets see either the old or the new contents.
// Duplicates are allowed.
func (s *Shield) Update(vips [][4]byte, nat []NATReal) error {
	all := make([]netip.Addr, len(vips))
	for i, v := range vips {
		all[i] = netip.AddrFrom4(v)
	}
	return s.UpdateAddrs(all, nat)
}

// UpdateAddrs is Update for VIPs of either family: each goes into the set of its family.
func (s *Shield) UpdateAddrs(vips []netip.Addr, nat []NATReal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("forward: shield update: shield closed")
	}
	if s.tcx != nil {
		return s.tcx.Update(vips, nat)
	}
	c := s.conn
	c.FlushSet(s.vips)
	c.FlushSet(s.nat)
	c.FlushSet(s.vips6)
	c.FlushSet(s.nat6)
	// nf_tables rejects a duplicate key inside one batch only with
	// NLM_F_EXCL, which SetAddElements does not set; dedup anyway so the
	// batch stays small.
	var vipElems, vip6Elems []nftables.SetElement
	seenVIP := make(map[netip.Addr]bool, len(vips))
	for _, v := range vips {
		v = v.Unmap()
		if !seenVIP[v] {
			seenVIP[v] = true
			if v.Is6() {
				vip6Elems = append(vip6Elems, nftables.SetElement{Key: v.AsSlice()})
			} else {
				vipElems = append(vipElems, nftables.SetElement{Key: v.AsSlice()})
			}
		}
	}
	var natElems, nat6Elems []nftables.SetElement
	seenNAT := make(map[NATReal]bool, len(nat))
	for _, n := range nat {
		if !seenNAT[n] {
			seenNAT[n] = true
			if n.V6 {
				nat6Elems = append(nat6Elems, nftables.SetElement{Key: natRealKey(n)})
			} else {
				natElems = append(natElems, nftables.SetElement{Key: natRealKey(n)})
			}
		}
	}
	for _, q := range []struct {
		set   *nftables.Set
		elems []nftables.SetElement
	}{{s.vips, vipElems}, {s.nat, natElems}, {s.vips6, vip6Elems}, {s.nat6, nat6Elems}} {
		for len(q.elems) > 0 {
			n := min(len(q.elems), shieldElemsPerMsg)
			if err := c.SetAddElements(q.set, q.elems[:n]); err != nil {
				s.redial()
				return fmt.Errorf("forward: shield update: queue set %s: %w", q.set.Name, err)
			}
			q.elems = q.elems[n:]
		}
	}
	if err := c.Flush(); err != nil {
		s.redial()
		return fmt.Errorf("forward: shield update: commit %d vips, %d nat reals: %w", len(vipElems)+len(vip6Elems), len(natElems)+len(nat6Elems), err)
	}
	return nil
}

// Close deletes the shield's table, after which the kernel handles VIP
// traffic again. Closing twice, or after the table was removed by someone
// else, is not an error.
func (s *Shield) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.tcx != nil {
		err := s.tcx.Close()
		s.ns.Close()
		if err != nil {
			return fmt.Errorf("forward: shield close: %w", err)
		}
		s.log.Info("shield removed", "shield", KindTCX)
		return nil
	}
	s.conn.DelTable(s.table)
	err := s.conn.Flush()
	if cerr := s.conn.CloseLasting(); cerr != nil {
		s.log.Warn("shield close: close netlink", shieldKeyErr, cerr)
	}
	s.ns.Close()
	if err != nil && !isNotExist(err) {
		return fmt.Errorf("forward: shield close: delete table %s: %w", shieldTable, err)
	}
	s.log.Info("shield removed", "table", shieldTable)
	return nil
}

// removeLeftoverShield deletes the "uvs" netdev table in the calling
// thread's network namespace if one exists, for example after uvs was
// killed. It does nothing if there is none.
func removeLeftoverShield() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("forward: remove leftover shield: open nftables netlink: %w", err)
	}
	t := &nftables.Table{Name: shieldTable, Family: nftables.TableFamilyNetdev}
	// Add-then-delete avoids a racy list: the add is a no-op on an existing
	// table and creates an empty one otherwise, and both vanish together.
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("forward: remove leftover shield: delete table %s: %w", shieldTable, err)
	}
	return nil
}

// isNotExist reports whether err is the kernel's ENOENT, as returned for a
// table that is already gone.
func isNotExist(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, os.ErrNotExist)
}
