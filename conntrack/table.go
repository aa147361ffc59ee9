package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
)

// Key is the client-side tuple of a connection: what the director sees on a
// packet from the client. For a persistence template it is
// {Proto, masked client, CPort 0, VIP, VPort or 0 for a port-0 service}, as
// ip_vs_sched_persist in ip_vs_core.c builds it.
//
// Addresses are 16 bytes for both families, as IPVS's nf_inet_addr and
// Katran's flow key: IPv6 as it is, IPv4 in its IPv4-mapped form
// (::ffff:a.b.c.d, RFC 4291 section 2.5.5.2; what netip.Addr.As16 gives), so
// one table serves both and the families never collide. Map4 and Addr
// convert.
type Key struct {
	Client, VIP  [16]byte
	CPort, VPort uint16
	Proto        uint8
}

// keyEqual is a == b in word loads: Go's generated equality for Key calls memequal for its
// 32 bytes of addresses, a function call per probe. Ports first, since a client's
// connections differ there.
func keyEqual(a, b *Key) bool {
	return a.CPort == b.CPort && a.VPort == b.VPort && a.Proto == b.Proto &&
		le64(a.Client[8:]) == le64(b.Client[8:]) && le64(a.Client[:8]) == le64(b.Client[:8]) &&
		le64(a.VIP[8:]) == le64(b.VIP[8:]) && le64(a.VIP[:8]) == le64(b.VIP[:8])
}

// Equal reports whether k and o are the same key, as k == o but without a memequal call.
func (k *Key) Equal(o *Key) bool { return keyEqual(k, o) }

func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// v4Prefix is the first 12 bytes of an IPv4-mapped address.
var v4Prefix = [12]byte{10: 0xff, 11: 0xff}

// Map4 returns IPv4 address a in the IPv4-mapped form keys and entries hold.
func Map4(a [4]byte) [16]byte {
	return [16]byte{10: 0xff, 11: 0xff, 12: a[0], 13: a[1], 14: a[2], 15: a[3]}
}

// Set4 sets k to the key of an IPv4 packet, as Key{Client: Map4(client), VIP: Map4(vip), ...}
// but with each address written as two 8-byte words: the hash and the compare that follow
// read them so, and a word load that a store of single bytes cannot forward to waits for the
// stores to retire (Map4's byte stores, read back at once as words, cost more than the rest
// of the key).
func (k *Key) Set4(client, vip [4]byte, cport, vport uint16, proto uint8) {
	const mapped = 0xffff << 16 // bytes 10 and 11 of an IPv4-mapped address, little-endian
	binary.LittleEndian.PutUint64(k.Client[:8], 0)
	binary.LittleEndian.PutUint64(k.Client[8:], mapped|uint64(binary.LittleEndian.Uint32(client[:]))<<32)
	binary.LittleEndian.PutUint64(k.VIP[:8], 0)
	binary.LittleEndian.PutUint64(k.VIP[8:], mapped|uint64(binary.LittleEndian.Uint32(vip[:]))<<32)
	k.CPort, k.VPort, k.Proto = cport, vport, proto
}

// Is4 reports whether a key or entry address is IPv4 (IPv4-mapped).
func Is4(a *[16]byte) bool { return [12]byte(a[:12]) == v4Prefix }

// Addr returns a key or entry address as a netip.Addr: IPv4 for an
// IPv4-mapped address, so it prints as a.b.c.d and netip.AddrPort as
// [addr]:port only for IPv6.
func Addr(a [16]byte) netip.Addr { return netip.AddrFrom16(a).Unmap() }

// AddrFrom returns a netip.Addr in the form keys and entries hold.
func AddrFrom(a netip.Addr) [16]byte { return a.As16() }

// Entry is one connection or persistence template. Entries live in an array
// preallocated by New; the *Entry that Lookup, LookupReply and Insert return
// stays valid until that entry is deleted or expired (the array never moves).
// Only the owning worker may read or write it. Key, Real, RPort and the
// FlagNAT and FlagTemplate bits place the entry in the indexes: never change
// them on a stored entry (delete and insert instead).
//
// The fields a lookup and a forwarded request read (Key, State, Flags,
// Expires, Real, RPort, Service, RealIdx) come first, in the first 64 bytes;
// the template link and the NAT hop follow.
type Entry struct {
	Key   Key
	State State
	Flags Flags
	// Expires is the tick at which the entry expires. Insert, TCP, Touch and
	// TouchTemplate set it; read it as int32(Expires-now) milliseconds left.
	Expires uint32
	Real    [16]byte // chosen real server, in Key's address form
	RPort   uint16
	Service uint16 // service slot, set by the caller
	RealIdx uint16 // real slot within the service, set by the caller
	HopIf   uint8  // interface the client's request came in on (caller sets)
	// ctl links templates and connections (IPVS's cp->control and
	// n_control): on a template it counts the connections it controls; on a
	// connection it is 1 + the slot of its template, or 0 when uncontrolled.
	ctl    uint32
	HopMAC [6]byte // L2 source of the client's request, where NAT replies go
}

// EntryBytes is the size of an Entry: 38 (Key, padded) + 2 (state, flags)
// + 4 + 16 + 2*3 + 1 (hop interface) + 1 (padding) + 4 + 6, padded to 80 by
// the uint32 alignment.
const EntryBytes = 80

// Controls returns how many live connections a template controls, or 0 for
// a connection.
func (e *Entry) Controls() uint32 {
	if e.Flags&FlagTemplate == 0 {
		return 0
	}
	return e.ctl
}

// Controlled reports whether connection e is bound to a persistence template.
func (e *Entry) Controlled() bool { return e.Flags&FlagTemplate == 0 && e.ctl != 0 }

// Config configures a Table. The zero value means defaults.
type Config struct {
	// Capacity is the number of entries (connections and templates)
	// preallocated; 0 means DefaultCapacity.
	Capacity int
	// Timeouts per state; zero fields take the IPVS defaults.
	Timeouts Timeouts
	// SloppyTCP lets any TCP packet without RST create a connection, as the
	// IPVS sloppy_tcp sysctl (for a director taking over mid-stream).
	SloppyTCP bool
	// SecureTCP uses the IPVS secure_tcp transition tables (tcp_states_dos),
	// which park unconfirmed handshakes in SYNACK.
	SecureTCP bool
	// Seed keys the hash against collision flooding; 0 picks a random seed.
	Seed uint64
}

// Limits.
const (
	DefaultCapacity = 1 << 20
	// MaxCapacity keeps at least 4 bits of hash tag beside the 28-bit slot
	// number in an index word.
	MaxCapacity = 1<<28 - 1
	// slotsPerEntry sets the design load factor of both indexes to 1/2: with
	// linear probing that bounds the expected probes of a miss to 2.5 at a
	// full table, while the 4-byte index words keep the whole cost per entry
	// at EntryBytes + 2*2*4 = 96 bytes.
	slotsPerEntry = 2
	// expireLater is the delay IPVS gives an expired template that still
	// controls connections (ip_vs_conn_expire, expire_later: 60*HZ).
	expireLater = 60 * 1000
	// reclaimScan bounds the slots a reclaiming Admit examines on a full
	// table: 64 slots at about 7 ns each keep a refused insert under half a
	// microsecond, and each refusal moves the sweep cursor on by as much, so
	// a flood against a table of live entries pays for its own sweep.
	reclaimScan = 64
)

// Errors returned by New.
var (
	ErrCapacity = errors.New("conntrack: capacity out of range")
	ErrTimeout  = errors.New("conntrack: timeout out of range")
)

// Table is a fixed-capacity connection table for one worker. It is not safe
// for concurrent use.
//
// Layout: entries sit in a dense array; two open-addressing indexes of uint32
// words point into it. Each word is tag<<idxBits | (slot+1), 0 when empty,
// where tag is spare hash bits that reject most non-matching probes without
// touching the entry. The main index is keyed by Key (and the template bit),
// the reply index by the NAT reply tuple. Free slots form a list threaded
// through Entry.Expires. Nothing here holds a pointer, so the GC never scans
// the arrays.
type Table struct {
	entries []Entry
	main    []uint32
	reply   []uint32

	nslots  uint64 // len(main) == len(reply)
	idxBits uint
	idxMask uint32
	tagMask uint32

	seed [4]uint64

	free  uint32 // 1 + head of the free list, 0 when empty
	hwm   uint32 // slots [0, hwm) have been used at least once
	live  int    // entries in the indexes
	used  int    // occupied slots, including unlinked templates
	sweep uint32 // next slot Expire (and a reclaiming Admit) examines
	gen   uint32 // bumped by every change to the main index; validates a Spot

	now       uint32
	touch     uint32 // sink for LookupBatch's early loads
	timeouts  [numStates]uint32
	to        Timeouts
	sloppyTCP bool
	secureTCP bool
}

// New allocates a table for cfg.Capacity entries.
func New(cfg Config) (*Table, error) {
	n := cfg.Capacity
	if n == 0 {
		n = DefaultCapacity
	}
	if n < 0 || n > MaxCapacity {
		return nil, fmt.Errorf("%w: %d (1..%d)", ErrCapacity, cfg.Capacity, MaxCapacity)
	}
	t := &Table{sloppyTCP: cfg.SloppyTCP, secureTCP: cfg.SecureTCP}
	if err := t.SetTimeouts(cfg.Timeouts); err != nil {
		return nil, err
	}
	t.entries = make([]Entry, n)
	t.nslots = uint64(n) * slotsPerEntry
	t.main = make([]uint32, t.nslots)
	t.reply = make([]uint32, t.nslots)
	t.idxBits = uint(bits.Len32(uint32(n)))
	t.idxMask = 1<<t.idxBits - 1
	t.tagMask = ^t.idxMask
	s := cfg.Seed
	if s == 0 {
		s = rand.Uint64() | 1
	}
	for i := range t.seed {
		s = splitmix(s)
		t.seed[i] = s
	}
	return t, nil
}

// SetTimeouts replaces the per-state timeouts; zero fields take the
// defaults. Existing entries keep their deadlines until their next packet.
func (t *Table) SetTimeouts(to Timeouts) error {
	to = to.withDefaults()
	tab := to.table()
	for s, v := range tab {
		if v > MaxTimeout {
			return fmt.Errorf("%w: %s %d ms (max %d)", ErrTimeout, State(s), v, MaxTimeout)
		}
	}
	t.to = to
	t.timeouts = tab
	return nil
}

// Timeouts returns the timeouts in force.
func (t *Table) Timeouts() Timeouts { return t.to }

// Len returns the number of entries, connections and templates, including
// expired ones the sweep has not yet removed.
func (t *Table) Len() int { return t.live }

// Capacity returns the number of preallocated entries.
func (t *Table) Capacity() int { return len(t.entries) }

// Full reports whether Insert would refuse a new entry. Expired entries hold
// their slot until Expire removes them; Admit reclaims one when the table is
// full.
func (t *Table) Full() bool { return t.used >= len(t.entries) }

// MemoryBytes returns the memory preallocated by New.
func (t *Table) MemoryBytes() int {
	return len(t.entries)*EntryBytes + (len(t.main)+len(t.reply))*4
}

// Now returns the latest tick passed to Tick, Insert, TCP, Touch or Expire.
func (t *Table) Now() uint32 { return t.now }

// Tick records now as the current time, which Lookup and LookupReply use to
// hide expired entries. Insert, TCP, Touch and Expire also record it.
func (t *Table) Tick(now uint32) { t.now = now }

// expired reports whether deadline is at or before now, in wrap-safe serial
// arithmetic (RFC 1982): correct while deadlines stay within 2^31 ms.
func expired(deadline, now uint32) bool { return int32(now-deadline) >= 0 }

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// mix is the wyhash folding multiply.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hash mixes two 16-byte addresses, their ports and the protocol. The two
// address mixes are independent (the CPU runs them side by side); every input
// bit reaches the result through a seeded multiply, so no cheap fold of the
// addresses lets a client pick colliding keys.
func (t *Table) hash(proto uint8, a *[16]byte, ap uint16, b *[16]byte, bp uint16, tmpl, s0, s1 uint64) uint64 {
	ha := mix(binary.LittleEndian.Uint64(a[:8])^s0, binary.LittleEndian.Uint64(a[8:])^s1)
	hb := mix(binary.LittleEndian.Uint64(b[:8])^s1, binary.LittleEndian.Uint64(b[8:])^s0)
	y := uint64(ap)<<32 | uint64(bp)<<16 | uint64(proto)<<8 | tmpl
	return mix(ha^y, hb^s0^s1)
}

func (t *Table) hashKey(k *Key, tmpl bool) uint64 {
	var b uint64
	if tmpl {
		b = 1
	}
	return t.hash(k.Proto, &k.Client, k.CPort, &k.VIP, k.VPort, b, t.seed[0], t.seed[1])
}

func (t *Table) hashReply(proto uint8, client *[16]byte, cport uint16, real *[16]byte, rport uint16) uint64 {
	return t.hash(proto, client, cport, real, rport, 0, t.seed[2], t.seed[3])
}

// home maps a hash to its first probe slot (Lemire's multiply-shift, so the
// index size need not be a power of two) and its tag bits.
func (t *Table) home(h uint64) (uint64, uint32) {
	return (h >> 32) * t.nslots >> 32, uint32(h) & t.tagMask
}

func (t *Table) next(i uint64) uint64 {
	i++
	if i == t.nslots {
		i = 0
	}
	return i
}

// Lookup returns the connection with key k, or nil if there is none or it
// has expired. It does not return templates (see LookupTemplate).
func (t *Table) Lookup(k *Key) *Entry {
	return t.find(k, false)
}

// lookupChunk is how many lookups LookupBatch keeps in flight: enough
// independent cache misses to fill a core's miss buffers (10-16 on current
// x86), few enough for the arrays to stay in registers and L1.
const lookupChunk = 16

// LookupBatch sets out[i] to Lookup(&keys[i]) for every i < min(len(keys),
// len(out)). It gives the same answers as Lookup, faster on a big table: it
// issues the index and entry loads of a whole chunk before resolving any, so
// their cache misses overlap instead of queueing one behind the other.
func (t *Table) LookupBatch(keys []Key, out []*Entry) {
	n := min(len(keys), len(out))
	var pos [lookupChunk]uint64
	var tags [lookupChunk]uint32
	var words [lookupChunk]uint32
	for base := 0; base < n; base += lookupChunk {
		m := min(lookupChunk, n-base)
		for j := 0; j < m; j++ {
			pos[j], tags[j] = t.home(t.hashKey(&keys[base+j], false))
			words[j] = t.main[pos[j]]
		}
		var touch uint32
		for j := 0; j < m; j++ {
			if w := words[j]; w != 0 && w&t.tagMask == tags[j] {
				touch += t.entries[w&t.idxMask-1].Expires
			}
		}
		t.touch = touch
		for j := 0; j < m; j++ {
			out[base+j] = t.findFrom(&keys[base+j], false, pos[j], tags[j])
		}
	}
}

// Hash returns the hash of connection key k in this table, for Prefetch and
// LookupSpotHash: a caller that looks up a whole batch hashes each key once.
func (t *Table) Hash(k *Key) uint64 { return t.hashKey(k, false) }

// Prefetch loads the index words and the candidate entries of the keys with
// hashes hs, a chunk of lookupChunk at a time, so that their cache misses
// overlap; the lookups that follow (LookupSpotHash, in any order, with the
// table changed or not in between) then find them in cache. It returns
// nothing and changes nothing, so it is safe however stale its answer gets.
func (t *Table) Prefetch(hs []uint64) {
	var words [lookupChunk]uint32
	var tags [lookupChunk]uint32
	var touch uint32
	for base := 0; base < len(hs); base += lookupChunk {
		m := min(lookupChunk, len(hs)-base)
		for j := 0; j < m; j++ {
			var pos uint64
			pos, tags[j] = t.home(hs[base+j])
			words[j] = t.main[pos]
		}
		for j := 0; j < m; j++ {
			if w := words[j]; w != 0 && w&t.tagMask == tags[j] {
				touch += t.entries[w&t.idxMask-1].Expires
			}
		}
	}
	t.touch = touch
}

// LookupSpotHash is LookupSpot for a key whose Hash the caller already has.
func (t *Table) LookupSpotHash(k *Key, h uint64, s *Spot) *Entry {
	home, tag := t.home(h)
	x, pos := t.probe(k, false, home, tag)
	if x != nil {
		s.valid = false
		return x
	}
	*s = Spot{home: home, pos: pos, tag: tag, gen: t.gen, valid: true}
	return nil
}

// LookupTemplate returns the persistence template with key k, or nil.
func (t *Table) LookupTemplate(k *Key) *Entry {
	return t.find(k, true)
}

func (t *Table) find(k *Key, tmpl bool) *Entry {
	i, tag := t.home(t.hashKey(k, tmpl))
	return t.findFrom(k, tmpl, i, tag)
}

func (t *Table) findFrom(k *Key, tmpl bool, i uint64, tag uint32) *Entry {
	for {
		w := t.main[i]
		if w == 0 {
			return nil
		}
		if w&t.tagMask == tag {
			e := &t.entries[w&t.idxMask-1]
			if keyEqual(&e.Key, k) && (e.Flags&FlagTemplate != 0) == tmpl && !expired(e.Expires, t.now) {
				return e
			}
		}
		i = t.next(i)
	}
}

// LookupReply returns the NAT connection whose reply, from real:rport to
// client:cport, the director has just received, or nil.
func (t *Table) LookupReply(proto uint8, client [16]byte, cport uint16, real [16]byte, rport uint16) *Entry {
	i, tag := t.home(t.hashReply(proto, &client, cport, &real, rport))
	for {
		w := t.reply[i]
		if w == 0 {
			return nil
		}
		if w&t.tagMask == tag {
			e := &t.entries[w&t.idxMask-1]
			if e.Key.Proto == proto && e.Key.Client == client && e.Key.CPort == cport &&
				e.Real == real && e.RPort == rport && !expired(e.Expires, t.now) {
				return e
			}
		}
		i = t.next(i)
	}
}

// Insert adds a copy of *e and returns the stored entry. If a live entry with
// the same key exists, Insert returns it and false without changing it. When
// the table is full it returns nil, false: the new flow is refused and the
// caller counts the drop. Established entries are never evicted to make room,
// nor are embryonic ones: evicting SYN_RECV entries would let a SYN flood
// churn the table and cost the drop-oldest bookkeeping on every insert, while
// a refusal is cheap, visible in a counter and self-healing as entries
// expire. Insert never reclaims an expired entry (it could not report it);
// Admit does.
//
// A zero State becomes NONE for TCP (the caller then feeds the SYN through
// TCP, as ip_vs_in does) and UDP for other protocols. Expires is set from the
// state's timeout; FlagOnePacket entries expire at once. For templates, call
// TouchTemplate (or use InsertTemplate) to set the persistence timeout.
func (t *Table) Insert(e *Entry, now uint32) (*Entry, bool) {
	ent, inserted, _ := t.Admit(e, now, nil, nil)
	return ent, inserted
}

// Spot remembers where LookupSpot found no connection: the key's home
// position and tag, and the empty index position where it would go. Admit
// uses it to insert that key without hashing or probing again, as long as
// the main index has not changed in between (any insert or removal makes the
// Spot stale, and Admit then probes from the remembered home). A Spot belongs
// to the table and the key it was looked up with.
type Spot struct {
	home, pos uint64
	tag       uint32
	gen       uint32
	valid     bool
}

// LookupSpot is Lookup that, on a miss, records in *s where k would be
// inserted, for a following Admit of the same key (find-or-insert: the new
// connection is hashed and probed once).
func (t *Table) LookupSpot(k *Key, s *Spot) *Entry {
	home, tag := t.home(t.hashKey(k, false))
	x, pos := t.probe(k, false, home, tag)
	if x != nil {
		s.valid = false
		return x
	}
	*s = Spot{home: home, pos: pos, tag: tag, gen: t.gen, valid: true}
	return nil
}

// probe walks k's cluster from home and returns the live entry with key k
// (and the template bit tmpl), or nil and the first empty position.
func (t *Table) probe(k *Key, tmpl bool, i uint64, tag uint32) (*Entry, uint64) {
	for {
		w := t.main[i]
		if w == 0 {
			return nil, i
		}
		if w&t.tagMask == tag {
			x := &t.entries[w&t.idxMask-1]
			if keyEqual(&x.Key, k) && (x.Flags&FlagTemplate != 0) == tmpl && !expired(x.Expires, t.now) {
				return x, i
			}
		}
		i = t.next(i)
	}
}

// Admit is Insert for the worker's new connections. s, if not nil, is the
// Spot of a LookupSpot of e.Key that missed; it spares the hash and the probe.
// When the table is full and gone is not nil, Admit reclaims an expired entry
// first: it advances the sweep over at most reclaimScan slots (as Expire
// would), removes the first expired entry it meets, copies it to *gone and
// reports reclaimed, so the caller releases its counts as it does for
// Expire's output. A table full of expired entries thus admits new
// connections at once, and one full of live entries still refuses them
// (nil, false, false) after a bounded scan. Pointers to the reclaimed entry
// become invalid, as after Expire.
func (t *Table) Admit(e *Entry, now uint32, s *Spot, gone *Entry) (ent *Entry, inserted, reclaimed bool) {
	t.now = now
	tmpl := e.Flags&FlagTemplate != 0
	var home, i uint64
	var tag uint32
	switch {
	case s != nil && s.valid && !tmpl && s.gen == t.gen:
		home, i, tag = s.home, s.pos, s.tag
	default:
		if s != nil && s.valid && !tmpl {
			home, tag = s.home, s.tag
		} else {
			home, tag = t.home(t.hashKey(&e.Key, tmpl))
		}
		var x *Entry
		if x, i = t.probe(&e.Key, tmpl, home, tag); x != nil {
			return x, false, false
		}
	}
	if s != nil {
		s.valid = false
	}
	slot, ok := t.alloc()
	if !ok {
		if gone == nil || !t.reclaim(now, gone) {
			return nil, false, false
		}
		reclaimed = true
		if slot, ok = t.alloc(); !ok {
			return nil, false, true // not reachable: reclaim freed a slot
		}
		// The removal may have shifted k's cluster back: find the empty
		// position again.
		_, i = t.probe(&e.Key, tmpl, home, tag)
	}
	return t.place(e, slot, i, tag, now), true, reclaimed
}

// place stores a copy of e in slot and indexes it at main position i.
func (t *Table) place(e *Entry, slot uint32, i uint64, tag uint32, now uint32) *Entry {
	n := &t.entries[slot]
	*n = *e
	n.ctl = 0
	n.Flags &^= flagUnlinked | FlagOutputSeen
	switch {
	case n.Flags&FlagTemplate != 0:
		n.Flags &^= FlagNAT | FlagOnePacket
		n.State = StateNone // as ipvsadm -Lnc shows templates
	case n.State == StateInvalid || n.State >= numStates:
		n.Flags &^= FlagAssured
		n.State = StateUDP
		if n.Key.Proto == ProtoTCP {
			n.State = StateNone
		}
	default:
		n.Flags &^= FlagAssured
	}
	n.Expires = now + t.timeouts[n.State]
	if n.Flags&FlagOnePacket != 0 {
		n.Expires = now
	}
	t.main[i] = tag | (slot + 1)
	t.gen++
	if n.Flags&FlagNAT != 0 {
		j, rtag := t.home(t.hashReply(n.Key.Proto, &n.Key.Client, n.Key.CPort, &n.Real, n.RPort))
		for t.reply[j] != 0 {
			j = t.next(j)
		}
		t.reply[j] = rtag | (slot + 1)
	}
	t.live++
	return n
}

// reclaim advances the sweep over at most reclaimScan slots and removes the
// first expired entry it meets, copying it to *gone.
func (t *Table) reclaim(now uint32, gone *Entry) bool {
	for n := reclaimScan; n > 0 && t.hwm > 0; n-- {
		if t.sweep >= t.hwm {
			t.sweep = 0
		}
		s := t.sweep
		t.sweep++
		if t.reap(s, now, gone) {
			return true
		}
	}
	return false
}

// InsertTemplate inserts persistence template e (setting FlagTemplate) that
// expires timeout milliseconds after now, the service's persistence timeout.
func (t *Table) InsertTemplate(e *Entry, timeout uint32, now uint32) (*Entry, bool) {
	c := *e
	c.Flags |= FlagTemplate
	n, ok := t.Insert(&c, now)
	if ok {
		n.Expires = now + min(timeout, MaxTimeout)
	}
	return n, ok
}

// TouchTemplate restarts template tpl's timer: it expires timeout
// milliseconds after now. The caller does this each time it schedules a
// connection through the template, as ip_vs_sched_persist does by putting
// the template back with its timeout.
func (t *Table) TouchTemplate(tpl *Entry, timeout uint32, now uint32) {
	t.now = now
	tpl.Expires = now + min(timeout, MaxTimeout)
}

// Bind makes template tpl control connection conn (ip_vs_control_add): the
// template then outlives its timeout while conn lives, and conn reaching
// ESTABLISHED (or a UDP reply) marks the template assured. Both must be live
// entries of t; Bind is a no-op otherwise or if conn is already bound.
func (t *Table) Bind(conn, tpl *Entry) {
	if conn.Flags&FlagTemplate != 0 || tpl.Flags&FlagTemplate == 0 || conn.ctl != 0 {
		return
	}
	slot, ok := t.slotOf(tpl)
	if !ok {
		return
	}
	if _, ok := t.slotOf(conn); !ok {
		return
	}
	tpl.ctl++
	conn.ctl = slot + 1
}

// Template returns the template controlling connection conn, or nil.
func (t *Table) Template(conn *Entry) *Entry {
	if !conn.Controlled() {
		return nil
	}
	tpl := &t.entries[conn.ctl-1]
	if tpl.Flags&flagUnlinked != 0 {
		return nil
	}
	return tpl
}

// slotOf returns the slot of live entry e from its address (no probe).
func (t *Table) slotOf(e *Entry) (uint32, bool) {
	if e.State == StateInvalid || e.Flags&flagUnlinked != 0 {
		return 0, false
	}
	return t.slotIndex(e)
}

// mainSlotOf returns the main index position holding e, or -1.
func (t *Table) mainSlotOf(e *Entry) (int, uint32) {
	i, tag := t.home(t.hashKey(&e.Key, e.Flags&FlagTemplate != 0))
	for {
		w := t.main[i]
		if w == 0 {
			return -1, tag
		}
		if w&t.tagMask == tag && &t.entries[w&t.idxMask-1] == e {
			return int(i), tag
		}
		i = t.next(i)
	}
}

func (t *Table) alloc() (uint32, bool) {
	if t.free != 0 {
		s := t.free - 1
		t.free = t.entries[s].Expires
		t.used++
		return s, true
	}
	if int(t.hwm) < len(t.entries) {
		s := t.hwm
		t.hwm++
		t.used++
		return s, true
	}
	return 0, false
}

func (t *Table) release(slot uint32) {
	t.entries[slot] = Entry{Expires: t.free}
	t.free = slot + 1
	t.used--
}

// Delete removes live entry e, which must have come from this table. The
// caller has already accounted for it; Expire will not report it. Deleting a
// connection releases its template, and as in ip_vs_conn_expire a template
// left controlling nothing and never assured is then dropped at the next
// sweep (reported by Expire). Deleting a template that still controls
// connections unlinks it so a new one can be created at once; its slot is
// freed silently when its last connection goes.
func (t *Table) Delete(e *Entry) {
	if e == nil || e.State == StateInvalid {
		return
	}
	pos, _ := t.mainSlotOf(e)
	if pos < 0 {
		return
	}
	t.remove(e, uint64(pos), true)
}

// remove unlinks e, found at main index position pos, and frees its slot.
func (t *Table) remove(e *Entry, pos uint64, forced bool) {
	slot := t.main[pos]&t.idxMask - 1
	t.unindex(t.main, pos, false)
	t.gen++
	if e.Flags&FlagNAT != 0 {
		t.unindexReply(slot)
	}
	t.live--
	if e.Flags&FlagTemplate != 0 {
		if e.ctl != 0 {
			e.Flags |= flagUnlinked
			return
		}
		t.release(slot)
		return
	}
	if e.ctl != 0 {
		t.unbind(e.ctl-1, forced)
	}
	t.release(slot)
}

// unbind drops one control reference from the template in slot s.
func (t *Table) unbind(s uint32, forced bool) {
	tpl := &t.entries[s]
	if tpl.ctl > 0 {
		tpl.ctl--
	}
	if tpl.ctl != 0 {
		return
	}
	if tpl.Flags&flagUnlinked != 0 {
		t.release(s)
		return
	}
	// "Drop CTL or non-assured TPL if not used anymore" applies when the
	// connection was removed before its time.
	if forced && tpl.Flags&FlagAssured == 0 {
		tpl.Expires = t.now
	}
}

func (t *Table) unindexReply(slot uint32) {
	e := &t.entries[slot]
	j, _ := t.home(t.hashReply(e.Key.Proto, &e.Key.Client, e.Key.CPort, &e.Real, e.RPort))
	for {
		w := t.reply[j]
		if w == 0 {
			return // not reachable for a consistent table
		}
		if w&t.idxMask-1 == slot {
			t.unindex(t.reply, j, true)
			return
		}
		j = t.next(j)
	}
}

// homeOf returns the home position of index word w in the main or the
// reply index.
func (t *Table) homeOf(w uint32, reply bool) uint64 {
	e := &t.entries[w&t.idxMask-1]
	var h uint64
	if reply {
		h = t.hashReply(e.Key.Proto, &e.Key.Client, e.Key.CPort, &e.Real, e.RPort)
	} else {
		h = t.hashKey(&e.Key, e.Flags&FlagTemplate != 0)
	}
	i, _ := t.home(h)
	return i
}

// unindex empties position hole of a linear-probing index by backward shift:
// later words of the cluster whose home is not cyclically in (hole, j] move
// back, so no tombstones are needed and probe lengths do not decay.
func (t *Table) unindex(idx []uint32, hole uint64, reply bool) {
	j := hole
	for {
		j = t.next(j)
		w := idx[j]
		if w == 0 {
			break
		}
		h := t.homeOf(w, reply)
		var stays bool
		if hole <= j {
			stays = hole < h && h <= j
		} else {
			stays = hole < h || h <= j
		}
		if stays {
			continue
		}
		idx[hole] = w
		hole = j
	}
	idx[hole] = 0
}

// TCP moves TCP connection e through the IPVS state machine for a packet in
// direction dir with header flags tcpFlags, restarts its timer with the new
// state's timeout, and returns the old and new states so the caller can move
// the real's counters (IsActive). A non-NAT entry uses the input-only table
// until it sees an output packet; a NAT entry uses the input and output
// tables (set_tcp_state and IP_VS_CONN_F_NOOUTPUT in ip_vs_proto_tcp.c). RST
// is handled by the tables as in IPVS: it moves most states to CLOSE (10 s),
// and the entry lingers until it expires or a new SYN reuses it.
func (t *Table) TCP(e *Entry, dir Dir, tcpFlags uint8, now uint32) (old, new State) {
	t.now = now
	old = e.State
	if !old.IsTCP() {
		return old, old
	}
	table := tableInput
	switch {
	case dir == DirOutput:
		table = tableOutput
		e.Flags |= FlagOutputSeen
	case e.Flags&(FlagNAT|FlagOutputSeen) == 0:
		table = tableInputOnly
	}
	new = nextTCPState(t.secureTCP, table, old, tcpFlags)
	e.State = new
	e.Expires = now + t.timeouts[new]
	if new == StateEstablished && new != old && e.ctl != 0 && e.Flags&FlagTemplate == 0 {
		t.entries[e.ctl-1].Flags |= FlagAssured
	}
	return old, new
}

// Touch restarts e's timer with its state's timeout, for a packet of a
// non-TCP protocol (udp_state_transition in ip_vs_proto_udp.c).
func (t *Table) Touch(e *Entry, now uint32) {
	t.now = now
	e.Expires = now + t.timeouts[e.State]
}

// TouchOutput is Touch for a reply packet (NAT): as in IPVS, a reply also
// marks the entry's template assured.
func (t *Table) TouchOutput(e *Entry, now uint32) {
	t.Touch(e, now)
	if e.ctl != 0 && e.Flags&FlagTemplate == 0 {
		t.entries[e.ctl-1].Flags |= FlagAssured
	}
}

// Expire advances the sweep over at most budget slots, removes up to len(out)
// expired entries, copies them to out and returns how many. It never stops
// the world: the worker calls it once per batch, and a full pass over the
// table takes Capacity()/budget calls (only slots ever used are visited).
// The sweep must complete a pass well within 2^31 ms (24 days) for the
// wrap-safe deadline comparison to hold; any budget above a few slots per
// batch does.
//
// A template whose timer ran out while it still controls connections is
// kept, its timer restarted for 60 s, as IPVS's expire_later does.
func (t *Table) Expire(now uint32, budget int, out []Entry) int {
	t.now = now
	n := 0
	for ; budget > 0 && n < len(out) && t.hwm > 0; budget-- {
		if t.sweep >= t.hwm {
			t.sweep = 0
		}
		s := t.sweep
		t.sweep++
		if t.reap(s, now, &out[n]) {
			n++
		}
	}
	return n
}

// reap removes the entry in slot s if it has expired, copying it to *gone.
// A template that still controls connections is re-armed instead.
func (t *Table) reap(s uint32, now uint32, gone *Entry) bool {
	e := &t.entries[s]
	if e.State == StateInvalid || e.Flags&flagUnlinked != 0 || !expired(e.Expires, now) {
		return false
	}
	if e.Flags&FlagTemplate != 0 && e.ctl != 0 {
		e.Expires = now + expireLater
		return false
	}
	pos, _ := t.mainSlotOf(e)
	if pos < 0 {
		return false // not reachable for a consistent table
	}
	*gone = *e
	gone.ctl = 0
	t.remove(e, uint64(pos), false)
	return true
}

// Range calls fn for every live connection and template, expired or not,
// until fn returns false. fn must not insert or delete. It is for listings
// on the control side, run by the owning worker on request.
func (t *Table) Range(fn func(*Entry) bool) {
	for s := uint32(0); s < t.hwm; s++ {
		e := &t.entries[s]
		if e.State == StateInvalid || e.Flags&flagUnlinked != 0 {
			continue
		}
		if !fn(e) {
			return
		}
	}
}

// RangeFrom copies the live connections and templates (expired or not) of
// slots from, from+1, ... into out until out is full, and returns how many it
// copied, the slot to resume from, and whether it reached the end. It is
// Range in bounded chunks for listings served by the worker between blocks:
// no callback, no allocation, and at most len(out) entries of work per call.
// Between calls the table may change: an entry created behind the cursor is
// not listed, one removed ahead of it is not either; none is listed twice.
func (t *Table) RangeFrom(from uint32, out []Entry) (n int, next uint32, done bool) {
	s := from
	for ; s < t.hwm && n < len(out); s++ {
		e := &t.entries[s]
		if e.State == StateInvalid || e.Flags&flagUnlinked != 0 {
			continue
		}
		out[n] = *e
		n++
	}
	return n, s, s >= t.hwm
}

// TemplateKey returns the key of the template for connection key k with a
// persistence netmask of prefix bits (ipvsadm -M; 0..32 for IPv4, 0..128 for
// IPv6) on a service with port vport (0 for a port-0 service), as
// ip_vs_sched_persist builds it.
func TemplateKey(k *Key, prefix int, vport uint16) Key {
	var tk Key
	tk.Client = MaskAddr(k.Client, prefix)
	tk.VIP = k.VIP
	tk.VPort = vport
	tk.Proto = k.Proto
	return tk
}

// MaskAddr keeps the first prefix bits of a key address: of the IPv4
// address for an IPv4-mapped one (prefix 0..32), of all 128 bits for IPv6
// (0..128). The IPv4-mapped prefix is kept, so the family stays.
func MaskAddr(a [16]byte, prefix int) [16]byte {
	if Is4(&a) {
		prefix += 96
	}
	prefix = max(0, min(prefix, 128))
	hi, lo := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	switch {
	case prefix <= 64:
		lo = 0
		if prefix == 0 {
			hi = 0
		} else {
			hi &= ^uint64(0) << (64 - prefix)
		}
	case prefix < 128:
		lo &= ^uint64(0) << (128 - prefix)
	}
	binary.BigEndian.PutUint64(a[:8], hi)
	binary.BigEndian.PutUint64(a[8:], lo)
	return a
}

// Prefault writes to every page of the table's arrays so the kernel commits them now: memory
// the table may use is then resident from the start (RSS shows the real footprint, and a
// flood cannot make it grow), and the first packets do not take page faults. It costs one
// write per 4 KiB and should be called once, before the table is used.
func (t *Table) Prefault() {
	const page = 4096
	es := EntryBytes
	for i := 0; i < len(t.entries); i += max(page/es, 1) {
		t.entries[i] = Entry{}
	}
	for i := 0; i < len(t.main); i += page / 4 {
		t.main[i] = 0
	}
	for i := 0; i < len(t.reply); i += page / 4 {
		t.reply[i] = 0
	}
}
