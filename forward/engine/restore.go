package engine

import (
	"encoding/binary"

	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/statefile"
	"github.com/uvs-project/uvs/forward/steer"
)

// Saving and restoring the connection tables across a restart (uvs run --state-file): the
// file format is package statefile; this maps entries to and from a snapshot's services and
// the engines' tables.

// SaveConns turns the workers' table entries into records (control side, workers stopped).
func SaveConns(s *Snapshot, entries []conntrack.Entry, nowMs uint32) []statefile.SavedConn {
	out := make([]statefile.SavedConn, 0, len(entries))
	for i := range entries {
		e := &entries[i]
		svc := s.service(e.Service)
		if svc == nil {
			continue
		}
		left := int32(e.Expires - nowMs)
		if left <= 0 {
			continue
		}
		out = append(out, statefile.SavedConn{
			Key: e.Key, Real: e.Real, RPort: e.RPort, ServicePort: svc.Port,
			State: e.State, Flags: e.Flags, RemainingMs: uint32(left), HopIf: e.HopIf, HopMAC: e.HopMAC,
		})
	}
	return out
}

// Restore enters saved connections into the engines' tables, each into the worker whose
// socket the fanout steering will hand its packets to, and counts them on their real
// servers. Templates go in first so that connections can be bound to them. It returns how
// many entries were restored. Control side, before the workers start.
func Restore(s *Snapshot, engines []*Engine, ifaces []string, conns []statefile.SavedConn, nowMs uint32) int {
	slotOf := map[string]int{}
	for i, ifc := range s.Ifaces {
		slotOf[ifc.Name] = i
	}
	vips, nat := s.Steering()
	restored := 0
	for pass := 0; pass < 2; pass++ {
		for i := range conns {
			c := &conns[i]
			tmpl := c.Flags&conntrack.FlagTemplate != 0
			if tmpl != (pass == 0) {
				continue
			}
			svc := s.services[svcKey{addr: c.Key.VIP, port: c.ServicePort, proto: c.Key.Proto}]
			if svc == nil {
				continue
			}
			slot := -1
			for j, r := range svc.Reals {
				if r != nil && r.Addr == c.Real && (r.Port == c.RPort || r.Port == 0) {
					slot = j
					break
				}
			}
			if slot < 0 {
				continue
			}
			hop := 0
			if int(c.HopIf) < len(ifaces) {
				if h, ok := slotOf[ifaces[c.HopIf]]; ok {
					hop = h
				}
			}
			h := SteerKey(&c.Key, vips, nat)
			e := engines[int(h)%len(engines)]
			ent := conntrack.Entry{
				Key: c.Key, Real: c.Real, RPort: c.RPort, Service: svc.ID, RealIdx: uint16(slot),
				State: c.State, Flags: c.Flags, HopIf: uint8(hop), HopMAC: c.HopMAC,
			}
			if tmpl {
				if _, ok := e.ct.InsertTemplate(&ent, c.RemainingMs, nowMs); ok {
					restored++
				}
				continue
			}
			ep, ok := e.ct.Insert(&ent, nowMs)
			if !ok || ep == nil {
				continue
			}
			ep.Expires = nowMs + min(c.RemainingMs, conntrack.MaxTimeout)
			e.snap = s
			e.account(svc, ep, conntrack.StateInvalid, ep.State)
			if svc.PersistMs != 0 {
				tk := conntrack.TemplateKey(&ep.Key, svc.PersistBits, svc.TplPort)
				if tpl := e.ct.LookupTemplate(&tk); tpl != nil {
					e.ct.Bind(ep, tpl)
				}
			}
			restored++
		}
	}
	return restored
}

// SteerKey returns the fanout steering hash of a connection key: the worker that the
// steering program hands the client's packets to is SteerKey % workers.
func SteerKey(k *conntrack.Key, vips []steer.SteerVIP, nat []steer.SteerNAT) uint32 {
	if conntrack.Is4(&k.Client) {
		return steer.SteerRule(binary.BigEndian.Uint32(k.Client[12:]), binary.BigEndian.Uint32(k.VIP[12:]),
			k.CPort, k.VPort, true, true, false, vips, nat)
	}
	return steer.SteerRule6(k.Client, k.VIP, k.CPort, k.VPort, vips, nat)
}
