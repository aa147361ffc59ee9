package engine

import (
	"sync/atomic"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/lvssync"
)

// Connection synchronization in the worker (IPVS's ip_vs_sync_conn and the backup side of
// ip_vs_proc_conn). The master side puts a record in the worker's outbound ring when a TCP
// connection reaches ESTABLISHED or a closing state, then on the sync_threshold-th of every
// sync_period packets of an established connection (counted per connection in an array
// beside the table, indexed by slot), and on a packet more than half a state timeout after
// the connection's last record. A bound template goes first.
// The backup side drains the worker's inbound ring between blocks and installs records
// into this worker's table, the one the steering sends the client's packets to.
//
// Nothing here blocks or allocates: a full ring drops the record (lvssync counts it).

// syncState is the engine's sync plumbing. out and in are set by the control side at any
// time (atomically); the counters are written by the worker only.
type syncState struct {
	cfg   atomic.Pointer[syncRings]
	hop   atomic.Pointer[SyncHop] // where synced NAT connections' replies go until learnt
	rec   lvssync.Conn
	stats SyncStats
}

// syncRings is what SetSync sets, published as one pointer. pkts and at are per table
// slot (conntrack.Table.Slot) and written by the worker only: the packet count modulo
// period (the kernel's cp->in_pkts) and the tick of the last record sent.
type syncRings struct {
	out, in           *lvssync.Ring
	threshold, period uint32
	pkts              []uint16
	at                []uint32
}

// SyncStats are a worker's install outcomes, read by the control side with atomic loads.
type SyncStats struct {
	Installed   atomic.Uint64 // records entered into the table
	Updated     atomic.Uint64 // records that refreshed an entry from an earlier record
	LocalActive atomic.Uint64 // records refused: a local active entry wins
	TableFull   atomic.Uint64 // records refused: the table is full
	NoService   atomic.Uint64 // records for a service this director lacks
	NoReal      atomic.Uint64 // records for a real server the service lacks here
}

// SetSync connects the engine to sync: out receives the records of this worker's
// connections (nil: not a master), in holds records to install (nil: not a backup).
// threshold and period are the sync_threshold sysctl's two values. Safe to call while the
// worker runs; the rings must not change owner afterwards.
func (e *Engine) SetSync(out, in *lvssync.Ring, threshold, period int) {
	sr := &syncRings{out: out, in: in, threshold: uint32(max(threshold, 0)), period: uint32(min(max(period, 0), 1<<16-1))}
	if out != nil {
		// 6 bytes per slot: 6 MiB for a 1M-entry table, allocated only on a director that syncs.
		sr.pkts, sr.at = make([]uint16, e.ct.Capacity()), make([]uint32, e.ct.Capacity())
	}
	e.sync.cfg.Store(sr)
}

// SyncHop is the next hop towards clients (interface slot and MAC) that a backup gives the
// NAT connections it installs: a record does not say where the client's packets came from,
// and without a hop the real server's replies could not leave until the client sent again.
// The control side resolves it from the routing table (forward.SyncPlane).
type SyncHop struct {
	If  uint8
	MAC [6]byte
}

// SetSyncHop sets the hop for NAT connections installed from now on. Safe while running.
func (e *Engine) SetSyncHop(h SyncHop) { e.sync.hop.Store(&h) }

// SyncStats returns the worker's install counters.
func (e *Engine) SyncStats() *SyncStats { return &e.sync.stats }

// syncPacket is called for every packet that advanced an entry: a TCP state change to a
// state the kernel syncs (ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT, TIME_WAIT) sends a
// record; so does the threshold-th of every period packets of an established connection
// (or UDP), as ip_vs_sync_conn_needed; and, beyond the kernel, a packet of a connection
// whose last record is older than half its state timeout, so that a slow connection's copy
// on the backup is refreshed too (the kernel's sync_refresh_period does this when set).
func (e *Engine) syncPacket(svc *Service, ent *conntrack.Entry, old, cur conntrack.State) {
	if ent.Flags&conntrack.FlagSynced != 0 && ent.Flags&conntrack.FlagNAT != 0 && ent.HopMAC == [6]byte{} {
		// Installed before the hop towards clients was known: a real server's reply (this
		// packet, maybe) must still reach the client.
		if h := e.sync.hop.Load(); h != nil {
			ent.HopIf, ent.HopMAC = h.If, h.MAC
		}
	}
	sc := e.sync.cfg.Load()
	if sc == nil || sc.out == nil || ent.Flags&conntrack.FlagOnePacket != 0 {
		return
	}
	out := sc.out
	slot, ok := e.ct.Slot(ent)
	if !ok || int(slot) >= len(sc.at) {
		return
	}
	send := false
	switch cur {
	case conntrack.StateEstablished, conntrack.StateUDP:
		if old != cur {
			send = true
			break
		}
		if sc.period > 0 {
			n := uint32(sc.pkts[slot]) + 1
			if n >= sc.period {
				n = 0
			}
			sc.pkts[slot] = uint16(n)
			send = n == sc.threshold
		}
		// The entry's expiry was just set a full state timeout ahead.
		send = send || e.nowMs-sc.at[slot] >= (ent.Expires-e.nowMs)/2
	case conntrack.StateFinWait, conntrack.StateClose, conntrack.StateCloseWait, conntrack.StateTimeWait:
		send = old != cur
	}
	if !send {
		return
	}
	sc.at[slot] = e.nowMs
	to := e.ct.Timeouts()
	if tpl := e.ct.Template(ent); tpl != nil && entryRecord(svc, tpl, &to, &e.sync.rec) {
		out.Put(&e.sync.rec)
	}
	if entryRecord(svc, ent, &to, &e.sync.rec) {
		out.Put(&e.sync.rec)
	}
}

// SyncRecord fills c with the sync record of table entry ent (a bulk copy's source), to
// being the table's timeouts. It reports false for an entry it cannot describe.
func (s *Snapshot) SyncRecord(ent *conntrack.Entry, to *conntrack.Timeouts, c *lvssync.Conn) bool {
	return entryRecord(s.service(ent.Service), ent, to, c)
}

// entryRecord fills c from table entry ent of svc. It reports false for an entry it cannot
// describe (its real is gone).
func entryRecord(svc *Service, ent *conntrack.Entry, to *conntrack.Timeouts, c *lvssync.Conn) bool {
	if svc == nil || int(ent.RealIdx) >= len(svc.Reals) || svc.Reals[ent.RealIdx] == nil {
		return false
	}
	real := svc.Reals[ent.RealIdx]
	if conntrack.Is4(&ent.Real) != conntrack.Is4(&ent.Key.VIP) {
		return false // a tunnel to the other family: no record can carry it (see install)
	}
	*c = lvssync.Conn{
		Protocol: ent.Key.Proto,
		Client:   conntrack.Addr(ent.Key.Client), CPort: ent.Key.CPort,
		VIP: conntrack.Addr(ent.Key.VIP), VPort: ent.Key.VPort,
		Real: conntrack.Addr(ent.Real), DPort: ent.RPort,
	}
	switch real.Method {
	case config.DR:
		c.Flags = lvssync.FlagDRoute
	case config.TUN:
		c.Flags = lvssync.FlagTunnel
	default:
		c.Flags = lvssync.FlagMasq
	}
	if ent.Flags&conntrack.FlagTemplate != 0 {
		c.Flags |= lvssync.FlagTemplate
		if ent.Flags&conntrack.FlagAssured != 0 {
			c.State = lvssync.TemplateAssured
		}
		c.DPort = real.Port // a template names the real's configured port (0: the client's)
		c.Timeout = svc.PersistMs / 1000
		return true
	}
	c.State, c.Timeout = wireState(ent.State, to)
	if !conntrack.IsActive(ent.State) {
		c.Flags |= lvssync.FlagInactive
	}
	return true
}

// wireState maps a table state to IPVS's number for it and its timeout in seconds.
func wireState(s conntrack.State, to *conntrack.Timeouts) (uint16, uint32) {
	var t uint32
	switch s {
	case conntrack.StateNone:
		t = to.None
	case conntrack.StateEstablished:
		t = to.Established
	case conntrack.StateSynSent:
		t = to.SynSent
	case conntrack.StateSynRecv:
		t = to.SynRecv
	case conntrack.StateFinWait:
		t = to.FinWait
	case conntrack.StateTimeWait:
		t = to.TimeWait
	case conntrack.StateClose:
		t = to.Close
	case conntrack.StateCloseWait:
		t = to.CloseWait
	case conntrack.StateLastAck:
		t = to.LastAck
	case conntrack.StateListen:
		t = to.Listen
	case conntrack.StateSynack:
		t = to.Synack
	case conntrack.StateUDP:
		return lvssync.UDPNormal, to.UDP / 1000
	}
	// The table's TCP states are IPVS's plus one (StateInvalid is 0).
	return uint16(s - conntrack.StateNone), t / 1000
}

// tableState maps an IPVS state number of protocol proto to the table's state.
func tableState(proto uint8, s uint16) conntrack.State {
	if proto != conntrack.ProtoTCP {
		return conntrack.StateUDP
	}
	return conntrack.StateNone + conntrack.State(s)
}

// SyncPending reports whether records wait in the inbound ring.
func (e *Engine) SyncPending() bool {
	sc := e.sync.cfg.Load()
	return sc != nil && sc.in != nil && sc.in.Len() > 0
}

// DrainSync installs the records waiting in the inbound ring. The caller calls Begin first
// (the snapshot and clock); the worker calls it between blocks.
func (e *Engine) DrainSync() {
	sc := e.sync.cfg.Load()
	if sc == nil || sc.in == nil || e.snap == nil {
		return
	}
	sc.in.Drain(e.install)
}

// install enters one record into the table, as ip_vs_proc_conn: a connection keeps its
// real server, state and translation; it expires the record's timeout (the state's, a v1
// record says) after now, so no earlier than on the master and at most one timeout after
// the last record; a template with the persistence timeout. A local entry in an active
// state wins; an entry from an earlier record is replaced.
func (e *Engine) install(c *lvssync.Conn) {
	st := &e.sync.stats
	if !c.Client.IsValid() || !c.VIP.IsValid() || !c.Real.IsValid() {
		st.NoService.Add(1)
		return
	}
	tmpl := c.Flags&lvssync.FlagTemplate != 0
	// A record's three addresses are of one family (the v1 wire has IPv4 and IPv6 records),
	// so a connection to a real of the other family (4in6, 6in4) is never synced.
	vip, client, realAddr := c.VIP.Unmap().As16(), c.Client.Unmap().As16(), c.Real.Unmap().As16()
	svc := e.snap.lookupService(vip, c.Protocol, c.VPort)
	if tmpl && svc == nil {
		svc = e.snap.lookupService(vip, c.Protocol, c.DPort)
	}
	if svc == nil {
		st.NoService.Add(1)
		return
	}
	slot := -1
	for i, r := range svc.Reals {
		if r != nil && r.Addr == realAddr && (r.Port == 0 || r.Port == c.DPort || tmpl) {
			slot = i
			break
		}
	}
	if slot < 0 {
		st.NoReal.Add(1)
		return
	}
	real := svc.Reals[slot]
	key := conntrack.Key{Client: client, VIP: vip, CPort: c.CPort, VPort: c.VPort, Proto: c.Protocol}
	timeout := min(uint64(c.Timeout)*1000, conntrack.MaxTimeout)
	ent := conntrack.Entry{Key: key, Real: realAddr, RPort: c.DPort, Service: svc.ID, RealIdx: uint16(slot),
		Flags: conntrack.FlagSynced}
	if tmpl {
		if timeout == 0 {
			timeout = uint64(svc.PersistMs)
		}
		ent.RPort = real.Port
		if old := e.ct.LookupTemplate(&key); old != nil {
			if old.Real == realAddr {
				e.ct.TouchTemplate(old, uint32(timeout), e.nowMs)
				st.Updated.Add(1)
				return
			}
			e.ct.Delete(old) // the master moved the client: its connections keep their reals
		}
		if _, ok := e.ct.InsertTemplate(&ent, uint32(timeout), e.nowMs); !ok {
			st.TableFull.Add(1)
			return
		}
		st.Installed.Add(1)
		return
	}
	state := tableState(c.Protocol, c.State)
	if real.Method == config.NAT {
		ent.Flags |= conntrack.FlagNAT
		if h := e.sync.hop.Load(); h != nil {
			ent.HopIf, ent.HopMAC = h.If, h.MAC
		}
	}
	ent.State = state
	if old := e.ct.Lookup(&key); old != nil {
		if old.Flags&conntrack.FlagSynced == 0 && conntrack.IsActive(old.State) {
			st.LocalActive.Add(1)
			return
		}
		if old.Real == ent.Real && old.RPort == ent.RPort && old.Flags&conntrack.FlagNAT == ent.Flags&conntrack.FlagNAT {
			if old.State != state {
				e.account(svc, old, old.State, state)
				old.State = state
			}
			old.Expires = e.nowMs + uint32(timeout)
			if old.HopMAC == [6]byte{} {
				old.HopIf, old.HopMAC = ent.HopIf, ent.HopMAC
			}
			st.Updated.Add(1)
			return
		}
		e.forget(old)
	}
	ep, ok := e.ct.Insert(&ent, e.nowMs)
	if !ok || ep == nil {
		st.TableFull.Add(1)
		return
	}
	if timeout > 0 {
		ep.Expires = e.nowMs + uint32(timeout)
	}
	e.account(svc, ep, conntrack.StateInvalid, ep.State)
	if svc.PersistMs != 0 {
		tk := conntrack.TemplateKey(&ep.Key, svc.PersistBits, svc.TplPort)
		if tpl := e.ct.LookupTemplate(&tk); tpl != nil {
			e.ct.Bind(ep, tpl)
		}
	}
	st.Installed.Add(1)
}

// syncHop learns where a synced NAT connection's replies go from the first request the new
// master sees for it: the backup installed it without the client's next hop.
func (e *Engine) syncHop(ent *conntrack.Entry, frame []byte, rxIf int) {
	if ent.Flags&conntrack.FlagSynced != 0 && ent.HopMAC == [6]byte{} {
		ent.HopIf = uint8(rxIf)
		copy(ent.HopMAC[:], frame[6:12])
	}
}
