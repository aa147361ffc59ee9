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
		if a, ok := ipv6Address(d.cfg); ok {
			return 0, fmt.Errorf("forward: director.backend = \"afxdp\" takes IPv4 only; %s is IPv6: use backend \"afpacket\"", a)
		}
		if err := afxdp.Probe(); err != nil {
			return 0, fmt.Errorf("forward: director.backend = \"afxdp\" cannot run here: %w", err)
		}
		d.log.Info("backend", "backend", "afxdp", "why", "director.backend = \"afxdp\"")
		return b, nil
	}
	if a, ok := ipv6Address(d.cfg); ok {
		d.log.Info("backend", "backend", "afpacket", "why", fmt.Sprintf("auto: afxdp takes IPv4 only, and %s is IPv6", a))
		return config.BackendAFPacket, nil
	}
	if err := afxdp.Probe(); err != nil {
		d.log.Info("backend", "backend", "afpacket", "why", "auto: "+err.Error())
		return config.BackendAFPacket, nil
	}
	queues := 0
	for _, ifc := range d.ifaces {
		queues += afxdp.Queues(ifc.Name)
	}
	if err := afxdp.ProbeMemlock(afxdp.UMEMBytes(d.cfg.Director.Workers, queues)); err != nil {
		d.log.Info("backend", "backend", "afpacket", "why", "auto: "+err.Error())
		return config.BackendAFPacket, nil
	}
	for _, ifc := range d.ifaces {
		if ifc.MTU+14 > afxdp.MaxFrame {
			d.log.Info("backend", "backend", "afpacket", "why", fmt.Sprintf("auto: interface %s has MTU %d, above what afxdp takes (%d)", ifc.Name, ifc.MTU, afxdp.MaxFrame-14))
			return config.BackendAFPacket, nil
		}
	}
	for _, ifc := range d.ifaces {
		if l, err := netlink.LinkByIndex(ifc.Index); err == nil && l.Attrs().Xdp != nil && l.Attrs().Xdp.ProgId != 0 {
			d.log.Info("backend", "backend", "afpacket", "why", fmt.Sprintf("auto: interface %s already has an XDP program", ifc.Name))
			return config.BackendAFPacket, nil
		}
	}
	d.log.Info("backend", "backend", "afxdp", "why", "auto: the kernel has AF_XDP sockets, XSKMAP and XDP, and uvs may use them")
	return config.BackendAFXDP, nil
}

// ipv6Address returns an IPv6 address of cfg that the data plane must serve (a service VIP,
// a real server, a VRRP-owned address): the afxdp backend's program takes IPv4 only.
func ipv6Address(cfg *config.Config) (netip.Addr, bool) {
	for _, s := range cfg.Services {
		if s.VIP.Is6() {
			return s.VIP, true
		}
		for _, r := range s.Reals {
			if r.Address.Is6() {
				return r.Address, true
			}
		}
	}
	for i := range cfg.VRRP {
		for _, a := range cfg.OwnedVIPs(i) {
			if a.Is6() {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
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
	if a, ok := ipv6Address(d.cfg); ok {
		return fmt.Errorf("forward: the afxdp backend takes IPv4 only, and %s is IPv6; restart with backend \"afpacket\" to serve it", a)
	}
	vips, nat := s.Steering()
	sets := afxdp.Sets{VIPs: vips, SteerNAT: nat}
	steered := map[[4]byte]bool{}
	for _, v := range vips {
		steered[v.Addr] = true
	}
	all, _ := s.ShieldSets() // every address the engine answers for (VRRP-owned ones too)
	for _, a := range all {
		if a.Is4() && !steered[a.As4()] {
			sets.Owned = append(sets.Owned, a.As4())
		}
	}
	for _, r := range s.NATReals() {
		if !r.V6 { // refused above: the program is IPv4 only
			sets.NATReals = append(sets.NATReals, afxdp.NATReal{Addr: r.Addr, Proto: r.Proto, Port: r.Port})
		}
	}
	if addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4); err == nil {
		for _, a := range addrs {
			if ip4 := a.IP.To4(); ip4 != nil {
				sets.Local = append(sets.Local, [4]byte(ip4))
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

// BackendCapabilities returns the capabilities (a mask of 1<<CAP_X) the backend cfg asks for
// needs beyond CAP_NET_RAW and CAP_NET_ADMIN, for privilege.DropCapabilitiesKeeping: with
// afxdp, or with auto where afxdp can run (probed before anything is dropped),
// privilege.AFXDPCaps.
func BackendCapabilities(cfg *config.Config) uint64 {
	switch cfg.Director.Backend {
	case config.BackendAFPacket:
		return 0
	case config.BackendAFXDP:
		return privilege.AFXDPCaps
	}
	if _, ok := ipv6Address(cfg); ok {
		return 0
	}
	if afxdp.Probe() != nil {
		return 0
	}
	return privilege.AFXDPCaps
}
