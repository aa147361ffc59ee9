package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// decoder turns the generic map from toml.Decode into a Config, reporting
// wrong types, unparseable values and unknown keys. Decoding into a map and
// walking it by hand, rather than into tagged structs, lets it report every
// problem instead of stopping at the first type error, and give each one
// its array indices (toml.MetaData.Undecoded names "service.real.weight"
// without saying which service). Range and consistency checks are left to
// validate, which also runs on the finished Config.
type decoder struct {
	file     string
	lines    lineIndex
	problems []Problem
	syntax   bool            // The file is not TOML; problems holds the parse error only.
	quiet    map[string]bool // Keys whose validate problems would only echo a decode problem.
}

// hush keeps validate from reporting key: a decode problem elsewhere
// already explains it.
func (d *decoder) hush(key string) {
	if d.quiet == nil {
		d.quiet = map[string]bool{}
	}
	d.quiet[key] = true
}

func (d *decoder) problem(key, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: d.lines.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// table is one TOML table being decoded. Every key asked for is known; at
// done, keys present but never asked for are reported as unknown.
type table struct {
	d     *decoder
	path  string
	m     map[string]any
	known []string
}

func (t *table) key(k string) string { return joinKey(t.path, k) }

// get returns the raw value of k and whether it is present.
func (t *table) get(k string) (any, bool) {
	t.known = append(t.known, k)
	v, ok := t.m[k]
	return v, ok
}

func (t *table) has(k string) bool { _, ok := t.m[k]; return ok }

func (t *table) wrongType(k, want string, v any) {
	t.d.problem(t.key(k), "must be %s, not %s", want, typeName(v))
}

// knownKeysHook, when set (by a test), sees every table's known keys at done.
var knownKeysHook func(path string, known []string)

// done reports keys of t that were never asked for.
func (t *table) done() {
	if knownKeysHook != nil {
		knownKeysHook(t.path, t.known)
	}
	keys := make([]string, 0, len(t.m))
	for k := range t.m {
		if !slices.Contains(t.known, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		msg := "unknown key"
		if s := suggest(k, t.known); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		t.d.problem(t.key(k), "%s", msg)
	}
}

func (t *table) str(k string, dst *string) bool {
	v, ok := t.get(k)
	if !ok {
		return false
	}
	s, ok := v.(string)
	if !ok {
		t.wrongType(k, "a string", v)
		return false
	}
	*dst = s
	return true
}

func (t *table) boolean(k string, dst *bool) {
	v, ok := t.get(k)
	if !ok {
		return
	}
	b, ok := v.(bool)
	if !ok {
		t.wrongType(k, "true or false", v)
		return
	}
	*dst = b
}

// integer decodes an integer that must lie in [lo, hi]; values outside are
// reported here, since they may not fit the field.
func (t *table) integer(k string, lo, hi int64, dst *int64) bool {
	v, ok := t.get(k)
	if !ok {
		return false
	}
	n, ok := v.(int64)
	if !ok {
		t.wrongType(k, "an integer", v)
		return false
	}
	if n < lo || n > hi {
		t.d.problem(t.key(k), "%d is out of range %d..%d", n, lo, hi)
		return false
	}
	*dst = n
	return true
}

// int decodes an integer into an int; range checks are validate's.
func (t *table) int(k string, dst *int) bool {
	var n int64
	if !t.integer(k, math.MinInt, math.MaxInt, &n) {
		return false
	}
	*dst = int(n)
	return true
}

func (t *table) port(k string, dst *uint16) bool {
	var n int64
	if !t.integer(k, 0, math.MaxUint16, &n) {
		return false
	}
	*dst = uint16(n)
	return true
}

func (t *table) strings(k string, dst *[]string) bool {
	v, ok := t.get(k)
	if !ok {
		return false
	}
	list, ok := v.([]any)
	if !ok {
		t.wrongType(k, "an array of strings", v)
		return false
	}
	out := make([]string, 0, len(list))
	good := true
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			t.d.problem(indexKey(t.key(k), i), "must be a string, not %s", typeName(e))
			good = false
			continue
		}
		out = append(out, s)
	}
	*dst = out
	return good
}

// duration decodes a string with units ("900s", "5m") or an integer number
// of seconds, as INTERFACE.md says.
func (t *table) duration(k string, dst *time.Duration) bool {
	v, ok := t.get(k)
	if !ok {
		return false
	}
	switch v := v.(type) {
	case int64:
		if v > math.MaxInt64/int64(time.Second) || v < math.MinInt64/int64(time.Second) {
			t.d.problem(t.key(k), "%d seconds is too long", v)
			return false
		}
		*dst = time.Duration(v) * time.Second
		return true
	case string:
		dur, err := time.ParseDuration(v)
		if err != nil {
			if _, nerr := strconv.ParseFloat(v, 64); nerr == nil {
				t.d.problem(t.key(k), "invalid duration %q: a string needs a unit, as in \"%ss\"; or write an integer number of seconds", v, v)
			} else {
				t.d.problem(t.key(k), "invalid duration %q: want a number with a unit (ms, s, m, h), as in \"900s\" or \"5m\", or an integer number of seconds", v)
			}
			return false
		}
		*dst = dur
		return true
	default:
		t.wrongType(k, `a duration ("900s", "5m") or an integer number of seconds`, v)
		return false
	}
}

// addr decodes an IP address; whether IPv6 is allowed is validate's call.
func (t *table) addr(k string, dst *netip.Addr) bool {
	var s string
	if !t.str(k, &s) {
		return false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.d.problem(t.key(k), "invalid IP address %q", s)
		return false
	}
	*dst = a
	return true
}

// enum decodes a string with parse, reporting the parse error.
func enum[T ~uint8](t *table, k string, parse func(string) (T, error), dst *T) bool {
	var s string
	if !t.str(k, &s) {
		return false
	}
	v, err := parse(s)
	if err != nil {
		t.d.problem(t.key(k), "%s", strings.TrimPrefix(err.Error(), "config: "))
		return false
	}
	*dst = v
	return true
}

// sub returns the sub-table k, or an empty table when k is absent or is not
// a table (which is reported).
func (t *table) sub(k string) (*table, bool) {
	s := &table{d: t.d, path: t.key(k)}
	v, ok := t.get(k)
	if !ok {
		return s, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.wrongType(k, "a table", v)
		return s, false
	}
	s.m = m
	return s, true
}

// tables returns the array of tables k, written [[k]] or k = [{...}].
func (t *table) tables(k string) []*table {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	var ms []map[string]any
	switch v := v.(type) {
	case []map[string]any:
		ms = v
	case []any:
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				t.d.problem(indexKey(t.key(k), i), "must be a table, not %s", typeName(e))
				continue
			}
			ms = append(ms, m)
		}
	default:
		t.d.problem(t.key(k), "must be an array of tables, written [[%s]], not %s", stripIndices(t.key(k)), typeName(v))
		return nil
	}
	out := make([]*table, len(ms))
	for i, m := range ms {
		out[i] = &table{d: t.d, path: indexKey(t.key(k), i), m: m}
	}
	return out
}

// stripIndices turns "service[0].real" into "service.real", as written in
// a TOML table header.
func stripIndices(key string) string {
	var b strings.Builder
	skip := false
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c == '[':
			skip = true
		case c == ']':
			skip = false
		case !skip:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return "a date or time"
	}
}

// suggest returns the known key closest to k when it is a likely typo.
func suggest(k string, known []string) string {
	best, bestDist := "", 3
	for _, c := range known {
		if d := editDistance(k, c); d < bestDist && d < len(c) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decode parses data and decodes it into a Config with defaults applied.
// The Config is not yet validated.
func decode(name string, data []byte) (*decoder, *Config) {
	d := &decoder{file: name}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		p := Problem{File: name, Msg: err.Error()}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			p.Line, p.Msg = pe.Position.Line, pe.Message
		}
		// House style: lowercase, no final period.
		if p.Msg != "" {
			p.Msg = strings.ToLower(p.Msg[:1]) + strings.TrimSuffix(p.Msg[1:], ".")
		}
		d.problems, d.syntax = []Problem{p}, true
		return d, nil
	}
	d.lines = indexLines(data)
	root := &table{d: d, m: raw}
	c := &Config{Source: name}

	dir, _ := root.sub("director")
	d.director(dir, &c.Director)
	ct, _ := root.sub("conntrack")
	d.conntrack(ct, &c.Conntrack)
	to, _ := root.sub("timeouts")
	d.timeouts(to, &c.Timeouts)
	lt, ok := root.sub("lab")
	d.lab(lt, &c.Lab, ok)
	bt, ok := root.sub("bench")
	d.bench(bt, &c.Bench, ok)
	gt, ok := root.sub("bgp")
	d.bgp(gt, &c.BGP, ok)
	for _, st := range root.tables("service") {
		c.Services = append(c.Services, d.service(st))
	}
	for _, vt := range root.tables("vrrp") {
		c.VRRP = append(c.VRRP, d.vrrp(vt))
	}
	for _, gt := range root.tables("vrrp_sync_group") {
		c.VRRPSyncGroups = append(c.VRRPSyncGroups, d.vrrpSyncGroup(gt))
	}
	if st, ok := root.sub("sync"); ok {
		c.Sync = d.sync(st)
	}
	root.done()
	return d, c
}

func (d *decoder) director(t *table, dir *Director) {
	*dir = Director{ControlSocket: DefaultControlSocket, TXMode: TXRing, AnswerPing: true, RXRing: DefaultRXRing, Shield: ShieldAuto, Backend: BackendAuto}
	t.strings("interfaces", &dir.Interfaces)
	t.int("workers", &dir.Workers)
	if dir.Workers == 0 {
		dir.Workers = min(runtime.NumCPU(), MaxWorkers)
	}
	t.str("control_socket", &dir.ControlSocket)
	t.str("metrics_listen", &dir.MetricsListen)
	enum(t, "tx_mode", ParseTXMode, &dir.TXMode)
	enum(t, "rx_ring", ParseRXRing, &dir.RXRing)
	enum(t, "shield", ParseShieldMode, &dir.Shield)
	t.boolean("answer_ping", &dir.AnswerPing)
	enum(t, "backend", ParseBackend, &dir.Backend)
	t.done()
}

func (d *decoder) conntrack(t *table, ct *Conntrack) {
	*ct = Conntrack{MaxConnections: DefaultMaxConnections}
	t.int("max_connections", &ct.MaxConnections)
	t.boolean("sloppy_tcp", &ct.SloppyTCP)
	t.done()
}

func (d *decoder) timeouts(t *table, to *Timeouts) {
	*to = Timeouts{TCP: DefaultTCPTimeout, TCPFin: DefaultTCPFinTimeout, UDP: DefaultUDPTimeout}
	t.duration("tcp", &to.TCP)
	t.duration("tcp_fin", &to.TCPFin)
	t.duration("udp", &to.UDP)
	t.done()
}

func (d *decoder) service(t *table) Service {
	s := Service{
		Protocol:        TCP,
		Scheduler:       DefaultScheduler,
		MHTableSize:     DefaultMHTableSize,
		PersistenceBits: 32,
		Forward:         DR,
		Line:            d.lines.line(t.path),
	}
	t.str("name", &s.Name)
	if !t.addr("vip", &s.VIP) && !t.has("vip") {
		d.problem(t.key("vip"), "required")
	}
	if s.VIP.Is6() {
		s.PersistenceBits = 128 // IPVS's default for an IPv6 service: the whole address
	}
	enum(t, "protocol", ParseProtocol, &s.Protocol)

	portOK := true
	switch {
	case t.has("port") && t.has("ports"):
		t.get("port")
		d.problem(t.key("ports"), "port and ports cannot both be set")
		portOK = d.ports(t, &s.Ports)
	case t.has("ports"):
		portOK = d.ports(t, &s.Ports)
	case t.has("port"):
		portOK = t.port("port", &s.Port)
	default:
		t.get("port")
		t.get("ports")
		d.problem(t.key("port"), "required (0 means all ports; ports = [...] lists several)")
	}

	t.str("scheduler", &s.Scheduler)
	t.strings("scheduler_flags", &s.SchedulerFlags)
	t.int("mh_table_size", &s.MHTableSize)
	t.duration("persistence_timeout", &s.PersistenceTimeout)
	d.netmask(t, "persistence_netmask", &s.PersistenceBits)
	enum(t, "forward", ParseForward, &s.Forward)
	t.boolean("one_packet", &s.OnePacket)
	t.int("mss_clamp", &s.MSSClamp)
	t.addr("tunnel_source", &s.TunnelSource)
	if !enum(t, "dead_real", ParseDeadRealPolicy, &s.DeadReal) && !t.has("dead_real") {
		s.DeadReal = DeadRealKeep
		if s.Protocol == UDP {
			s.DeadReal = DeadRealExpire
		}
	}
	t.boolean("expire_quiescent_template", &s.ExpireQuiescentTemplate)
	s.OnFailure, s.Quorum = FailQuiesce, DefaultQuorum
	enum(t, "on_failure", ParseFailurePolicy, &s.OnFailure)
	t.duration("slow_start", &s.SlowStart)
	d.sorryServer(t, s.Port, &s.SorryServer)
	t.int("quorum", &s.Quorum)
	t.int("hysteresis", &s.Hysteresis)

	if ct, ok := t.sub("check"); ok {
		s.Check = d.check(ct)
	}
	if !portOK {
		// The port is unknown: do not also call it 0 (all ports), nor
		// call every real's port a port mapping.
		d.hush(t.key("port"))
	}
	for _, rt := range t.tables("real") {
		s.Reals = append(s.Reals, d.real(rt, &s))
		if !portOK {
			d.hush(rt.key("port"))
		}
	}
	t.done()
	return s
}

// sorryServer decodes "ip:port", or "ip" for the service's port.
func (d *decoder) sorryServer(t *table, port uint16, dst *netip.AddrPort) {
	var v string
	if !t.str("sorry_server", &v) {
		return
	}
	if a, err := netip.ParseAddr(v); err == nil {
		*dst = netip.AddrPortFrom(a, port)
		return
	}
	ap, err := netip.ParseAddrPort(v)
	if err != nil {
		d.problem(t.key("sorry_server"), "invalid address %q: want \"ip:port\" or \"ip\", as in \"10.0.0.9:80\"", v)
		return
	}
	*dst = ap
}

// ports decodes a list of ports; 0 is left for validate to reject. It
// reports whether any port was decoded.
func (d *decoder) ports(t *table, dst *[]uint16) bool {
	v, _ := t.get("ports")
	list, ok := v.([]any)
	if !ok {
		t.wrongType("ports", "an array of ports", v)
		return false
	}
	if len(list) == 0 {
		d.problem(t.key("ports"), "must not be empty")
		return false
	}
	for i, e := range list {
		k := indexKey(t.key("ports"), i)
		n, ok := e.(int64)
		switch {
		case !ok:
			d.problem(k, "must be an integer, not %s", typeName(e))
		case n < 0 || n > math.MaxUint16:
			d.problem(k, "%d is out of range 1..65535", n)
		default:
			*dst = append(*dst, uint16(n))
		}
	}
	return len(*dst) > 0
}

// netmask decodes a persistence netmask, dotted ("255.255.255.0", as
// ipvsadm -M) or a prefix length (24), into a prefix length.
func (d *decoder) netmask(t *table, k string, bits *int) {
	v, ok := t.get(k)
	if !ok {
		return
	}
	switch v := v.(type) {
	case int64:
		if v < 0 || v > 128 {
			d.problem(t.key(k), "prefix length %d is out of range 0..32 (IPv4) or 0..128 (IPv6)", v)
			return
		}
		*bits = int(v)
	case string:
		ones, err := ParseNetmask(v)
		if err != nil {
			d.problem(t.key(k), "%v", err)
			return
		}
		*bits = ones
	default:
		t.wrongType(k, `a netmask ("255.255.255.0") or a prefix length`, v)
	}
}

func (d *decoder) real(t *table, s *Service) Real {
	r := Real{Port: s.Port, Weight: 1, Forward: s.Forward, Line: d.lines.line(t.path)}
	if !t.addr("address", &r.Address) && !t.has("address") {
		d.problem(t.key("address"), "required")
	}
	t.port("port", &r.Port)
	t.int("weight", &r.Weight)
	enum(t, "forward", ParseForward, &r.Forward)
	t.int("upper_threshold", &r.UpperThreshold)
	t.int("lower_threshold", &r.LowerThreshold)
	if ct, ok := t.sub("check"); ok {
		r.Check = d.check(ct)
	}
	t.done()
	return r
}

func (d *decoder) check(t *table) *Check {
	c := &Check{
		Interval: DefaultCheckInterval,
		Timeout:  DefaultCheckTimeout,
		Rise:     DefaultCheckRise,
		Fall:     DefaultCheckFall,
		Path:     DefaultCheckPath,
		Via:      ViaReal,
	}
	if !enum(t, "type", ParseCheckType, &c.Type) && !t.has("type") {
		d.problem(t.key("type"), "required (%s)", oneOf(checkTypeNames[1:]))
	}
	t.duration("interval", &c.Interval)
	if !t.duration("timeout", &c.Timeout) && !t.has("timeout") && c.Interval > 0 {
		// A short interval with no timeout gets a timeout that fits.
		c.Timeout = min(c.Timeout, c.Interval)
	}
	t.int("rise", &c.Rise)
	t.int("fall", &c.Fall)
	t.str("path", &c.Path)
	t.str("host", &c.Host)
	d.expectStatus(t, &c.ExpectStatus)
	t.int("check_port", &c.Port)
	t.strings("command", &c.Command)
	t.str("payload", &c.Payload)
	t.str("expect", &c.Expect)
	t.str("digest", &c.Digest)
	t.boolean("tls_verify", &c.TLSVerify)
	t.duration("warmup", &c.Warmup)
	enum(t, "via", ParseCheckVia, &c.Via)

	// Keys that mean nothing for this type of check are mistakes.
	only := map[string][]CheckType{
		"path":          {CheckHTTP, CheckHTTPS},
		"host":          {CheckHTTP, CheckHTTPS},
		"expect_status": {CheckHTTP, CheckHTTPS},
		"command":       {CheckExec},
		"payload":       {CheckTCP, CheckUDP},
		"expect":        {CheckTCP, CheckUDP, CheckHTTP, CheckHTTPS},
		"check_port":    {CheckTCP, CheckUDP, CheckHTTP, CheckHTTPS},
		"digest":        {CheckHTTP, CheckHTTPS},
		"tls_verify":    {CheckHTTPS},
		"via":           {CheckTCP, CheckHTTP},
	}
	if c.Type != 0 {
		for _, k := range []string{"path", "host", "expect_status", "check_port", "command", "payload", "expect", "digest", "tls_verify", "via"} {
			if t.has(k) && !slices.Contains(only[k], c.Type) {
				names := make([]string, len(only[k]))
				for i, ty := range only[k] {
					names[i] = ty.String()
				}
				d.problem(t.key(k), "applies only to %s checks, not %s", oneOf(names), c.Type)
			}
		}
	}
	t.done()
	return c
}

// expectStatus decodes an HTTP status or a list of them.
func (d *decoder) expectStatus(t *table, dst *[]int) {
	v, ok := t.get("expect_status")
	if !ok {
		return
	}
	k := t.key("expect_status")
	switch v := v.(type) {
	case int64:
		if v < 100 || v > 599 {
			d.problem(k, "HTTP status %d is out of range 100..599", v)
			return
		}
		*dst = []int{int(v)}
	case []any:
		for i, e := range v {
			n, ok := e.(int64)
			switch {
			case !ok:
				d.problem(indexKey(k, i), "must be an integer, not %s", typeName(e))
			case n < 100 || n > 599:
				d.problem(indexKey(k, i), "HTTP status %d is out of range 100..599", n)
			default:
				*dst = append(*dst, int(n))
			}
		}
	default:
		t.wrongType("expect_status", "an HTTP status or an array of them", v)
	}
}
