package migrate

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/uvs-project/uvs/config"
)

// Include says where keepalived include directives may be followed.
type Include struct {
	// FS holds the directory of the file being imported; includes are
	// read from it and never from outside it.
	FS fs.FS
	// Dir is that directory's path, so that absolute include paths under
	// it can be followed too. "" means only relative paths are.
	Dir string
}

// maxIncludeDepth bounds nested includes; keepalived itself stops at 8.
const maxIncludeDepth = 8

// kaNode is one keepalived statement: a keyword, its arguments and, for a
// block, the statements inside its braces.
type kaNode struct {
	at    Problem
	words []string
	block bool
	kids  []*kaNode
}

func (n *kaNode) name() string { return n.words[0] }

// args returns the arguments, or reports a count outside lo..hi.
func (k *kaImporter) args(n *kaNode, lo, hi int) ([]string, bool) {
	a := n.words[1:]
	if len(a) < lo || hi >= 0 && len(a) > hi {
		switch {
		case lo == hi && lo == 1:
			k.fail(n.at, "%s needs one argument", n.name())
		case lo == hi:
			k.fail(n.at, "%s needs %d arguments", n.name(), lo)
		case hi < 0:
			k.fail(n.at, "%s needs at least %d argument(s)", n.name(), lo)
		default:
			k.fail(n.at, "%s takes %d to %d arguments", n.name(), lo, hi)
		}
		return nil, false
	}
	return a, true
}

// kaImporter holds the state of one keepalived import.
type kaImporter struct {
	opt      Options
	d        *doc
	problems []Problem
	stack    []string             // Files being read, for include cycles.
	marks    map[uint32]*markRule // From opt.Iptables.
	groups   map[string]*kaNode   // virtual_server_group blocks by name.
	used     map[string]bool      // Groups a virtual_server refers to.
	syncAt   Problem              // Where lvs_sync_daemon was (keepalived_sync.go).
	syncVI   string               // The VRRP instance it follows.
	vrrpDef  vrrpDefaults         // VRRP defaults from global_defs.
}

// Keepalived converts the virtual_server blocks of a keepalived.conf read
// from data, naming it name in problems and notes.
func Keepalived(name string, data []byte, opt Options) (*Result, error) {
	k := &kaImporter{opt: opt, d: &doc{from: "keepalived.conf", name: name}, marks: iptablesMarks(opt.Iptables)}
	nodes := k.parse(name, "", data, 0)
	if len(k.problems) == 0 {
		k.collectGroups(nodes)
		for _, n := range nodes {
			k.top(n)
		}
		k.checkVRRP()
		k.checkSync()
		for _, n := range nodes {
			if n.name() == "virtual_server_group" && len(n.words) == 2 && !k.used[n.words[1]] {
				k.d.note(n.at, "virtual_server_group %s: no virtual_server uses it", n.words[1])
			}
		}
	}
	if len(k.problems) == 0 {
		k.problems = append(k.problems, overlaps(k.d)...)
		k.d.finishVRRP()
	}
	if len(k.problems) > 0 {
		return nil, &Error{Problems: k.problems}
	}
	return finish(k.d)
}

// fail records a problem. A virtual_server over a group is read once per
// VIP, so the same problem is recorded once.
func (k *kaImporter) fail(at Problem, format string, args ...any) {
	p := Problem{File: at.File, Line: at.Line, Msg: fmt.Sprintf(format, args...)}
	if !slices.Contains(k.problems, p) {
		k.problems = append(k.problems, p)
	}
}

// tokens splits one line into words, quoted strings and braces, dropping
// a comment: '#' or '!' to the end of the line, outside quotes.
func tokens(line string) ([]string, bool) {
	var out []string
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f':
			i++
		case c == '#' || c == '!':
			return out, true
		case c == '{' || c == '}':
			out = append(out, line[i:i+1])
			i++
		case c == '"':
			end := strings.IndexByte(line[i+1:], '"')
			if end < 0 {
				return out, false
			}
			// A leading NUL marks a quoted word, so "{" stays a word.
			out = append(out, "\x00"+line[i+1:i+1+end])
			i += end + 2
		default:
			j := i
			for j < len(line) && !strings.ContainsRune(" \t\r\v\f{}\"#!", rune(line[j])) {
				j++
			}
			out = append(out, line[i:j])
			i = j
		}
	}
	return out, true
}

// parse turns one file into statements, following includes.
func (k *kaImporter) parse(name, rel string, data []byte, depth int) []*kaNode {
	k.stack = append(k.stack, rel)
	defer func() { k.stack = k.stack[:len(k.stack)-1] }()
	root := &kaNode{block: true}
	open := []*kaNode{root}
	var cur *kaNode // Statement being built on this line.
	flush := func() {
		if cur != nil {
			parent := open[len(open)-1]
			if cur.name() == "include" && !cur.block {
				parent.kids = append(parent.kids, k.include(cur, depth)...)
			} else {
				parent.kids = append(parent.kids, cur)
			}
			cur = nil
		}
	}
	for i, line := range strings.Split(string(data), "\n") {
		at := Problem{File: name, Line: i + 1}
		toks, ok := tokens(line)
		if !ok {
			k.fail(at, "unterminated quoted string")
			return nil
		}
		for _, t := range toks {
			switch t {
			case "{":
				if cur == nil {
					k.fail(at, "{ without a keyword before it")
					return nil
				}
				cur.block = true
				parent := open[len(open)-1]
				parent.kids = append(parent.kids, cur)
				open = append(open, cur)
				cur = nil
			case "}":
				flush()
				if len(open) == 1 {
					k.fail(at, "} without a matching {")
					return nil
				}
				open = open[:len(open)-1]
			default:
				t = strings.TrimPrefix(t, "\x00")
				if cur == nil {
					cur = &kaNode{at: at}
				}
				cur.words = append(cur.words, t)
			}
		}
		flush()
	}
	if len(open) > 1 {
		b := open[len(open)-1]
		k.fail(b.at, "%s block is not closed: missing }", b.name())
		return nil
	}
	return root.kids
}

// include returns the statements of the files an include names, when they
// lie inside the imported file's directory; otherwise it notes why not.
func (k *kaImporter) include(n *kaNode, depth int) []*kaNode {
	if len(n.words) != 2 {
		k.fail(n.at, "include needs one path")
		return nil
	}
	p := n.words[1]
	inc := k.opt.Include
	if inc == nil || inc.FS == nil {
		k.d.note(n.at, "include %s: not followed: give uvs import the file's path (not stdin) to follow includes in its directory; convert the included file on its own otherwise", p)
		return nil
	}
	rel := p
	if path.IsAbs(p) {
		dir := path.Clean(inc.Dir)
		if inc.Dir == "" || !strings.HasPrefix(path.Clean(p), dir+"/") {
			k.d.note(n.at, "include %s: not followed: it is outside %s, the directory of the imported file; convert it on its own", p, cmp.Or(inc.Dir, "the imported file's directory"))
			return nil
		}
		rel = strings.TrimPrefix(path.Clean(p), dir+"/")
	}
	rel = path.Clean(rel)
	if rel == ".." || strings.HasPrefix(rel, "../") || !fs.ValidPath(rel) {
		k.d.note(n.at, "include %s: not followed: it is outside the directory of the imported file; convert it on its own", p)
		return nil
	}
	if depth >= maxIncludeDepth {
		k.fail(n.at, "include %s: includes nested more than %d deep", p, maxIncludeDepth)
		return nil
	}
	matches, err := fs.Glob(inc.FS, rel)
	if err != nil {
		k.fail(n.at, "include %s: %v", p, err)
		return nil
	}
	if len(matches) == 0 {
		k.d.note(n.at, "include %s: no file matches it", p)
		return nil
	}
	var out []*kaNode
	for _, m := range matches {
		if slices.Contains(k.stack, m) {
			k.fail(n.at, "include %s: %s includes itself", p, m)
			return nil
		}
		data, err := fs.ReadFile(inc.FS, m)
		if err != nil {
			k.fail(n.at, "include %s: %v", p, err)
			return nil
		}
		name := m
		if inc.Dir != "" {
			name = path.Join(inc.Dir, m)
		}
		k.d.note(n.at, "include %s: followed: %s is part of this conversion", p, name)
		out = append(out, k.parse(name, m, data, depth+1)...)
	}
	return out
}

// collectGroups indexes the virtual_server_group blocks by name.
func (k *kaImporter) collectGroups(nodes []*kaNode) {
	k.groups, k.used = map[string]*kaNode{}, map[string]bool{}
	for _, n := range nodes {
		if n.name() != "virtual_server_group" {
			continue
		}
		if len(n.words) != 2 || !n.block {
			k.fail(n.at, "virtual_server_group needs a NAME and a { ... } block")
			continue
		}
		if g := k.groups[n.words[1]]; g != nil {
			k.fail(n.at, "virtual_server_group %s is already defined at %s", n.words[1], where(g.at))
			continue
		}
		k.groups[n.words[1]] = n
	}
}

// top converts a top-level statement.
func (k *kaImporter) top(n *kaNode) {
	switch {
	case n.name() == "virtual_server" && n.block:
		k.virtualServer(n)
	case n.name() == "virtual_server":
		k.fail(n.at, "virtual_server needs a { ... } block")
	case n.name() == "virtual_server_group":
		// Read by collectGroups, converted with the virtual_servers that use it.
	case n.name() == "global_defs" && n.block:
		k.syncDaemon(n) // lvs_sync_daemon becomes [sync] (keepalived_sync.go)
		k.globalDefs(n)
	case n.name() == "vrrp_instance":
		k.vrrpInstance(n)
	case n.name() == "vrrp_sync_group":
		k.vrrpSyncGroup(n)
	case n.block:
		k.d.note(n.at, "%s block: not carried over: uvs import converts virtual_server, vrrp_instance and vrrp_sync_group blocks only", strings.Join(n.words, " "))
	default:
		k.d.note(n.at, "%s: not carried over: not part of a virtual_server", strings.Join(n.words, " "))
	}
}

// kaVS holds the virtual_server-wide settings checks depend on.
type kaVS struct {
	delayLoop   int    // ms; 0 = keepalived's 60 s.
	virtualhost string // Host header of HTTP checks.

	opsAt, granularityAt Problem // Where ops and persistence_granularity were, for notes.
}

// keepalivedDelayLoop is keepalived's default delay_loop.
const keepalivedDelayLoop = 60_000

// keepalivedConnectTimeout is keepalived's default connect_timeout.
const keepalivedConnectTimeout = 5_000

func (k *kaImporter) virtualServer(n *kaNode) {
	origin := "virtual_server " + strings.Join(n.words[1:], " ")
	args := n.words[1:]
	switch {
	case len(args) == 2 && args[0] == "fwmark":
		mark, err := strconv.ParseUint(args[1], 0, 32)
		if err != nil || mark == 0 {
			k.fail(n.at, "virtual_server fwmark %q: mark must be an integer in 1..4294967295", args[1])
			return
		}
		k.service(n, origin, func(s *service) { fwmarkService(k.opt, k.marks, n.at, uint32(mark), s, origin) })
	case len(args) == 2 && args[0] == "group":
		k.group(n, origin, args[1])
	case len(args) == 2:
		a, err := netip.ParseAddr(args[0])
		if err != nil || a.Zone() != "" {
			k.fail(n.at, "virtual_server: %q is not an IP address (uvs import resolves nothing)", args[0])
			return
		}
		if a = a.Unmap(); !vipUsable(a) {
			k.fail(n.at, "virtual_server: %s is not a unicast address", a)
			return
		}
		port, ok := k.port(n.at, "virtual_server", args[1])
		if !ok {
			return
		}
		k.service(n, origin, func(s *service) { setVIP(s, a, []int{port}, origin) })
	default:
		k.fail(n.at, "virtual_server needs IP PORT, fwmark MARK or group NAME")
	}
}

// setVIP gives s its address and ports; several ports make a multi-port
// service.
func setVIP(s *service, a netip.Addr, ports []int, what string) {
	a = a.Unmap()
	s.vip = a.String()
	switch {
	case len(ports) == 1:
		s.port = ports[0]
	case slices.Contains(ports, 0):
		s.note(s.at, "%s: port 0 (all ports) covers the group's other ports of %s; one all-ports service", what, a)
		s.port = 0
	default:
		s.ports = ports
	}
}

// maxGroupRange bounds an address range in a virtual_server_group.
const maxGroupRange = 256

// group converts a virtual_server whose addresses are a
// virtual_server_group: one service per VIP, with the ports the group
// lists for it (a multi-port service when there are several, which is what
// the group does in keepalived: one set of reals and one persistence), and
// one per fwmark.
func (k *kaImporter) group(n *kaNode, origin, name string) {
	g := k.groups[name]
	if g == nil {
		k.fail(n.at, "%s: no virtual_server_group %s in this file", origin, name)
		return
	}
	k.used[name] = true
	type vipPorts struct {
		vip   netip.Addr
		ports []int
	}
	var order []*vipPorts
	byVIP := map[netip.Addr]*vipPorts{}
	for _, e := range g.kids {
		w := e.words
		switch {
		case e.block:
			k.fail(e.at, "virtual_server_group %s: unexpected block %s", name, w[0])
		case w[0] == "fwmark" && len(w) == 2:
			mark, err := strconv.ParseUint(w[1], 0, 32)
			if err != nil || mark == 0 {
				k.fail(e.at, "virtual_server_group %s: fwmark %q must be an integer in 1..4294967295", name, w[1])
				continue
			}
			what := fmt.Sprintf("%s (group %s: fwmark %d)", origin, name, mark)
			k.service(n, what, func(s *service) { fwmarkService(k.opt, k.marks, e.at, uint32(mark), s, what) })
		case len(w) == 2:
			addrs, ok := k.addrRange(e.at, w[0])
			if !ok {
				continue
			}
			port, ok := k.port(e.at, "virtual_server_group "+name, w[1])
			if !ok {
				continue
			}
			for _, a := range addrs {
				vp := byVIP[a]
				if vp == nil {
					vp = &vipPorts{vip: a}
					byVIP[a] = vp
					order = append(order, vp)
				}
				if !slices.Contains(vp.ports, port) {
					vp.ports = append(vp.ports, port)
				}
			}
		default:
			k.fail(e.at, "virtual_server_group %s: want IP PORT, IP-LAST PORT or fwmark MARK", name)
		}
	}
	for _, vp := range order {
		what := fmt.Sprintf("%s (group %s: %s)", origin, name, vp.vip)
		k.service(n, what, func(s *service) { setVIP(s, vp.vip, vp.ports, what) })
	}
}

// addrRange parses an address or keepalived's range A.B.C.D-E (the last
// byte running from D to E).
func (k *kaImporter) addrRange(at Problem, v string) ([]netip.Addr, bool) {
	first, last, isRange := strings.Cut(v, "-")
	a, err := netip.ParseAddr(first)
	if err != nil || a.Zone() != "" {
		k.fail(at, "virtual_server_group: %q is not an IP address (uvs import resolves nothing)", v)
		return nil, false
	}
	if a = a.Unmap(); !vipUsable(a) {
		k.fail(at, "virtual_server_group: %s is not a unicast address", a)
		return nil, false
	}
	if !isRange {
		return []netip.Addr{a}, true
	}
	a = a.Unmap()
	end, err := strconv.ParseUint(last, 10, 8)
	if !a.Is4() || err != nil || int(end) < int(a.As4()[3]) {
		k.fail(at, "virtual_server_group: range %q: want A.B.C.D-E with E from D to 255", v)
		return nil, false
	}
	var out []netip.Addr
	for b := a; ; b = b.Next() {
		out = append(out, b)
		if b.As4()[3] == byte(end) || len(out) >= maxGroupRange {
			break
		}
	}
	return out, true
}

// service converts one virtual_server block into a service whose address
// setVIP fills in.
func (k *kaImporter) service(n *kaNode, origin string, setVIP func(*service)) {
	// keepalived's lb_kind default is NAT, unlike ipvsadm's DR.
	s := &service{at: n.at, origin: origin, protocol: "tcp", forward: "nat"}
	setVIP(s)
	vs := kaVS{}
	var reals []*kaNode
	persist := false
	for _, c := range n.kids {
		switch c.name() {
		case "real_server":
			reals = append(reals, c)
			continue
		case "delay_loop":
			if d, ok := k.duration(c); ok {
				vs.delayLoop = d
			}
			continue
		case "virtualhost":
			if a, ok := k.args(c, 1, 1); ok {
				vs.virtualhost = a[0]
			}
			continue
		}
		switch c.name() {
		case "ops":
			vs.opsAt = c.at
		case "persistence_granularity":
			vs.granularityAt = c.at
		}
		k.vsSetting(s, c, &persist)
	}
	fitQuorum(s)
	if s.netmask != "" && s.persist == 0 {
		s.note(vs.granularityAt, "persistence_granularity %s: no effect without persistence_timeout", s.netmask)
		s.netmask = ""
	}
	if s.onePacket && s.protocol != "udp" {
		s.note(vs.opsAt, "ops: one-packet scheduling applies only to protocol UDP")
		s.onePacket = false
	}
	if len(s.flags) > 0 {
		var keep []string
		for _, f := range s.flags {
			if config.SchedulerFlags[f] == cmp.Or(s.scheduler, "wlc") {
				keep = append(keep, f)
			} else {
				s.note(n.at, "scheduler flag %s: applies only to the %s scheduler", f, config.SchedulerFlags[f])
			}
		}
		s.flags = keep
	}
	if s.stub == "" && len(s.ports) == 0 && s.port == 0 && s.persist == 0 {
		k.fail(n.at, "%s: port 0 (all ports) needs persistence_timeout, as in IPVS", origin)
		return
	}
	for _, c := range reals {
		r := k.realServer(s, vs, c)
		if r == nil {
			continue
		}
		if i := slices.IndexFunc(s.reals, func(x *dest) bool { return sameReal(s, x, r.addr, r.port) }); i >= 0 {
			k.fail(c.at, "real_server %s is already in this virtual_server (line %d)", strings.Join(c.words[1:], " "), s.reals[i].at.Line)
			continue
		}
		s.reals = append(s.reals, r)
	}
	hoistCheck(s)
	onFailure(s)
	k.d.services = append(k.d.services, s)
}

// vsSetting applies one virtual_server statement other than real_server,
// delay_loop and virtualhost.
func (k *kaImporter) vsSetting(s *service, c *kaNode, persist *bool) {
	switch c.name() {
	case "lb_algo", "lvs_sched":
		a, ok := k.args(c, 1, 1)
		if !ok {
			return
		}
		if slices.Contains(config.Schedulers, a[0]) {
			s.scheduler = a[0]
		} else {
			s.note(c.at, "%s %s: uvs has no such scheduler; it uses wlc", c.name(), a[0])
		}
	case "lb_kind", "lvs_method":
		a, ok := k.args(c, 1, 1)
		if !ok {
			return
		}
		switch strings.ToUpper(a[0]) {
		case "NAT":
			s.forward = "nat"
		case "DR":
			s.forward = "dr"
		case "TUN":
			s.forward = "tun"
		default:
			k.fail(c.at, "%s %q: want NAT, DR or TUN", c.name(), a[0])
		}
	case "persistence_timeout":
		a, ok := k.args(c, 0, 1)
		if !ok {
			return
		}
		s.persist = 360 // keepalived's default when no value is given.
		if len(a) == 1 {
			n, err := strconv.ParseUint(a[0], 10, 31)
			if err != nil {
				k.fail(c.at, "persistence_timeout %q: want a number of seconds", a[0])
				return
			}
			s.persist = int(n)
		}
		*persist = true
	case "persistence_granularity":
		a, ok := k.args(c, 1, 1)
		if !ok {
			return
		}
		if vip, err := netip.ParseAddr(s.vip); err == nil && vip.Is6() {
			// An IPv6 service's granularity is a prefix length (keepalived passes it to
			// IPVS as such).
			n, err := strconv.ParseUint(a[0], 10, 8)
			if err != nil || n > 128 {
				k.fail(c.at, "persistence_granularity %q: want a prefix length 0..128 for an IPv6 service", a[0])
				return
			}
			if n != 128 {
				s.netmask = a[0]
			}
			return
		}
		m, err := netip.ParseAddr(a[0])
		if n, nerr := strconv.ParseUint(a[0], 10, 8); nerr == nil && n <= 32 {
			m, err = prefixMask(int(n)), nil
		}
		if err != nil || !m.Is4() {
			k.fail(c.at, "persistence_granularity %q: want a dotted IPv4 netmask", a[0])
			return
		}
		b := m.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		if v != 0 && (^v)&((^v)+1) != 0 {
			k.fail(c.at, "persistence_granularity %s: netmask is not contiguous", a[0])
			return
		}
		if v != 0xffffffff {
			s.netmask = m.String()
		}
	case "protocol":
		a, ok := k.args(c, 1, 1)
		if !ok {
			return
		}
		switch strings.ToUpper(a[0]) {
		case "TCP":
			s.protocol = "tcp"
		case "UDP":
			s.protocol = "udp"
		case "SCTP":
			if s.stub == "" {
				s.stub = "protocol SCTP: uvs has no SCTP services; written commented out"
			}
		default:
			k.fail(c.at, "protocol %q: want TCP, UDP or SCTP", a[0])
		}
	case "ops":
		s.onePacket = true
	case "sh-port", "sh-fallback", "mh-port", "mh-fallback":
		// Scheduler flags, as ipvsadm -b; checked against lb_algo once
		// the whole block is read.
		if !slices.Contains(s.flags, c.name()) {
			s.flags = append(s.flags, c.name())
		}
	case "sorry_server":
		a, ok := k.args(c, 1, 2)
		if !ok {
			return
		}
		addr, err := netip.ParseAddr(a[0])
		if err != nil {
			k.fail(c.at, "sorry_server: %q is not an IP address", a[0])
			return
		}
		addr = addr.Unmap()
		if vip, err := netip.ParseAddr(s.vip); err == nil && vip.Is4() != addr.Is4() {
			s.note(c.at, "sorry_server %s: not of the VIP's family; left out", a[0])
			return
		}
		v := addr.String()
		if len(a) == 2 {
			p, ok := k.port(c.at, "sorry_server", a[1])
			if !ok {
				return
			}
			switch {
			case p == s.port || p == 0:
				// "IP" alone: the service's port (or the client's).
			case len(s.ports) > 0 || s.placeholder || s.port == 0:
				s.note(c.at, "sorry_server port %d: a multi-port or all-ports service sends to the sorry server on the client's port", p)
			default:
				v = netip.AddrPortFrom(addr, uint16(p)).String()
			}
		}
		s.extra = append(s.extra, keyValue{key: "sorry_server", value: quote(v), at: c.at})
	case "quorum", "hysteresis":
		a, ok := k.args(c, 1, 1)
		if !ok {
			return
		}
		n, err := strconv.ParseUint(a[0], 10, 31)
		if err != nil {
			k.fail(c.at, "%s %q: want a non-negative integer", c.name(), a[0])
			return
		}
		s.extra = slices.DeleteFunc(s.extra, func(kv keyValue) bool { return kv.key == c.name() })
		s.extra = append(s.extra, keyValue{key: c.name(), value: strconv.FormatUint(n, 10), at: c.at})
	case "nat_mask":
		s.note(c.at, "nat_mask: obsolete in keepalived and has no uvs equivalent")
	default:
		s.note(c.at, "%s: not carried over: uvs has no equivalent", strings.Join(c.words, " "))
	}
}

// port parses a port number.
func (k *kaImporter) port(at Problem, what, v string) (int, bool) {
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil {
		k.fail(at, "%s: port %q must be a number in 0..65535 (uvs import resolves nothing)", what, v)
		return 0, false
	}
	return int(n), true
}

// duration parses a keepalived time in seconds (decimals allowed) into
// milliseconds; it must be positive.
func (k *kaImporter) duration(n *kaNode) (int, bool) {
	a, ok := k.args(n, 1, 1)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(a[0], 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f > 1e6 {
		k.fail(n.at, "%s %q: want a positive number of seconds", n.name(), a[0])
		return 0, false
	}
	return max(1, int(math.Round(f*1000))), true
}

func (k *kaImporter) realServer(s *service, vs kaVS, n *kaNode) *dest {
	a, ok := k.args(n, 1, 2)
	if !ok {
		return nil
	}
	addr, err := netip.ParseAddr(a[0])
	if err != nil || addr.Zone() != "" {
		k.fail(n.at, "real_server: %q is not an IP address (uvs import resolves nothing)", a[0])
		return nil
	}
	addr = addr.Unmap()
	r := &dest{at: n.at, addr: addr.String(), port: -1, weight: 1, forward: s.forward}
	if r.forward == "" {
		r.forward = "dr"
	}
	if len(a) == 2 {
		if r.port, ok = k.port(n.at, "real_server", a[1]); !ok {
			return nil
		}
	}
	if stub := mixedFamily(s.vip, addr.String(), r.forward); stub != "" && s.stub == "" {
		r.stub = fmt.Sprintf("real_server %s: %s", a[0], strings.Replace(stub, "(-i)", "(lb_kind TUN)", 1))
	}
	// config refuses an unspecified or multicast IPv6 real server as it does such a VIP
	// (FuzzImportKeepalived found "real_server 0::"; seed 6d5161a720fd3631 stays).
	if !vipUsable(addr) && r.stub == "" {
		r.stub = fmt.Sprintf("real_server %s: not a unicast address; written commented out", a[0])
	}
	if !n.block {
		k.fail(n.at, "real_server needs a { ... } block")
		return nil
	}
	fitRealPort(n.at, s, r)
	droppedCheck := false
	for _, c := range n.kids {
		switch c.name() {
		case "weight":
			a, ok := k.args(c, 1, 1)
			if !ok {
				continue
			}
			w, err := strconv.ParseUint(a[0], 10, 16)
			if err != nil {
				k.fail(c.at, "weight %q: want an integer in 0..65535", a[0])
				continue
			}
			r.weight = int(w)
		case "inhibit_on_failure":
			at := c.at
			r.inhibit = &at
		case "uthreshold", "lthreshold":
			a, ok := k.args(c, 1, 1)
			if !ok {
				continue
			}
			v, err := strconv.ParseUint(a[0], 10, 16)
			if err != nil {
				k.fail(c.at, "%s %q: want an integer in 0..65535", c.name(), a[0])
				continue
			}
			if c.name() == "uthreshold" {
				r.upper = int(v)
			} else {
				r.lower = int(v)
			}
		case "TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "UDP_CHECK", "SMTP_CHECK":
			if !c.block {
				k.fail(c.at, "%s needs a { ... } block", c.name())
				continue
			}
			if r.check != nil {
				r.note(c.at, "%s: uvs runs one check per real server; the first one is kept", c.name())
				continue
			}
			r.check = k.check(vs, c, r)
		default:
			if c.block && strings.HasSuffix(c.name(), "_CHECK") {
				droppedCheck = true
			}
			r.note(c.at, "%s: not carried over: uvs has no equivalent", strings.Join(c.words, " "))
		}
	}
	if droppedCheck && r.check == nil {
		r.note(n.at, "real_server %s: no health check carried over: uvs will never mark this real server down", a[0])
	}
	if r.upper > 0 && r.lower > r.upper {
		r.note(n.at, "lthreshold %d: above uthreshold %d; left out", r.lower, r.upper)
		r.lower = 0
	}
	if r.upper == 0 && r.lower > 0 {
		r.note(n.at, "lthreshold %d: no effect without uthreshold; left out", r.lower)
		r.lower = 0
	}
	return r
}

// check converts a keepalived checker block.
func (k *kaImporter) check(vs kaVS, n *kaNode, r *dest) *check {
	c := &check{interval: cmp.Or(vs.delayLoop, keepalivedDelayLoop), timeout: keepalivedConnectTimeout}
	switch n.name() {
	case "TCP_CHECK":
		c.typ = "tcp"
	case "HTTP_GET":
		c.typ, c.host = "http", vs.virtualhost
	case "SSL_GET":
		c.typ, c.host = "https", vs.virtualhost
	case "MISC_CHECK":
		c.typ = "exec"
		c.timeout = 0 // misc_timeout defaults to the interval.
	case "UDP_CHECK":
		c.typ = "udp"
	case "SMTP_CHECK":
		// keepalived speaks SMTP (EHLO/HELO, QUIT); uvs connects and waits for the
		// 220 greeting, which is what tells a live SMTP server from an open port.
		// connect_port defaults to 25, as in keepalived's check_smtp.c.
		c.typ, c.port = "tcp", 25
		c.extra = append(c.extra, keyValue{key: "expect", value: quote("^220"), at: n.at})
		r.note(n.at, "SMTP_CHECK: converted to a tcp check that expects the 220 greeting; uvs does not send HELO")
	}
	requireReply := false
	urls := 0
	for _, o := range n.kids {
		switch o.name() {
		case "connect_port":
			a, ok := k.args(o, 1, 1)
			if !ok {
				continue
			}
			if p, ok := k.port(o.at, "connect_port", a[0]); ok && c.typ != "exec" {
				c.port = p
			}
		case "connect_timeout", "misc_timeout":
			if d, ok := k.duration(o); ok {
				c.timeout = d
			}
		case "delay_loop":
			if d, ok := k.duration(o); ok {
				c.interval = d
			}
		case "warmup":
			if d, ok := k.duration(o); ok {
				c.extra = append(c.extra, keyValue{key: "warmup", value: quote(dur(d)), at: o.at})
			}
		case "retry", "nb_get_retry":
			a, ok := k.args(o, 1, 1)
			if !ok {
				continue
			}
			v, err := strconv.ParseUint(a[0], 10, 16)
			if err != nil {
				k.fail(o.at, "%s %q: want a non-negative integer", o.name(), a[0])
				continue
			}
			// The first failure plus the retries: then the real is down.
			c.fall = int(v) + 1
		case "virtualhost":
			if a, ok := k.args(o, 1, 1); ok && (c.typ == "http" || c.typ == "https") {
				c.host = a[0]
			}
		case "url":
			if c.typ != "http" && c.typ != "https" {
				r.note(o.at, "url in %s: not carried over", n.name())
				continue
			}
			urls++
			if urls > 1 {
				r.note(o.at, "url: uvs checks one path per real server; the first url is kept")
				continue
			}
			k.url(o, c, r)
		case "payload", "require_reply", "min_reply_length", "max_reply_length", "helo_name":
			if !k.udpOrSMTPOption(n, o, c, r, &requireReply) {
				r.note(o.at, "%s in %s: not carried over: uvs has no equivalent", strings.Join(o.words, " "), n.name())
			}
		case "misc_path":
			if c.typ != "exec" {
				r.note(o.at, "misc_path in %s: not carried over: it belongs in MISC_CHECK", n.name())
				continue
			}
			a, ok := k.args(o, 1, 1)
			if !ok {
				continue
			}
			c.command = strings.Fields(a[0])
			if len(c.command) == 0 {
				k.fail(o.at, "misc_path is empty")
				continue
			}
			if strings.ContainsAny(a[0], "|&;<>()$`\\\"'*?[]~") {
				c.command = []string{"/bin/sh", "-c", a[0]}
				r.note(o.at, "misc_path: has shell syntax; uvs runs commands without a shell, so it is wrapped in /bin/sh -c")
			}
		default:
			r.note(o.at, "%s in %s: not carried over: uvs has no equivalent", strings.Join(o.words, " "), n.name())
		}
	}
	if c.typ == "exec" && len(c.command) == 0 {
		k.fail(n.at, "MISC_CHECK needs misc_path")
		return nil
	}
	if n.name() == "UDP_CHECK" && !requireReply {
		// check_udp.c passes a check without require_reply unless an ICMP port
		// unreachable comes back; uvs's udp check always waits for a reply.
		r.note(n.at, "UDP_CHECK: without require_reply keepalived passes unless an ICMP port unreachable comes back; uvs's udp check needs a reply, so a real server that never answers will be marked down")
	}
	if c.timeout == 0 {
		c.timeout = c.interval // misc_timeout's default.
	}
	if c.timeout > c.interval {
		r.note(n.at, "%s: timeout %s is longer than the interval %s; uvs caps it at the interval", n.name(), dur(c.timeout), dur(c.interval))
		c.timeout = c.interval
	}
	return c
}

// url converts an HTTP_GET url block: path, status_code, digest.
func (k *kaImporter) url(n *kaNode, c *check, r *dest) {
	for _, o := range n.kids {
		switch o.name() {
		case "path":
			a, ok := k.args(o, 1, 1)
			if !ok {
				continue
			}
			c.path = a[0]
			if !strings.HasPrefix(c.path, "/") {
				r.note(o.at, "path %s: made absolute, as uvs requires", a[0])
				c.path = "/" + c.path
			}
		case "status_code":
			a, ok := k.args(o, 1, -1)
			if !ok {
				continue
			}
			for _, v := range a {
				lo, hi, isRange := strings.Cut(v, "-")
				if !isRange {
					hi = lo
				}
				l, err1 := strconv.Atoi(lo)
				h, err2 := strconv.Atoi(hi)
				if err1 != nil || err2 != nil || l < 100 || h > 599 || l > h {
					k.fail(o.at, "status_code %q: want HTTP statuses in 100..599 (N or N-M)", v)
					break
				}
				for st := l; st <= h; st++ {
					if !slices.Contains(c.status, st) {
						c.status = append(c.status, st)
					}
				}
			}
		case "digest":
			a, ok := k.args(o, 1, 1)
			if !ok {
				continue
			}
			d := strings.ToLower(a[0])
			if len(d) != 32 || strings.Trim(d, "0123456789abcdef") != "" {
				r.note(o.at, "digest %s: not an MD5 digest (32 hex digits, as genhash prints); left out", a[0])
				continue
			}
			c.extra = append(c.extra, keyValue{key: "digest", value: quote(d), at: o.at})
		default:
			r.note(o.at, "%s in url: not carried over: uvs has no equivalent", strings.Join(o.words, " "))
		}
	}
}

// maxQuorum is the greatest quorum uvs accepts: 1024 reals of the
// greatest weight.
const maxQuorum = 65535 * 1024

// fitQuorum drops a quorum or hysteresis that uvs would reject: quorum in
// 1..maxQuorum (keepalived's default is 1), hysteresis below quorum.
func fitQuorum(s *service) {
	quorum := 1
	var kept []keyValue
	for _, kv := range s.extra {
		if kv.key == "quorum" {
			n, _ := strconv.Atoi(kv.value)
			if n < 1 || n > maxQuorum {
				s.note(kv.at, "quorum %d: out of range 1..%d; left out", n, maxQuorum)
				continue
			}
			quorum = n
		}
		kept = append(kept, kv)
	}
	s.extra = slices.DeleteFunc(kept, func(kv keyValue) bool {
		if kv.key != "hysteresis" {
			return false
		}
		if n, _ := strconv.Atoi(kv.value); n >= quorum {
			s.note(kv.at, "hysteresis %d: must be below the quorum %d; left out", n, quorum)
			return true
		}
		return false
	})
}

// onFailure sets the service's on_failure from its reals'
// inhibit_on_failure. keepalived removes a failed real unless the real says
// inhibit_on_failure; uvs sets this per service, and only checks make it
// matter.
func onFailure(s *service) {
	checked := s.check != nil
	var inhibit []*dest
	for _, r := range s.reals {
		checked = checked || r.check != nil
		if r.inhibit != nil {
			inhibit = append(inhibit, r)
		}
	}
	switch {
	case len(inhibit) > 0 && !checked:
		s.note(*inhibit[0].inhibit, "inhibit_on_failure: no effect without a health check")
	case !checked:
	case len(inhibit) == len(s.reals):
		s.extra = append(s.extra, keyValue{key: "on_failure", value: quote("quiesce"), at: *inhibit[0].inhibit})
	case len(inhibit) == 0:
		s.extra = append(s.extra, keyValue{key: "on_failure", value: quote("remove"), at: s.at})
	default:
		for _, r := range inhibit {
			r.note(*r.inhibit, "inhibit_on_failure: uvs sets on_failure per service, and only some of this virtual_server's reals have it; on_failure = \"remove\" applies to all")
		}
		s.extra = append(s.extra, keyValue{key: "on_failure", value: quote("remove"), at: s.at})
	}
}

// hoistCheck moves a check that every real server has, identically, to
// the service.
func hoistCheck(s *service) {
	if len(s.reals) == 0 || s.reals[0].check == nil {
		return
	}
	for _, r := range s.reals[1:] {
		if !r.check.equal(s.reals[0].check) {
			return
		}
	}
	s.check = s.reals[0].check
	for _, r := range s.reals {
		r.check = nil
	}
}

// dur formats milliseconds as a Go duration string.
func dur(ms int) string {
	if ms%1000 == 0 {
		return strconv.Itoa(ms/1000) + "s"
	}
	return strconv.Itoa(ms) + "ms"
}

// overlaps reports VIP:port/protocol endpoints claimed by two services,
// which uvs (like IPVS) rejects.
func overlaps(d *doc) []Problem {
	type endpoint struct {
		vip   string
		port  int
		proto string
	}
	seen := map[endpoint]*service{}
	var out []Problem
	for _, s := range d.services {
		if s.stub != "" {
			continue
		}
		ports := s.ports
		if len(ports) == 0 {
			ports = []int{s.port}
		}
		for _, p := range ports {
			e := endpoint{s.vip, p, s.protocol}
			if o := seen[e]; o != nil {
				out = append(out, Problem{File: s.at.File, Line: s.at.Line,
					Msg: fmt.Sprintf("%s:%d/%s is also the service at %s", s.vip, p, s.protocol, where(o.at))})
				break
			}
			seen[e] = s
		}
	}
	return out
}

// udpOrSMTPOption converts the options of UDP_CHECK (payload, require_reply and the reply
// lengths, hex as in check_udp.c) and SMTP_CHECK (helo_name). It reports false for an
// option that does not belong to n's checker.
func (k *kaImporter) udpOrSMTPOption(n, o *kaNode, c *check, r *dest, requireReply *bool) bool {
	switch {
	case n.name() == "SMTP_CHECK" && o.name() == "helo_name":
		r.note(o.at, "helo_name in SMTP_CHECK: not carried over: uvs does not send HELO")
		return true
	case n.name() != "UDP_CHECK" || o.name() == "helo_name":
		return false
	}
	switch o.name() {
	case "payload", "require_reply":
		if o.name() == "require_reply" {
			*requireReply = true
			if len(o.words) == 1 {
				return true
			}
		}
		data, err := hex.DecodeString(strings.Join(o.words[1:], ""))
		if err != nil || len(data) == 0 || !utf8.Valid(data) {
			r.note(o.at, "%s in UDP_CHECK: not carried over: uvs takes text, and %q is not hex for valid UTF-8 text (a masked reply is not supported either)", o.name(), strings.Join(o.words[1:], " "))
			return true
		}
		if o.name() == "payload" {
			c.extra = append(c.extra, keyValue{key: "payload", value: quote(string(data)), at: o.at})
		} else {
			// keepalived compares the first bytes of the reply with the data.
			c.extra = append(c.extra, keyValue{key: "expect", value: quote("^" + regexp.QuoteMeta(string(data))), at: o.at})
		}
	default: // min_reply_length, max_reply_length
		r.note(o.at, "%s in UDP_CHECK: not carried over: uvs checks the reply's content, not its length", strings.Join(o.words, " "))
	}
	return true
}

// vipUsable reports whether config accepts a as a VIP: an IPv6 VIP may be neither
// unspecified nor multicast (FuzzImportKeepalived found "virtual_server :: 1").
func vipUsable(a netip.Addr) bool {
	return !a.Is6() || !(a.IsUnspecified() || a.IsMulticast())
}
