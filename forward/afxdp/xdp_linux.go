//go:build linux

package afxdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/forward/steer"
)

// ProgName is the name uvs gives its XDP program; at start, a program of that name attached
// to an interface without a bpf_link is a leftover of uvs and is replaced, any other program
// is left alone and uvs refuses to start.
const ProgName = "uvs_xdp"

// Map sizes (entries).
const (
	maxVIPs     = 4096
	maxRules    = 16384 // persist and natsteer entries
	maxNATReals = 65536
	maxLocal    = 1024
)

// NATReal is one (address, protocol, port) whose packets are NAT replies; Port 0 is any port.
type NATReal struct {
	Addr  [4]byte
	Proto uint8
	Port  uint16
	// V6 marks an IPv6 real server, whose address is Addr6 (Addr is then unused).
	V6    bool
	Addr6 [16]byte
}

// Sets are what the program's maps hold, built from a snapshot.
type Sets struct {
	VIPs     []steer.SteerVIP // every service VIP (either family), with its persistent services in steer's order
	Owned    [][4]byte        // other addresses uvs answers for (VRRP-owned): ours, not steered as VIPs
	Owned6   [][16]byte       // the same, IPv6
	SteerNAT []steer.SteerNAT // reply side of persistent NAT services (either family), in steer's order
	NATReals []NATReal        // either family
	Local    [][4]byte        // this host's IPv4 addresses: NAT-real traffic to them is the stack's
	Local6   [][16]byte       // this host's IPv6 addresses
}

// Iface is one interface the program is attached to.
type Iface struct {
	Name   string
	Index  int
	Queues int
	Mode   string // "native" or "generic" once attached
	xsks   *ebpf.Map
	prog   *ebpf.Program
	link   link.Link
	ProgID uint32
}

// XDP is the program of every interface and the maps they share.
type XDP struct {
	log                                              *slog.Logger
	workers                                          int
	vips, persist, natsteer, natreal, nataddr, local *ebpf.Map
	// The IPv6 maps (prog6.go): keys are addresses as four host-order words, followed in
	// persist6, natsteer6 and natreal6 by the u32 of their IPv4 counterparts.
	vips6, persist6, natsteer6, natreal6, nataddr6, local6 *ebpf.Map
	ifaces                                                 []*Iface
	have                                                   map[*ebpf.Map]map[key20]bool // keys each map holds, to delete the stale ones
}

// key20 holds a map key of any of the program's maps (the first KeySize bytes count).
type key20 = [20]byte

// NewXDP creates the shared maps for a director with workers workers.
func NewXDP(workers int, log *slog.Logger) (_ *XDP, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	x := &XDP{log: log, workers: workers, have: map[*ebpf.Map]map[key20]bool{}}
	defer func() {
		if err != nil {
			x.Close()
		}
	}()
	mk := func(name string, key, val, n uint32) (*ebpf.Map, error) {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: ebpf.Hash, KeySize: key, ValueSize: val, MaxEntries: n})
		if err != nil {
			return nil, bpfError("create BPF hash map "+name, err)
		}
		x.have[m] = map[key20]bool{}
		return m, nil
	}
	if x.vips, err = mk("uvs_vips", 4, 8, maxVIPs); err != nil {
		return nil, err
	}
	if x.persist, err = mk("uvs_persist", 8, 8, maxRules); err != nil {
		return nil, err
	}
	if x.natsteer, err = mk("uvs_natsteer", 8, 8, maxRules); err != nil {
		return nil, err
	}
	if x.natreal, err = mk("uvs_natreal", 8, 4, maxNATReals); err != nil {
		return nil, err
	}
	if x.nataddr, err = mk("uvs_nataddr", 4, 4, maxNATReals); err != nil {
		return nil, err
	}
	if x.local, err = mk("uvs_local", 4, 4, maxLocal); err != nil {
		return nil, err
	}
	if x.vips6, err = mk("uvs_vips6", 16, 20, maxVIPs); err != nil {
		return nil, err
	}
	if x.persist6, err = mk("uvs_persist6", 20, 20, maxRules); err != nil {
		return nil, err
	}
	if x.natsteer6, err = mk("uvs_natsteer6", 20, 20, maxRules); err != nil {
		return nil, err
	}
	if x.natreal6, err = mk("uvs_natreal6", 20, 4, maxNATReals); err != nil {
		return nil, err
	}
	if x.nataddr6, err = mk("uvs_nataddr6", 16, 4, maxNATReals); err != nil {
		return nil, err
	}
	if x.local6, err = mk("uvs_local6", 16, 4, maxLocal); err != nil {
		return nil, err
	}
	return x, nil
}

// bpfError names what the kernel is missing or what uvs lacks, rather than a bare errno.
func bpfError(op string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("afxdp: %s: %w: needs CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN), and unprivileged BPF does not cover XDP", op, err)
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.EINVAL) && op == "create XSKMAP":
		return fmt.Errorf("afxdp: %s: %w: the kernel lacks it (XSKMAP needs CONFIG_XDP_SOCKETS, bpf_link for XDP Linux 5.9+)", op, err)
	}
	return fmt.Errorf("afxdp: %s: %w", op, err)
}

// AddInterface creates the XSKMAP of an interface with queues RX queues and loads its program.
func (x *XDP) AddInterface(name string, index int, mac [6]byte, queues int) error {
	xsks, err := ebpf.NewMap(&ebpf.MapSpec{Name: "uvs_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(queues * x.workers)})
	if err != nil {
		return bpfError("create XSKMAP", err)
	}
	ifc := &Iface{Name: name, Index: index, Queues: queues, xsks: xsks}
	x.ifaces = append(x.ifaces, ifc)
	insns := buildProgram(x.fds(xsks), progParams{mac: mac, workers: x.workers})
	ifc.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: ProgName, Type: ebpf.XDP, License: "Dual BSD/GPL", Instructions: insns})
	if err != nil {
		return bpfError("load XDP program for "+name, err)
	}
	return nil
}

// fds returns the map descriptors of a program that redirects through xsks.
func (x *XDP) fds(xsks *ebpf.Map) progFDs {
	return progFDs{xsks: xsks.FD(), vips: x.vips.FD(), persist: x.persist.FD(), natsteer: x.natsteer.FD(),
		natreal: x.natreal.FD(), nataddr: x.nataddr.FD(), local: x.local.FD(),
		v6: fds6{vips: x.vips6.FD(), persist: x.persist6.FD(), natsteer: x.natsteer6.FD(),
			natreal: x.natreal6.FD(), nataddr: x.nataddr6.FD(), local: x.local6.FD()}}
}

// maps returns every map of x, IPv4 then IPv6.
func (x *XDP) maps() []*ebpf.Map {
	return []*ebpf.Map{x.vips, x.persist, x.natsteer, x.natreal, x.nataddr, x.local,
		x.vips6, x.persist6, x.natsteer6, x.natreal6, x.nataddr6, x.local6}
}

// SetSocket puts a worker's socket on (queue) of interface slot into its XSKMAP.
func (x *XDP) SetSocket(slot, queue, worker, fd int) error {
	ifc := x.ifaces[slot]
	if err := ifc.xsks.Put(uint32(queue*x.workers+worker), uint32(fd)); err != nil {
		return fmt.Errorf("afxdp: XSKMAP %s queue %d worker %d: %w", ifc.Name, queue, worker, err)
	}
	return nil
}

// Attach attaches every interface's program through a bpf_link, in native mode where the
// driver has it and generic mode otherwise. A leftover uvs program attached without a link
// is replaced; any other program makes Attach fail.
func (x *XDP) Attach() error {
	for _, ifc := range x.ifaces {
		if err := x.clearLeftover(ifc); err != nil {
			return err
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: ifc.prog, Interface: ifc.Index, Flags: link.XDPDriverMode})
		ifc.Mode = "native"
		if err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EEXIST) {
			x.log.Info("afxdp: native XDP refused, trying generic (skb) mode", "iface", ifc.Name, "err", err)
			l, err = link.AttachXDP(link.XDPOptions{Program: ifc.prog, Interface: ifc.Index, Flags: link.XDPGenericMode})
			ifc.Mode = "generic"
		}
		if err != nil {
			ifc.Mode = ""
			return bpfError("attach XDP program to "+ifc.Name+" through a bpf_link", err)
		}
		ifc.link = l
		if info, err := ifc.prog.Info(); err == nil {
			if id, ok := info.ID(); ok {
				ifc.ProgID = uint32(id)
			}
		}
	}
	return nil
}

// clearLeftover looks at the program already attached to ifc, if any.
func (x *XDP) clearLeftover(ifc *Iface) error {
	l, err := netlink.LinkByIndex(ifc.Index)
	if err != nil {
		return fmt.Errorf("afxdp: interface %s: %w", ifc.Name, err)
	}
	xa := l.Attrs().Xdp
	if xa == nil || xa.ProgId == 0 {
		return nil
	}
	// Its name needs a file descriptor, and BPF_PROG_GET_FD_BY_ID needs CAP_SYS_ADMIN, which
	// uvs normally does not keep: a program it cannot name is not replaced. uvs itself
	// attaches only through bpf_links, which die with the process, so it leaves none behind.
	name := ""
	if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(xa.ProgId)); err == nil {
		if info, err := p.Info(); err == nil {
			name = info.Name
		}
		p.Close()
	}
	if name != ProgName {
		what := fmt.Sprintf("name %q", name)
		if name == "" {
			what = "bpftool prog show id " + fmt.Sprint(xa.ProgId) + " names it"
		}
		return fmt.Errorf("afxdp: interface %s already has an XDP program uvs did not attach (id %d, %s); uvs does not replace it", ifc.Name, xa.ProgId, what)
	}
	// Ours, from an earlier uvs. Attached through a bpf_link it belongs to a uvs that still
	// runs (a link dies with its process): netlink cannot detach it.
	if err := netlink.LinkSetXdpFdWithFlags(l, -1, int(xa.Flags)); err != nil {
		return fmt.Errorf("afxdp: interface %s: uvs's XDP program (id %d) is held by another running uvs (bpf_link): %w", ifc.Name, xa.ProgId, err)
	}
	x.log.Warn("afxdp: replaced a leftover uvs XDP program", "iface", ifc.Name, "prog_id", xa.ProgId)
	return nil
}

// Interfaces returns the interfaces and how their programs are attached.
func (x *XDP) Interfaces() []Iface {
	out := make([]Iface, len(x.ifaces))
	for i, ifc := range x.ifaces {
		out[i] = Iface{Name: ifc.Name, Index: ifc.Index, Queues: ifc.Queues, Mode: ifc.Mode, ProgID: ifc.ProgID}
	}
	return out
}

// Attached reports whether every interface's program is attached.
func (x *XDP) Attached() bool {
	for _, ifc := range x.ifaces {
		if ifc.link == nil {
			return false
		}
	}
	return len(x.ifaces) > 0
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

func be32(a [4]byte) uint32 { return binary.BigEndian.Uint32(a[:]) }

func key4(a uint32) key20 {
	var k key20
	binary.NativeEndian.PutUint32(k[:], a)
	return k
}

func key8(a, b uint32) key20 {
	var k key20
	binary.NativeEndian.PutUint32(k[:], a)
	binary.NativeEndian.PutUint32(k[4:], b)
	return k
}

// words6 returns an IPv6 address as the program keeps it: four host-order words.
func words6(a [16]byte) [4]uint32 {
	var w [4]uint32
	for i := range w {
		w[i] = binary.BigEndian.Uint32(a[4*i:])
	}
	return w
}

// key16 and key20of are the IPv6 keys: the address words, then (key20of) the u32 b.
func key16(a [16]byte) key20 {
	var k key20
	for i, w := range words6(a) {
		binary.NativeEndian.PutUint32(k[4*i:], w)
	}
	return k
}

func key20of(a [16]byte, b uint32) key20 {
	k := key16(a)
	binary.NativeEndian.PutUint32(k[16:], b)
	return k
}

// mask6 returns the four host-order mask words of a prefix of bits (0..128), as steer's
// fold6 applies them.
func mask6(bits int) [4]uint32 {
	var m [4]uint32
	for w := range m {
		m[w] = maskBits(bits - 32*w)
	}
	return m
}

// val20 is a 20-byte map value: a then four words of m (vips6), or m then a (rules).
func val20(first uint32, m [4]uint32, maskFirst bool) []byte {
	b := make([]byte, 20)
	at := 0
	if maskFirst {
		binary.NativeEndian.PutUint32(b[16:], first)
	} else {
		binary.NativeEndian.PutUint32(b, first)
		at = 4
	}
	for i, w := range m {
		binary.NativeEndian.PutUint32(b[at+4*i:], w)
	}
	return b
}

// Update makes the maps hold s: new entries are written before stale ones are removed, so a
// frame sees either the old or the new entry of a key, never none where both have one.
func (x *XDP) Update(s Sets) error {
	want := map[*ebpf.Map]map[key20][]byte{}
	put := func(m *ebpf.Map, k key20, v []byte, keep bool) {
		if want[m] == nil {
			want[m] = map[key20][]byte{}
		}
		if _, ok := want[m][k]; ok && keep {
			return // the first entry of a key wins, as in steer's rule order
		}
		want[m][k] = v
	}
	v8 := func(a, b uint32) []byte { k := key8(a, b); return k[:8] }
	for _, a := range s.Owned {
		put(x.vips, key4(be32(a)), v8(0, 0), true)
	}
	for _, a := range s.Owned6 {
		put(x.vips6, key16(a), val20(0, [4]uint32{}, false), true)
	}
	for _, v := range s.VIPs {
		if v.V6 {
			val := vip6Value{Flags: vipSteer}
			if len(v.Persist) > 0 {
				val.Flags |= vipPersist
				if v.Persist[0].Port == 0 {
					val.Flags |= vipFirstWild
					val.FirstMask = mask6(v.Persist[0].Bits)
				}
			}
			put(x.vips6, key16(v.Addr6), val20(val.Flags, val.FirstMask, false), false) // over an Owned6 entry
			for i, p := range v.Persist {
				put(x.persist6, key20of(v.Addr6, uint32(p.Port)), val20(uint32(i), mask6(p.Bits), true), true)
			}
			continue
		}
		val := vipValue{Flags: vipSteer}
		if len(v.Persist) > 0 {
			val.Flags |= vipPersist
			if v.Persist[0].Port == 0 {
				val.Flags |= vipFirstWild
				val.FirstMask = maskBits(v.Persist[0].Bits)
			}
		}
		put(x.vips, key4(be32(v.Addr)), v8(val.Flags, val.FirstMask), false) // over an Owned entry
		for i, p := range v.Persist {
			put(x.persist, key8(be32(v.Addr), uint32(p.Port)), v8(maskBits(p.Bits), uint32(i)), true)
		}
	}
	for i, n := range s.SteerNAT {
		if n.V6 {
			put(x.natsteer6, key20of(n.Addr6, natMarker), val20(0, [4]uint32{}, true), true)
			put(x.natsteer6, key20of(n.Addr6, uint32(n.Port)), val20(uint32(i), mask6(n.Bits), true), true)
			continue
		}
		put(x.natsteer, key8(be32(n.Addr), natMarker), v8(0, 0), true)
		put(x.natsteer, key8(be32(n.Addr), uint32(n.Port)), v8(maskBits(n.Bits), uint32(i)), true)
	}
	one := []byte{1, 0, 0, 0}
	for _, r := range s.NATReals {
		if r.V6 {
			put(x.natreal6, key20of(r.Addr6, uint32(r.Proto)<<16|uint32(r.Port)), one, false)
			put(x.nataddr6, key16(r.Addr6), one, false)
			continue
		}
		put(x.natreal, key8(be32(r.Addr), uint32(r.Proto)<<16|uint32(r.Port)), one, false)
		put(x.nataddr, key4(be32(r.Addr)), one, false)
	}
	for _, a := range s.Local {
		put(x.local, key4(be32(a)), one, false)
	}
	for _, a := range s.Local6 {
		put(x.local6, key16(a), one, false)
	}
	for _, m := range x.maps() {
		ks := int(m.KeySize())
		if len(want[m]) > int(m.MaxEntries()) {
			return fmt.Errorf("afxdp: %d entries for map %s, which holds %d", len(want[m]), m.String(), m.MaxEntries())
		}
		for k, v := range want[m] {
			if err := m.Update(k[:ks], v, ebpf.UpdateAny); err != nil {
				return fmt.Errorf("afxdp: update map %s: %w", m.String(), err)
			}
		}
		for k := range x.have[m] {
			if _, ok := want[m][k]; !ok {
				if err := m.Delete(k[:ks]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
					return fmt.Errorf("afxdp: delete from map %s: %w", m.String(), err)
				}
			}
		}
		have := make(map[key20]bool, len(want[m]))
		for k := range want[m] {
			have[k] = true
		}
		x.have[m] = have
	}
	return nil
}

// Close detaches the programs (closing the links) and frees the maps.
func (x *XDP) Close() {
	for _, ifc := range x.ifaces {
		if ifc.link != nil {
			_ = ifc.link.Close()
			ifc.link = nil
		}
		if ifc.prog != nil {
			_ = ifc.prog.Close()
		}
		_ = ifc.xsks.Close()
	}
	x.ifaces = nil
	for _, m := range x.maps() {
		if m != nil {
			_ = m.Close()
		}
	}
}

// Probe says whether the AF_XDP backend can run here: the kernel has AF_XDP sockets and
// XSKMAP, and the process may create them (CAP_NET_RAW, CAP_BPF, CAP_NET_ADMIN). The error
// names what is missing.
func Probe() error {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.EAFNOSUPPORT):
		return ErrNoAFXDP
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("afxdp: socket(AF_XDP): %w: needs CAP_NET_RAW", err)
	case err != nil:
		return fmt.Errorf("afxdp: socket(AF_XDP): %w", err)
	}
	_ = unix.Close(fd)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		return bpfError("create XSKMAP", err)
	}
	m.Close()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "uvs_probe", Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()}})
	if err != nil {
		return bpfError("load an XDP program", err)
	}
	p.Close()
	return nil
}

// ProbeMemlock says whether a UMEM of umemBytes can be registered: the kernel charges it to
// RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK.
func ProbeMemlock(umemBytes int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err == nil && data[0].Effective&(1<<unix.CAP_IPC_LOCK) != 0 {
		return nil
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		return fmt.Errorf("afxdp: getrlimit RLIMIT_MEMLOCK: %w", err)
	}
	if rl.Cur != unix.RLIM_INFINITY && rl.Cur < uint64(umemBytes) {
		return fmt.Errorf("afxdp: RLIMIT_MEMLOCK is %d bytes, the UMEM needs %d, and there is no CAP_IPC_LOCK", rl.Cur, umemBytes)
	}
	return nil
}
