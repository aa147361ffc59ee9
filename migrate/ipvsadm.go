package migrate

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/uvs-project/uvs/config"
)

// Options tunes an import. The zero value follows no includes and knows no
// firewall marks.
type Options struct {
	// Fwmarks gives the VIP and ports a firewall mark covers, which neither
	// ipvsadm-save nor keepalived.conf say (the marks are set by iptables
	// or nftables rules). A mark listed here becomes a multi-port service;
	// any other becomes a commented-out stub.
	Fwmarks map[uint32]Fwmark

	// Include is how keepalived include directives are followed; nil means
	// they are reported and not followed.
	Include *Include

	// Iptables is iptables-save output whose mangle-table MARK rules say
	// what the firewall marks of fwmark services select. Marks in Fwmarks
	// take precedence; nil means none.
	Iptables *Source
}

// Fwmark is what a firewall mark selects: one VIP, its ports, a protocol.
type Fwmark struct {
	VIP      netip.Addr
	Ports    []uint16
	Protocol string // "tcp" or "udp"; "" means tcp.
}

// ParseFwmark parses the --fwmark flag, "MARK=VIP:PORT[,PORT...][/udp]".
func ParseFwmark(s string) (uint32, Fwmark, error) {
	mark, rest, ok := strings.Cut(s, "=")
	if !ok {
		return 0, Fwmark{}, fmt.Errorf("fwmark %q: want MARK=VIP:PORT[,PORT...][/tcp|/udp]", s)
	}
	m, err := strconv.ParseUint(mark, 0, 32)
	if err != nil || m == 0 {
		return 0, Fwmark{}, fmt.Errorf("fwmark %q: mark must be an integer in 1..4294967295", s)
	}
	fm := Fwmark{Protocol: "tcp"}
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		fm.Protocol = rest[i+1:]
		rest = rest[:i]
		if fm.Protocol != "tcp" && fm.Protocol != "udp" {
			return 0, Fwmark{}, fmt.Errorf("fwmark %q: protocol must be tcp or udp", s)
		}
	}
	vip, ports, ok := strings.Cut(rest, ":")
	a, err := netip.ParseAddr(vip)
	if !ok || err != nil || !a.Is4() {
		return 0, Fwmark{}, fmt.Errorf("fwmark %q: want an IPv4 VIP, then :PORT[,PORT...]", s)
	}
	fm.VIP = a
	for _, p := range strings.Split(ports, ",") {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return 0, Fwmark{}, fmt.Errorf("fwmark %q: port %q must be in 1..65535", s, p)
		}
		if slices.Contains(fm.Ports, uint16(n)) {
			return 0, Fwmark{}, fmt.Errorf("fwmark %q: duplicate port %d", s, n)
		}
		fm.Ports = append(fm.Ports, uint16(n))
	}
	return uint32(m), fm, nil
}

// ipvsadm option names, long to short, as ipvsadm(8) lists them.
var ipvsadmLong = map[string]string{
	"--add-service": "-A", "--edit-service": "-E", "--delete-service": "-D", "--clear": "-C",
	"--restore": "-R", "--save": "-S", "--add-server": "-a", "--edit-server": "-e",
	"--delete-server": "-d", "--list": "-L", "--zero": "-Z",
	"--tcp-service": "-t", "--udp-service": "-u", "--fwmark-service": "-f",
	"--scheduler": "-s", "--persistent": "-p", "--netmask": "-M", "--sched-flags": "-b",
	"--real-server": "-r", "--gatewaying": "-g", "--ipip": "-i", "--masquerading": "-m",
	"--weight": "-w", "--u-threshold": "-x", "--l-threshold": "-y", "--ops": "-o",
	"--numeric": "-n", "--ipv6": "-6",
}

// ipvsadmArg says which short options take an argument; -p takes an
// optional one.
var ipvsadmArg = map[string]bool{
	"-t": true, "-u": true, "-f": true, "--sctp-service": true, "-s": true, "-M": true, "-b": true,
	"-r": true, "-w": true, "-x": true, "-y": true, "--pe": true, "--tun-type": true, "--tun-port": true,
}

// ipvsadmImporter holds the state of one ipvsadm import.
type ipvsadmImporter struct {
	opt      Options
	d        *doc
	problems []Problem
	byKey    map[string]*service
	marks    map[uint32]*markRule // From opt.Iptables.
}

// Ipvsadm converts ipvsadm-save (or ipvsadm -Sn, or ipvsadm -R input)
// read from data, naming it name in problems and notes.
func Ipvsadm(name string, data []byte, opt Options) (*Result, error) {
	im := &ipvsadmImporter{opt: opt, d: &doc{from: "ipvsadm rules", name: name}, byKey: map[string]*service{}, marks: iptablesMarks(opt.Iptables)}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		im.line(Problem{File: name, Line: line}, sc.Text())
	}
	if err := sc.Err(); err != nil {
		im.problems = append(im.problems, Problem{File: name, Line: line + 1, Msg: "line too long"})
	}
	if len(im.problems) == 0 {
		im.problems = overlaps(im.d)
	}
	if len(im.problems) > 0 {
		return nil, &Error{Problems: im.problems}
	}
	return finish(im.d)
}

func (im *ipvsadmImporter) fail(at Problem, format string, args ...any) {
	im.problems = append(im.problems, Problem{File: at.File, Line: at.Line, Msg: fmt.Sprintf(format, args...)})
}

// ipvsadmLine is one parsed command line.
type ipvsadmLine struct {
	cmd  string            // -A -E -D -C -a -e -d --set, or another command.
	opts map[string]string // Short option to argument ("" if none).
	set  []string          // --set arguments.
}

// parse splits text into a command and options, reporting bad syntax.
func (im *ipvsadmImporter) parse(at Problem, fields []string) (*ipvsadmLine, bool) {
	l := &ipvsadmLine{opts: map[string]string{}}
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		arg, hasArg := "", false
		if strings.HasPrefix(f, "--") {
			if k, v, ok := strings.Cut(f, "="); ok {
				f, arg, hasArg = k, v, true
			}
			if s, ok := ipvsadmLong[f]; ok {
				f = s
			}
		}
		switch f {
		case "-A", "-E", "-D", "-C", "-a", "-e", "-d", "-R", "-S", "-L", "-l", "-Z", "-h", "--help",
			"--start-daemon", "--stop-daemon":
			if l.cmd != "" {
				im.fail(at, "two commands, %s and %s, on one line", l.cmd, f)
				return nil, false
			}
			l.cmd = f
			if f == "--start-daemon" || f == "--stop-daemon" {
				return l, true // Daemon options follow; the command is ignored anyway.
			}
			continue
		case "--set":
			if l.cmd != "" {
				im.fail(at, "two commands, %s and --set, on one line", l.cmd)
				return nil, false
			}
			if len(fields)-i-1 < 3 {
				im.fail(at, "--set needs three timeouts: tcp tcpfin udp")
				return nil, false
			}
			l.cmd, l.set = "--set", fields[i+1:i+4]
			i += 3
			continue
		}
		if !strings.HasPrefix(f, "-") || f == "-" {
			im.fail(at, "unexpected argument %q", f)
			return nil, false
		}
		if _, dup := l.opts[f]; dup {
			im.fail(at, "option %s given twice", f)
			return nil, false
		}
		switch {
		case f == "-p":
			// The timeout is optional: take the next field if it is a number.
			if !hasArg && i+1 < len(fields) && !strings.HasPrefix(fields[i+1], "-") {
				i++
				arg = fields[i]
			}
		case ipvsadmArg[f]:
			if !hasArg {
				if i+1 >= len(fields) {
					im.fail(at, "option %s needs an argument", f)
					return nil, false
				}
				i++
				arg = fields[i]
			}
		case hasArg:
			im.fail(at, "option %s takes no argument", f)
			return nil, false
		}
		l.opts[f] = arg
	}
	if l.cmd == "" {
		im.fail(at, "no command (-A, -E, -a, -e, -D, -d, -C or --set)")
		return nil, false
	}
	return l, true
}

func (im *ipvsadmImporter) line(at Problem, text string) {
	fields := strings.Fields(text)
	if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
		return
	}
	// ipvsadm -R accepts lines that start with the command name.
	if fields[0] == "ipvsadm" || strings.HasSuffix(fields[0], "/ipvsadm") {
		fields = fields[1:]
		if len(fields) == 0 {
			return
		}
	}
	origin := strings.Join(fields, " ")
	l, ok := im.parse(at, fields)
	if !ok {
		return
	}
	switch l.cmd {
	case "-A", "-E":
		im.service(at, origin, l)
	case "-a", "-e":
		im.real(at, l)
	case "-D":
		if s := im.lookup(at, l); s != nil {
			delete(im.byKey, im.key(l))
			im.d.services = slices.DeleteFunc(im.d.services, func(x *service) bool { return x == s })
		}
	case "-d":
		s, addr, port, ok := im.serviceReal(at, l)
		if !ok {
			return
		}
		n := len(s.reals)
		s.reals = slices.DeleteFunc(s.reals, func(r *dest) bool { return sameReal(s, r, addr, port) })
		if len(s.reals) == n {
			im.fail(at, "-d: no real server %s in this service", l.opts["-r"])
		}
	case "-C":
		im.d.services = nil
		clear(im.byKey)
	case "--set":
		for i, v := range l.set {
			n, err := strconv.ParseUint(v, 10, 31)
			if err != nil {
				im.fail(at, "--set: timeout %q is not a number of seconds", v)
				return
			}
			if n > 0 { // 0 keeps the current value, as in ipvsadm.
				im.d.timeouts[i] = int(n)
			}
		}
	default:
		im.d.note(at, "%s: command ignored: it does not describe a service", l.cmd)
	}
}

// key identifies the virtual service a line names, as IPVS does.
func (im *ipvsadmImporter) key(l *ipvsadmLine) string {
	for _, o := range []string{"-t", "-u", "-f", "--sctp-service"} {
		if v, ok := l.opts[o]; ok {
			return o + " " + v
		}
	}
	return ""
}

// lookup returns the service a real-server line names, reporting a missing
// one.
func (im *ipvsadmImporter) lookup(at Problem, l *ipvsadmLine) *service {
	k := im.key(l)
	if k == "" {
		im.fail(at, "%s needs a virtual service: -t, -u or -f", l.cmd)
		return nil
	}
	s := im.byKey[k]
	if s == nil {
		im.fail(at, "no virtual service %s (add it with -A first)", k)
	}
	return s
}

// serviceOpts are the options a service line may carry.
var serviceOpts = []string{"-t", "-u", "-f", "--sctp-service", "-s", "-p", "-M", "-b", "-o", "-6", "-n", "--pe"}

// realOpts are the options a real-server line may carry.
var realOpts = []string{"-t", "-u", "-f", "--sctp-service", "-r", "-g", "-i", "-m", "-w", "-x", "-y", "-n", "-6",
	"--tun-type", "--tun-port", "--tun-nocsum", "--tun-csum", "--tun-remcsum"}

func (im *ipvsadmImporter) checkOpts(at Problem, l *ipvsadmLine, allowed []string) bool {
	var bad []string
	for o := range l.opts {
		if !slices.Contains(allowed, o) {
			bad = append(bad, o)
		}
	}
	slices.Sort(bad)
	for _, o := range bad {
		im.fail(at, "option %s does not apply to %s", o, l.cmd)
	}
	return len(bad) == 0
}

func (im *ipvsadmImporter) service(at Problem, origin string, l *ipvsadmLine) {
	if !im.checkOpts(at, l, serviceOpts) {
		return
	}
	k := im.key(l)
	if k == "" {
		im.fail(at, "%s needs a virtual service: -t, -u or -f", l.cmd)
		return
	}
	old := im.byKey[k]
	switch {
	case l.cmd == "-A" && old != nil:
		im.fail(at, "virtual service %s already exists (line %d)", k, old.at.Line)
		return
	case l.cmd == "-E" && old == nil:
		im.fail(at, "-E: no virtual service %s", k)
		return
	}
	// -E sets every service parameter again, unspecified ones to their
	// defaults, as ipvsadm does; the real servers stay.
	s := &service{at: at, origin: origin, protocol: "tcp"}
	if !im.serviceAddr(at, l, s) {
		return
	}
	if v, ok := l.opts["-s"]; ok {
		switch {
		case slices.Contains(config.Schedulers, v):
			s.scheduler = v
		default:
			s.note(at, "-s %s: uvs has no such scheduler; it uses wlc, the ipvsadm default", v)
		}
	}
	if v, ok := l.opts["-p"]; ok {
		s.persist = 300 // The ipvsadm default.
		if v != "" {
			n, err := strconv.ParseUint(v, 10, 31)
			if err != nil || n == 0 {
				im.fail(at, "-p: timeout %q must be a positive number of seconds", v)
				return
			}
			s.persist = int(n)
		}
	}
	if v, ok := l.opts["-M"]; ok {
		if !im.netmask(at, s, "-M", v) {
			return
		}
	}
	if v, ok := l.opts["-b"]; ok {
		for _, f := range strings.Split(v, ",") {
			sched, known := config.SchedulerFlags[f]
			switch {
			case !known:
				s.note(at, "-b %s: uvs has no scheduler flag %q", v, f)
			case sched != s.scheduler:
				s.note(at, "-b %s: flag %q applies only to the %s scheduler", v, f, sched)
			case !slices.Contains(s.flags, f):
				s.flags = append(s.flags, f)
			}
		}
	}
	if _, ok := l.opts["-o"]; ok {
		if s.protocol == "udp" {
			s.onePacket = true
		} else {
			s.note(at, "-o: one-packet scheduling applies only to UDP services")
		}
	}
	if _, ok := l.opts["--pe"]; ok {
		s.note(at, "--pe %s: uvs has no persistence engines", l.opts["--pe"])
	}
	if s.port == 0 && len(s.ports) == 0 && s.persist == 0 && s.stub == "" {
		im.fail(at, "port 0 (all ports) needs persistence (-p), as in IPVS")
		return
	}
	if old != nil {
		s.reals = old.reals
		s.notes = append(old.notes, s.notes...)
		i := slices.Index(im.d.services, old)
		im.d.services[i] = s
		for _, r := range s.reals {
			fitRealPort(at, s, r)
		}
	} else {
		im.d.services = append(im.d.services, s)
	}
	im.byKey[k] = s
}

// netmask sets the persistence netmask from a dotted mask (or a prefix
// length); a mask without persistence is noted, as uvs rejects it.
func (im *ipvsadmImporter) netmask(at Problem, s *service, opt, v string) bool {
	if vip, err := netip.ParseAddr(s.vip); err == nil && vip.Is6() {
		// ipvsadm takes and saves an IPv6 service's netmask as a prefix length.
		n, err := strconv.ParseUint(v, 10, 8)
		if err != nil || n > 128 {
			im.fail(at, "%s: netmask %q of an IPv6 service is not a prefix length 0..128", opt, v)
			return false
		}
		switch {
		case n == 128:
		case s.persist == 0:
			s.note(at, "%s %s: a persistence netmask without persistence has no effect", opt, v)
		default:
			s.netmask = v
		}
		return true
	}
	a, err := netip.ParseAddr(v)
	if err != nil || !a.Is4() {
		if n, err := strconv.ParseUint(v, 10, 8); err == nil && n <= 32 {
			a = prefixMask(int(n))
		} else {
			im.fail(at, "%s: netmask %q is not a dotted IPv4 mask", opt, v)
			return false
		}
	}
	b := a.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if m != 0 && (^m)&((^m)+1) != 0 {
		im.fail(at, "%s: netmask %s is not contiguous", opt, a)
		return false
	}
	switch {
	case m == 0xffffffff:
		// The default: nothing to write.
	case s.persist == 0:
		s.note(at, "%s %s: a persistence netmask without persistence has no effect", opt, v)
	default:
		s.netmask = a.String()
	}
	return true
}

func prefixMask(bits int) netip.Addr {
	m := ^uint32(0) << (32 - bits)
	if bits == 0 {
		m = 0
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
}

// serviceAddr fills the VIP, protocol and port from -t, -u, -f or
// --sctp-service.
func (im *ipvsadmImporter) serviceAddr(at Problem, l *ipvsadmLine, s *service) bool {
	switch {
	case l.opts["-f"] != "" || hasKey(l.opts, "-f"):
		v := l.opts["-f"]
		mark, err := strconv.ParseUint(v, 0, 32)
		if err != nil || mark == 0 {
			im.fail(at, "-f: firewall mark %q must be an integer in 1..4294967295", v)
			return false
		}
		im.fwmark(at, uint32(mark), s, "-f "+v)
		return true
	case hasKey(l.opts, "--sctp-service"):
		s.stub = "--sctp-service: uvs has no SCTP services; written commented out"
		s.vip, s.port = l.opts["--sctp-service"], 0
		return true
	}
	proto, v := "tcp", l.opts["-t"]
	if hasKey(l.opts, "-u") {
		proto, v = "udp", l.opts["-u"]
	}
	s.protocol = proto
	addr, port, ok := im.hostPort(at, v, false)
	if !ok {
		return false
	}
	s.vip, s.port = addr.String(), port
	return true
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// fwmark makes s a multi-port service when the mark's VIP and ports are
// known, else a stub the operator completes.
func (im *ipvsadmImporter) fwmark(at Problem, mark uint32, s *service, what string) {
	fwmarkService(im.opt, im.marks, at, mark, s, what)
}

// fwmarkService is shared with the keepalived importer. marks holds what
// opt.Iptables says.
func fwmarkService(opt Options, marks map[uint32]*markRule, at Problem, mark uint32, s *service, what string) {
	const why = "uvs has no firewall-mark services: it matches the VIP and ports itself, with a multi-port service (ports = [...])"
	fm, ok := opt.Fwmarks[mark]
	from := fmt.Sprintf("--fwmark %d", mark)
	if r := marks[mark]; !ok && r != nil {
		if len(r.unsure) == 0 && r.seen {
			fm, ok, from = r.fm, true, "the MARK rules at "+where(r.at)
		} else {
			for _, p := range r.unsure {
				s.note(p, "MARK rule for mark %d not usable: %s", mark, p.Msg)
			}
		}
	}
	if !ok {
		s.vip, s.placeholder = "VIP", true
		s.stub = fmt.Sprintf("%s: %s; the input does not say which VIP and ports mark %d covers (the iptables/nftables rules do). Fill in vip and ports and uncomment, or re-run with --fwmark %d=VIP:PORT,PORT", what, why, mark, mark)
		return
	}
	s.vip, s.protocol = fm.VIP.String(), fm.Protocol
	if s.protocol == "" {
		s.protocol = "tcp"
	}
	for _, p := range fm.Ports {
		s.ports = append(s.ports, int(p))
	}
	s.note(at, "%s: %s; VIP and ports from %s", what, why, from)
}

// hostPort parses host[:port] or [v6]:port. Names are reported, never
// resolved. A missing port is 0.
func (im *ipvsadmImporter) hostPort(at Problem, v string, isReal bool) (netip.Addr, int, bool) {
	host, port := v, ""
	switch {
	case strings.HasPrefix(v, "["):
		end := strings.IndexByte(v, ']')
		if end < 0 {
			im.fail(at, "address %q: missing ]", v)
			return netip.Addr{}, 0, false
		}
		host, port = v[1:end], strings.TrimPrefix(v[end+1:], ":")
		if v[end+1:] != "" && !strings.HasPrefix(v[end+1:], ":") {
			im.fail(at, "address %q: want [IPv6]:PORT", v)
			return netip.Addr{}, 0, false
		}
	case strings.Count(v, ":") == 1:
		host, port, _ = strings.Cut(v, ":")
	}
	what := "service address"
	if isReal {
		what = "real server address"
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		if host == "" {
			im.fail(at, "%s %q: missing host", what, v)
		} else {
			im.fail(at, "%s %q: %q is a host name; uvs import resolves nothing: save with ipvsadm-save -n (or ipvsadm -Sn)", what, v, host)
		}
		return netip.Addr{}, 0, false
	}
	if a.Zone() != "" {
		im.fail(at, "%s %q: zones are not supported", what, v)
		return netip.Addr{}, 0, false
	}
	if port == "" && strings.HasSuffix(v, ":") {
		im.fail(at, "%s %q: missing port after ':'", what, v)
		return netip.Addr{}, 0, false
	}
	n := 0
	if port != "" {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			if _, nerr := strconv.ParseInt(port, 10, 64); nerr == nil {
				im.fail(at, "%s %q: port %s is out of range 0..65535", what, v, port)
			} else {
				im.fail(at, "%s %q: %q is a service name; uvs import resolves nothing: save with ipvsadm-save -n (or ipvsadm -Sn)", what, v, port)
			}
			return netip.Addr{}, 0, false
		}
		n = int(p)
	}
	return a.Unmap(), n, true
}

// realAddr parses a -r argument; its port defaults to the service's
// (-1 in real.port).
func (im *ipvsadmImporter) realAddr(at Problem, v string, s *service) (string, int, bool) {
	if v == "" {
		im.fail(at, "a real server line needs -r ADDRESS[:PORT]")
		return "", 0, false
	}
	a, port, ok := im.hostPort(at, v, true)
	if !ok {
		return "", 0, false
	}
	hasPort := strings.HasPrefix(v, "[") && strings.Contains(v, "]:") || !strings.HasPrefix(v, "[") && strings.Contains(v, ":")
	if !hasPort {
		port = -1
	}
	return a.String(), port, true
}

// serviceReal finds the service of an -a, -e or -d line and parses its -r real server.
func (im *ipvsadmImporter) serviceReal(at Problem, l *ipvsadmLine) (*service, string, int, bool) {
	s := im.lookup(at, l)
	if s == nil {
		return nil, "", 0, false
	}
	addr, port, ok := im.realAddr(at, l.opts["-r"], s)
	return s, addr, port, ok
}

func (im *ipvsadmImporter) real(at Problem, l *ipvsadmLine) {
	if !im.checkOpts(at, l, realOpts) {
		return
	}
	s, addr, port, ok := im.serviceReal(at, l)
	if !ok {
		return
	}
	r := &dest{at: at, addr: addr, port: port, weight: 1, forward: "dr"}
	methods := 0
	for o, f := range map[string]string{"-g": "dr", "-i": "tun", "-m": "nat"} {
		if hasKey(l.opts, o) {
			r.forward = f
			methods++
		}
	}
	if methods > 1 {
		im.fail(at, "-g, -i and -m exclude each other")
		return
	}
	for _, o := range []struct {
		opt string
		dst *int
	}{{"-w", &r.weight}, {"-x", &r.upper}, {"-y", &r.lower}} {
		v, ok := l.opts[o.opt]
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			im.fail(at, "%s: %q must be an integer in 0..65535", o.opt, v)
			return
		}
		*o.dst = int(n)
	}
	// ipvsadm 1.30 tunnel options (ipvsadm-save prints them on -i reals).
	if v, ok := l.opts["--tun-type"]; ok && v != "ipip" {
		r.note(at, "--tun-type %s: uvs tunnels with IPIP only; this real server must accept IPIP", v)
	}
	for _, o := range []string{"--tun-port", "--tun-nocsum", "--tun-csum", "--tun-remcsum"} {
		if v, ok := l.opts[o]; ok {
			r.note(at, "%s: not carried over: uvs tunnels with IPIP only", strings.TrimSpace(o+" "+v))
		}
	}
	if r.upper > 0 && r.lower > r.upper {
		r.note(at, "-y %d: lower threshold above the upper threshold %d; left out", r.lower, r.upper)
		r.lower = 0
	}
	if r.upper == 0 && r.lower > 0 {
		r.note(at, "-y %d: a lower threshold without an upper one has no effect in IPVS; left out", r.lower)
		r.lower = 0
	}
	if stub := mixedFamily(s.vip, addr, r.forward); stub != "" && s.stub == "" {
		r.stub = fmt.Sprintf("-r %s: %s", l.opts["-r"], stub)
	}
	// Compare with the port IPVS would use, so that 10.0.1.1 and
	// 10.0.1.1:8080 are one DR real server.
	fitRealPort(at, s, r)
	i := slices.IndexFunc(s.reals, func(x *dest) bool { return sameReal(s, x, r.addr, r.port) })
	switch {
	case l.cmd == "-a" && i >= 0:
		im.fail(at, "real server %s already in this service (line %d)", l.opts["-r"], s.reals[i].at.Line)
		return
	case l.cmd == "-e" && i < 0:
		im.fail(at, "-e: no real server %s in this service", l.opts["-r"])
		return
	}
	if i >= 0 {
		s.reals[i] = r
	} else {
		s.reals = append(s.reals, r)
	}
	setServiceForward(s)
}

// sameReal reports whether x is the real server addr:port of s; port -1
// means the service's port.
func sameReal(s *service, x *dest, addr string, port int) bool {
	eff := func(p int) int {
		if p < 0 {
			return s.port
		}
		return p
	}
	return x.addr == addr && eff(x.port) == eff(port)
}

// fitRealPort drops a real's port where uvs (and IPVS) cannot use it: with
// DR and TUN the real's port is the service's.
func fitRealPort(at Problem, s *service, r *dest) {
	multi := len(s.ports) > 0 || s.placeholder
	if r.port == 0 && multi || r.port == s.port && !multi {
		r.port = -1 // The default: the service port, or the client's.
	}
	if r.port < 0 || r.forward == "nat" {
		return
	}
	if multi {
		r.note(at, "port %d: with %s, a multi-port service's reals receive the client's port; left out", r.port, r.forward)
	} else {
		r.note(at, "port %d: with %s the real server receives the service port %d, as in IPVS; left out", r.port, r.forward, s.port)
	}
	r.port = -1
}

// setServiceForward makes the service's forward the method most of its
// reals use, so that only the exceptions carry their own.
func setServiceForward(s *service) {
	count := map[string]int{}
	best := ""
	for _, r := range s.reals {
		count[r.forward]++
		if count[r.forward] > count[best] || count[r.forward] == count[best] && r.forward < best {
			best = r.forward
		}
	}
	if best == "dr" {
		best = "" // The uvs default, as in ipvsadm.
	}
	s.forward = best
}

// mixedFamily says why a real of another family than the VIP cannot be carried over, or ""
// if it can: IPVS, and uvs, mix families only through a tunnel (4-in-6, 6-in-4).
func mixedFamily(vip, real, forward string) string {
	v, err1 := netip.ParseAddr(vip)
	r, err2 := netip.ParseAddr(real)
	if err1 != nil || err2 != nil || v.Unmap().Is4() == r.Unmap().Is4() || forward == "tun" {
		return ""
	}
	return fmt.Sprintf("a real server of another family than the VIP %s needs tunnelling (-i); written commented out", vip)
}
