package migrate

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// kaVRRP is a vrrp_instance converted to a [[vrrp]] section.
type kaVRRP struct {
	at    Problem
	name  string
	vrid  string
	notes []Problem
	iface string
	kv    []keyValue // settings in the order written
	vips  []string
	v6    bool // the instance's family (keepalived's: that of its first address)
	// vipsAt is where virtual_ipaddress was; vips absent means uvs's default, which
	// keepalived has not, so an instance without it gets vips = [].
	hasVIPs bool
}

// kaSyncGroup is a vrrp_sync_group converted to a [[vrrp_sync_group]].
type kaSyncGroup struct {
	at        Problem
	name      string
	instances []string
	notes     []Problem
}

// vrrpDefaults are global_defs settings that are instance defaults in uvs.
type vrrpDefaults struct {
	version string
	garp    map[string]string // garp_master_delay, garp_master_repeat, garp_master_refresh
}

// globalDefs reads the VRRP defaults from global_defs and notes the rest as before.
func (k *kaImporter) globalDefs(n *kaNode) {
	for _, c := range n.kids {
		switch c.name() {
		case "lvs_sync_daemon":
			continue // converted by syncDaemon (keepalived_sync.go)
		case "vrrp_version":
			if len(c.words) == 2 && (c.words[1] == "2" || c.words[1] == "3") {
				k.vrrpDef.version = c.words[1]
				continue
			}
		case "vrrp_garp_master_delay", "vrrp_garp_master_repeat", "vrrp_garp_master_refresh":
			lo := uint64(0)
			if c.name() == "vrrp_garp_master_repeat" {
				lo = 1
			}
			if len(c.words) == 2 && isUint(c.words[1], lo, 255) {
				if k.vrrpDef.garp == nil {
					k.vrrpDef.garp = map[string]string{}
				}
				k.vrrpDef.garp[strings.TrimPrefix(c.name(), "vrrp_")] = canonUint(c.words[1])
				continue
			}
		}
		k.d.note(c.at, "global_defs %s: not carried over", strings.Join(c.words, " "))
	}
}

// vrrpInstance converts a vrrp_instance block.
func (k *kaImporter) vrrpInstance(n *kaNode) {
	if len(n.words) != 2 || !n.block {
		k.fail(n.at, "vrrp_instance needs a NAME and a { ... } block")
		return
	}
	v := &kaVRRP{at: n.at, name: n.words[1]}
	note := func(c *kaNode, why string) {
		v.notes = append(v.notes, Problem{File: c.at.File, Line: c.at.Line, Msg: strings.Join(c.words, " ") + ": " + why})
	}
	// A keyword given twice: the last one counts, as in keepalived.
	set := func(key, value string) {
		for i := range v.kv {
			if v.kv[i].key == key {
				v.kv[i].value = value
				return
			}
		}
		v.kv = append(v.kv, keyValue{key: key, value: value})
	}
	// unset removes a setting (one of the other family than the instance's).
	unset := func(key string) {
		v.kv = slices.DeleteFunc(v.kv, func(kv keyValue) bool { return kv.key == key })
	}
	version := k.vrrpDef.version
	var state, advert string // written once the version is known
	var srcIP string
	var srcAt *kaNode
	var peers []string
	var peerAt, vipAt []*kaNode // where each peer and VIP was, for notes
	var advertAt, stateAt, nopreemptAt, authAt *kaNode
	var authKV []keyValue
	vrid := false
	garp := map[string]string{}
	for key, val := range k.vrrpDef.garp {
		garp[key] = val
	}
	for _, c := range n.kids {
		one := len(c.words) == 2 && !c.block
		switch name := c.name(); {
		case name == "interface" && one:
			if msg := ifNameProblem(c.words[1]); msg != "" {
				k.fail(c.at, "vrrp_instance %s: %s", v.name, msg)
				return
			}
			v.iface = c.words[1]
		case name == "state" && one && (strings.EqualFold(c.words[1], "master") || strings.EqualFold(c.words[1], "backup")):
			state, stateAt = strings.ToLower(c.words[1]), c
		case name == "virtual_router_id" && one && isUint(c.words[1], 1, 255):
			v.vrid = canonUint(c.words[1])
			set(name, v.vrid)
			vrid = true
		case name == "priority" && one && isUint(c.words[1], 1, 255):
			set(name, canonUint(c.words[1]))
		case name == "advert_int" && one && isSeconds(c.words[1]):
			advert, advertAt = c.words[1], c
		case name == "nopreempt" && len(c.words) == 1:
			nopreemptAt = c
		case name == "preempt_delay" && one && isSeconds(c.words[1]):
			if f, _ := strconv.ParseFloat(c.words[1], 64); f > 1000 {
				note(c, "not carried over: uvs allows at most 1000 s, as keepalived")
				continue
			}
			set("preempt_delay", quote(canonSeconds(c.words[1])))
		case name == "version" && one && (c.words[1] == "2" || c.words[1] == "3"):
			version = c.words[1]
		case name == "unicast_src_ip" && one && isIP(c.words[1]):
			srcIP, srcAt = c.words[1], c
			set("unicast_src_ip", quote(c.words[1]))
		case name == "unicast_peer" && c.block:
			peers, peerAt = nil, nil
			for _, p := range c.kids {
				if isIP(p.words[0]) {
					peers = append(peers, p.words[0])
					peerAt = append(peerAt, p)
					if len(p.words) > 1 {
						note(p, "unicast_peer options are not carried over")
					}
				} else {
					note(p, "unicast_peer: not a unicast IP address")
				}
			}
			set("unicast_peer", strList(peers))
		case (name == "virtual_ipaddress" || name == "virtual_ipaddress_excluded") && c.block:
			v.hasVIPs = true
			for _, a := range c.kids {
				ip := strings.SplitN(a.words[0], "/", 2)[0]
				if !isIP(ip) {
					note(a, "not carried over: not a unicast IP address uvs can own")
					continue
				}
				if !slices.Contains(v.vips, ip) {
					v.vips = append(v.vips, ip)
					vipAt = append(vipAt, a)
				}
				if len(a.words) > 1 || strings.Contains(a.words[0], "/") {
					asks := "ARP"
					if is6(ip) {
						asks = "neighbour solicitations"
					}
					note(a, "carried over as the address "+ip+" only: uvs never assigns VIPs to the interface, it answers "+asks+" for them")
				}
			}
		case (name == "garp_master_delay" || name == "garp_master_refresh") && one && isUint(c.words[1], 0, 1<<20):
			garp[name] = canonUint(c.words[1])
		case name == "garp_master_repeat" && one && isUint(c.words[1], 1, 255):
			garp[name] = canonUint(c.words[1])
		case (name == "notify_master" || name == "notify_backup" || name == "notify_fault") && len(c.words) >= 2:
			// keepalived splits the command into words and execs it (no shell unless
			// the script names one); uvs takes the same argv.
			var argv []string
			for _, w := range c.words[1:] {
				argv = append(argv, strings.Fields(w)...)
			}
			if len(argv) > 0 {
				set(name, strList(argv))
			}
		case name == "track_interface" && c.block:
			var ifs []string
			for _, t := range c.kids {
				if msg := ifNameProblem(t.words[0]); msg != "" {
					note(t, "not carried over: "+msg)
					continue
				}
				ifs = append(ifs, t.words[0])
				if len(t.words) > 1 {
					note(t, "per-interface weight is not carried over: uvs has one track_weight per instance (0 = fault)")
				}
			}
			if len(ifs) > 0 {
				set("track_interface", strList(ifs))
			}
		case name == "authentication" && c.block:
			authAt = c
			authKV = nil // the last authentication block counts
			k.vrrpAuth(v, c, func(key, value string) { authKV = append(authKV, keyValue{key: key, value: value}) }, note)
		case name == "track_script" && c.block:
			note(c, "not carried over: uvs tracks its own services' health (track_service) and interfaces (track_interface)")
		default:
			note(c, "not carried over")
		}
	}
	if !vrid {
		k.fail(n.at, "vrrp_instance %s: no virtual_router_id (1..255)", v.name)
		return
	}
	// One family per instance, as keepalived: that of its first address (VIP, else
	// unicast_src_ip, else first peer); the others are left out with a note.
	switch {
	case len(v.vips) > 0:
		v.v6 = is6(v.vips[0])
	case srcIP != "":
		v.v6 = is6(srcIP)
	case len(peers) > 0:
		v.v6 = is6(peers[0])
	}
	fam := "IPv4"
	if v.v6 {
		fam = "IPv6"
	}
	other := "not carried over: the instance is " + fam + " (its first address) and a uvs instance is one family; put it in a vrrp_instance of its own"
	kept := v.vips[:0]
	for i, a := range v.vips {
		if is6(a) != v.v6 {
			note(vipAt[i], other)
			continue
		}
		kept = append(kept, a)
	}
	v.vips = kept
	if srcIP != "" && is6(srcIP) != v.v6 {
		note(srcAt, other)
		unset("unicast_src_ip")
	}
	if len(peers) > 0 {
		var keep []string
		for i, p := range peers {
			if is6(p) != v.v6 {
				note(peerAt[i], other)
				continue
			}
			keep = append(keep, p)
		}
		if len(keep) == 0 {
			unset("unicast_peer")
		} else {
			set("unicast_peer", strList(keep))
		}
	}
	if state == "master" && nopreemptAt != nil {
		note(stateAt, "carried over as state backup: nopreempt needs state BACKUP (keepalived starts such an instance as BACKUP too)")
		state = ""
	}
	if state != "" {
		set("state", quote(state))
	}
	if nopreemptAt != nil {
		set("nopreempt", "true")
	}
	if advert != "" {
		f, _ := strconv.ParseFloat(advert, 64)
		cs := math.Round(f * 100)
		switch {
		case version == "3" && cs >= 1 && cs <= 4095 && math.Abs(f*100-cs) < 1e-6:
			set("advert_int", quote(canonSeconds(advert)))
		case version != "3" && f >= 1 && f <= 255 && f == math.Trunc(f):
			set("advert_int", quote(canonSeconds(advert)))
		default:
			note(advertAt, "not carried over: VRRPv2 wants whole seconds 1..255, VRRPv3 0.01..40.95 s; uvs uses 1 s")
		}
	}
	if version == "3" {
		set("version", "3")
		if authAt != nil && len(authKV) > 0 {
			note(authAt, "not carried over: VRRPv3 has no authentication")
			authKV = nil
		}
	}
	if v.v6 && authAt != nil && len(authKV) > 0 {
		// vrrpAuth's notes on this block (PASS carried over) no longer hold.
		v.notes = slices.DeleteFunc(v.notes, func(p Problem) bool { return p.File == authAt.at.File && p.Line == authAt.at.Line })
		note(authAt, "not carried over: VRRP over IPv6 carries no authentication")
		authKV = nil
	}
	v.kv = append(v.kv, authKV...)
	for _, key := range []string{"garp_master_delay", "garp_master_repeat", "garp_master_refresh"} {
		if val, ok := garp[key]; ok {
			if key == "garp_master_repeat" {
				set(key, val)
			} else {
				set(key, quote(val+"s"))
			}
		}
	}
	if v.iface == "" {
		k.fail(n.at, "vrrp_instance %s: no interface", v.name)
		return
	}
	k.d.vrrp = append(k.d.vrrp, v)
}

func (k *kaImporter) vrrpAuth(v *kaVRRP, c *kaNode, set func(string, string), note func(*kaNode, string)) {
	var typ, pass string
	for _, a := range c.kids {
		switch {
		case a.name() == "auth_type" && len(a.words) == 2:
			typ = strings.ToUpper(a.words[1])
		case a.name() == "auth_pass" && len(a.words) == 2:
			pass = a.words[1]
		}
	}
	switch {
	case typ == "PASS" && pass != "":
		if len(pass) > 8 {
			note(c, "auth_pass is longer than 8 bytes: keepalived sends the first 8, so uvs gets those")
			pass = pass[:8]
		}
		set("auth_type", quote("pass"))
		set("auth_pass", quote(pass))
		note(c, "auth_type PASS carried over for compatibility: a clear-text password is no security")
	default:
		note(c, "not carried over: uvs speaks auth_type PASS only (AH is not supported)")
	}
}

// vrrpSyncGroup converts a vrrp_sync_group block.
func (k *kaImporter) vrrpSyncGroup(n *kaNode) {
	if len(n.words) != 2 || !n.block {
		k.fail(n.at, "vrrp_sync_group needs a NAME and a { ... } block")
		return
	}
	g := &kaSyncGroup{at: n.at, name: n.words[1]}
	for _, c := range n.kids {
		if c.name() == "group" && c.block {
			for _, m := range c.kids {
				g.instances = append(g.instances, m.words...)
			}
			continue
		}
		g.notes = append(g.notes, Problem{File: c.at.File, Line: c.at.Line, Msg: strings.Join(c.words, " ") + ": not carried over (notify per instance instead)"})
	}
	k.d.syncGroups = append(k.d.syncGroups, g)
}

// finishVRRP makes the converted instances valid together with the services: every
// service VIP needs an owner, so a VIP that no virtual_ipaddress lists goes to the first
// instance, with a note; groups naming unknown instances are dropped, with a note.
func (d *doc) finishVRRP() {
	if len(d.vrrp) == 0 {
		for _, g := range d.syncGroups {
			d.note(g.at, "vrrp_sync_group %s: not carried over: no vrrp_instance was converted", g.name)
		}
		d.syncGroups = nil
		return
	}
	owned := map[string]bool{}
	for _, v := range d.vrrp {
		kept := v.vips[:0]
		for _, a := range v.vips {
			if owned[a] {
				v.notes = append(v.notes, Problem{File: v.at.File, Line: v.at.Line, Msg: "virtual_ipaddress " + a + ": another vrrp_instance owns it already; left out"})
				continue
			}
			owned[a] = true
			kept = append(kept, a)
		}
		v.vips = kept
	}
	for _, s := range d.services {
		if s.stub != "" || s.vip == "" || owned[s.vip] || !isIP(s.vip) {
			continue
		}
		// The first instance of the VIP's family takes it.
		i := slices.IndexFunc(d.vrrp, func(v *kaVRRP) bool { return v.v6 == is6(s.vip) })
		if i < 0 {
			s.stub = "vip " + s.vip + ": no vrrp_instance of its family owns it, and with VRRP uvs needs an owner for every VIP; written commented out (add a vrrp_instance for it)"
			continue
		}
		v := d.vrrp[i]
		v.vips = append(v.vips, s.vip)
		v.hasVIPs = true
		owned[s.vip] = true
		v.notes = append(v.notes, Problem{File: s.at.File, Line: s.at.Line, Msg: "service VIP " + s.vip + " is in no vrrp_instance's virtual_ipaddress: added to " + v.name + "'s vips (uvs needs an owner for every VIP)"})
	}
	names := map[string]bool{}
	for _, v := range d.vrrp {
		names[v.name] = true
	}
	var keep []*kaSyncGroup
	member := map[string]bool{}
	gnames := map[string]bool{}
	for _, g := range d.syncGroups {
		ok := len(g.instances) >= 2 && !gnames[g.name]
		seen := map[string]bool{}
		for _, m := range g.instances {
			ok = ok && names[m] && !member[m] && !seen[m]
			seen[m] = true
		}
		if !ok {
			d.note(g.at, "vrrp_sync_group %s: not carried over: it needs two or more converted vrrp_instances that are in no other group (and a name of its own)", g.name)
			continue
		}
		for _, m := range g.instances {
			member[m] = true
		}
		gnames[g.name] = true
		keep = append(keep, g)
	}
	d.syncGroups = keep
}

// interfaces returns the interfaces the VRRP instances name, in order.
func (d *doc) vrrpInterfaces() []string {
	var out []string
	for _, v := range d.vrrp {
		if !slices.Contains(out, v.iface) {
			out = append(out, v.iface)
		}
	}
	return out
}

// vrrpTOML writes the converted sync groups and instances.
func (w *writer) vrrpTOML(d *doc) {
	for _, g := range d.syncGroups {
		w.b.WriteByte('\n')
		w.comment("", "From "+where(g.at)+": vrrp_sync_group "+g.name)
		sortNotes(g.notes)
		for _, n := range g.notes {
			w.importNote("", n)
		}
		w.line("", "[[vrrp_sync_group]]")
		w.line("", "name = %s", quote(g.name))
		w.line("", "instances = %s", strList(g.instances))
	}
	for _, v := range d.vrrp {
		w.b.WriteByte('\n')
		w.comment("", "From "+where(v.at)+": vrrp_instance "+v.name)
		sortNotes(v.notes)
		for _, n := range v.notes {
			w.importNote("", n)
		}
		w.line("", "[[vrrp]]")
		w.line("", "name = %s", quote(v.name))
		w.line("", "interface = %s", quote(v.iface))
		for _, kv := range v.kv {
			w.line("", "%s = %s", kv.key, kv.value)
		}
		w.line("", "vips = %s", strList(v.vips))
	}
}

// canonSeconds writes a number of seconds that isSeconds accepted as a duration string.
func canonSeconds(s string) string {
	f, _ := strconv.ParseFloat(s, 64)
	return strconv.FormatFloat(f, 'f', -1, 64) + "s"
}

// canonUint writes an integer that isUint accepted without leading zeros (TOML refuses them).
func canonUint(s string) string {
	n, _ := strconv.ParseUint(s, 10, 64)
	return strconv.FormatUint(n, 10)
}

func isUint(s string, lo, hi uint64) bool {
	n, err := strconv.ParseUint(s, 10, 64)
	return err == nil && n >= lo && n <= hi
}

// isSeconds accepts keepalived's seconds: an integer or a decimal ("0.5").
func isSeconds(s string) bool {
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f >= 0 && f < 1e6 && !strings.ContainsAny(s, "eEnNxXpP+-_")
}

// isIP reports whether s is an address config accepts in [[vrrp]]: IPv4, or IPv6 that is
// neither IPv4-mapped, zoned, unspecified nor multicast.
func isIP(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == "" && !a.Is4In6() && vipUsable(a)
}

func is6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6()
}

// ifNameProblem checks an interface name as config does (the kernel's dev_valid_name).
func ifNameProblem(name string) string {
	switch {
	case name == "" || len(name) >= 16:
		return "interface name " + quote(name) + " must have 1 to 15 bytes"
	case name == "." || name == "..":
		return "invalid interface name " + quote(name)
	case strings.ContainsAny(name, "/: \t\n\v\f\r"):
		return "invalid interface name " + quote(name) + ": no '/', ':' or spaces"
	}
	return ""
}

// checkVRRP rejects what keepalived itself rejects across instances: two instances with
// one name, or with one virtual_router_id on one interface for one family.
func (k *kaImporter) checkVRRP() {
	names := map[string]bool{}
	vrids := map[string]bool{}
	for _, v := range k.d.vrrp {
		if names[v.name] {
			k.fail(v.at, "vrrp_instance %s is defined twice", v.name)
		}
		names[v.name] = true
		key := fmt.Sprint(v.iface, " ", v.vrid, " ", v.v6) // each family has its own VRIDs (RFC 5798)
		if vrids[key] {
			k.fail(v.at, "vrrp_instance %s: virtual_router_id %s is used twice on %s", v.name, v.vrid, v.iface)
		}
		vrids[key] = true
	}
}
