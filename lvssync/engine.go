package lvssync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Role is what a director does with sync messages.
type Role uint8

// Roles. RoleAuto is a configured role only: the Engine then runs as
// RoleMaster while its VRRP instance is master and as RoleBackup otherwise.
const (
	RoleInvalid Role = iota
	RoleMaster       // sends records
	RoleBackup       // receives and installs records
	RoleBoth         // both, as ipvsadm --start-daemon master and backup at once
	RoleAuto         // follows VRRP
)

var roleNames = [...]string{RoleInvalid: "invalid", RoleMaster: "master", RoleBackup: "backup", RoleBoth: "both", RoleAuto: "auto"}

// String returns the role's configuration name.
func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return "invalid"
}

// ParseRole parses "auto", "master", "backup" or "both".
func ParseRole(s string) (Role, error) {
	for r, n := range roleNames {
		if r != 0 && n == s {
			return Role(r), nil
		}
	}
	return RoleInvalid, fmt.Errorf("lvssync: unknown role %q (want auto, master, backup or both)", s)
}

func (r Role) sends() bool    { return r == RoleMaster || r == RoleBoth }
func (r Role) receives() bool { return r == RoleBackup || r == RoleBoth }

// Defaults of Config's zero values.
const (
	DefaultFlush      = 20 * time.Millisecond  // IPVS_SYNC_SEND_DELAY: how long a record may wait for company
	DefaultMaxRate    = 100000                 // records/s a backup accepts
	DefaultBulkRate   = 50000                  // records/s a master sends in a bulk copy
	DefaultMaxLen     = 1500 - 20 - 8          // an Ethernet MTU minus IPv4 and UDP headers
	bulkRequestPeriod = 5 * time.Second        // at most one bulk copy per requester this often
	bulkRetry         = 500 * time.Millisecond // a deferred request waiting for a running copy looks again this often
)

// Config configures an Engine. The zero value of each field means its default.
type Config struct {
	SyncID uint8 // Sent in every message; a receiver with SyncID 0 accepts any, as the kernel.
	Role   Role  // Initial role; RoleAuto starts as backup until SetVRRPMaster says otherwise.
	// Group is the multicast destination when Peers is empty (default DefaultGroup, port Port).
	Group netip.Addr
	Port  uint16 // Default DefaultPort.
	// Peers are unicast destinations; when set, messages go to them instead of Group.
	// Unkeyed messages are accepted only from Peers and the addresses SetVRRPPeers gives.
	Peers  []netip.AddrPort
	MaxLen int    // Largest message (UDP payload), the kernel's sync_maxlen; default DefaultMaxLen.
	Key    []byte // Shared key: sign every message, accept only signed ones. Never logged.

	MaxRate  int           // Records per second a backup accepts (token bucket, burst one second).
	BulkRate int           // Records per second of a bulk copy.
	Flush    time.Duration // Send interval for partly filled messages.
	Logger   *slog.Logger  // nil discards.
}

// Installer applies records on a backup. Install is called from the
// receive goroutine only, and must not block; it returns the reason a
// record was not installed, or ReasonNone.
type Installer interface {
	Install(c *Conn) Reason
}

// Snapshotter lists the table for a bulk copy. Snapshot calls yield for
// every connection and template until yield returns false; it may be
// called from any goroutine.
type Snapshotter interface {
	Snapshot(yield func(c *Conn) bool)
}

// Transport sends and receives datagrams.
type Transport interface {
	Send(msg []byte, to netip.AddrPort) error
	Recv(buf []byte) (int, netip.AddrPort, error)
	Close() error
}

// Stats are the Engine's counters. Sent and Received count messages.
type Stats struct {
	Role            Role
	SyncID          uint8
	Sent            uint64
	Received        uint64
	RecordsSent     uint64
	RecordsReceived uint64
	Installed       uint64
	BulkRequests    uint64 // bulk requests answered
	BulkRecords     uint64 // records sent in bulk copies
	Dropped         [NumReasons]uint64
	LastRx          time.Time // zero when nothing has been received
}

// Engine runs the sync protocol over a Transport.
type Engine struct {
	cfg Config
	tr  Transport
	log *slog.Logger

	role   atomic.Uint32 // effective Role: master, backup or both
	peers  atomic.Pointer[[]netip.Addr]
	vrrp   atomic.Pointer[[]netip.Addr]
	kick   chan struct{} // wakes the sender to send a bulk request
	bulkMu sync.Mutex    // guards bulkLast, bulkBusy and bulkLater
	// bulkLast is when each requester last got a bulk copy; bounded by maxSenders.
	bulkLast map[netip.Addr]time.Time
	bulkBusy bool
	// bulkLater holds the requesters whose request came too soon (or while a copy ran) and
	// is answered later: a director restarted within bulkRequestPeriod of its last request
	// still gets its copy. One pending answer per requester; bounded by maxSenders.
	bulkLater map[netip.Addr]bool

	dp  atomic.Pointer[dataPlane] // the Installer and Snapshotter, set by New or Attach
	seq atomic.Uint64             // the auth block's sequence numbers, shared by live and bulk messages

	ringMu sync.Mutex // guards rings and queue
	rings  []*Ring
	queue  []Conn // records from Send (control-side producers)

	sent, received, recSent, recRecv, installed, bulkReq, bulkRec atomic.Uint64
	drops                                                         [NumReasons]atomic.Uint64
	lastRx                                                        atomic.Int64
}

// New returns an Engine; Run starts it. inst may be nil on a director that
// is never a backup, snap nil when bulk copies are not served.
func New(cfg Config, tr Transport, inst Installer, snap Snapshotter) (*Engine, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if !cfg.Group.IsValid() {
		cfg.Group = DefaultGroup
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = DefaultMaxLen
	}
	if cfg.MaxRate == 0 {
		cfg.MaxRate = DefaultMaxRate
	}
	if cfg.BulkRate == 0 {
		cfg.BulkRate = DefaultBulkRate
	}
	if cfg.Flush == 0 {
		cfg.Flush = DefaultFlush
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxLen < HeaderLen+AuthLen+RecordV6Len+2+SeqOptLen || cfg.MaxLen > 65507 {
		return nil, fmt.Errorf("lvssync: max message length %d out of range %d..65507", cfg.MaxLen, HeaderLen+AuthLen+RecordV6Len+2+SeqOptLen)
	}
	e := &Engine{cfg: cfg, tr: tr, log: cfg.Logger,
		kick: make(chan struct{}, 1), bulkLast: map[netip.Addr]time.Time{}, bulkLater: map[netip.Addr]bool{}}
	r := cfg.Role
	if r == RoleAuto || r == RoleInvalid {
		r = RoleBackup
	}
	e.role.Store(uint32(r))
	e.dp.Store(&dataPlane{inst, snap})
	e.seq.Store(uint64(time.Now().UnixNano())) // a restarted sender continues above its old numbers
	var ps []netip.Addr
	for _, p := range cfg.Peers {
		ps = append(ps, p.Addr().Unmap())
	}
	e.peers.Store(&ps)
	e.vrrp.Store(&[]netip.Addr{})
	if r.receives() && inst != nil {
		e.kick <- struct{}{} // a new backup asks for a bulk copy (Attach does, without inst)
	}
	return e, nil
}

// Role is the effective role.
func (e *Engine) Role() Role { return Role(e.role.Load()) }

// SetVRRPMaster is the VRRP callback for role auto: master true makes the
// director the sync master, false a backup (which asks for a bulk copy).
// It does nothing when the role was configured explicitly.
func (e *Engine) SetVRRPMaster(master bool) {
	if e.cfg.Role != RoleAuto {
		return
	}
	r := RoleBackup
	if master {
		r = RoleMaster
	}
	if Role(e.role.Swap(uint32(r))) != r {
		e.log.Info("sync role changed", "role", r.String())
		if r == RoleBackup {
			select {
			case e.kick <- struct{}{}:
			default:
			}
		}
	}
}

// SetVRRPPeers sets the VRRP peers' addresses, from which unkeyed messages are accepted.
func (e *Engine) SetVRRPPeers(addrs []netip.Addr) {
	ps := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		ps[i] = a.Unmap()
	}
	e.vrrp.Store(&ps)
}

// dataPlane is what an Engine installs into and copies from.
type dataPlane struct {
	inst Installer
	snap Snapshotter
}

// Attach connects a running Engine to the data plane: inst installs received records,
// snap lists the table for bulk copies, and rings (one per worker) carry the workers'
// records to the sender. inst must be ready to install: a backup asks for its bulk copy now.
func (e *Engine) Attach(inst Installer, snap Snapshotter, rings []*Ring) {
	e.dp.Store(&dataPlane{inst, snap})
	e.ringMu.Lock()
	e.rings = append(e.rings, rings...)
	e.ringMu.Unlock()
	if inst != nil && e.Role().receives() {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
}

// NewRing registers and returns a ring for one worker.
func (e *Engine) NewRing(size int) *Ring {
	r := NewRing(size)
	e.ringMu.Lock()
	e.rings = append(e.rings, r)
	e.ringMu.Unlock()
	return r
}

// Send queues c from a control-side producer. It copies c.
func (e *Engine) Send(c *Conn) {
	e.ringMu.Lock()
	if len(e.queue) < 1<<16 {
		e.queue = append(e.queue, *c)
	} else {
		e.drops[ReasonRingFull].Add(1)
	}
	e.ringMu.Unlock()
}

// Stats returns a copy of the counters.
func (e *Engine) Stats() Stats {
	s := Stats{
		Role: e.Role(), SyncID: e.cfg.SyncID,
		Sent: e.sent.Load(), Received: e.received.Load(),
		RecordsSent: e.recSent.Load(), RecordsReceived: e.recRecv.Load(), Installed: e.installed.Load(),
		BulkRequests: e.bulkReq.Load(), BulkRecords: e.bulkRec.Load(),
	}
	for i := range s.Dropped {
		s.Dropped[i] = e.drops[i].Load()
	}
	e.ringMu.Lock()
	for _, r := range e.rings {
		s.Dropped[ReasonRingFull] += r.Dropped()
	}
	e.ringMu.Unlock()
	if ns := e.lastRx.Load(); ns != 0 {
		s.LastRx = time.Unix(0, ns)
	}
	return s
}

func (e *Engine) drop(r Reason) { e.drops[r].Add(1) }

// Run sends and receives until ctx ends, then closes the transport.
func (e *Engine) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		e.sender(ctx)
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		_ = e.tr.Close() // unblocks Recv
	}()
	err := e.receiver(ctx)
	cancel()
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// destinations are where master messages and bulk requests go.
func (e *Engine) destinations() []netip.AddrPort {
	if len(e.cfg.Peers) > 0 {
		return e.cfg.Peers
	}
	return []netip.AddrPort{netip.AddrPortFrom(e.cfg.Group, e.cfg.Port)}
}

// sender drains the rings every Flush and sends full messages; it also
// sends bulk requests when kicked.
func (e *Engine) sender(ctx context.Context) {
	var signer *Signer
	if len(e.cfg.Key) > 0 {
		signer = newSharedSigner(e.cfg.Key, &e.seq)
	}
	b := NewBuilder(e.cfg.MaxLen, e.cfg.SyncID, signer != nil)
	dests := e.destinations()
	flush := func() {
		if b.Len() == 0 {
			return
		}
		if signer != nil {
			signer.Sign(b.Bytes())
		}
		for _, d := range dests {
			if err := e.tr.Send(b.Bytes(), d); err != nil {
				e.drop(ReasonSendError)
				continue
			}
			e.sent.Add(1)
			e.recSent.Add(uint64(b.Len()))
		}
		b.Reset()
	}
	add := func(c *Conn) {
		if c.Flags&FlagOnePacket != 0 {
			return // "Do not sync ONE PACKET"
		}
		if !b.Add(c) {
			flush()
			b.Add(c)
		}
	}
	var scratch []Conn
	var reqBuf [HeaderLen + AuthLen]byte
	t := time.NewTicker(e.cfg.Flush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.kick:
			req := BulkRequest(reqBuf[:], e.cfg.SyncID, signer != nil)
			if signer != nil {
				signer.Sign(req)
			}
			for _, d := range dests {
				if err := e.tr.Send(req, d); err != nil {
					e.drop(ReasonSendError)
				}
			}
			continue
		case <-t.C:
		}
		master := e.Role().sends()
		e.ringMu.Lock()
		rings := e.rings
		scratch = append(scratch[:0], e.queue...)
		e.queue = e.queue[:0]
		e.ringMu.Unlock()
		for _, r := range rings {
			if master {
				r.Drain(add)
			} else {
				r.Drain(func(*Conn) {})
			}
		}
		if master {
			for i := range scratch {
				add(&scratch[i])
			}
			flush()
		}
	}
}

// bucket is a token bucket of records per second with a one-second burst.
type bucket struct {
	rate   float64
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time) bool {
	b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// receiver reads messages until the transport is closed.
func (e *Engine) receiver(ctx context.Context) error {
	var verifier *Verifier
	if len(e.cfg.Key) > 0 {
		verifier = NewVerifier(e.cfg.Key)
	}
	buf := make([]byte, 65536)
	var c Conn
	lim := bucket{rate: float64(e.cfg.MaxRate), tokens: float64(e.cfg.MaxRate), last: time.Now()}
	var now time.Time
	install := func(c *Conn, skip Reason) {
		e.recRecv.Add(1)
		if skip != ReasonNone {
			e.drop(skip)
			return
		}
		if !lim.take(now) {
			e.drop(ReasonRate)
			return
		}
		inst := e.dp.Load().inst
		if inst == nil {
			e.drop(ReasonNoTable)
			return
		}
		c.Flags |= FlagSync
		if r := inst.Install(c); r != ReasonNone {
			e.drop(r)
			return
		}
		e.installed.Add(1)
	}
	for {
		n, from, err := e.tr.Recv(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("lvssync: receive: %w", err)
		}
		now = time.Now()
		msg := buf[:n]
		h, r := ParseHeader(msg)
		if r != ReasonNone {
			e.drop(r)
			continue
		}
		// Peers are compared without a zone (a link-local IPv6 sender has its interface's);
		// the bulk copy goes back to the zoned address.
		if r := e.admit(msg, h, from.Addr().Unmap().WithZone(""), verifier); r != ReasonNone {
			e.drop(r)
			continue
		}
		if h.IsBulkRequest() {
			e.serveBulk(ctx, from)
			continue
		}
		if e.cfg.SyncID != 0 && h.SyncID != e.cfg.SyncID {
			e.drop(ReasonSyncID)
			continue
		}
		e.received.Add(1)
		e.lastRx.Store(now.UnixNano())
		if !e.Role().receives() {
			e.drop(ReasonNotBackup)
			continue
		}
		if r := Decode(msg, h, &c, install); r != ReasonNone {
			e.drop(r)
		}
	}
}

// admit authenticates a message: with a key, by its MAC and sequence
// number; without, by its sender being a configured or VRRP peer.
func (e *Engine) admit(msg []byte, h Header, from netip.Addr, v *Verifier) Reason {
	if v != nil {
		return v.Verify(msg, h, from)
	}
	if h.Auth != 0 {
		return ReasonAuth // signed, but we have no key to check it with
	}
	if slices.Contains(*e.peers.Load(), from) || slices.Contains(*e.vrrp.Load(), from) {
		return ReasonNone
	}
	return ReasonNotPeer
}

// serveBulk answers a bulk request from a master with a paced copy of the
// table, sent unicast to the requester in a goroutine of its own. One copy
// runs at a time, and a requester gets at most one per bulkRequestPeriod; a
// request that comes sooner, or while a copy runs, is answered once that allows
// (one pending answer per requester; more are counted as bulk_denied).
func (e *Engine) serveBulk(ctx context.Context, to netip.AddrPort) {
	if !e.Role().sends() || e.dp.Load().snap == nil {
		return
	}
	e.bulkMu.Lock()
	now := time.Now()
	if wait := e.bulkLast[to.Addr()].Add(bulkRequestPeriod).Sub(now); e.bulkBusy || wait > 0 {
		if e.bulkLater[to.Addr()] || len(e.bulkLater) >= maxSenders {
			e.bulkMu.Unlock()
			e.drop(ReasonBulkDenied)
			return
		}
		e.bulkLater[to.Addr()] = true
		e.bulkMu.Unlock()
		wait = max(wait, bulkRetry)
		go func() {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			e.bulkMu.Lock()
			delete(e.bulkLater, to.Addr())
			e.bulkMu.Unlock()
			if ctx.Err() == nil {
				e.serveBulk(ctx, to)
			}
		}()
		return
	}
	if len(e.bulkLast) >= maxSenders {
		clear(e.bulkLast)
	}
	e.bulkLast[to.Addr()] = now
	e.bulkBusy = true
	e.bulkMu.Unlock()
	e.bulkReq.Add(1)
	go func() {
		defer func() {
			e.bulkMu.Lock()
			e.bulkBusy = false
			e.bulkMu.Unlock()
		}()
		if err := e.bulkCopy(ctx, to); err != nil {
			e.log.Warn("sync bulk copy stopped", "peer", to.String(), "err", err)
		}
	}()
}

// errStopped ends a bulk copy when ctx ends.
var errStopped = errors.New("stopped")

func (e *Engine) bulkCopy(ctx context.Context, to netip.AddrPort) error {
	var signer *Signer
	if len(e.cfg.Key) > 0 {
		signer = newSharedSigner(e.cfg.Key, &e.seq)
	}
	b := NewBuilder(e.cfg.MaxLen, e.cfg.SyncID, signer != nil)
	start := time.Now()
	var sent uint64
	var err error
	flush := func() bool {
		if b.Len() == 0 {
			return true
		}
		if signer != nil {
			signer.Sign(b.Bytes())
		}
		if err = e.tr.Send(b.Bytes(), to); err != nil {
			e.drop(ReasonSendError)
			err = nil // a lost message is what UDP does; go on
		} else {
			e.sent.Add(1)
		}
		sent += uint64(b.Len())
		e.bulkRec.Add(uint64(b.Len()))
		b.Reset()
		// Pace: sent records may not run ahead of BulkRate since start.
		ahead := time.Duration(float64(sent)/float64(e.cfg.BulkRate)*float64(time.Second)) - time.Since(start)
		if ahead > 0 {
			select {
			case <-ctx.Done():
				err = errStopped
				return false
			case <-time.After(ahead):
			}
		}
		return ctx.Err() == nil
	}
	e.dp.Load().snap.Snapshot(func(c *Conn) bool {
		if c.Flags&FlagOnePacket != 0 {
			return true
		}
		if !b.Add(c) {
			if !flush() {
				return false
			}
			b.Add(c)
		}
		return true
	})
	if err == nil {
		flush()
	}
	e.log.Info("sync bulk copy sent", "peer", to.String(), "records", sent, "took", time.Since(start).Round(time.Millisecond).String())
	return err
}
