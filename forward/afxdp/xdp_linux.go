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
}

// Sets are what the program's maps hold, built from a snapshot.
type Sets struct {
	VIPs     []steer.SteerVIP // every service VIP, with its persistent services in steer's order
	Owned    [][4]byte        // other addresses uvs answers for (VRRP-owned): ours, not steered as VIPs
	SteerNAT []steer.SteerNAT // reply side of persistent NAT services, in steer's order
	NATReals []NATReal
	Local    [][4]byte // this host's IPv4 addresses: NAT-real traffic to them is the stack's
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
	ifaces                                           []*Iface
	have                                             map[*ebpf.Map]map[[8]byte]bool // keys each map holds, to delete the stale ones
}

// NewXDP creates the shared maps for a director with workers workers.
func NewXDP(workers int, log *slog.Logger) (_ *XDP, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	x := &XDP{log: log, workers: workers, have: map[*ebpf.Map]map[[8]byte]bool{}}
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
		x.have[m] = map[[8]byte]bool{}
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
	fds := progFDs{xsks: xsks.FD(), vips: x.vips.FD(), persist: x.persist.FD(), natsteer: x.natsteer.FD(),
		natreal: x.natreal.FD(), nataddr: x.nataddr.FD(), local: x.local.FD()}
	insns := buildProgram(fds, progParams{mac: mac, workers: x.workers})
	ifc.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: ProgName, Type: ebpf.XDP, License: "Dual BSD/GPL", Instructions: insns})
	if err != nil {
		return bpfError("load XDP program for "+name, err)
	}
	return nil
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

func key4(a uint32) [8]byte {
	var k [8]byte
	binary.NativeEndian.PutUint32(k[:], a)
	return k
}

func key8(a, b uint32) [8]byte {
	var k [8]byte
	binary.NativeEndian.PutUint32(k[:], a)
	binary.NativeEndian.PutUint32(k[4:], b)
	return k
}

// Update makes the maps hold s: new entries are written before stale ones are removed, so a
// frame sees either the old or the new entry of a key, never none where both have one.
func (x *XDP) Update(s Sets) error {
	want := map[*ebpf.Map]map[[8]byte][]byte{}
	put := func(m *ebpf.Map, k [8]byte, v []byte, keep bool) {
		if want[m] == nil {
			want[m] = map[[8]byte][]byte{}
		}
		if _, ok := want[m][k]; ok && keep {
			return // the first entry of a key wins, as in steer's rule order
		}
		want[m][k] = v
	}
	v8 := func(a, b uint32) []byte { k := key8(a, b); return k[:] }
	for _, a := range s.Owned {
		put(x.vips, key4(be32(a)), v8(0, 0), true)
	}
	for _, v := range s.VIPs {
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
		put(x.natsteer, key8(be32(n.Addr), natMarker), v8(0, 0), true)
		put(x.natsteer, key8(be32(n.Addr), uint32(n.Port)), v8(maskBits(n.Bits), uint32(i)), true)
	}
	one := []byte{1, 0, 0, 0}
	for _, r := range s.NATReals {
		put(x.natreal, key8(be32(r.Addr), uint32(r.Proto)<<16|uint32(r.Port)), one, false)
		put(x.nataddr, key4(be32(r.Addr)), one, false)
	}
	for _, a := range s.Local {
		put(x.local, key4(be32(a)), one, false)
	}
	for _, m := range []*ebpf.Map{x.vips, x.persist, x.natsteer, x.natreal, x.nataddr, x.local} {
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
		have := make(map[[8]byte]bool, len(want[m]))
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
	for _, m := range []*ebpf.Map{x.vips, x.persist, x.natsteer, x.natreal, x.nataddr, x.local} {
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
