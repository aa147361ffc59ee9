package engine

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/packet"
	"github.com/uvs-project/uvs/sched"
)

// Drop is why the engine or its backend dropped a frame that passed the packet checks: it
// was well formed but could not be forwarded. What the checks refuse is a packet.Fault.
type Drop uint8

// Engine drop reasons. String gives each its metric label.
const (
	DropInvalid        Drop = iota
	DropNoService           // to a VIP, but no service on that protocol and port
	DropNoConn              // TCP without SYN and no connection (sloppy_tcp off), as IPVS
	DropNoReal              // no real server available (all quiescent, overloaded or none)
	DropTableFull           // connection table full
	DropEgress              // the real server's egress (route, neighbour) is unresolved
	DropMethod              // forwarding method not available
	DropTruncatedFrame      // the ring truncated the frame (snaplen < len)
	DropScratchFull         // no scratch room for a generated frame
	DropTxBatchFull         // more frames in one block than a TX batch holds
	DropTxRingFull          // TX ring had no free slot
	DropTxBusy              // the device or socket queue was full
	DropTxError             // the send failed (link down, ...)
	DropTxOversize          // the kernel refused the frame as larger than the device takes (EMSGSIZE)
	DropTxStuck             // TX ring slots the kernel failed to send and uvs skipped
	DropICMPUnrelated       // ICMP to a VIP that is no error of a known connection (or ping is off)
	DropTooBig              // over the egress MTU and not fragmentable (DF: answered, mtu.go)
	DropTooBigLimited       // as DropTooBig, but the ICMP budget allowed no answer
	DropVRRPBackup          // to a VIP whose VRRP instance is not master here
	numDrops
)

// The TX reasons (DropTxRingFull, DropTxBusy, DropTxError, DropTxOversize, DropTxStuck) are the
// TX queues' own counts, which the worker stores after every flush; the engine never counts
// under them, or the store would overwrite its counts.

var dropNames = [numDrops]string{
	"invalid", "no_service", "tcp_no_conn", "no_real", "conntrack_full", "egress_unresolved",
	"method_unavailable", "truncated_frame", "scratch_full", "tx_batch_full", "tx_ring_full",
	"tx_busy", "tx_error", "tx_oversize", "tx_stuck", "icmp_unrelated", "too_big", "too_big_icmp_limited",
	"vrrp_backup",
}

func (d Drop) String() string {
	if d < numDrops {
		return dropNames[d]
	}
	return "invalid"
}

// EngineStats are one worker's packet counters. The worker is the only writer (atomic
// load+store, no locked read-modify-write); the hot counts (frames received, forwarded,
// replied, ignored, faults and drops) are kept in plain fields and published once per block
// (Engine.Publish). The control side reads them with atomic loads.
type EngineStats struct {
	RxFrames    atomic.Uint64
	TxFrames    atomic.Uint64 // frames the kernel accepted for transmission
	Forwarded   atomic.Uint64
	Replies     atomic.Uint64 // NAT replies rewritten
	ARPReplies  atomic.Uint64
	Ignored     atomic.Uint64                   // frames left to the kernel
	ICMPSent    atomic.Uint64                   // ICMP errors and RSTs generated
	ICMPLimited atomic.Uint64                   // ICMP errors and RSTs suppressed by the rate limit
	ICMPRelayed atomic.Uint64                   // ICMP errors relayed to a connection's real server or client
	FragNeeded  atomic.Uint64                   // ICMP fragmentation needed sent for DF packets too big (in ICMPSent too)
	LinkErrors  atomic.Uint64                   // socket errors from a ring (link down), cleared and counted
	Faults      [packet.NumFaults]atomic.Uint64 // frames dropped by the packet checks, by packet.Fault
	Drops       [numDrops]atomic.Uint64         // frames dropped by the engine or its backend, by Drop
	Conns       atomic.Int64                    // live entries in this worker's table, templates included

	// Kernel ring counters (PACKET_STATISTICS), added by the control side.
	RingPackets atomic.Uint64 // frames the kernel put in this worker's rings
	RingDrops   atomic.Uint64 // frames the kernel dropped because a ring was full
	RingFreezes atomic.Uint64 // times a ring ran out of free blocks

	MSSClamped atomic.Uint64 // SYNs whose MSS option was lowered (service mss_clamp)
	Tunnel     TunnelStats
}

// OutFrame is one frame to transmit: a virtio_net_hdr followed by the frame. Frame points into the
// RX block or the engine's scratch, so it is valid until the block is released.
type OutFrame struct {
	Iface int // interface slot (index into Snapshot.Ifaces)
	Frame []byte
}

// expireBatch bounds the expiry work per block: 64 entries is a few microseconds, and at one
// block per millisecond or more it retires tens of thousands of entries per second per worker.
const expireBatch = 64

// Engine is the per-packet logic of one worker. It is pure (frames in, frames and counters
// out), so tests drive it without sockets. Not safe for concurrent use: one per worker.
type Engine struct {
	id    int
	snap  *Snapshot
	ct    *conntrack.Table
	ws    *sched.WorkerState
	nowMs uint32
	nowNs int64

	out     []OutFrame // frames to send in this batch; capacity fixed at creation
	scratch []byte     // arena for generated frames; reset after each flush
	used    int

	p       packet.Packet
	src     [16]byte // the current packet's addresses in key form: IPv6, or IPv4-mapped
	dst     [16]byte
	ns      packet.NS
	vh      packet.VnetHdr
	arp     packet.ARP
	expired [expireBatch]conntrack.Entry
	tun     tunState

	icmpTokens float64 // ICMP/RST rate limit bucket
	icmpLast   int64

	stats *EngineStats
	pend  pending     // counts of this block, published by Publish
	dirty []*Counters // service and real counters with pending counts; cap maxDirty

	spot  conntrack.Spot  // where LookupSpot found no connection, for Admit
	gone  conntrack.Entry // an expired entry Admit reclaimed
	stage stage           // frames staged for Run's batched lookups

	sync syncState // connection sync (sync.go)
}

// NewEngine returns the engine of worker id: ct is its connection table, outCap the most
// frames one batch holds, scratchBytes the arena for the frames it generates, and seed seeds
// its scheduler state.
func NewEngine(id int, ct *conntrack.Table, outCap, scratchBytes int, seed uint64) *Engine {
	return newEngine(id, ct, outCap, scratchBytes, sched.NewWorkerState(seed))
}

// newEngine is NewEngine with the scheduler state (about 5 MiB of caches) supplied, so that a
// fuzz target can give each input a fresh engine around one reset WorkerState.
func newEngine(id int, ct *conntrack.Table, outCap, scratchBytes int, ws *sched.WorkerState) *Engine {
	return &Engine{
		id:      id,
		ct:      ct,
		ws:      ws,
		out:     make([]OutFrame, 0, outCap),
		scratch: make([]byte, scratchBytes),
		stats:   new(EngineStats),
		dirty:   make([]*Counters, 0, maxDirty),
	}
}

// Begin starts a batch: the snapshot and the coarse clock are read once per block.
func (e *Engine) Begin(s *Snapshot, nowNs int64) {
	e.snap = s
	e.nowNs = nowNs
	e.nowMs = uint32(nowNs / 1e6)
}

// Reset forgets the batch's frames after they were sent.
func (e *Engine) Reset() {
	e.out = e.out[:0]
	e.used = 0
}

// fault counts a frame the packet checks refused.
func (e *Engine) fault(f packet.Fault) { e.pend.faults[f]++ }

// Drop counts a frame the engine or its backend dropped for reason r.
func (e *Engine) Drop(r Drop) { e.pend.drops[r]++ }

func bump64(c *atomic.Uint64, n uint64) { c.Store(c.Load() + n) }

// Out returns the frames the batch produced so far, for the backend to transmit; they are
// valid until Reset.
func (e *Engine) Out() []OutFrame { return e.out }

// Stats returns the engine's counters. The backend adds its own (TX outcomes, ring counters,
// link errors) to them.
func (e *Engine) Stats() *EngineStats { return e.stats }

// Table returns the engine's connection table. It belongs to the worker's goroutine: others
// may read it only while the worker is stopped or between blocks at its request.
func (e *Engine) Table() *conntrack.Table { return e.ct }

// Handle processes one received frame. buf is the virtio_net_hdr followed by the frame as the
// ring holds it; the engine rewrites it in place. A VLAN tag the kernel holds in metadata
// (TP_STATUS_VLAN_VALID) is not in buf and is not sent: egress goes untagged to the real
// server's interface.
func (e *Engine) Handle(buf []byte, rxIf int) {
	e.pend.rx++
	if len(buf) < packet.VnetHdrLen {
		e.fault(packet.FaultTruncatedIP)
		return
	}
	// af_packet fills the header with vlan_hlen 0: csum_start is relative to the frame as
	// captured, without a tag the kernel holds in metadata, which is the frame we send.
	e.vh.Decode(buf[:packet.VnetHdrLen])
	frame := buf[packet.VnetHdrLen:]
	p := &e.p
	switch packet.ParseL3(frame, p) {
	case packet.ClassIPv4:
	case packet.ClassIPv6:
		e.handle6(buf, frame, rxIf)
		return
	case packet.ClassARP:
		e.arpIn(frame, rxIf)
		return
	default:
		e.pend.ignored++
		return
	}
	// One probe of the snapshot's classifier finds the service of a packet to a VIP:port;
	// a miss asks whether the destination is a VIP at all, then whether the source is a NAT
	// real server.
	c := &e.snap.cls
	l4 := packet.ParseL4(frame, p)
	if l4 == packet.FaultNone {
		if svc := c.service(p.Dst, p.Proto, p.DstPort); svc != nil {
			e.src, e.dst = conntrack.Map4(p.Src), conntrack.Map4(p.Dst)
			if e.snap.isStandby(e.dst) {
				e.Drop(DropVRRPBackup)
				return
			}
			e.request(buf, frame, rxIf, svc)
			return
		}
	}
	e.src, e.dst = conntrack.Map4(p.Src), conntrack.Map4(p.Dst)
	if c.isVIP(p.Dst) {
		if e.snap.isStandby(e.dst) {
			e.Drop(DropVRRPBackup)
			return
		}
		if l4 != packet.FaultNone {
			e.fault(l4)
			return
		}
		e.request(buf, frame, rxIf, nil)
		return
	}
	if l4 == packet.FaultNone && c.isNATAddr(p.Src) {
		if c.isNATReply(p.Src, p.SrcPort, p.Proto) {
			e.reply(buf, frame, rxIf)
			return
		}
		if p.Proto == packet.ProtoICMP && e.icmpFromReal(buf, frame) {
			return
		}
	}
	e.pend.ignored++
}

// request forwards a client packet to a VIP, whose L4 header Handle has parsed. svc is the
// service the classifier found, or nil.
func (e *Engine) request(buf, frame []byte, rxIf int, svc *Service) {
	p := &e.p
	if r := e.vh.Check(p, len(frame)); r != packet.FaultNone {
		e.fault(r)
		return
	}
	if p.Proto == packet.ProtoICMP {
		e.icmpToVIP(buf, frame, rxIf)
		return
	}
	if p.Proto == packet.ProtoICMPv6 {
		e.icmp6ToVIP(buf, frame, rxIf)
		return
	}
	if svc == nil {
		e.Drop(DropNoService)
		return
	}
	var key *conntrack.Key
	if f := e.stage.hint; f != nil && f.ok {
		key = &f.key // built by hashStaged from this frame's addresses and ports
	} else {
		key = &conntrack.Key{Client: e.src, VIP: e.dst, CPort: p.SrcPort, VPort: p.DstPort, Proto: p.Proto}
	}
	ent := e.lookupConn(key) // a miss remembers where the new entry goes
	var dest *Real
	if ent != nil {
		if p.Proto == packet.ProtoTCP && conntrack.Reusable(ent, p.TCPFlags) {
			// conn_reuse_mode: a new SYN on a closing entry starts a new connection now,
			// instead of IPVS's one-second stall.
			e.forget(ent)
			ent = nil
		} else if dest = e.connReal(svc, ent); dest == nil || dest.dead() {
			switch {
			case dest != nil && svc.DeadReal == config.DeadRealKeep:
				// Failed or draining, but still reachable: its connections go on.
			case svc.DeadReal == config.DeadRealReset && p.Proto == packet.ProtoTCP:
				e.forget(ent)
				e.sendRST(frame, rxIf)
				return
			default:
				// Expire (or a real that is gone altogether): forget the connection; the
				// packet is scheduled afresh if it may open one (UDP, SYN).
				e.forget(ent)
				ent, dest = nil, nil
			}
		}
	}
	if ent == nil {
		if !e.ct.Creates(p.Proto, p.TCPFlags) {
			e.Drop(DropNoConn)
			return
		}
		if ent, dest = e.newConn(svc, key, frame, rxIf); ent == nil {
			return
		}
	} else {
		e.advance(svc, ent, conntrack.DirInput)
		e.syncHop(ent, frame, rxIf)
	}
	if dest.TxIf < 0 {
		e.Drop(DropEgress)
		return
	}
	n := uint64(p.IPLen)
	e.in(&svc.Stats[e.id], n)
	e.in(&dest.Stats[e.id], n)
	if svc.MSSClamp != 0 && p.TCPFlags&packet.TCPSYN != 0 && packet.ClampMSS(frame, p, e.vh.Partial(), svc.MSSClamp) {
		bump64(&e.stats.MSSClamped, 1)
	}
	if e.toReal(buf, frame, dest, ent, rxIf, nil) {
		e.pend.fwd++
	}
}

// toReal sends the current packet of connection ent to its real server by the server's
// forwarding method: as it is (DR: the real server has the VIP), with the destination
// rewritten to the real's address and port (NAT; for an ICMP error q, the quoted header too),
// or inside IPIP (TUN). A DF packet too big for the real's egress is answered instead
// (tooBig), before any rewrite, so that the quote is the client's own header. It reports
// whether a frame was queued; a drop is counted.
func (e *Engine) toReal(buf, frame []byte, dest *Real, ent *conntrack.Entry, rxIf int, q *quote) bool {
	p := &e.p
	if p.V6 {
		return e.toReal6(buf, frame, dest, ent, rxIf, q)
	}
	switch dest.Method {
	case config.DR, config.NAT:
		if e.tooBig(frame, rxIf, dest.MTU, e.p.Dst) || e.gsoTooBig(frame, dest.MTU) {
			return false
		}
	case config.TUN:
		return e.tunnel(frame, dest, rxIf)
	default:
		e.Drop(DropMethod)
		return false
	}
	if dest.Method == config.NAT {
		if q != nil {
			if !natICMPIn(frame, p, q, [4]byte(ent.Real[12:]), ent.RPort) {
				e.fault(packet.FaultTTLExceeded)
				return false
			}
		} else if r := packet.RewriteDst(frame, p, e.vh.Partial(), [4]byte(ent.Real[12:]), ent.RPort); r != packet.FaultNone {
			e.fault(r)
			return false
		}
	}
	e.emit(buf, frame, dest.TxIf, dest.MTU, dest.DstMAC, dest.SrcMAC)
	return true
}

// reply rewrites a NAT reply from a real server back to VIP:port and sends it to the hop the
// client's request came from. rxIf is where the reply came in.
func (e *Engine) reply(buf, frame []byte, rxIf int) {
	p := &e.p
	ent := e.ct.LookupReply(p.Proto, e.dst, p.DstPort, e.src, p.SrcPort)
	if ent == nil {
		// Not ours (a reply to the director's own traffic, or an expired connection): the
		// kernel gets it, and the shield drops it unless it is addressed to this host.
		e.pend.ignored++
		return
	}
	if r := e.vh.Check(p, len(frame)); r != packet.FaultNone {
		e.fault(r)
		return
	}
	svc := e.snap.service(ent.Service)
	if svc == nil {
		e.forget(ent)
		e.Drop(DropNoService)
		return
	}
	e.advance(svc, ent, conntrack.DirOutput)
	hop := int(ent.HopIf)
	if hop >= len(e.snap.Ifaces) {
		e.Drop(DropEgress)
		return
	}
	// Too big for the client's side: the real server hears it from the director's address
	// on its own side, as from the kernel's ip_forward; before the rewrite, so that the
	// quote is its own header.
	if p.V6 {
		if mtu := e.snap.Ifaces[hop].MTU; e.tooBig6(frame, rxIf, mtu, e.ifAddr6(rxIf)) || e.gsoTooBig(frame, mtu) {
			return
		}
		if r := packet.RewriteSrc6(frame, p, e.vh.Partial(), ent.Key.VIP, ent.Key.VPort); r != packet.FaultNone {
			e.fault(r)
			return
		}
	} else {
		if mtu := e.snap.Ifaces[hop].MTU; e.tooBig(frame, rxIf, mtu, e.ifAddr(rxIf)) || e.gsoTooBig(frame, mtu) {
			return
		}
		if r := packet.RewriteSrc(frame, p, e.vh.Partial(), [4]byte(ent.Key.VIP[12:]), ent.Key.VPort); r != packet.FaultNone {
			e.fault(r)
			return
		}
	}
	n := uint64(p.IPLen)
	e.outCount(&svc.Stats[e.id], n)
	if int(ent.RealIdx) < len(svc.Reals) && svc.Reals[ent.RealIdx] != nil {
		r := svc.Reals[ent.RealIdx]
		e.outCount(&r.Stats[e.id], n)
	}
	e.emit(buf, frame, hop, 0, ent.HopMAC, e.snap.Ifaces[hop].MAC)
	e.pend.replies++
}

// connReal returns the real server of an existing connection, or nil if it is gone.
func (e *Engine) connReal(svc *Service, ent *conntrack.Entry) *Real {
	if ent.Service != svc.ID || int(ent.RealIdx) >= len(svc.Reals) {
		return nil
	}
	r := svc.Reals[ent.RealIdx]
	if r == nil || r.Addr != ent.Real || r.Port != 0 && r.Port != ent.RPort {
		return nil
	}
	return r
}

// newConn schedules a new connection (through its persistence template, if any) and enters it
// in the table. It returns nil after counting a drop.
func (e *Engine) newConn(svc *Service, key *conntrack.Key, frame []byte, rxIf int) (*conntrack.Entry, *Real) {
	p := &e.p
	idx := -1
	var tk conntrack.Key
	var tpl *conntrack.Entry
	if svc.PersistMs != 0 {
		tk = conntrack.Key{Client: conntrack.MaskAddr(e.src, svc.PersistBits), VIP: e.dst, VPort: svc.TplPort, Proto: p.Proto}
		if tpl = e.ct.LookupTemplate(&tk); tpl != nil {
			if tpl.Service == svc.ID && int(tpl.RealIdx) < len(svc.Reals) {
				// A template keeps sending its client to a quiescent (weight 0) real unless
				// expire_quiescent_template is set; a removed or failed real never.
				if r := svc.Reals[tpl.RealIdx]; r != nil && r.Addr == tpl.Real && !r.dead() &&
					(svc.Specs[tpl.RealIdx].Weight > 0 || !svc.ExpireQuiescent) {
					idx = int(tpl.RealIdx)
				}
			}
		}
	}
	if idx < 0 {
		flow := sched.Flow{Client: p.Src, ClientPort: p.SrcPort, VIP: p.Dst, Port: p.DstPort, Proto: p.Proto}
		if p.V6 {
			// The schedulers hash 32-bit addresses: IPv6 ones folded, as IPVS's sh and dh.
			flow.Client, flow.VIP = sched.Fold6(p.Src6), sched.Fold6(p.Dst6)
		}
		idx = svc.Sched.Pick(&flow, svc.Loads, e.ws, e.nowNs)
		if idx < 0 || idx >= len(svc.Reals) || svc.Reals[idx] == nil {
			// As IPVS's ip_vs_leave: ICMP port unreachable, for TCP too (no socket exists
			// to send a RST from).
			e.Drop(DropNoReal)
			e.unreachable(frame, rxIf, packet.ICMPCodePortUnreachable)
			return nil, nil
		}
	}
	dest := svc.Reals[idx]
	rport := dest.Port
	if rport == 0 {
		rport = p.DstPort // port-0 and multi-port services: the real keeps the client's port
	}
	ent := conntrack.Entry{
		Key: *key, Real: dest.Addr, RPort: rport, Service: svc.ID, RealIdx: uint16(idx),
		HopIf: uint8(rxIf),
	}
	copy(ent.HopMAC[:], frame[6:12])
	if dest.Method == config.NAT {
		ent.Flags |= conntrack.FlagNAT
	}
	if svc.OnePacket {
		ent.Flags |= conntrack.FlagOnePacket // expires at once: the next datagram is scheduled anew
	}
	// Find-or-insert through the Spot of request's lookup: no second hash or probe. On a full
	// table Admit reclaims an expired entry (a flood's leftovers) and hands it back to be
	// released like Expire's.
	ep, ok, reclaimed := e.ct.Admit(&ent, e.nowMs, &e.spot, &e.gone)
	if reclaimed {
		e.account(e.snap.service(e.gone.Service), &e.gone, e.gone.State, conntrack.StateInvalid)
	}
	if !ok || ep == nil {
		e.Drop(DropTableFull)
		return nil, nil
	}
	e.conn(&svc.Stats[e.id])
	e.conn(&dest.Stats[e.id])
	e.account(svc, ep, conntrack.StateInvalid, ep.State)
	if p.Proto == packet.ProtoTCP {
		e.advance(svc, ep, conntrack.DirInput) // NONE -> SYN_RECV; Insert set UDP's expiry
	}
	if svc.PersistMs != 0 {
		if tpl == nil {
			t := conntrack.Entry{Key: tk, Real: dest.Addr, RPort: dest.Port, Service: svc.ID, RealIdx: uint16(idx)}
			tpl, _ = e.ct.InsertTemplate(&t, svc.PersistMs, e.nowMs)
		} else if int(tpl.RealIdx) != idx || tpl.Service != svc.ID {
			tpl.Real, tpl.RPort, tpl.Service, tpl.RealIdx = dest.Addr, dest.Port, svc.ID, uint16(idx)
		}
		if tpl != nil {
			e.ct.TouchTemplate(tpl, svc.PersistMs, e.nowMs)
			e.ct.Bind(ep, tpl)
		}
	}
	return ep, dest
}

// advance moves a connection's state for one packet and keeps the real's load in step.
func (e *Engine) advance(svc *Service, ent *conntrack.Entry, dir conntrack.Dir) {
	if e.p.Proto != packet.ProtoTCP {
		if dir == conntrack.DirOutput {
			e.ct.TouchOutput(ent, e.nowMs)
		} else {
			e.ct.Touch(ent, e.nowMs)
		}
		e.syncPacket(svc, ent, ent.State, ent.State)
		return
	}
	old, cur := e.ct.TCP(ent, dir, e.p.TCPFlags, e.nowMs)
	if old != cur {
		e.account(svc, ent, old, cur)
	}
	e.syncPacket(svc, ent, old, cur)
}

// account moves one connection between the active and inactive counts of its real server
// (old = StateInvalid for a new connection, cur = StateInvalid for a removed one).
func (e *Engine) account(svc *Service, ent *conntrack.Entry, old, cur conntrack.State) {
	if svc == nil || ent.Flags&conntrack.FlagTemplate != 0 || int(ent.RealIdx) >= len(svc.Loads) {
		return
	}
	var da, di int32
	if old != conntrack.StateInvalid {
		if conntrack.IsActive(old) {
			da--
		} else {
			di--
		}
	}
	if cur != conntrack.StateInvalid {
		if conntrack.IsActive(cur) {
			da++
		} else {
			di++
		}
	}
	if da != 0 || di != 0 {
		svc.Loads[ent.RealIdx].Add(da, di, &svc.Specs[ent.RealIdx])
	}
}

// forget removes a connection and releases its real server's count.
func (e *Engine) forget(ent *conntrack.Entry) {
	e.account(e.snap.service(ent.Service), ent, ent.State, conntrack.StateInvalid)
	e.ct.Delete(ent)
}

// Expire retires a bounded number of expired entries and releases their counts.
func (e *Engine) Expire() {
	n := e.ct.Expire(e.nowMs, expireBatch, e.expired[:])
	for i := 0; i < n; i++ {
		ent := &e.expired[i]
		e.account(e.snap.service(ent.Service), ent, ent.State, conntrack.StateInvalid)
	}
	e.stats.Conns.Store(int64(e.ct.Len()))
	e.Publish()
}

// icmpRate and icmpBurst bound the ICMP errors one worker generates (port unreachable,
// fragmentation needed, RST): 1000 per second with bursts of 100, like the kernel's
// icmp_ratelimit defaults per destination, but here per worker for all destinations.
const (
	icmpRate  = 1000
	icmpBurst = 100
)

// icmpAllowed takes one token from the worker's ICMP bucket.
func (e *Engine) icmpAllowed() bool {
	if e.icmpLast == 0 {
		e.icmpLast, e.icmpTokens = e.nowNs, icmpBurst
	}
	if el := e.nowNs - e.icmpLast; el > 0 {
		e.icmpTokens = min(icmpBurst, e.icmpTokens+float64(el)*icmpRate/1e9)
		e.icmpLast = e.nowNs
	}
	if e.icmpTokens < 1 {
		bump64(&e.stats.ICMPLimited, 1)
		return false
	}
	e.icmpTokens--
	return true
}

// unreachable answers the current packet with an ICMP destination unreachable from its VIP,
// sent back to the hop it came from.
func (e *Engine) unreachable(frame []byte, rxIf int, code uint8) {
	if rxIf >= len(e.snap.Ifaces) || !e.icmpAllowed() {
		return
	}
	if e.p.V6 {
		e.unreachable6(frame, rxIf)
		return
	}
	b := e.alloc(packet.VnetHdrLen + 128)
	if b == nil {
		e.Drop(DropScratchFull)
		return
	}
	clear(b[:packet.VnetHdrLen])
	n := packet.BuildICMPError(b[packet.VnetHdrLen:], frame, &e.p, packet.ICMPDestUnreachable, code, 0, e.p.Dst,
		[6]byte(frame[6:12]), e.snap.Ifaces[rxIf].MAC)
	if n == 0 {
		return
	}
	e.queue(rxIf, b[:packet.VnetHdrLen+n])
	bump64(&e.stats.ICMPSent, 1)
}

// sendRST answers the current TCP packet with a RST from the VIP (dead-real policy "reset"), as
// RFC 793 specifies for a segment that arrives for no connection.
func (e *Engine) sendRST(frame []byte, rxIf int) {
	p := &e.p
	if p.TCPFlags&packet.TCPRST != 0 || rxIf >= len(e.snap.Ifaces) || !e.icmpAllowed() {
		return
	}
	if p.V6 {
		e.sendRST6(frame, rxIf)
		return
	}
	b := e.alloc(packet.VnetHdrLen + packet.MinFrameLen)
	if b == nil {
		e.Drop(DropScratchFull)
		return
	}
	clear(b)
	f := b[packet.VnetHdrLen:]
	copy(f[0:6], frame[6:12])
	mac := e.snap.Ifaces[rxIf].MAC
	copy(f[6:12], mac[:])
	binary.BigEndian.PutUint16(f[12:], packet.EtherTypeIPv4)
	ip := f[packet.EthHdrLen : packet.EthHdrLen+packet.IPv4HdrLen]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], packet.IPv4HdrLen+packet.TCPHdrLen)
	ip[8] = 64
	ip[9] = packet.ProtoTCP
	copy(ip[12:16], p.Dst[:])
	copy(ip[16:20], p.Src[:])
	binary.BigEndian.PutUint16(ip[10:], ^packet.Checksum(ip, 0))
	tcp := f[packet.EthHdrLen+packet.IPv4HdrLen : packet.EthHdrLen+packet.IPv4HdrLen+packet.TCPHdrLen]
	in := frame[p.L4:]
	binary.BigEndian.PutUint16(tcp[0:], p.DstPort)
	binary.BigEndian.PutUint16(tcp[2:], p.SrcPort)
	seg := uint32(p.IPLen - (p.L4 - p.L3) - int(in[12]>>4)*4)
	if p.TCPFlags&packet.TCPSYN != 0 {
		seg++
	}
	if p.TCPFlags&packet.TCPFIN != 0 {
		seg++
	}
	if p.TCPFlags&packet.TCPACK != 0 {
		// RST with the sequence number the peer expects.
		copy(tcp[4:8], in[8:12])
		tcp[13] = packet.TCPRST
	} else {
		binary.BigEndian.PutUint32(tcp[8:], binary.BigEndian.Uint32(in[4:8])+seg)
		tcp[13] = packet.TCPRST | packet.TCPACK
	}
	tcp[12] = 5 << 4
	binary.BigEndian.PutUint16(tcp[16:], ^packet.Checksum(tcp, packet.PseudoHeaderSum(p.Dst, p.Src, packet.ProtoTCP, packet.TCPHdrLen)))
	e.queue(rxIf, b[:packet.VnetHdrLen+packet.MinFrameLen])
	bump64(&e.stats.ICMPSent, 1)
}

// arpIn answers ARP requests for VIPs from the receiving interface's MAC.
func (e *Engine) arpIn(frame []byte, rxIf int) {
	if !packet.ParseARP(frame, &e.p, &e.arp) || e.arp.Op != packet.ARPRequest {
		e.pend.ignored++
		return
	}
	if !e.snap.cls.isVIP(e.arp.TargetIP) || rxIf >= len(e.snap.Ifaces) || e.snap.isStandby(conntrack.Map4(e.arp.TargetIP)) {
		e.pend.ignored++
		return
	}
	b := e.alloc(packet.VnetHdrLen + packet.MinFrameLen)
	if b == nil {
		e.Drop(DropScratchFull)
		return
	}
	clear(b[:packet.VnetHdrLen])
	n := packet.BuildARPReply(b[packet.VnetHdrLen:], &e.arp, e.snap.Ifaces[rxIf].MAC)
	if n == 0 {
		return
	}
	e.queue(rxIf, b[:packet.VnetHdrLen+n])
	bump64(&e.stats.ARPReplies, 1)
}

// emit writes the Ethernet header (dropping an inline VLAN tag), puts the virtio_net_hdr in
// front of the frame and queues it. mtu is the egress MTU (a real server's, from its route),
// 0 for txIf's. A packet larger than that (a datagram the kernel reassembled) leaves in
// fragments; one with DF is dropped as too_big (requests were answered before, by tooBig).
func (e *Engine) emit(buf, frame []byte, txIf, mtu int, dst, src [6]byte) {
	if mtu <= 0 {
		mtu = e.snap.Ifaces[txIf].MTU
	}
	if mtu > 0 && e.p.IPLen > mtu && e.vh.GSOType == packet.VnetGSONone {
		if e.p.V6 {
			e.Drop(DropTooBig) // IPv6 is never fragmented on the way (RFC 8200 section 5)
			return
		}
		if e.vh.Partial() {
			if !packet.FinishChecksum(frame[:e.p.L3+e.p.IPLen], &e.vh) {
				e.fault(packet.FaultBadVnetHdr)
				return
			}
		}
		if !e.fragment(frame, txIf, dst, src, mtu) {
			e.Drop(DropTooBig)
		}
		return
	}
	start := packet.SetEthernet(frame, &e.p, dst, src)
	vh := e.vh
	if start != 0 {
		vh.Shift(-start)
	}
	out := buf[start:]
	vh.Encode(out[:packet.VnetHdrLen])
	e.queue(txIf, out)
}

func (e *Engine) queue(txIf int, b []byte) {
	if len(e.out) == cap(e.out) {
		e.Drop(DropTxBatchFull)
		return
	}
	e.out = append(e.out, OutFrame{Iface: txIf, Frame: b})
}

// Full reports that the batch should be sent before the next frame: scratch or the frame list
// is nearly used up (a frame can add up to maxFrameScratch bytes in maxFrameOuts frames of
// fragments or segments).
func (e *Engine) Full() bool {
	return e.used > len(e.scratch)-maxFrameScratch || len(e.out) > cap(e.out)-maxFrameOuts
}

// alloc returns n bytes of scratch that stay valid until reset, or nil.
func (e *Engine) alloc(n int) []byte {
	if e.used+n > len(e.scratch) {
		return nil
	}
	b := e.scratch[e.used : e.used+n : e.used+n]
	e.used += n
	return b
}
