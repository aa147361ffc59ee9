//go:build linux

package forward

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/afxdp"
	"github.com/uvs-project/uvs/forward/engine"
	"github.com/uvs-project/uvs/forward/privilege"
)

// worker is what the Director needs of a backend's worker; afpacket.Worker and afxdp.Worker
// have it. Setting up the sockets is backend-specific and done by NewDirector.
type worker interface {
	Run()
	Wake()
	Close()
	Engine() *engine.Engine
	Dump(ctx context.Context) ([]conntrack.Entry, error)
	CollectRingStats()
	Heartbeat() uint64
}

// chooseBackend resolves director.backend: auto takes afxdp where the kernel and the
// capabilities allow it, else afpacket, and one log line says which and why; an explicit
// afxdp that cannot run is an error, never a fallback.
func (d *Director) chooseBackend() (config.Backend, error) {
	b := d.cfg.Director.Backend
	switch b {
	case config.BackendAFPacket:
		d.log.Info("backend", "backend", "afpacket", "why", "director.backend = \"afpacket\"")
		return b, nil
	case config.BackendAFXDP:
		if err := afxdp.Probe(); err != nil {
			return 0, fmt.Errorf("forward: director.backend = \"afxdp\" cannot run here: %w", err)
		}
		d.log.Info("backend", "backend", "afxdp", "why", "director.backend = \"afxdp\"")
		return b, nil
	}
	b, why := autoBackend(d.cfg, d.ifaces)
	d.log.Info("backend", "backend", b.String(), "why", why)
	return b, nil
}

// autoBackend resolves director.backend = "auto" for cfg listening on ifaces: afxdp where its
// probe passes, else afpacket; why says which probe decided. chooseBackend and
// BackendCapabilities (before the capabilities are dropped) ask the same questions.
func autoBackend(cfg *config.Config, ifaces []engine.Iface) (config.Backend, string) {
	if err := afxdp.Probe(); err != nil {
		return config.BackendAFPacket, "auto: " + err.Error()
	}
	queues := 0
	for _, ifc := range ifaces {
		queues += afxdp.Queues(ifc.Name)
	}
	if err := afxdp.ProbeMemlock(afxdp.UMEMBytes(cfg.Director.Workers, queues)); err != nil {
		return config.BackendAFPacket, "auto: " + err.Error()
	}
	for _, ifc := range ifaces {
		if ifc.MTU+14 > afxdp.MaxFrame {
			return config.BackendAFPacket, fmt.Sprintf("auto: interface %s has MTU %d, above what afxdp takes (%d)", ifc.Name, ifc.MTU, afxdp.MaxFrame-14)
		}
	}
	for _, ifc := range ifaces {
		if l, err := netlink.LinkByIndex(ifc.Index); err == nil && l.Attrs().Xdp != nil && l.Attrs().Xdp.ProgId != 0 {
			return config.BackendAFPacket, fmt.Sprintf("auto: interface %s already has an XDP program", ifc.Name)
		}
	}
	return config.BackendAFXDP, "auto: the kernel has AF_XDP sockets, XSKMAP and XDP, and uvs may use them"
}

// newXDPWorker creates worker i of nw around eng; the first one also creates the UMEM (sized
// for every interface's queues) and the XDP maps.
func (d *Director) newXDPWorker(i, nw int, eng *engine.Engine) error {
	if d.umem == nil {
		queues := 0
		for _, ifc := range d.ifaces {
			queues += afxdp.Queues(ifc.Name)
		}
		u, err := afxdp.NewUMEM(nw, queues)
		if err != nil {
			return err
		}
		d.umem = u
		if d.xdp, err = afxdp.NewXDP(nw, d.log); err != nil {
			return err
		}
	}
	per := d.umem.Chunks() / nw
	w, err := afxdp.NewWorker(i, eng, d.umem, i*per, per, &d.snap, &d.stop, d.epoch)
	if err != nil {
		return err
	}
	d.workers = append(d.workers, w)
	return nil
}

// openXDP opens every worker's socket on every queue of every interface, loads and attaches
// the programs.
func (d *Director) openXDP() error {
	for slot, ifc := range d.ifaces {
		queues := afxdp.Queues(ifc.Name)
		if ifc.MTU+14 > afxdp.MaxFrame {
			return fmt.Errorf("forward: interface %s: MTU %d: afxdp takes frames up to %d bytes (one %d-byte UMEM chunk less XDP headroom); lower the MTU to %d or use backend \"afpacket\"",
				ifc.Name, ifc.MTU, afxdp.MaxFrame, afxdp.ChunkBytes, afxdp.MaxFrame-14)
		}
		if err := d.xdp.AddInterface(ifc.Name, ifc.Index, ifc.MAC, queues); err != nil {
			return err
		}
		for q := 0; q < queues; q++ {
			for i, w := range d.workers {
				s, err := w.(*afxdp.Worker).Open(ifc.Index, q, slot, len(d.workers))
				if err != nil {
					return fmt.Errorf("%w (interface %s)", err, ifc.Name)
				}
				if err := d.xdp.SetSocket(slot, q, i, s.FD()); err != nil {
					return err
				}
			}
		}
	}
	mode := "copy"
	if d.umem.ZeroCopy() {
		mode = "zero-copy"
	} else if err := d.umem.ZeroCopyRefused(); err != nil {
		d.log.Info("afxdp: zero-copy refused by the driver, using copy mode", logErr, err)
	}
	if err := d.xdp.Attach(); err != nil {
		return err
	}
	for _, ifc := range d.xdp.Interfaces() {
		d.log.Info("afxdp attached", logIface, ifc.Name, "queues", ifc.Queues, "xdp_mode", ifc.Mode, "xsk_mode", mode,
			"prog_id", ifc.ProgID, "max_frame", afxdp.MaxFrame,
			"note", "frames longer than max_frame are dropped by the kernel (XDP on veth turns GSO off on the peer and caps its MTU below a chunk)")
	}
	return nil
}

// publishXDP fills the program's maps from s and hands s to the workers.
func (d *Director) publishXDP(s *engine.Snapshot) error {
	vips, nat := s.Steering() // IPv6 entries (V6) go to the program's IPv6 maps
	sets := afxdp.Sets{VIPs: vips, SteerNAT: nat}
	steered := map[netip.Addr]bool{}
	for _, v := range vips {
		if v.V6 {
			steered[netip.AddrFrom16(v.Addr6)] = true
		} else {
			steered[netip.AddrFrom4(v.Addr)] = true
		}
	}
	all, _ := s.ShieldSets() // every address the engine answers for (VRRP-owned ones too)
	for _, a := range all {
		switch {
		case steered[a]:
		case a.Is4():
			sets.Owned = append(sets.Owned, a.As4())
		default:
			sets.Owned6 = append(sets.Owned6, a.As16())
		}
	}
	for _, r := range s.NATReals() {
		sets.NATReals = append(sets.NATReals, afxdp.NATReal{Addr: r.Addr, Proto: r.Proto, Port: r.Port, V6: r.V6, Addr6: r.Addr6})
	}
	if addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL); err == nil {
		for _, a := range addrs {
			if ip4 := a.IP.To4(); ip4 != nil {
				sets.Local = append(sets.Local, [4]byte(ip4))
			} else if ip6 := a.IP.To16(); ip6 != nil {
				sets.Local6 = append(sets.Local6, [16]byte(ip6))
			}
		}
	}
	if err := d.xdp.Update(sets); err != nil {
		return err
	}
	d.snap.Store(s)
	d.reg.Commit(s)
	d.logQuorum(s)
	return nil
}

func (d *Director) closeXDP() {
	if d.xdp != nil {
		d.xdp.Close()
		d.xdp = nil
	}
}

func (d *Director) closeUMEM() {
	if d.umem != nil {
		d.umem.Close()
		d.umem = nil
	}
}

// Backend describes the running backend.
func (d *Director) Backend() BackendInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	bi := BackendInfo{Backend: "afpacket"}
	if d.backend == config.BackendAFXDP {
		bi.Backend = "afxdp"
	}
	if d.xdp != nil {
		bi.XDPAttached = d.xdp.Attached()
		for _, ifc := range d.xdp.Interfaces() {
			bi.Interfaces = append(bi.Interfaces, XDPIface{Name: ifc.Name, Mode: ifc.Mode, ProgID: ifc.ProgID, Queues: ifc.Queues})
		}
		bi.XSKMode = "copy"
		if d.umem != nil && d.umem.ZeroCopy() {
			bi.XSKMode = "zero-copy"
		}
	}
	return bi
}

// BackendCapabilities returns the capabilities (a mask of 1<<CAP_X) the data plane cfg asks
// for needs beyond CAP_NET_RAW and CAP_NET_ADMIN, for privilege.DropCapabilitiesKeeping:
// privilege.AFXDPCaps with afxdp, or with auto where autoBackend takes afxdp (probed before
// anything is dropped, on the interfaces as they are now); with afpacket, CAP_BPF for a tcx
// shield (shield auto or tcx), nothing with shield = "nftables". A director that falls back to
// afpacket thus keeps no CAP_IPC_LOCK, and one that needs no BPF program keeps no CAP_BPF.
func BackendCapabilities(cfg *config.Config) uint64 {
	b := cfg.Director.Backend
	if b != config.BackendAFPacket && b != config.BackendAFXDP {
		var ifaces []engine.Iface
		for _, name := range cfg.Director.Interfaces {
			l, err := netlink.LinkByName(name)
			if err != nil {
				return privilege.ShieldCaps // the director fails on it with its own error
			}
			ifaces = append(ifaces, engine.Iface{Name: name, Index: l.Attrs().Index, MTU: l.Attrs().MTU})
		}
		b, _ = autoBackend(cfg, ifaces)
	}
	switch {
	case b == config.BackendAFXDP:
		return privilege.AFXDPCaps
	case cfg.Director.Shield == config.ShieldNftables:
		return 0
	}
	return privilege.ShieldCaps
}
