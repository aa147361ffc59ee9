package vrrp

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/uvs-project/uvs/config"
)

// Options are the Speaker's hooks into the rest of uvs. The zero value means: nobody is
// told, every service and the data plane count as healthy.
type Options struct {
	Logger *slog.Logger // nil: discard.
	// OnChange is called from the speaker's goroutine after every transition (and once
	// at start) with every address owned by an instance in master. It must not block.
	OnChange func(active []netip.Addr)
	// ServiceUp reports whether the named service has a healthy real server (track_service).
	ServiceUp func(name string) bool
	// Alive reports whether the data plane is making progress; false sends every
	// instance to fault (the liveness signal shared with BGP's withdrawal).
	Alive func() bool
	// TrackInterval is how often tracking is evaluated; 0 means 500 ms.
	TrackInterval time.Duration
}

// Status is one instance as `uvs list` shows it.
type Status struct {
	Name        string     `json:"name"`
	Interface   string     `json:"interface"`
	VRID        int        `json:"virtual_router_id"`
	Version     int        `json:"version"`
	State       string     `json:"state"`
	StateValue  State      `json:"-"`
	Priority    int        `json:"priority"`
	Master      string     `json:"master"`
	Transitions uint64     `json:"transitions"`
	VIPs        []string   `json:"vips"`
	Drops       DropCounts `json:"dropped,omitempty"`
}

// DropCounts maps drop reason names to counts; zero counts are left out.
type DropCounts map[string]uint64

// restartKeys are the [[vrrp]] keys a reload cannot change: they name the instance's
// identity on the wire or its socket.
var restartKeys = []struct {
	key  string
	same func(a, b *config.VRRP) bool
}{
	{"interface", func(a, b *config.VRRP) bool { return a.Interface == b.Interface }},
	{"virtual_router_id", func(a, b *config.VRRP) bool { return a.VirtualRouterID == b.VirtualRouterID }},
	{"version", func(a, b *config.VRRP) bool { return a.Version == b.Version }},
	{"unicast_src_ip", func(a, b *config.VRRP) bool { return a.UnicastSrcIP == b.UnicastSrcIP }},
	{"unicast_peer (multicast to unicast or back)", func(a, b *config.VRRP) bool {
		return (len(a.UnicastPeer) == 0) == (len(b.UnicastPeer) == 0)
	}},
}

// CheckReload reports whether a running speaker configured by old can take new without a
// restart: the same instances (by name) and sync groups, and no change to a key that
// needs a restart. The error names every such key.
func CheckReload(old, new *config.Config) error {
	var bad []string
	names := func(c *config.Config) []string {
		var n []string
		for _, r := range c.VRRP {
			n = append(n, r.Name)
		}
		slices.Sort(n)
		return n
	}
	if !slices.Equal(names(old), names(new)) {
		bad = append(bad, fmt.Sprintf("the set of [[vrrp]] instances (%s to %s)", strings.Join(names(old), ","), strings.Join(names(new), ",")))
	}
	for i := range new.VRRP {
		n := &new.VRRP[i]
		o := old.VRRPByName(n.Name)
		if o == nil {
			continue
		}
		for _, k := range restartKeys {
			if !k.same(o, n) {
				bad = append(bad, fmt.Sprintf("vrrp %s: %s", n.Name, k.key))
			}
		}
		// The socket is of the instance's family (IPv4, or IPv6 to ff02::12).
		if oi := slices.IndexFunc(old.VRRP, func(r config.VRRP) bool { return r.Name == n.Name }); old.VRRPIPv6(oi) != new.VRRPIPv6(i) {
			bad = append(bad, fmt.Sprintf("vrrp %s: the address family of its vips", n.Name))
		}
	}
	groups := func(c *config.Config) []string {
		var g []string
		for _, s := range c.VRRPSyncGroups {
			m := slices.Clone(s.Instances)
			slices.Sort(m)
			g = append(g, s.Name+"="+strings.Join(m, ","))
		}
		slices.Sort(g)
		return g
	}
	if !slices.Equal(groups(old), groups(new)) {
		bad = append(bad, "[[vrrp_sync_group]]")
	}
	if len(bad) > 0 {
		return fmt.Errorf("vrrp: these changes need a restart: %s", strings.Join(bad, "; "))
	}
	return nil
}

// params turns an instance's config into state machine parameters.
func params(r *config.VRRP, primary netip.Addr) Params {
	return Params{
		VRID:          uint8(r.VirtualRouterID),
		Priority:      uint8(r.Priority),
		AdvertInt:     r.AdvertInt,
		Version:       uint8(r.Version),
		NoPreempt:     r.NoPreempt,
		PreemptDelay:  r.PreemptDelay,
		InitialMaster: r.InitialMaster,
		Primary:       primary,
	}
}

// trackedPriority is the priority and fault of an instance with base priority base,
// failed tracked items, weight w (0: any failure is a fault) and data plane liveness.
func trackedPriority(base, failed, w int, alive bool) (uint8, bool) {
	if !alive || (failed > 0 && w == 0) {
		return uint8(base), true
	}
	if failed == 0 {
		return uint8(base), false
	}
	p := base + failed*w
	return uint8(max(1, min(p, 254))), false
}

// groupFaults returns, for each instance, whether it must be in fault: its own tracking
// failed, or that of a member of its sync group (keepalived: a group is in fault when any
// member is).
func groupFaults(own []bool, group []int) []bool {
	out := slices.Clone(own)
	bad := map[int]bool{}
	for i, g := range group {
		if g >= 0 && own[i] {
			bad[g] = true
		}
	}
	for i, g := range group {
		if g >= 0 && bad[g] {
			out[i] = true
		}
	}
	return out
}

// accept applies the per-instance checks to an advert that decoded: version, VRID, the
// v2 interval and auth, the source for unicast, and our own adverts looped back.
func accept(a *Advert, h *IPv4, p *Params, auth uint8, pass [8]byte, peers []netip.Addr) Drop {
	switch {
	case h.Dst.IsMulticast() && h.TTL != TTL:
		return DropTTL
	case a.VRID != p.VRID:
		return DropVRID
	case a.Version != p.Version:
		return DropVersion
	case h.Src == p.Primary:
		return DropOwn
	case len(peers) > 0 && !slices.Contains(peers, h.Src):
		return DropUnicastPeer
	}
	if a.Version == 2 {
		if a.Interval != p.AdvertInt {
			return DropInterval
		}
		if a.AuthType != auth || (auth == AuthPass && a.Auth != pass) {
			return DropAuth
		}
	}
	return DropNone
}
