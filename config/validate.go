package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// unixPathMax is sizeof(sockaddr_un.sun_path) less the NUL, from
// include/uapi/linux/un.h.
const unixPathMax = 107

// ifNameSize is IFNAMSIZ from include/uapi/linux/if.h, NUL included.
const ifNameSize = 16

// validator checks the ranges and consistency of a decoded Config. It looks
// only at the Config, so a Config that Parse returned re-validates clean
// (FuzzParse checks this).
type validator struct {
	file     string
	line     func(key string) int
	problems []Problem
}

// validate returns every problem with c. line maps a key path to its line;
// it may return 0.
func validate(c *Config, line func(string) int) []Problem {
	v := &validator{file: c.Source, line: line}
	v.director(&c.Director)
	v.conntrack(&c.Conntrack)
	v.timeouts(&c.Timeouts)
	v.services(c.Services)
	v.vrrp(c)
	v.lab(&c.Lab)
	v.bench(&c.Bench)
	v.bgp(c)
	v.sync(c)
	return v.problems
}

// problem records msg against key; fallback is the line to use when the
// index knows none, e.g. Service.Line.
func (v *validator) problem(key string, fallback int, format string, args ...any) {
	line := v.line(key)
	if line == 0 {
		line = fallback
	}
	v.problems = append(v.problems, Problem{File: v.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) director(d *Director) {
	if len(d.Interfaces) == 0 {
		v.problem("director.interfaces", 0, "required: at least one interface, as in [\"eth0\"]")
	}
	for i, name := range d.Interfaces {
		k := indexKey("director.interfaces", i)
		if msg := checkIfName(name); msg != "" {
			v.problem(k, 0, "%s", msg)
		} else if slices.Index(d.Interfaces, name) < i {
			v.problem(k, 0, "duplicate interface %q", name)
		}
	}
	if d.Workers < 1 || d.Workers > MaxWorkers {
		v.problem("director.workers", 0, "%d is out of range 1..%d (or 0 for one per CPU)", d.Workers, MaxWorkers)
	}
	switch {
	case d.ControlSocket == "":
		v.problem("director.control_socket", 0, "must not be empty")
	case len(d.ControlSocket) > unixPathMax:
		v.problem("director.control_socket", 0, "path is %d bytes, longer than a unix socket allows (%d)", len(d.ControlSocket), unixPathMax)
	}
	if d.MetricsListen != "" {
		if msg := checkHostPort(d.MetricsListen); msg != "" {
			v.problem("director.metrics_listen", 0, "%s", msg)
		}
	}
	if !enumValid(txModeNames, d.TXMode) {
		v.problem("director.tx_mode", 0, "must be %s", oneOf(txModeNames[1:]))
	}
	v.backend(d)
}

// checkIfName checks name as the kernel's dev_valid_name (net/core/dev.c)
// does; it says nothing about whether the interface exists.
func checkIfName(name string) string {
	switch {
	case name == "":
		return "interface name must not be empty"
	case len(name) >= ifNameSize:
		return fmt.Sprintf("interface name %q is longer than %d bytes", name, ifNameSize-1)
	case name == "." || name == "..":
		return fmt.Sprintf("invalid interface name %q", name)
	case strings.ContainsAny(name, "/: \t\n\v\f\r"):
		return fmt.Sprintf("invalid interface name %q: no '/', ':' or spaces", name)
	}
	return ""
}

func checkHostPort(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Sprintf("%q: port must be a number in 1..65535", s)
	}
	if strings.ContainsAny(host, " \t\n/") {
		return fmt.Sprintf("%q: invalid host", s)
	}
	return ""
}

func (v *validator) conntrack(c *Conntrack) {
	if c.MaxConnections < 1 || c.MaxConnections > MaxMaxConnections {
		v.problem("conntrack.max_connections", 0, "%d is out of range 1..%d", c.MaxConnections, MaxMaxConnections)
	}
}

func (v *validator) timeouts(t *Timeouts) {
	for _, tt := range []struct {
		key string
		d   interface{ String() string }
		ok  bool
	}{
		{"timeouts.tcp", t.TCP, t.TCP > 0},
		{"timeouts.tcp_fin", t.TCPFin, t.TCPFin > 0},
		{"timeouts.udp", t.UDP, t.UDP > 0},
	} {
		if !tt.ok {
			v.problem(tt.key, 0, "must be positive, not %s", tt.d)
		}
	}
}

// endpoint is a VIP:port/protocol a service claims.
type endpoint struct {
	addr  netip.Addr
	port  uint16
	proto Protocol
}

func (v *validator) services(ss []Service) {
	names := map[string]int{}
	claimed := map[endpoint]int{}
	for i := range ss {
		s := &ss[i]
		k := indexKey("service", i)
		v.service(k, s)
		if s.Name != "" {
			if j, dup := names[s.Name]; dup {
				v.problem(k+".name", s.Line, "duplicate service name %q (also service[%d])", s.Name, j)
			} else {
				names[s.Name] = i
			}
		}
		if !s.VIP.IsValid() {
			continue
		}
		ports := []uint16{s.Port}
		if len(s.Ports) > 0 {
			ports = s.Ports
		}
		for n, p := range ports {
			pk := k + ".port"
			if len(s.Ports) > 0 {
				pk = indexKey(k+".ports", n)
			}
			e := endpoint{s.VIP, p, s.Protocol}
			if j, dup := claimed[e]; dup && j != i {
				v.problem(pk, s.Line, "%s:%d/%s is also service[%d]", s.VIP, p, s.Protocol, j)
				continue
			}
			claimed[e] = i
		}
	}
}

func (v *validator) service(k string, s *Service) {
	at := s.Line
	v.ip(k+".vip", at, s.VIP, true)
	if !enumValid(protocolNames, s.Protocol) {
		v.problem(k+".protocol", at, "must be %s", oneOf(protocolNames[1:]))
	}
	for i, p := range s.Ports {
		if p == 0 {
			v.problem(indexKey(k+".ports", i), at, "port 0 (all ports) cannot be in a list; use port = 0")
		} else if slices.Index(s.Ports, p) < i {
			v.problem(indexKey(k+".ports", i), at, "duplicate port %d", p)
		}
	}
	if s.Port == 0 && len(s.Ports) == 0 && s.PersistenceTimeout == 0 {
		v.problem(k+".port", at, "port 0 (all ports) needs persistence_timeout, as in IPVS")
	}

	if !slices.Contains(Schedulers, s.Scheduler) {
		v.problem(k+".scheduler", at, "unknown scheduler %q (want one of %s)", s.Scheduler, strings.Join(Schedulers, " "))
	}
	for i, f := range s.SchedulerFlags {
		fk := indexKey(k+".scheduler_flags", i)
		sched, ok := SchedulerFlags[f]
		switch {
		case !ok:
			v.problem(fk, at, "unknown scheduler flag %q (want sh-port, sh-fallback, mh-port or mh-fallback)", f)
		case sched != s.Scheduler:
			v.problem(fk, at, "flag %q needs scheduler = %q", f, sched)
		case slices.Index(s.SchedulerFlags, f) < i:
			v.problem(fk, at, "duplicate flag %q", f)
		}
	}
	if s.MHTableSize < 2 || s.MHTableSize > MaxMHTableSize || !isPrime(s.MHTableSize) {
		v.problem(k+".mh_table_size", at, "%d must be a prime in 2..%d, as Maglev needs", s.MHTableSize, MaxMHTableSize)
	}

	if s.PersistenceTimeout < 0 {
		v.problem(k+".persistence_timeout", at, "must not be negative")
	}
	if maxBits := s.VIP.BitLen(); maxBits != 0 && (s.PersistenceBits < 0 || s.PersistenceBits > maxBits) {
		v.problem(k+".persistence_netmask", at, "prefix length %d is out of range 0..%d", s.PersistenceBits, maxBits)
	} else if maxBits != 0 && s.PersistenceBits != maxBits && s.PersistenceTimeout == 0 {
		v.problem(k+".persistence_netmask", at, "needs persistence_timeout")
	}

	if !enumValid(forwardNames, s.Forward) {
		v.problem(k+".forward", at, "must be %s", oneOf(forwardNames[1:]))
	}
	if s.OnePacket && s.Protocol != UDP {
		v.problem(k+".one_packet", at, "applies only to protocol = \"udp\"")
	}
	if s.MSSClamp != 0 {
		if s.MSSClamp < MinMSSClamp || s.MSSClamp > MaxMSSClamp {
			v.problem(k+".mss_clamp", at, "%d is out of range %d..%d (or 0 for off)", s.MSSClamp, MinMSSClamp, MaxMSSClamp)
		} else if s.Protocol != TCP {
			v.problem(k+".mss_clamp", at, "applies only to protocol = \"tcp\"")
		}
	}
	if s.TunnelSource.IsValid() {
		v.ip(k+".tunnel_source", at, s.TunnelSource, false)
		v.tunnelSource(k, s)
	}
	switch {
	case !enumValid(deadRealNames, s.DeadReal):
		v.problem(k+".dead_real", at, "must be %s", oneOf(deadRealNames[1:]))
	case s.DeadReal == DeadRealReset && s.Protocol != TCP:
		v.problem(k+".dead_real", at, "\"reset\" applies only to protocol = \"tcp\"")
	}
	if !enumValid(failurePolicyNames, s.OnFailure) {
		v.problem(k+".on_failure", at, "must be %s", oneOf(failurePolicyNames[1:]))
	}
	if s.SlowStart < 0 {
		v.problem(k+".slow_start", at, "must not be negative")
	}
	if s.SorryServer.IsValid() {
		v.ip(k+".sorry_server", at, s.SorryServer.Addr(), false)
		if a := s.SorryServer.Addr(); s.VIP.IsValid() && a.Is4() != s.VIP.Is4() {
			v.problem(k+".sorry_server", at, "%s is not of the VIP's family (%s)", a, s.VIP)
		}
		if s.SorryServer.Port() != s.Port && (len(s.Ports) > 0 || s.Port == 0) {
			v.problem(k+".sorry_server", at, "port %d differs from the service's: port mapping needs a single service port", s.SorryServer.Port())
		} else if s.SorryServer.Port() == 0 && s.Port != 0 {
			v.problem(k+".sorry_server", at, "port 0 needs an all-ports service")
		}
	}
	if s.Quorum < 1 || s.Quorum > MaxWeight*1024 {
		v.problem(k+".quorum", at, "%d is out of range 1..%d", s.Quorum, MaxWeight*1024)
	}
	if s.Hysteresis < 0 || s.Hysteresis >= s.Quorum && s.Quorum >= 1 {
		v.problem(k+".hysteresis", at, "%d is out of range 0..quorum-1", s.Hysteresis)
	}
	if s.Check != nil {
		v.check(k+".check", at, s.Check)
		v.checkVia(k+".check", at, s.Check, s.Forward)
		if s.Check.Via == ViaVIP && s.Forward == DR {
			// The service's check also runs on reals that override the method.
			for i := range s.Reals {
				if r := &s.Reals[i]; r.Check == nil && r.Forward != DR && enumValid(forwardNames, r.Forward) {
					v.problem(indexKey(k+".real", i)+".forward", r.Line, "%q with the service's via = \"vip\" check: it needs \"dr\" (give this real a check of its own)", r.Forward)
				}
			}
		}
	}

	type realKey struct {
		addr netip.Addr
		port uint16
	}
	seen := map[realKey]int{}
	for i := range s.Reals {
		r := &s.Reals[i]
		rk := indexKey(k+".real", i)
		v.real(rk, s, r)
		if !r.Address.IsValid() {
			continue
		}
		if j, dup := seen[realKey{r.Address, r.Port}]; dup {
			v.problem(rk+".address", r.Line, "%s port %d is also real[%d]", r.Address, r.Port, j)
			continue
		}
		seen[realKey{r.Address, r.Port}] = i
	}
}

// ip reports a missing (when required) address, or one no service can use: an IPv4-mapped
// IPv6 address (write the IPv4 form), an IPv6 zone, or an unspecified or multicast IPv6
// address.
func (v *validator) ip(key string, at int, a netip.Addr, required bool) {
	switch {
	case !a.IsValid():
		if required {
			v.problem(key, at, "required")
		}
	case a.Is4In6():
		v.problem(key, at, "%s is an IPv4-mapped IPv6 address; write it as %s", a, a.Unmap())
	case a.Zone() != "":
		v.problem(key, at, "%s: a zone is not allowed", a)
	case a.Is6() && (a.IsUnspecified() || a.IsMulticast()):
		v.problem(key, at, "%s is not a unicast address", a)
	}
}

func (v *validator) real(k string, s *Service, r *Real) {
	at := r.Line
	v.ip(k+".address", at, r.Address, true)
	if s.VIP.IsValid() && r.Address.IsValid() && s.VIP.Is4() != r.Address.Is4() && r.Forward != TUN {
		// IPVS allows mixed families only through a tunnel (ip_vs_ctl.c: "mixed family
		// destinations are only allowed with tunnel forwarding").
		v.problem(k+".address", at, "%s and the VIP %s are of different families: only forward = \"tun\" carries one in the other (%s)", r.Address, s.VIP, mixedTunnel(s.VIP))
	}
	if r.Weight < 0 || r.Weight > MaxWeight {
		v.problem(k+".weight", at, "%d is out of range 0..%d", r.Weight, MaxWeight)
	}
	if !enumValid(forwardNames, r.Forward) {
		v.problem(k+".forward", at, "must be %s", oneOf(forwardNames[1:]))
	} else if r.Port != s.Port && r.Forward != NAT {
		switch {
		case len(s.Ports) > 0:
			v.problem(k+".port", at, "a fixed port %d on a service with several ports: port mapping needs forward = \"nat\"", r.Port)
		case s.Port == 0:
			v.problem(k+".port", at, "a fixed port %d on an all-ports service: port mapping needs forward = \"nat\"", r.Port)
		default:
			v.problem(k+".port", at, "%d differs from the service port %d: port mapping needs forward = \"nat\"", r.Port, s.Port)
		}
	}
	if r.UpperThreshold < 0 {
		v.problem(k+".upper_threshold", at, "must not be negative")
	}
	if r.LowerThreshold < 0 {
		v.problem(k+".lower_threshold", at, "must not be negative")
	}
	if r.UpperThreshold > 0 && r.LowerThreshold > r.UpperThreshold {
		v.problem(k+".lower_threshold", at, "%d is above upper_threshold %d", r.LowerThreshold, r.UpperThreshold)
	}
	if r.Check != nil {
		v.check(k+".check", at, r.Check)
		v.checkVia(k+".check", at, r.Check, r.Forward)
	}
}

// checkVia rejects via = "vip" where the VIP cannot be reached at the real server: only a
// DR real server holds the VIP on an interface the director can send to.
func (v *validator) checkVia(k string, at int, c *Check, f Forward) {
	if c.Via == ViaVIP && f != DR {
		v.problem(k+".via", at, "\"vip\" needs forward = \"dr\", not %q", f)
	}
}

func (v *validator) check(k string, at int, c *Check) {
	if !enumValid(checkTypeNames, c.Type) {
		v.problem(k+".type", at, "must be %s", oneOf(checkTypeNames[1:]))
	}
	if c.Interval <= 0 {
		v.problem(k+".interval", at, "must be positive, not %s", c.Interval)
	}
	if c.Timeout <= 0 {
		v.problem(k+".timeout", at, "must be positive, not %s", c.Timeout)
	} else if c.Interval > 0 && c.Timeout > c.Interval {
		v.problem(k+".timeout", at, "%s is longer than interval %s", c.Timeout, c.Interval)
	}
	if c.Rise < 1 {
		v.problem(k+".rise", at, "must be at least 1, not %d", c.Rise)
	}
	if c.Fall < 1 {
		v.problem(k+".fall", at, "must be at least 1, not %d", c.Fall)
	}
	if (c.Type == CheckHTTP || c.Type == CheckHTTPS) && !strings.HasPrefix(c.Path, "/") {
		v.problem(k+".path", at, "%q must start with \"/\"", c.Path)
	}
	for i, st := range c.ExpectStatus {
		if st < 100 || st > 599 {
			v.problem(indexKey(k+".expect_status", i), at, "HTTP status %d is out of range 100..599", st)
		}
	}
	if c.Port < 0 || c.Port > 65535 {
		v.problem(k+".check_port", at, "%d is out of range 0..65535", c.Port)
	}
	if c.Type == CheckExec && (len(c.Command) == 0 || c.Command[0] == "") {
		v.problem(k+".command", at, "required for exec checks, as an argv list: [\"/path/to/prog\", \"arg\"]")
	}
	if !enumValid(checkViaNames, c.Via) {
		v.problem(k+".via", at, "must be %s", oneOf(checkViaNames[1:]))
	}
	if c.Warmup < 0 {
		v.problem(k+".warmup", at, "must not be negative")
	}
	if c.Digest != "" && !isMD5Hex(c.Digest) {
		v.problem(k+".digest", at, "%q is not an MD5 digest: want 32 lowercase hex digits, as genhash prints", c.Digest)
	}
	if c.Expect != "" {
		if _, err := regexp.Compile(c.Expect); err != nil {
			v.problem(k+".expect", at, "invalid regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	}
}

func isMD5Hex(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// mixedTunnel names the tunnel that carries a VIP's family in the other one.
func mixedTunnel(vip netip.Addr) string {
	if vip.Is4() {
		return "4-in-6"
	}
	return "6-in-4"
}

// tunnelSource reports a tunnel_source that cannot be the outer source of the service's
// tunnelled reals: the outer header is of the real's family.
func (v *validator) tunnelSource(k string, s *Service) {
	for i := range s.Reals {
		r := &s.Reals[i]
		if r.Forward == TUN && r.Address.IsValid() && r.Address.Is4() != s.TunnelSource.Is4() {
			v.problem(k+".tunnel_source", s.Line, "%s is not of the family of real[%d] %s, the tunnel's outer header", s.TunnelSource, i, r.Address)
			return
		}
	}
}
