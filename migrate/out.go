package migrate

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/uvs-project/uvs/config"
)

// service is a service being converted, in uvs terms. Fields at their zero
// value are left out of the output (uvs defaults apply).
type service struct {
	at     Problem // File and Line of the line that created it; Msg unused.
	origin string  // The input that created it, for the leading comment.
	stub   string  // If set, why the service is written commented out.

	placeholder bool // A stub whose VIP and ports the operator writes.

	vip       string
	protocol  string // "tcp" or "udp"
	port      int
	ports     []int
	scheduler string
	flags     []string
	persist   int    // persistence_timeout in seconds; 0 = none.
	netmask   string // persistence_netmask, dotted; a prefix length for IPv6.
	forward   string
	onePacket bool
	check     *check
	extra     []keyValue // Target keys (see targetKeys).
	notes     []Problem
	reals     []*dest
}

// dest is a real server being converted (IPVS calls it a destination; "real" is a builtin).
type dest struct {
	at      Problem
	addr    string
	port    int // -1 = the service's port.
	weight  int
	forward string // "" = the service's.
	upper   int
	lower   int
	inhibit *Problem // Where keepalived's inhibit_on_failure was set; nil if not.
	check   *check
	extra   []keyValue
	notes   []Problem
	stub    string
}

// check is a health check being converted.
type check struct {
	typ      string
	interval int // Milliseconds; 0 = default.
	timeout  int // Milliseconds; 0 = default.
	fall     int
	path     string
	host     string
	status   []int
	port     int
	command  []string
	extra    []keyValue
}

// keyValue is a target key and its value, already TOML-encoded.
type keyValue struct {
	key, value string
	at         Problem
}

func (c *check) equal(o *check) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.typ == o.typ && c.interval == o.interval && c.timeout == o.timeout && c.fall == o.fall &&
		c.path == o.path && c.host == o.host && slices.Equal(c.status, o.status) && c.port == o.port &&
		slices.Equal(c.command, o.command) &&
		slices.EqualFunc(c.extra, o.extra, func(a, b keyValue) bool { return a.key == b.key && a.value == b.value })
}

// where formats the location of p as "FILE:LINE".
func where(p Problem) string {
	if p.Line > 0 {
		return p.File + ":" + strconv.Itoa(p.Line)
	}
	return p.File
}

// doc is a converted file: global notes, timeouts and services.
type doc struct {
	from     string // "ipvsadm-save" or "keepalived.conf", for the header.
	name     string
	notes    []Problem // Notes not tied to a service.
	timeouts [3]int    // tcp, tcp_fin, udp in seconds; 0 = default.
	services []*service

	vrrp       []*kaVRRP      // Converted vrrp_instance blocks (keepalived_vrrp.go).
	syncGroups []*kaSyncGroup // Converted vrrp_sync_group blocks.
	sync       string         // the [sync] table, rendered (keepalived's lvs_sync_daemon); "" = none
}

// note records a global note.
func (d *doc) note(at Problem, format string, args ...any) {
	d.notes = append(d.notes, Problem{File: at.File, Line: at.Line, Msg: fmt.Sprintf(format, args...)})
}

func (s *service) note(at Problem, format string, args ...any) {
	s.notes = append(s.notes, Problem{File: at.File, Line: at.Line, Msg: fmt.Sprintf(format, args...)})
}

func (r *dest) note(at Problem, format string, args ...any) {
	r.notes = append(r.notes, Problem{File: at.File, Line: at.Line, Msg: fmt.Sprintf(format, args...)})
}

// writer builds the TOML text. Lines written while prefix is "# " are
// commented out (a stub).
type writer struct {
	b      strings.Builder
	prefix string
	notes  []Problem
}

func (w *writer) line(indent, format string, args ...any) {
	l := w.prefix + indent + fmt.Sprintf(format, args...)
	w.b.WriteString(strings.TrimRight(l, " "))
	w.b.WriteByte('\n')
}

// comment writes a comment line; text is made safe for TOML (no control
// characters, valid UTF-8).
func (w *writer) comment(indent, text string) {
	w.b.WriteString(indent)
	w.b.WriteString("# ")
	w.b.WriteString(commentSafe(text))
	w.b.WriteByte('\n')
}

// importNote writes p as a "# uvs import:" comment and records it.
func (w *writer) importNote(indent string, p Problem) {
	w.notes = append(w.notes, p)
	w.comment(indent, "uvs import: "+p.String())
}

// render returns the TOML for d and every note written into it.
func (d *doc) render() ([]byte, []Problem) {
	w := &writer{}
	w.comment("", fmt.Sprintf("Converted from %s %s by uvs import. Check it with: uvs check --config FILE", d.from, commentSafe(d.name)))
	w.comment("", `Lines starting with "# uvs import:" are settings that were not carried over, and why.`)
	for _, n := range d.notes {
		w.importNote("", n)
	}
	w.b.WriteString("\n[director]\n")
	if ifs := d.vrrpInterfaces(); len(ifs) > 0 {
		w.comment("", "uvs import: the interfaces of the vrrp_instances; add any other that receives VIP traffic (and NAT replies).")
		w.line("", "interfaces = %s", strList(ifs))
	} else {
		w.comment("", "uvs import: fill in the interfaces that receive VIP traffic (and NAT replies);")
		w.comment("", `uvs import: "eth0" is a placeholder, nothing in the input names them.`)
		w.b.WriteString("interfaces = [\"eth0\"]\n")
	}
	if d.timeouts != [3]int{} {
		w.b.WriteString("\n[timeouts]\n")
		for i, k := range []string{"tcp", "tcp_fin", "udp"} {
			if d.timeouts[i] > 0 {
				w.line("", "%s = \"%ds\"", k, d.timeouts[i])
			}
		}
	}
	for _, s := range d.services {
		w.service(s)
	}
	w.vrrpTOML(d)
	w.b.WriteString(d.sync)
	return []byte(w.b.String()), w.notes
}

func (w *writer) service(s *service) {
	w.b.WriteByte('\n')
	w.comment("", fmt.Sprintf("From %s: %s", where(s.at), s.origin))
	sortNotes(s.notes)
	for _, n := range s.notes {
		w.importNote("", n)
	}
	if s.stub != "" {
		w.importNote("", Problem{File: s.at.File, Line: s.at.Line, Msg: s.stub})
		w.prefix = "# "
		defer func() { w.prefix = "" }()
	}
	w.line("", "[[service]]")
	w.line("", "vip = %s", quote(s.vip))
	if s.protocol != "" && s.protocol != "tcp" {
		w.line("", "protocol = %s", quote(s.protocol))
	}
	if s.placeholder {
		w.line("", "ports = [PORT, PORT]")
	} else if len(s.ports) > 0 {
		w.line("", "ports = %s", intList(s.ports))
	} else {
		w.line("", "port = %d", s.port)
	}
	if s.scheduler != "" {
		w.line("", "scheduler = %s", quote(s.scheduler))
	}
	if len(s.flags) > 0 {
		w.line("", "scheduler_flags = %s", strList(s.flags))
	}
	if s.persist > 0 {
		w.line("", "persistence_timeout = \"%ds\"", s.persist)
		if s.netmask != "" {
			if _, err := strconv.Atoi(s.netmask); err == nil {
				w.line("", "persistence_netmask = %s", s.netmask) // an IPv6 prefix length
			} else {
				w.line("", "persistence_netmask = %s", quote(s.netmask))
			}
		}
	}
	if s.forward != "" {
		w.line("", "forward = %s", quote(s.forward))
	}
	if s.onePacket {
		w.line("", "one_packet = true")
	}
	w.extra("", s.extra)
	if s.check != nil {
		w.line("", "")
		w.line("  ", "[service.check]")
		w.check("  ", s.check)
	}
	for _, r := range s.reals {
		w.real(s, r)
	}
}

func (w *writer) real(s *service, r *dest) {
	w.line("", "")
	sortNotes(r.notes)
	for _, n := range r.notes {
		w.importNote("  ", n)
	}
	prefix := w.prefix
	if r.stub != "" {
		w.importNote("  ", Problem{File: r.at.File, Line: r.at.Line, Msg: r.stub})
		w.prefix = "# "
		defer func() { w.prefix = prefix }()
	}
	w.line("  ", "[[service.real]]")
	w.line("  ", "address = %s", quote(r.addr))
	if r.port >= 0 {
		w.line("  ", "port = %d", r.port)
	}
	if r.weight != 1 {
		w.line("  ", "weight = %d", r.weight)
	}
	if sf := cmp.Or(s.forward, "dr"); r.forward != "" && r.forward != sf {
		w.line("  ", "forward = %s", quote(r.forward))
	}
	if r.upper > 0 {
		w.line("  ", "upper_threshold = %d", r.upper)
	}
	if r.lower > 0 {
		w.line("  ", "lower_threshold = %d", r.lower)
	}
	w.extra("  ", r.extra)
	if r.check != nil {
		w.line("    ", "[service.real.check]")
		w.check("    ", r.check)
	}
}

func (w *writer) check(indent string, c *check) {
	w.line(indent, "type = %s", quote(c.typ))
	if c.interval > 0 {
		w.line(indent, "interval = %s", quote(dur(c.interval)))
	}
	if c.timeout > 0 {
		w.line(indent, "timeout = %s", quote(dur(c.timeout)))
	}
	if c.fall > 0 {
		w.line(indent, "fall = %d", c.fall)
	}
	if c.path != "" {
		w.line(indent, "path = %s", quote(c.path))
	}
	if c.host != "" {
		w.line(indent, "host = %s", quote(c.host))
	}
	if len(c.status) > 0 {
		w.line(indent, "expect_status = %s", intList(c.status))
	}
	if c.port > 0 {
		w.line(indent, "check_port = %d", c.port)
	}
	if len(c.command) > 0 {
		w.line(indent, "command = %s", strList(c.command))
	}
	w.extra(indent, c.extra)
}

// extra writes target keys: as settings when config has them, else as
// notes.
func (w *writer) extra(indent string, kvs []keyValue) {
	for _, kv := range kvs {
		if targetKeys[kv.key] {
			w.line(indent, "%s = %s", kv.key, kv.value)
			continue
		}
		w.importNote(indent, Problem{File: kv.at.File, Line: kv.at.Line,
			Msg: fmt.Sprintf("%s = %s: uvs has no %s key yet", kv.key, kv.value, kv.key)})
	}
}

// sortNotes orders notes by file and line, so that they read in input
// order whatever order the importer found them in.
func sortNotes(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
}

// quote returns s as a TOML basic string. Invalid UTF-8 becomes U+FFFD;
// control characters are escaped as TOML requires.
func quote(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// commentSafe replaces what a TOML comment may not hold (control
// characters other than tab, invalid UTF-8) with '?'.
func commentSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		if r == utf8.RuneError && n == 1 || r < 0x20 && r != '\t' || r == 0x7f {
			b.WriteByte('?')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func intList(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func strList(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = quote(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// finish renders d and checks the result with config.Parse: output that
// uvs check would reject is a bug here, reported as such rather than
// handed to the operator.
func finish(d *doc) (*Result, error) {
	text, notes := d.render()
	if _, err := config.Parse(d.name, text); err != nil {
		return nil, fmt.Errorf("migrate: generated configuration does not validate (a bug in uvs import): %w", err)
	}
	return &Result{TOML: text, Notes: notes}, nil
}
