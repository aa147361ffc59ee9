package realserver

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/vishvananda/netlink"

	"github.com/uvs-project/uvs/config"
)

// Check inspects the host for cfg.VIPs and cfg.Method and returns what is wrong, each with its
// fix, and what is right (for an "ok" summary). It changes nothing. An error means the host
// could not be inspected at all.
func Check(c Config) ([]Problem, []string, error) {
	cfg, err := c.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	var probs []Problem
	var oks []string
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, nil, fmt.Errorf("realserver: find lo: %w", err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, nil, fmt.Errorf("realserver: list links: %w", err)
	}
	// Where each VIP is configured.
	on := map[netip.Addr][]string{}
	for _, l := range links {
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, nil, fmt.Errorf("realserver: addresses of %s: %w", l.Attrs().Name, err)
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				on[ip.Unmap()] = append(on[ip.Unmap()], l.Attrs().Name)
			}
		}
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		probs = append(probs, Problem{"lo is down", "ip link set lo up"})
	}
	for _, v := range cfg.VIPs {
		onLo := false
		for _, name := range on[v] {
			if name == "lo" {
				onLo = true
				continue
			}
			probs = append(probs, Problem{
				fmt.Sprintf("VIP %s is on %s: this host would answer ARP for it and steal the director's traffic", v, name),
				fmt.Sprintf("ip addr del %s dev %s (and keep it on lo)", netip.PrefixFrom(v, v.BitLen()), name)})
		}
		if !onLo {
			probs = append(probs, Problem{
				fmt.Sprintf("VIP %s is not on lo: the kernel drops packets to it", v),
				fmt.Sprintf("ip addr add %s dev lo%s", netip.PrefixFrom(v, v.BitLen()), map[bool]string{true: " nodad"}[v.Is6()])})
		} else {
			oks = append(oks, "VIP "+v.String()+" on lo")
		}
	}
	arpOK := true
	for _, s := range []struct {
		key  string
		want int
		why  string
	}{
		{"arp_ignore", 1, "the host answers ARP for the VIP on every interface"},
		{"arp_announce", 2, "the host may use the VIP as the source of its ARP requests"},
	} {
		// conf/all covers every interface: the kernel takes the larger of all and the device.
		name := "net.ipv4.conf.all." + s.key
		v, err := readInt(name)
		if err != nil {
			return nil, nil, err
		}
		if v < s.want {
			arpOK = false
			probs = append(probs, Problem{fmt.Sprintf("%s = %d, want %d: %s", name, v, s.want, s.why),
				fmt.Sprintf("sysctl -w %s=%d", name, s.want)})
		}
	}
	if arpOK {
		oks = append(oks, "ARP suppressed (arp_ignore, arp_announce)")
	}
	if cfg.Method == config.TUN {
		probs, oks = checkDecap(&cfg, links, probs, oks)
	}
	return probs, oks, nil
}

// checkDecap checks that IPIP is decapsulated and that what comes out is accepted.
func checkDecap(cfg *Config, links []netlink.Link, probs []Problem, oks []string) ([]Problem, []string) {
	var dev netlink.Link
	kind := ""
	for _, l := range links {
		a := l.Attrs()
		switch {
		case a.Name == cfg.TUNName:
			dev, kind = l, "user-space decapsulator"
		case l.Type() == "ipip" && dev == nil:
			dev, kind = l, "kernel ipip device"
		}
	}
	if dev == nil {
		return append(probs, Problem{
			fmt.Sprintf("no IPIP decapsulation: no kernel ipip device and no %s (uvs realserver --method tun not running)", cfg.TUNName),
			"uvs realserver --method tun --vip " + vipList(cfg.VIPs) + " (stays in the foreground)"}), oks
	}
	name := dev.Attrs().Name
	if dev.Attrs().Flags&net.FlagUp == 0 {
		probs = append(probs, Problem{fmt.Sprintf("%s %s is down", kind, name), "ip link set " + name + " up"})
	} else {
		oks = append(oks, kind+" "+name+" up")
	}
	all, err1 := readInt("net.ipv4.conf.all.rp_filter")
	own, err2 := readInt("net.ipv4.conf." + name + ".rp_filter")
	if err1 != nil || err2 != nil {
		return append(probs, Problem{fmt.Sprintf("cannot read rp_filter: %v %v", err1, err2), ""}), oks
	}
	// Strict mode (1) drops the inner packets: their sources route elsewhere. The kernel
	// applies the larger of all and the device.
	rpOK := true
	if own == 1 {
		rpOK = false
		probs = append(probs, Problem{fmt.Sprintf("net.ipv4.conf.%s.rp_filter = 1: strict reverse-path filtering drops decapsulated packets", name),
			"sysctl -w net.ipv4.conf." + name + ".rp_filter=0"})
	}
	if all == 1 {
		rpOK = false
		probs = append(probs, Problem{"net.ipv4.conf.all.rp_filter = 1: strict reverse-path filtering drops decapsulated packets on " + name,
			"sysctl -w net.ipv4.conf.all.rp_filter=0"})
	}
	if rpOK {
		oks = append(oks, "rp_filter off on "+name)
	}
	if under, err := underlyingMTU(name); err == nil && dev.Attrs().MTU > under-ipipOverhead {
		probs = append(probs, Problem{
			fmt.Sprintf("%s has MTU %d but tunnelled packets carry at most %d bytes (link MTU %d - 20); the director must send frag-needed with that MTU",
				name, dev.Attrs().MTU, under-ipipOverhead, under),
			fmt.Sprintf("ip link set %s mtu %d", name, under-ipipOverhead)})
	} else if err == nil {
		oks = append(oks, "MTU "+strconv.Itoa(dev.Attrs().MTU)+" on "+name)
	}
	return probs, oks
}

func readInt(name string) (int, error) {
	s, err := readSysctl(name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("realserver: sysctl %s: %q is not a number", name, s)
	}
	return v, nil
}
