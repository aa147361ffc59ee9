package realserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/config"
)

// changeKind is one kind of recorded change.
type changeKind string

const (
	changeAddr   changeKind = "addr"   // Addr added to Link
	changeSysctl changeKind = "sysctl" // Name set from Old to New
	changeLink   changeKind = "link"   // Link created
	changeUp     changeKind = "up"     // Link set up
)

// change is one recorded change, undone in reverse order.
type change struct {
	Kind changeKind `json:"kind"`
	Link string     `json:"link,omitempty"`
	Addr string     `json:"addr,omitempty"`
	Name string     `json:"name,omitempty"` // sysctl, as net.ipv4.conf.all.arp_ignore
	Old  string     `json:"old,omitempty"`
	New  string     `json:"new,omitempty"`
}

// state is the state file: what to undo, and the process that may still hold a TUN device.
type state struct {
	PID     int      `json:"pid"`
	Method  string   `json:"method"`
	Changes []change `json:"changes"`
}

// Host is a prepared real server. Its methods are not safe for concurrent use, except that
// Run may run while nothing else is called.
type Host struct {
	cfg     Config
	st      state
	decap   *decapper // user-space decapsulation; nil otherwise
	decapBy string    // how TUN traffic is decapsulated, for messages
}

// Foreground reports whether the host must keep running (user-space decapsulation).
func (h *Host) Foreground() bool { return h.decap != nil }

// Up prepares the host for cfg.Method and records every change in the state file. On error
// it undoes what it did and returns an error naming the step that failed.
func Up(c Config) (_ *Host, err error) {
	cfg, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.StatePath == "" {
		if cfg.StatePath, err = defaultStatePath(); err != nil {
			return nil, err
		}
	}
	h := &Host{cfg: cfg, st: state{PID: os.Getpid(), Method: cfg.Method.String()}}
	// A state file left by a run that died holds the original values: adopt its changes, so
	// that this run's undo restores them. A live owner means another run is active.
	if old, err := readState(cfg.StatePath); err == nil {
		if old.PID != 0 && old.PID != os.Getpid() && alive(old.PID) {
			return nil, fmt.Errorf("realserver: uvs realserver (pid %d) is running here; stop it or run --down", old.PID)
		}
		h.st.Changes = old.Changes
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = h.Down()
		}
	}()
	if err := h.save(); err != nil {
		return nil, err
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, fmt.Errorf("realserver: find lo: %w", err)
	}
	for _, v := range cfg.VIPs {
		if err := h.addVIP(lo, v); err != nil {
			return nil, err
		}
	}
	for _, dev := range []string{"all", "lo"} {
		if err := h.sysctl("net.ipv4.conf."+dev+".arp_ignore", "1"); err != nil {
			return nil, err
		}
		if err := h.sysctl("net.ipv4.conf."+dev+".arp_announce", "2"); err != nil {
			return nil, err
		}
	}
	if cfg.Method == config.TUN {
		if err := h.upTUN(); err != nil {
			return nil, err
		}
	}
	if h.decap == nil {
		h.st.PID = 0 // nothing stays running: --down undoes the record itself
	}
	return h, h.save()
}

// upTUN sets up decapsulation: the kernel's ipip device if allowed and present, else a TUN
// device fed by a raw socket.
func (h *Host) upTUN() error {
	cfg := &h.cfg
	dev := ""
	if cfg.Decap != DecapUser {
		name, err := h.kernelIPIP()
		switch {
		case err == nil:
			dev, h.decapBy = name, "kernel ipip device "+name
		case cfg.Decap == DecapKernel:
			return err
		default:
			h.printf("kernel ipip unavailable (%s): decapsulating in user space", strings.TrimPrefix(err.Error(), "realserver: "))
		}
	}
	if dev == "" {
		mtu, err := underlyingMTU(cfg.TUNName)
		if err != nil {
			return err
		}
		d, err := openDecap(cfg.TUNName, mtu-ipipOverhead)
		if err != nil {
			return err
		}
		h.decap = d
		h.record(change{Kind: changeLink, Link: cfg.TUNName})
		h.printf("created TUN device %s (mtu %d) for user-space IPIP decapsulation", cfg.TUNName, mtu-ipipOverhead)
		dev, h.decapBy = cfg.TUNName, "user space through "+cfg.TUNName
	}
	// The inner packets arrive on dev from clients whose route is elsewhere: strict reverse
	// path filtering (the larger of all and dev counts) would drop them.
	if err := h.sysctl("net.ipv4.conf.all.rp_filter", "0"); err != nil {
		return err
	}
	return h.sysctl("net.ipv4.conf."+dev+".rp_filter", "0")
}

// kernelIPIP finds or creates the kernel's catch-all ipip device and sets it up.
func (h *Host) kernelIPIP() (string, error) {
	l, err := netlink.LinkByName("tunl0")
	if err != nil {
		// Creating an ipip link loads the module, which adds tunl0 in this namespace
		// (unless net.core.fb_tunnels_only_for_init_net says otherwise): then the new
		// catch-all collides with it, and tunl0 is the one to use.
		name := "uvs-ipip0"
		aerr := netlink.LinkAdd(&netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: name}})
		switch {
		case aerr == nil:
			h.record(change{Kind: changeLink, Link: name})
			h.printf("created kernel ipip device %s", name)
			if l, err = netlink.LinkByName(name); err != nil {
				return "", fmt.Errorf("realserver: find %s: %w", name, err)
			}
		case errors.Is(aerr, unix.EEXIST):
			if l, err = netlink.LinkByName("tunl0"); err != nil {
				return "", fmt.Errorf("realserver: ipip: %w", aerr)
			}
		default:
			return "", fmt.Errorf("realserver: create ipip device: %w", aerr)
		}
	}
	if l.Type() != "ipip" {
		return "", fmt.Errorf("realserver: %s is a %s device, not ipip", l.Attrs().Name, l.Type())
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(l); err != nil {
			return "", fmt.Errorf("realserver: set %s up: %w", l.Attrs().Name, err)
		}
		h.record(change{Kind: changeUp, Link: l.Attrs().Name})
		h.printf("set %s up", l.Attrs().Name)
	}
	return l.Attrs().Name, nil
}

// Run decapsulates until ctx ends, for user-space decapsulation; otherwise it returns at once.
func (h *Host) Run(ctx context.Context) error {
	if h.decap == nil {
		return nil
	}
	h.printf("decapsulating IPIP for %s in the foreground; SIGINT or SIGTERM undoes everything", vipList(h.cfg.VIPs))
	stop := context.AfterFunc(ctx, h.decap.stop)
	defer stop()
	return h.decap.run()
}

// Down undoes every recorded change in reverse order and removes the state file. It goes on
// after a failed step and returns all failures.
func (h *Host) Down() error {
	var errs []error
	if h.decap != nil {
		s := h.decap.close()
		h.printf("decapsulated %d packets (%d bytes), %d malformed, %d not delivered", s.Packets, s.Bytes, s.Malformed, s.WriteErrors)
		h.decap = nil
	}
	for i := len(h.st.Changes) - 1; i >= 0; i-- {
		if err := h.undo(h.st.Changes[i]); err != nil {
			errs = append(errs, err)
		}
	}
	h.st.Changes = nil
	if err := os.Remove(h.cfg.StatePath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("realserver: remove state: %w", err))
	}
	return errors.Join(errs...)
}

// DownState undoes what an earlier `uvs realserver` recorded in the state file. A run still in
// the foreground gets SIGTERM and undoes its own changes. Without a state file it removes the
// given VIPs from lo and leaves sysctls alone: their earlier values are unknown.
func DownState(c Config) error {
	cfg, _ := c.withDefaults() // defaults only: --down needs neither VIPs nor a method
	if cfg.StatePath == "" {
		p, err := defaultStatePath()
		if err != nil {
			return err
		}
		cfg.StatePath = p
	}
	st, err := readState(cfg.StatePath)
	if errors.Is(err, fs.ErrNotExist) {
		h := &Host{cfg: cfg}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("realserver: find lo: %w", err)
		}
		var errs []error
		for _, v := range cfg.VIPs {
			if err := h.undo(change{Kind: changeAddr, Link: lo.Attrs().Name, Addr: netip.PrefixFrom(v, v.BitLen()).String()}); err != nil {
				errs = append(errs, err)
			}
		}
		h.printf("no state file %s: removed the VIPs only; sysctls left as they are", cfg.StatePath)
		return errors.Join(errs...)
	}
	if err != nil {
		return err
	}
	if st.PID != os.Getpid() && alive(st.PID) {
		if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil {
			return fmt.Errorf("realserver: signal pid %d: %w", st.PID, err)
		}
		fmt.Fprintf(cfg.Out, "uvs realserver: sent SIGTERM to pid %d, which undoes its changes\n", st.PID)
		return nil
	}
	h := &Host{cfg: cfg, st: st}
	return h.Down()
}

func (h *Host) printf(format string, args ...any) {
	fmt.Fprintf(h.cfg.Out, "uvs realserver: "+format+"\n", args...)
}

func (h *Host) record(c change) {
	h.st.Changes = append(h.st.Changes, c)
	if err := h.save(); err != nil {
		h.cfg.Logger.Warn("cannot save realserver state", "err", err)
	}
}

// addVIP puts v/32 (v/128 for IPv6) on lo unless it is there already. An IPv6 VIP goes
// without duplicate address detection (nodad): the director holds the same address, and a
// global address on lo is not answered for on other links anyway (ndisc_recv_ns looks
// addresses up strictly on the receiving device), which is IPv6's arp_ignore.
func (h *Host) addVIP(lo netlink.Link, v netip.Addr) error {
	p := netip.PrefixFrom(v, v.BitLen())
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: v.AsSlice(), Mask: net.CIDRMask(p.Bits(), v.BitLen())}}
	if v.Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := netlink.AddrAdd(lo, addr); err != nil {
		if errors.Is(err, unix.EEXIST) {
			h.printf("VIP %s already on lo", p)
			return nil
		}
		return fmt.Errorf("realserver: add %s to lo: %w", p, err)
	}
	h.record(change{Kind: changeAddr, Link: "lo", Addr: p.String()})
	h.printf("added VIP %s to lo", p)
	return nil
}

// sysctl sets name (dotted, under /proc/sys) to val if it differs, and records the old value.
func (h *Host) sysctl(name, val string) error {
	old, err := readSysctl(name)
	if err != nil {
		return err
	}
	if old == val {
		return nil
	}
	if err := writeSysctl(name, val); err != nil {
		return err
	}
	h.record(change{Kind: changeSysctl, Name: name, Old: old, New: val})
	h.printf("sysctl %s: %s -> %s", name, old, val)
	return nil
}

// undo reverts one change. A sysctl someone changed since is left alone; a device or address
// that is gone already is not an error.
func (h *Host) undo(c change) error {
	switch c.Kind {
	case changeAddr:
		l, err := netlink.LinkByName(c.Link)
		if err != nil {
			return nil
		}
		p, err := netip.ParsePrefix(c.Addr)
		if err != nil {
			return fmt.Errorf("realserver: state: %w", err)
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if err := netlink.AddrDel(l, addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("realserver: remove %s from %s: %w", c.Addr, c.Link, err)
		}
		h.printf("removed %s from %s", c.Addr, c.Link)
	case changeSysctl:
		cur, err := readSysctl(c.Name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // its device is gone
			}
			return err
		}
		if cur != c.New {
			h.printf("sysctl %s is %s now, not %s: left alone", c.Name, cur, c.New)
			return nil
		}
		if err := writeSysctl(c.Name, c.Old); err != nil {
			return err
		}
		h.printf("sysctl %s: %s -> %s", c.Name, c.New, c.Old)
	case changeLink:
		l, err := netlink.LinkByName(c.Link)
		if err != nil {
			return nil // a TUN device goes with its process
		}
		if err := netlink.LinkDel(l); err != nil {
			return fmt.Errorf("realserver: delete %s: %w", c.Link, err)
		}
		h.printf("deleted %s", c.Link)
	case changeUp:
		l, err := netlink.LinkByName(c.Link)
		if err != nil {
			return nil
		}
		if err := netlink.LinkSetDown(l); err != nil {
			return fmt.Errorf("realserver: set %s down: %w", c.Link, err)
		}
		h.printf("set %s down", c.Link)
	}
	return nil
}

func (h *Host) save() error {
	b, err := json.MarshalIndent(&h.st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(h.cfg.StatePath), 0o700); err != nil {
		return fmt.Errorf("realserver: state: %w", err)
	}
	tmp := h.cfg.StatePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("realserver: state: %w", err)
	}
	if err := os.Rename(tmp, h.cfg.StatePath); err != nil {
		return fmt.Errorf("realserver: state: %w", err)
	}
	return nil
}

func readState(path string) (state, error) {
	var st state
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("realserver: state %s: %w", path, err)
	}
	return st, nil
}

// defaultStatePath names the state file after the network namespace, so that real servers
// in different namespaces of one host (a lab) keep separate records.
func defaultStatePath() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return "", fmt.Errorf("realserver: network namespace: %w", err)
	}
	return "/run/uvs/realserver-" + strconv.FormatUint(st.Ino, 10) + ".json", nil
}

func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

func sysctlPath(name string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
}

func readSysctl(name string) (string, error) {
	b, err := os.ReadFile(sysctlPath(name))
	if err != nil {
		return "", fmt.Errorf("realserver: read sysctl %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func writeSysctl(name, val string) error {
	if err := os.WriteFile(sysctlPath(name), []byte(val), 0); err != nil {
		return fmt.Errorf("realserver: sysctl %s=%s: %w", name, val, err)
	}
	return nil
}

// underlyingMTU is the largest MTU of the links IPIP can arrive on: every up link except lo,
// tunnels and the decapsulator's own device.
func underlyingMTU(self string) (int, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return 0, fmt.Errorf("realserver: list links: %w", err)
	}
	mtu := 0
	for _, l := range links {
		a := l.Attrs()
		if a.Name == self || a.Flags&net.FlagLoopback != 0 || a.Flags&net.FlagUp == 0 || l.Type() == "ipip" || l.Type() == "tuntap" {
			continue
		}
		mtu = max(mtu, a.MTU)
	}
	if mtu == 0 {
		return 0, errors.New("realserver: no interface is up to receive tunnelled traffic")
	}
	return mtu, nil
}

func vipList(v []netip.Addr) string {
	s := make([]string, len(v))
	for i, a := range v {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}
