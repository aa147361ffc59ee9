package control

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward"
	"github.com/uvs-project/uvs/sched"
)

// Trace explains what the director does with a packet from q.Client to q.VIP: the service
// it matches, the connection or persistence template it would follow, and otherwise the
// real server the scheduler would choose and why. It reads the connection table and peeks
// at the scheduler (sched.Table.Peek) without moving it.
func (o *Operator) Trace(ctx context.Context, q *TraceQuery) (*TraceResult, error) {
	snap := o.d.Snapshot()
	if snap == nil {
		return nil, errors.New("the director is starting: no snapshot yet")
	}
	proto, _, err := parseRef(&ServiceRef{Protocol: q.Protocol, VIP: "0.0.0.0"})
	if err != nil {
		return nil, err
	}
	client, err := netip.ParseAddrPort(q.Client)
	if err != nil {
		return nil, fmt.Errorf("client %q: want ADDR:PORT ([ADDR]:PORT for IPv6)", q.Client)
	}
	vip, err := netip.ParseAddrPort(q.VIP)
	if err != nil || vip.Addr().Unmap().Is4() != client.Addr().Unmap().Is4() {
		return nil, fmt.Errorf("vip %q: want ADDR:PORT of the client's family", q.VIP)
	}
	res := &TraceResult{Reasons: []string{}}
	svc := snap.Lookup(vip.Addr(), proto, vip.Port())
	if svc == nil {
		res.Reasons = append(res.Reasons, fmt.Sprintf("no service matches %s %s: the packet is dropped (no_service) if %s is a VIP, otherwise left to the kernel", q.Protocol, vip, vip.Addr()))
		return res, nil
	}
	res.Service = &ServiceRef{Protocol: protoName(svc.Proto), VIP: conntrack.Addr(svc.VIP).String(), Port: svc.Port}
	res.Scheduler = svc.Sched.Kind().String()
	res.Reasons = append(res.Reasons, fmt.Sprintf("matches service %s %s (scheduler %s)", res.Service.Protocol, addrPort(svc.VIP, svc.Port), res.Scheduler))

	key := conntrack.Key{Client: client.Addr().Unmap().As16(), VIP: vip.Addr().Unmap().As16(), CPort: client.Port(), VPort: vip.Port(), Proto: proto}
	tkey := conntrack.TemplateKey(&key, svc.PersistBits, svc.TplPort)
	es, err := o.connections(ctx)
	if err != nil {
		return nil, err
	}
	now := o.d.Tick()
	for i := range es {
		e := &es[i]
		tmpl := e.Flags&conntrack.FlagTemplate != 0
		switch {
		case !tmpl && e.Key == key:
			c := connection(e, now)
			res.Connection = &c
		case tmpl && svc.PersistMs > 0 && e.Key == tkey:
			c := connection(e, now)
			res.Template = &c
		}
	}
	if res.Connection != nil {
		res.Chosen, res.Exact = res.Connection.Real, true
		res.Reasons = append(res.Reasons, fmt.Sprintf("connection exists: %s, state %s, expires in %ds; packets follow it to %s",
			res.Connection.Client, res.Connection.State, res.Connection.ExpiresS, res.Connection.Real))
	}
	loads := svc.Loads
	for slot, r := range svc.Reals {
		if r == nil || r.Removed {
			continue
		}
		ld := &loads[slot]
		res.Candidates = append(res.Candidates, TraceCandidate{
			Real: addrPort(r.Addr, r.Port), Weight: svc.Sched.Weight(slot),
			ActiveConns: int64(max(ld.Active(), 0)), InactiveConns: int64(max(ld.Inactive(), 0)),
			Healthy: r.Healthy, Overloaded: ld.Overloaded(),
			Available: svc.Sched.Weight(slot) > 0 && !ld.Overloaded(),
		})
		if !r.Healthy {
			res.Reasons = append(res.Reasons, fmt.Sprintf("real %s failed its health check (%s): weight %d", addrPort(r.Addr, r.Port), r.Reason, r.Weight))
		} else if r.Weight == 0 {
			res.Reasons = append(res.Reasons, fmt.Sprintf("real %s has weight 0 (quiescent): no new connections", addrPort(r.Addr, r.Port)))
		}
		if ld.Overloaded() {
			res.Reasons = append(res.Reasons, fmt.Sprintf("real %s is over its upper threshold %d: no new connections", addrPort(r.Addr, r.Port), svc.Specs[slot].Upper))
		}
	}
	if res.Connection != nil {
		return res, nil
	}
	if res.Template != nil {
		t := res.Template
		res.Reasons = append(res.Reasons, fmt.Sprintf("persistence template %s -> %s expires in %ds: a new connection goes to %s if it is available",
			t.Client, t.Real, t.ExpiresS, t.Real))
		for _, c := range res.Candidates {
			if c.Real == t.Real {
				if c.Available {
					res.Chosen, res.Exact = t.Real, true
					return res, nil
				}
				res.Reasons = append(res.Reasons, fmt.Sprintf("template real %s is not available (weight %d, overloaded %v): the scheduler picks instead", t.Real, c.Weight, c.Overloaded))
			}
		}
	}
	if proto == conntrack.ProtoTCP {
		res.Reasons = append(res.Reasons, "no connection: only a SYN creates one (unless sloppy_tcp)")
	}
	f := sched.Flow{Client: schedAddr(key.Client), ClientPort: key.CPort, VIP: schedAddr(key.VIP), Port: key.VPort, Proto: proto}
	i, exact := svc.Sched.Peek(&f, loads)
	res.Exact = exact
	if i < 0 || i >= len(svc.Reals) || svc.Reals[i] == nil {
		res.Reasons = append(res.Reasons, "no real server is available: a new connection is dropped (no_real)")
		return res, nil
	}
	r := svc.Reals[i]
	res.Chosen = addrPort(r.Addr, r.Port)
	res.Reasons = append(res.Reasons, schedReason(svc, i, exact, res.Chosen))
	return res, nil
}

func schedReason(svc *forward.Service, i int, exact bool, chosen string) string {
	k := svc.Sched.Kind()
	why := ""
	switch k {
	case sched.KindRR, sched.KindWRR:
		why = "next in the " + k.String() + " sequence among available reals"
	case sched.KindLC:
		why = "fewest connections (active*256 + inactive)"
	case sched.KindWLC:
		why = "least (active*256 + inactive) / weight"
	case sched.KindSED:
		why = "least (active+1) / weight"
	case sched.KindNQ:
		why = "an idle real if any, else least (active+1) / weight"
	case sched.KindFO:
		why = "highest weight among available reals"
	case sched.KindOVF:
		why = "highest weight whose active connections are below its weight"
	case sched.KindDH, sched.KindSH, sched.KindMH:
		why = "hash bucket of the flow"
	default:
		why = "weighted least connection"
	}
	s := fmt.Sprintf("a new connection would go to %s: %s", chosen, why)
	if !exact {
		s += fmt.Sprintf(" (%s also depends on per-worker state; this is its cold-cache choice)", k)
	}
	return s
}

// schedAddr is a key address as the schedulers hash it: IPv4 as it is, IPv6 folded as the
// engine folds it.
func schedAddr(a [16]byte) [4]byte {
	if conntrack.Is4(&a) {
		return [4]byte(a[12:])
	}
	return sched.Fold6(a)
}
