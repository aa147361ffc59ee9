package migrate

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// kaVRRP is a vrrp_instance converted to a [[vrrp]] section.
type kaVRRP struct {
	at    Problem
	name  string
	notes []Problem
	iface string
	kv    []keyValue // settings in the order written
	vips  []string
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
		case "vrrp_version":
			if len(c.words) == 2 && (c.words[1] == "2" || c.words[1] == "3") {
				k.vrrpDef.version = c.words[1]
				continue
			}
		case "vrrp_garp_master_delay", "vrrp_garp_master_repeat", "vrrp_garp_master_refresh":
			if len(c.words) == 2 {
				if k.vrrpDef.garp == nil {
					k.vrrpDef.garp = map[string]string{}
				}
				k.vrrpDef.garp[strings.TrimPrefix(c.name(), "vrrp_")] = c.words[1]
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
	set := func(key, value string) { v.kv = append(v.kv, keyValue{key: key, value: value}) }
	version := k.vrrpDef.version
	garp := map[string]string{}
	for key, val := range k.vrrpDef.garp {
		garp[key] = val
	}
	for _, c := range n.kids {
		one := len(c.words) == 2 && !c.block
		switch name := c.name(); {
		case name == "interface" && one:
			v.iface = c.words[1]
		case name == "state" && one && (strings.EqualFold(c.words[1], "master") || strings.EqualFold(c.words[1], "backup")):
			set("state", quote(strings.ToLower(c.words[1])))
		case (name == "virtual_router_id" || name == "priority") && one && isUint(c.words[1], 1, 255):
			set(name, c.words[1])
		case name == "advert_int" && one && isSeconds(c.words[1]):
			set("advert_int", quote(c.words[1]+"s"))
		case name == "nopreempt" && len(c.words) == 1:
			set("nopreempt", "true")
		case name == "preempt_delay" && one && isSeconds(c.words[1]):
			set("preempt_delay", quote(c.words[1]+"s"))
		case name == "version" && one && (c.words[1] == "2" || c.words[1] == "3"):
			version = c.words[1]
		case name == "unicast_src_ip" && one && isIPv4(c.words[1]):
			set("unicast_src_ip", quote(c.words[1]))
		case name == "unicast_peer" && c.block:
			var peers []string
			for _, p := range c.kids {
				if isIPv4(p.words[0]) {
					peers = append(peers, p.words[0])
					if len(p.words) > 1 {
						note(p, "unicast_peer options are not carried over")
					}
				} else {
					note(p, "unicast_peer: not an IPv4 address")
				}
			}
			set("unicast_peer", strList(peers))
		case (name == "virtual_ipaddress" || name == "virtual_ipaddress_excluded") && c.block:
			v.hasVIPs = true
			for _, a := range c.kids {
				ip := strings.SplitN(a.words[0], "/", 2)[0]
				if !isIPv4(ip) {
					note(a, "not carried over: uvs owns IPv4 addresses only")
					continue
				}
				if !slices.Contains(v.vips, ip) {
					v.vips = append(v.vips, ip)
				}
				if len(a.words) > 1 || strings.Contains(a.words[0], "/") {
					note(a, "carried over as the address "+ip+" only: uvs never assigns VIPs to the interface, it answers ARP for them")
				}
			}
		case (name == "garp_master_delay" || name == "garp_master_refresh") && one && isUint(c.words[1], 0, 1<<20):
			garp[name] = c.words[1]
		case name == "garp_master_repeat" && one && isUint(c.words[1], 1, 255):
			garp[name] = c.words[1]
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
				ifs = append(ifs, t.words[0])
				if len(t.words) > 1 {
					note(t, "per-interface weight is not carried over: uvs has one track_weight per instance (0 = fault)")
				}
			}
			set("track_interface", strList(ifs))
		case name == "authentication" && c.block:
			k.vrrpAuth(v, c, set, note)
		case name == "track_script" && c.block:
			note(c, "not carried over: uvs tracks its own services' health (track_service) and interfaces (track_interface)")
		default:
			note(c, "not carried over")
		}
	}
	if version == "3" {
		set("version", "3")
	}
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
		return
	}
	owned := map[string]bool{}
	for _, v := range d.vrrp {
		for _, a := range v.vips {
			owned[a] = true
		}
	}
	for _, s := range d.services {
		if s.stub != "" || s.vip == "" || owned[s.vip] || !isIPv4(s.vip) {
			continue
		}
		v := d.vrrp[0]
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
	for _, g := range d.syncGroups {
		ok := len(g.instances) >= 2
		for _, m := range g.instances {
			ok = ok && names[m]
		}
		if !ok {
			d.note(g.at, "vrrp_sync_group %s: not carried over: it needs two or more converted vrrp_instances", g.name)
			continue
		}
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

func isUint(s string, lo, hi uint64) bool {
	n, err := strconv.ParseUint(s, 10, 64)
	return err == nil && n >= lo && n <= hi
}

// isSeconds accepts keepalived's seconds: an integer or a decimal ("0.5").
func isSeconds(s string) bool {
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f >= 0 && f < 1e6 && !strings.ContainsAny(s, "eEnN+-")
}

func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}
