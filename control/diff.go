package control

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/uvs-project/uvs/config"
)

// Diff lists what applying next to a director running cur would change, one line each:
// "+" added, "-" removed, "~" changed. Services are matched as the director matches them
// on reload (protocol, VIP, first port), reals by address and port, so a "~" service keeps
// its connections and counters. No lines means no change.
func Diff(cur, next *config.Config) []string {
	var out []string
	if !slices.Equal(cur.Director.Interfaces, next.Director.Interfaces) {
		out = append(out, fmt.Sprintf("! director.interfaces %v -> %v: a reload refuses this; restart uvs", cur.Director.Interfaces, next.Director.Interfaces))
	}
	restart := func(key string, a, b any) {
		if a != b {
			out = append(out, fmt.Sprintf("! %s %v -> %v: takes effect at the next restart", key, a, b))
		}
	}
	restart("director.workers", cur.Director.Workers, next.Director.Workers)
	restart("director.control_socket", cur.Director.ControlSocket, next.Director.ControlSocket)
	restart("director.metrics_listen", cur.Director.MetricsListen, next.Director.MetricsListen)
	restart("director.backend", cur.Director.Backend, next.Director.Backend)
	restart("conntrack.max_connections", cur.Conntrack.MaxConnections, next.Conntrack.MaxConnections)
	restart("timeouts", cur.Timeouts, next.Timeouts)

	type skey struct {
		proto config.Protocol
		vip   netip.Addr
		port  uint16
	}
	key := func(s *config.Service) skey { return skey{s.Protocol, s.VIP, firstPort(s)} }
	name := func(s *config.Service) string {
		return fmt.Sprintf("service %s %s", s.Protocol, netip.AddrPortFrom(s.VIP, firstPort(s)))
	}
	old := map[skey]*config.Service{}
	for i := range cur.Services {
		old[key(&cur.Services[i])] = &cur.Services[i]
	}
	seen := map[skey]bool{}
	for i := range next.Services {
		n := &next.Services[i]
		k := key(n)
		seen[k] = true
		o := old[k]
		if o == nil {
			out = append(out, fmt.Sprintf("+ %s (scheduler %s, %d reals)", name(n), n.Scheduler, len(n.Reals)))
			for j := range n.Reals {
				out = append(out, fmt.Sprintf("+ %s real %s", name(n), realDesc(n, &n.Reals[j])))
			}
			continue
		}
		var ch []string
		field := func(what string, a, b any) {
			if fmt.Sprint(a) != fmt.Sprint(b) {
				ch = append(ch, fmt.Sprintf("%s %v -> %v", what, a, b))
			}
		}
		field("name", o.Name, n.Name)
		field("ports", o.Ports, n.Ports)
		field("scheduler", o.Scheduler, n.Scheduler)
		field("scheduler_flags", o.SchedulerFlags, n.SchedulerFlags)
		field("persistence_timeout", o.PersistenceTimeout, n.PersistenceTimeout)
		field("persistence_netmask", o.PersistenceBits, n.PersistenceBits)
		field("forward", o.Forward, n.Forward)
		field("one_packet", o.OnePacket, n.OnePacket)
		field("check", checkDesc(o.Check), checkDesc(n.Check))
		if len(ch) > 0 {
			out = append(out, fmt.Sprintf("~ %s: %s", name(n), strings.Join(ch, "; ")))
		}
		out = append(out, diffReals(name(n), o, n)...)
	}
	for i := range cur.Services {
		if o := &cur.Services[i]; !seen[key(o)] {
			out = append(out, fmt.Sprintf("- %s (its connections are no longer forwarded)", name(o)))
		}
	}
	out = append(out, diffBGP(&cur.BGP, &next.BGP)...)
	out = append(out, diffSync(cur.Sync, next.Sync)...)
	return append(out, diffVRRP(cur, next)...)
}

func diffReals(svc string, o, n *config.Service) []string {
	type rkey struct {
		addr netip.Addr
		port uint16
	}
	rk := func(s *config.Service, r *config.Real) rkey {
		p := r.Port
		if p == 0 {
			p = firstPort(s)
		}
		return rkey{r.Address, p}
	}
	old := map[rkey]*config.Real{}
	for i := range o.Reals {
		old[rk(o, &o.Reals[i])] = &o.Reals[i]
	}
	var out []string
	seen := map[rkey]bool{}
	for i := range n.Reals {
		nr := &n.Reals[i]
		k := rk(n, nr)
		seen[k] = true
		or := old[k]
		if or == nil {
			out = append(out, fmt.Sprintf("+ %s real %s", svc, realDesc(n, nr)))
			continue
		}
		var ch []string
		if or.Weight != nr.Weight {
			ch = append(ch, fmt.Sprintf("weight %d -> %d", or.Weight, nr.Weight))
		}
		if or.Forward != nr.Forward {
			ch = append(ch, fmt.Sprintf("forward %s -> %s", or.Forward, nr.Forward))
		}
		if or.UpperThreshold != nr.UpperThreshold || or.LowerThreshold != nr.LowerThreshold {
			ch = append(ch, fmt.Sprintf("thresholds %d/%d -> %d/%d", or.UpperThreshold, or.LowerThreshold, nr.UpperThreshold, nr.LowerThreshold))
		}
		if checkDesc(or.Check) != checkDesc(nr.Check) {
			ch = append(ch, "check changed")
		}
		if len(ch) > 0 {
			out = append(out, fmt.Sprintf("~ %s real %s: %s", svc, netip.AddrPortFrom(k.addr, k.port), strings.Join(ch, "; ")))
		}
	}
	for i := range o.Reals {
		if k := rk(o, &o.Reals[i]); !seen[k] {
			out = append(out, fmt.Sprintf("- %s real %s", svc, netip.AddrPortFrom(k.addr, k.port)))
		}
	}
	return out
}

func realDesc(s *config.Service, r *config.Real) string {
	p := r.Port
	if p == 0 {
		p = firstPort(s)
	}
	return fmt.Sprintf("%s (%s, weight %d)", netip.AddrPortFrom(r.Address, p), r.Forward, r.Weight)
}

func checkDesc(c *config.Check) string {
	if c == nil {
		return "none"
	}
	return fmt.Sprintf("%+v", *c)
}
