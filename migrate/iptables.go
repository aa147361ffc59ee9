package migrate

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Source is an input file: its name, for notes, and its contents.
type Source struct {
	Name string
	Data []byte
}

// markRule is what the iptables MARK rules say about one firewall mark.
type markRule struct {
	fm     Fwmark
	at     Problem // The first rule for the mark.
	seen   bool    // A usable rule has set fm.
	unsure []Problem
}

// iptablesMarks reads `iptables-save` output (or iptables commands) for
// mangle-table MARK rules, and says for each mark which VIP, protocol and
// ports it selects. A mark is derivable only when every rule that sets it
// names one IPv4 host, one protocol and explicit ports; unsure says why
// not otherwise.
func iptablesMarks(src *Source) map[uint32]*markRule {
	out := map[uint32]*markRule{}
	if src == nil {
		return out
	}
	table := "filter"
	for i, text := range strings.Split(string(src.Data), "\n") {
		at := Problem{File: src.Name, Line: i + 1}
		fields := strings.Fields(text)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if strings.HasPrefix(fields[0], "*") {
			table = fields[0][1:]
			continue
		}
		if fields[0] == "iptables" || strings.HasSuffix(fields[0], "/iptables") {
			fields = fields[1:]
		}
		r, mark, ok := iptablesRule(at, fields, table)
		if !ok {
			continue
		}
		m := out[mark]
		if m == nil {
			m = &markRule{at: at}
			out[mark] = m
		}
		if r.msg != "" {
			m.unsure = append(m.unsure, Problem{File: at.File, Line: at.Line, Msg: r.msg})
			continue
		}
		switch {
		case !m.seen:
			m.fm, m.seen = Fwmark{VIP: r.vip, Protocol: r.proto}, true
		case m.fm.VIP != r.vip || m.fm.Protocol != r.proto:
			m.unsure = append(m.unsure, Problem{File: at.File, Line: at.Line,
				Msg: fmt.Sprintf("mark %d also selects %s/%s; a uvs service has one VIP and one protocol", mark, r.vip, r.proto)})
			continue
		}
		for _, p := range r.ports {
			if !slices.Contains(m.fm.Ports, p) {
				m.fm.Ports = append(m.fm.Ports, p)
			}
		}
	}
	return out
}

// iptablesMatch is one MARK rule, or why it cannot be used (msg).
type iptablesMatch struct {
	vip   netip.Addr
	proto string
	ports []uint16
	msg   string
}

// iptablesRule parses one rule; ok is false when it sets no mark.
func iptablesRule(at Problem, f []string, table string) (iptablesMatch, uint32, bool) {
	var r iptablesMatch
	var mark string
	isMark := false
	for i := 0; i < len(f); i++ {
		arg := func() string {
			if i+1 < len(f) {
				i++
				return f[i]
			}
			return ""
		}
		switch f[i] {
		case "-t", "--table":
			table = arg()
		case "-A", "--append", "-I", "--insert":
			arg()
			if i+1 < len(f) && isDigits(f[i+1]) {
				i++ // -I CHAIN RULENUM
			}
		case "-j", "--jump":
			isMark = arg() == "MARK"
		case "--set-mark", "--set-xmark":
			mark = arg()
		case "-d", "--destination":
			v := arg()
			p, err := netip.ParsePrefix(v)
			if err != nil {
				a, aerr := netip.ParseAddr(v)
				p, err = netip.PrefixFrom(a, a.BitLen()), aerr
			}
			switch {
			case err != nil:
				r.msg = fmt.Sprintf("-d %s: not an address", v)
			case !p.Addr().Is4() || p.Bits() != 32:
				r.msg = fmt.Sprintf("-d %s: not one IPv4 host; a uvs service has one VIP", v)
			default:
				r.vip = p.Addr()
			}
		case "-p", "--protocol":
			r.proto = arg()
		case "-m", "--match", "-i", "--in-interface":
			arg()
		case "--dport", "--destination-port", "--dports", "--destination-ports":
			v := arg()
			for _, s := range strings.Split(v, ",") {
				n, err := strconv.ParseUint(s, 10, 16)
				if err != nil || n == 0 {
					r.msg = fmt.Sprintf("%s %s: only single ports map to a uvs ports list", f[i-1], v)
					break
				}
				r.ports = append(r.ports, uint16(n))
			}
		case "!":
			r.msg = "a negated match cannot be written as a uvs service"
		default:
			if r.msg == "" {
				r.msg = fmt.Sprintf("%s: a match uvs services cannot express", f[i])
			}
		}
	}
	if !isMark || table != "mangle" || mark == "" {
		return r, 0, false
	}
	value, mask, hasMask := strings.Cut(mark, "/")
	m, err := strconv.ParseUint(value, 0, 32)
	if err != nil || m == 0 {
		return r, 0, false
	}
	if hasMask {
		if mv, err := strconv.ParseUint(mask, 0, 32); err != nil || mv != 0xffffffff {
			r.msg = fmt.Sprintf("--set-xmark %s: a partial mask", mark)
		}
	}
	switch {
	case r.msg != "":
	case !r.vip.IsValid():
		r.msg = "no -d: the rule selects every address; a uvs service has one VIP"
	case r.proto != "tcp" && r.proto != "udp":
		r.msg = "no -p tcp or -p udp: a uvs service has one protocol"
	case len(r.ports) == 0:
		r.msg = "no --dport or --dports: a uvs multi-port service lists its ports"
	}
	return r, uint32(m), true
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
