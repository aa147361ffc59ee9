//go:build linux

package health

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// via = "vip" checks. The director's own packets to a VIP can never reach uvs: they leave
// through the kernel, AF_PACKET shows them to the workers as PACKET_OUTGOING (ignored), and
// the switch does not send a frame back out of the port it came in on. So a via = "vip"
// probe does what uvs does to a DR client's packet instead: it goes to the VIP at the real
// server's link-layer address. Each such real gets a policy routing table holding one
// default route via the real, selected by a fwmark rule, and its probes set that mark
// (SO_MARK). The real answers from the VIP straight to the director's own address, which
// the shield and the workers leave to the kernel.
const (
	vipTableBase = 0x75760000 // "uv": tables and marks vipTableBase+1..+0xffff
	vipTableMask = 0xffff0000
	vipRulePrio  = 3276 // before the main table's rule (32766)
)

// vipRoutes owns the rules and routes of via = "vip" checks. Guarded by Checker.mu.
type vipRoutes struct {
	log   *slog.Logger
	marks map[netip.Addr]uint32
	swept bool
}

func newVIPRoutes(log *slog.Logger) *vipRoutes {
	return &vipRoutes{log: log, marks: map[netip.Addr]uint32{}}
}

// mark returns the fwmark routing probes at addr (a real server), installing its rule and route first.
func (v *vipRoutes) mark(addr netip.Addr) (uint32, error) {
	if m, ok := v.marks[addr]; ok {
		return m, nil
	}
	if !v.swept {
		// Leftovers of a killed run would shadow ours.
		v.sweep()
		v.swept = true
	}
	m := uint32(0)
	for n := uint32(1); n <= 0xffff && m == 0; n++ {
		used := false
		for _, x := range v.marks {
			used = used || x == vipTableBase+n
		}
		if !used {
			m = vipTableBase + n
		}
	}
	if m == 0 {
		return 0, errors.New("health: too many via = \"vip\" real servers")
	}
	routes, err := netlink.RouteGet(addr.AsSlice())
	if err != nil || len(routes) == 0 {
		return 0, fmt.Errorf("health: via vip: route to %s: %w", addr, err)
	}
	rt := &netlink.Route{
		Table:     int(m),
		LinkIndex: routes[0].LinkIndex,
		Gw:        net.IP(addr.AsSlice()),
		Flags:     int(netlink.FLAG_ONLINK),
	}
	if err := netlink.RouteReplace(rt); err != nil {
		return 0, fmt.Errorf("health: via vip: route table %d via %s: %w", m, addr, err)
	}
	rule := vipRule(m, family(addr))
	if err := netlink.RuleAdd(rule); err != nil && !errors.Is(err, unix.EEXIST) {
		_ = netlink.RouteDel(rt)
		return 0, fmt.Errorf("health: via vip: rule fwmark %#x: %w", m, err)
	}
	v.marks[addr] = m
	return m, nil
}

func ptr[T any](v T) *T { return &v }

// keep removes the rules and routes of reals not in live.
func (v *vipRoutes) keep(live map[netip.Addr]bool) {
	type gone struct {
		mark   uint32
		family int
	}
	var drop []gone
	for a, m := range v.marks {
		if !live[a] {
			drop = append(drop, gone{m, family(a)})
			delete(v.marks, a)
		}
	}
	for _, m := range drop {
		v.remove(m.mark, m.family)
	}
}

// close removes every rule and route.
func (v *vipRoutes) close() error {
	for a, m := range v.marks {
		v.remove(m, family(a))
		delete(v.marks, a)
	}
	return nil
}

// family is the address family of a: the rule and route of a via = "vip" real are of it.
func family(a netip.Addr) int {
	if a.Is6() {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// vipRule is the policy rule of family fam that sends probes with mark m to route table m.
func vipRule(m uint32, fam int) *netlink.Rule {
	rule := netlink.NewRule()
	rule.Family = fam
	rule.Mark = m
	rule.Mask = ptr(uint32(0xffffffff))
	rule.Table = int(m)
	rule.Priority = vipRulePrio
	return rule
}

// remove deletes the rule and table of mark m, of family fam.
func (v *vipRoutes) remove(m uint32, fam int) {
	rule := vipRule(m, fam)
	if err := netlink.RuleDel(rule); err != nil {
		v.log.Warn("remove via-vip rule", "table", m, logErr, err)
	}
	routes, _ := netlink.RouteListFiltered(fam, &netlink.Route{Table: int(m)}, netlink.RT_FILTER_TABLE)
	for i := range routes {
		_ = netlink.RouteDel(&routes[i])
	}
}

// sweep removes rules and tables in uvs's range that a killed run left.
func (v *vipRoutes) sweep() {
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		rules, err := netlink.RuleList(fam)
		if err != nil {
			continue
		}
		for _, r := range rules {
			if uint32(r.Table)&vipTableMask == vipTableBase && r.Priority == vipRulePrio {
				v.remove(uint32(r.Table), fam)
			}
		}
	}
}
