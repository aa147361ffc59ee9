package config

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// VRRP defaults, as keepalived's.
const (
	DefaultVRRPPriority      = 100                // DefaultVRRPPriority is vrrp.priority's default.
	DefaultVRRPAdvertInt     = time.Second        // DefaultVRRPAdvertInt is vrrp.advert_int's default.
	DefaultVRRPVersion       = 2                  // DefaultVRRPVersion is vrrp.version's default (keepalived's vrrp_version).
	DefaultGARPMasterDelay   = 5 * time.Second    // DefaultGARPMasterDelay is vrrp.garp_master_delay's default.
	DefaultGARPMasterRepeat  = 5                  // DefaultGARPMasterRepeat is vrrp.garp_master_repeat's default.
	DefaultVRRPNotifyTimeout = 10 * time.Second   // DefaultVRRPNotifyTimeout is vrrp.notify_timeout's default.
	MaxVRRPPreemptDelay      = 1000 * time.Second // MaxVRRPPreemptDelay bounds preempt_delay, as keepalived.
)

// VRRP is one [[vrrp]] instance (keepalived's vrrp_instance).
type VRRP struct {
	Name            string
	Interface       string
	VirtualRouterID int           // Key virtual_router_id: 1..255, unique per interface.
	Priority        int           // 1..255; 255 is the address owner.
	AdvertInt       time.Duration // Key advert_int: v2 whole seconds 1..255, v3 centiseconds 10ms..40.95s.
	InitialMaster   bool          // Key state: "master" (true) or "backup" (default).
	NoPreempt       bool          // Key nopreempt.
	PreemptDelay    time.Duration // Key preempt_delay.
	Version         int           // 2 or 3.
	UnicastSrcIP    netip.Addr    // Key unicast_src_ip: source of adverts; invalid = the interface's first address.
	UnicastPeer     []netip.Addr  // Key unicast_peer: unicast instead of multicast.
	// VIPs (key vips) as written; nil when absent, meaning every service VIP that no
	// other instance lists. Owned returns the effective list.
	VIPs              []netip.Addr
	GARPMasterDelay   time.Duration // Key garp_master_delay: second round of gratuitous ARP after takeover; 0 = none.
	GARPMasterRepeat  int           // Key garp_master_repeat: gratuitous ARPs per round.
	GARPMasterRefresh time.Duration // Key garp_master_refresh: periodic round while master; 0 = off.
	NotifyMaster      []string      // Key notify_master: argv, run without a shell.
	NotifyBackup      []string      // Key notify_backup.
	NotifyFault       []string      // Key notify_fault.
	NotifyTimeout     time.Duration // Key notify_timeout: a notify command is killed after this long.
	TrackInterface    []string      // Key track_interface: down means fault (or track_weight).
	TrackService      []string      // Key track_service: service names; no healthy real means fault (or track_weight).
	TrackWeight       int           // Key track_weight: 0 = fault; negative = lower the priority by -w per failed item.
	ChecksumAsV2      bool          // Key v3_checksum_as_v2: v3 checksum without the pseudo-header.
	AuthPass          string        // Key auth_pass (with auth_type = "pass"): v2 clear-text password, no security.
	Line              int           // Line of the [[vrrp]] header.
}

// VRRPSyncGroup is one [[vrrp_sync_group]]: instances that change state together.
type VRRPSyncGroup struct {
	Name      string
	Instances []string
	Line      int
}

// OwnedVIPs returns the addresses instance i owns: its vips, or when absent the service
// VIPs that no other instance lists, in order of first appearance.
func (c *Config) OwnedVIPs(i int) []netip.Addr {
	r := &c.VRRP[i]
	if r.VIPs != nil {
		return r.VIPs
	}
	listed := map[netip.Addr]bool{}
	for j := range c.VRRP {
		for _, a := range c.VRRP[j].VIPs {
			listed[a] = true
		}
	}
	var out []netip.Addr
	for _, s := range c.Services {
		if s.VIP.IsValid() && !listed[s.VIP] && !slices.Contains(out, s.VIP) {
			out = append(out, s.VIP)
		}
	}
	return out
}

func (d *decoder) vrrp(t *table) VRRP {
	r := VRRP{
		Priority:         DefaultVRRPPriority,
		AdvertInt:        DefaultVRRPAdvertInt,
		Version:          DefaultVRRPVersion,
		GARPMasterDelay:  DefaultGARPMasterDelay,
		GARPMasterRepeat: DefaultGARPMasterRepeat,
		NotifyTimeout:    DefaultVRRPNotifyTimeout,
		Line:             d.lines.line(t.path),
	}
	t.str("name", &r.Name)
	t.str("interface", &r.Interface)
	if !t.int("virtual_router_id", &r.VirtualRouterID) && !t.has("virtual_router_id") {
		d.problem(t.key("virtual_router_id"), "required (1..255, the same on every router of the pair)")
	}
	t.int("priority", &r.Priority)
	d.vrrpInterval(t, &r.AdvertInt)
	var state string
	if t.str("state", &state) {
		switch state {
		case "master", "MASTER":
			r.InitialMaster = true
		case "backup", "BACKUP":
		default:
			d.problem(t.key("state"), "must be \"master\" or \"backup\", not %q", state)
		}
	}
	t.boolean("nopreempt", &r.NoPreempt)
	t.duration("preempt_delay", &r.PreemptDelay)
	t.int("version", &r.Version)
	t.addr("unicast_src_ip", &r.UnicastSrcIP)
	d.addrs(t, "unicast_peer", &r.UnicastPeer)
	d.addrs(t, "vips", &r.VIPs)
	if t.has("vips") && r.VIPs == nil {
		r.VIPs = []netip.Addr{}
	}
	t.duration("garp_master_delay", &r.GARPMasterDelay)
	t.int("garp_master_repeat", &r.GARPMasterRepeat)
	t.duration("garp_master_refresh", &r.GARPMasterRefresh)
	t.strings("notify_master", &r.NotifyMaster)
	t.strings("notify_backup", &r.NotifyBackup)
	t.strings("notify_fault", &r.NotifyFault)
	t.duration("notify_timeout", &r.NotifyTimeout)
	t.strings("track_interface", &r.TrackInterface)
	t.strings("track_service", &r.TrackService)
	t.int("track_weight", &r.TrackWeight)
	t.boolean("v3_checksum_as_v2", &r.ChecksumAsV2)
	var auth string
	if t.str("auth_type", &auth) {
		switch auth {
		case "pass", "PASS":
			if !t.has("auth_pass") {
				d.problem(t.key("auth_pass"), "required with auth_type = \"pass\"")
			}
		case "none", "":
			if t.has("auth_pass") {
				d.problem(t.key("auth_pass"), "set, but auth_type is not \"pass\"")
			}
		default:
			d.problem(t.key("auth_type"), "must be \"pass\" or \"none\", not %q (ah is not supported)", auth)
		}
	}
	t.str("auth_pass", &r.AuthPass)
	t.done()
	return r
}

// vrrpInterval decodes advert_int: an integer or float number of seconds, or a duration string.
func (d *decoder) vrrpInterval(t *table, dst *time.Duration) {
	v, ok := t.m["advert_int"]
	if f, isFloat := v.(float64); ok && isFloat {
		t.get("advert_int")
		*dst = time.Duration(f * float64(time.Second))
		return
	}
	t.duration("advert_int", dst)
}

// addrs decodes a list of IP addresses.
func (d *decoder) addrs(t *table, k string, dst *[]netip.Addr) {
	var ss []string
	if !t.strings(k, &ss) {
		return
	}
	for i, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil {
			d.problem(indexKey(t.key(k), i), "invalid IP address %q", s)
			continue
		}
		*dst = append(*dst, a)
	}
}

func (d *decoder) vrrpSyncGroup(t *table) VRRPSyncGroup {
	g := VRRPSyncGroup{Line: d.lines.line(t.path)}
	t.str("name", &g.Name)
	t.strings("instances", &g.Instances)
	t.done()
	return g
}

// vrrp checks the [[vrrp]] and [[vrrp_sync_group]] sections, and that every service VIP
// has an owner when any instance is configured.
func (v *validator) vrrp(c *Config) {
	names := map[string]int{}
	// VRIDs are unique per interface and family: IPv4 and IPv6 have separate VRID spaces
	// (RFC 5798 §5.2.3) and separate sockets, and keepalived pairs often share the number.
	type ifvrid struct {
		ifname string
		vrid   int
		v6     bool
	}
	vrids := map[ifvrid]int{}
	owner := map[netip.Addr]int{}
	defaults := -1
	for i := range c.VRRP {
		r := &c.VRRP[i]
		k := indexKey("vrrp", i)
		at := r.Line
		switch {
		case r.Name == "":
			v.problem(k+".name", at, "required")
		case names[r.Name] > 0:
			v.problem(k+".name", at, "duplicate instance name %q (also vrrp[%d])", r.Name, names[r.Name]-1)
		default:
			names[r.Name] = i + 1
		}
		if msg := checkIfName(r.Interface); msg != "" {
			v.problem(k+".interface", at, "%s", msg)
		} else if !slices.Contains(c.Director.Interfaces, r.Interface) {
			v.problem(k+".interface", at, "%q is not in director.interfaces: uvs answers ARP for the VIPs only there", r.Interface)
		}
		if r.VirtualRouterID < 1 || r.VirtualRouterID > 255 {
			v.problem(k+".virtual_router_id", at, "%d is out of range 1..255", r.VirtualRouterID)
		} else if j, dup := vrids[ifvrid{r.Interface, r.VirtualRouterID, c.VRRPIPv6(i)}]; dup {
			v.problem(k+".virtual_router_id", at, "%d is also vrrp[%d] on %s", r.VirtualRouterID, j, r.Interface)
		} else {
			vrids[ifvrid{r.Interface, r.VirtualRouterID, c.VRRPIPv6(i)}] = i
		}
		if r.Priority < 1 || r.Priority > 255 {
			v.problem(k+".priority", at, "%d is out of range 1..255", r.Priority)
		}
		switch r.Version {
		case 2:
			if r.AdvertInt < time.Second || r.AdvertInt > 255*time.Second || r.AdvertInt%time.Second != 0 {
				v.problem(k+".advert_int", at, "%s: VRRPv2 wants whole seconds 1..255", r.AdvertInt)
			}
			if r.ChecksumAsV2 {
				v.problem(k+".v3_checksum_as_v2", at, "only for version = 3")
			}
		case 3:
			if r.AdvertInt < 10*time.Millisecond || r.AdvertInt > 4095*10*time.Millisecond || r.AdvertInt%(10*time.Millisecond) != 0 {
				v.problem(k+".advert_int", at, "%s: VRRPv3 wants centiseconds, 0.01s..40.95s", r.AdvertInt)
			}
			if r.AuthPass != "" {
				v.problem(k+".auth_pass", at, "VRRPv3 has no authentication (RFC 5798 §9)")
			}
		default:
			v.problem(k+".version", at, "must be 2 or 3, not %d", r.Version)
		}
		if len(r.AuthPass) > 8 {
			v.problem(k+".auth_pass", at, "is %d bytes; VRRPv2 carries 8 (keepalived truncates, uvs refuses)", len(r.AuthPass))
		}
		if r.InitialMaster && r.NoPreempt {
			v.problem(k+".nopreempt", at, "nopreempt needs state = \"backup\" (as keepalived)")
		}
		if r.PreemptDelay < 0 || r.PreemptDelay > MaxVRRPPreemptDelay {
			v.problem(k+".preempt_delay", at, "%s is out of range 0s..%s", r.PreemptDelay, MaxVRRPPreemptDelay)
		}
		v.vrrpFamily(c, i)
		if r.GARPMasterDelay < 0 {
			v.problem(k+".garp_master_delay", at, "must not be negative")
		}
		if r.GARPMasterRepeat < 1 || r.GARPMasterRepeat > 255 {
			v.problem(k+".garp_master_repeat", at, "%d is out of range 1..255", r.GARPMasterRepeat)
		}
		if r.GARPMasterRefresh != 0 && r.GARPMasterRefresh < time.Second {
			v.problem(k+".garp_master_refresh", at, "%s: at least 1s, or 0 for off", r.GARPMasterRefresh)
		}
		for _, n := range []struct {
			key  string
			argv []string
		}{{"notify_master", r.NotifyMaster}, {"notify_backup", r.NotifyBackup}, {"notify_fault", r.NotifyFault}} {
			if n.argv != nil && (len(n.argv) == 0 || n.argv[0] == "") {
				v.problem(k+"."+n.key, at, "must name a program: [\"/path/to/program\", \"arg\", ...] (argv, never a shell)")
			}
		}
		if r.NotifyTimeout <= 0 {
			v.problem(k+".notify_timeout", at, "must be positive")
		}
		for j, name := range r.TrackInterface {
			if msg := checkIfName(name); msg != "" {
				v.problem(indexKey(k+".track_interface", j), at, "%s", msg)
			}
		}
		for j, name := range r.TrackService {
			if !slices.ContainsFunc(c.Services, func(s Service) bool { return s.Name == name }) {
				v.problem(indexKey(k+".track_service", j), at, "no service named %q", name)
			}
		}
		if r.TrackWeight > 0 || r.TrackWeight < -254 {
			v.problem(k+".track_weight", at, "%d is out of range -254..0 (0 = fault)", r.TrackWeight)
		}
		if r.VIPs == nil {
			if defaults >= 0 {
				v.problem(k+".vips", at, "required: vrrp[%d] already takes the service VIPs that no instance lists", defaults)
			}
			defaults = i
		}
		for j, a := range r.VIPs {
			vk := indexKey(k+".vips", j)
			v.ip(vk, at, a, true)
			if o, dup := owner[a]; dup {
				v.problem(vk, at, "%s is also owned by vrrp[%d]", a, o)
				continue
			}
			owner[a] = i
		}
	}
	if defaults >= 0 {
		for _, s := range c.Services {
			if _, ok := owner[s.VIP]; !ok {
				owner[s.VIP] = defaults
			}
		}
	}
	if len(c.VRRP) > 0 {
		for i, s := range c.Services {
			if _, ok := owner[s.VIP]; !ok && s.VIP.IsValid() {
				v.problem(indexKey("service", i)+".vip", s.Line, "%s is owned by no [[vrrp]] instance: list it in one's vips (both directors would answer for it otherwise)", s.VIP)
			}
		}
	}
	inGroup := map[string]int{}
	gnames := map[string]bool{}
	for i, g := range c.VRRPSyncGroups {
		k := indexKey("vrrp_sync_group", i)
		if g.Name == "" {
			v.problem(k+".name", g.Line, "required")
		} else if gnames[g.Name] {
			v.problem(k+".name", g.Line, "duplicate sync group name %q", g.Name)
		}
		gnames[g.Name] = true
		if len(g.Instances) < 2 {
			v.problem(k+".instances", g.Line, "a sync group needs at least two instances")
		}
		for j, n := range g.Instances {
			ik := indexKey(k+".instances", j)
			if names[n] == 0 {
				v.problem(ik, g.Line, "no [[vrrp]] named %q", n)
			} else if o, dup := inGroup[n]; dup {
				v.problem(ik, g.Line, "%q is already in vrrp_sync_group[%d]", n, o)
			} else {
				inGroup[n] = i
			}
		}
	}
}

// VRRPByName returns the instance named name, or nil.
func (c *Config) VRRPByName(name string) *VRRP {
	for i := range c.VRRP {
		if c.VRRP[i].Name == name {
			return &c.VRRP[i]
		}
	}
	return nil
}

// String names the instance for messages.
func (r *VRRP) String() string {
	return fmt.Sprintf("%s (%s vrid %d)", r.Name, r.Interface, r.VirtualRouterID)
}
