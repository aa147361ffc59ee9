package sched

// Cache sizing and expiry, from ip_vs_lblc.c and ip_vs_lblcr.c. Times are in
// nanoseconds of the caller's monotonic clock.
const (
	// cacheMaxSize is the kernel's max_size (IP_VS_LBLC_TAB_SIZE*16): above
	// it the periodic check collects entries idle for cacheEntryTimeout.
	cacheMaxSize = 1024 * 16
	// cacheCap is the hard bound on entries. The kernel has none (it
	// allocates); here a full cache first collects idle entries and, if still
	// full, schedules without caching, as the kernel does when kmalloc fails.
	cacheCap = cacheMaxSize * 3 / 2
	// cacheSlots keeps linear probing at most 75% full.
	cacheSlots = 1 << 15
	cacheMask  = cacheSlots - 1

	cacheCheckInterval = 60 * 1e9           // CHECK_EXPIRE_INTERVAL
	cacheEntryTimeout  = 6 * 60 * 1e9       // ENTRY_TIMEOUT
	cacheExpiration    = 24 * 60 * 60 * 1e9 // DEFAULT_EXPIRATION (sysctl lblc_expiration, lblcr_expiration)
	// cacheFullCheckEvery is COUNT_FOR_FULL_EXPIRATION: every 30th periodic
	// check drops every entry idle for cacheExpiration.
	cacheFullCheckEvery = 30

	// lblcrMaxSet bounds an lblcr server set; the kernel's is unbounded.
	// A full set takes no new member until the periodic shrink removes one.
	lblcrMaxSet = 8
)

// WorkerState is the per-worker mutable scheduler state: the lblc and lblcr
// caches and the twos random source. It belongs to one worker goroutine and
// may be used with any number of Tables (services); cache entries are keyed
// by destination address, port and protocol. It holds about 5 MiB of caches,
// allocated by NewWorkerState so that Pick never allocates.
type WorkerState struct {
	rng   uint64
	lblc  cache[realRef]
	lblcr cache[lblcrSet]
}

// NewWorkerState returns the state for one worker; seed starts its random
// source (twos).
func NewWorkerState(seed uint64) *WorkerState {
	ws := &WorkerState{rng: seed}
	ws.lblc.init()
	ws.lblcr.init()
	return ws
}

// Reset returns ws to the state NewWorkerState(seed) gives, reusing its
// memory; caches that hold nothing cost nothing to reset. For tests and fuzz
// targets that need a fresh worker per input.
func (ws *WorkerState) Reset(seed uint64) {
	ws.rng = seed
	ws.lblc.reset()
	ws.lblcr.reset()
}

func (c *cache[E]) reset() {
	if c.n > 0 {
		clear(c.keys)
		clear(c.lastuse)
		clear(c.vals)
	}
	c.n, c.started, c.nextCheck, c.counter, c.rover = 0, false, 0, 0, 0
}

// realRef names a real across rebuilds: idx is valid in the Table whose gen
// matches; otherwise the real is looked up again by address and port.
type realRef struct {
	addr [4]byte
	port uint16
	idx  uint16
	gen  uint32
}

func makeRef(t *Table, i int) realRef {
	return realRef{addr: t.reals[i].Addr, port: t.reals[i].Port, idx: uint16(i), gen: t.gen}
}

// resolve returns the index of r in t, or -1 if t no longer has the real.
func (r *realRef) resolve(t *Table) int {
	if r.gen == t.gen {
		return int(r.idx)
	}
	i := t.lookup(r.addr, r.port)
	if i < 0 {
		return -1
	}
	r.idx, r.gen = uint16(i), t.gen
	return i
}

// cache is an open-addressing hash table with linear probing and
// backward-shift deletion, holding the lblc/lblcr entries of one worker.
type cache[E any] struct {
	keys    []uint64 // 0 = empty slot
	lastuse []int64
	vals    []E
	n       int

	started   bool
	nextCheck int64
	counter   int
	rover     uint32
}

func (c *cache[E]) init() {
	c.keys = make([]uint64, cacheSlots)
	c.lastuse = make([]int64, cacheSlots)
	c.vals = make([]E, cacheSlots)
}

// cacheKey is the destination (address, port, protocol) that lblc and lblcr
// associate with a real; the kernel's per-service tables key on the
// destination address alone.
func cacheKey(f *Flow) uint64 {
	return 1<<63 | uint64(be32(f.VIP))<<24 | uint64(f.Port)<<8 | uint64(f.Proto)
}

func home(key uint64) uint32 { return uint32(mix64(key)) & cacheMask }

func (c *cache[E]) find(key uint64) int {
	for i := home(key); ; i = (i + 1) & cacheMask {
		switch c.keys[i] {
		case key:
			return int(i)
		case 0:
			return -1
		}
	}
}

// insert adds key, which must be absent, and returns its slot, or -1 if the
// cache is full even after collecting idle entries.
func (c *cache[E]) insert(key uint64, now int64) int {
	if c.n >= cacheCap {
		c.sweep(now, cacheEntryTimeout, c.n)
		if c.n >= cacheCap {
			return -1
		}
	}
	i := home(key)
	for c.keys[i] != 0 {
		i = (i + 1) & cacheMask
	}
	c.keys[i] = key
	c.lastuse[i] = now
	c.n++
	return int(i)
}

// del empties slot i and shifts later entries of the probe run back.
func (c *cache[E]) del(i uint32) {
	c.n--
	for {
		c.keys[i] = 0
		j := i
		for {
			j = (j + 1) & cacheMask
			if c.keys[j] == 0 {
				return
			}
			h := home(c.keys[j])
			// The entry at j may stay if its home lies cyclically in (i, j].
			if i <= j {
				if i < h && h <= j {
					continue
				}
			} else if i < h || h <= j {
				continue
			}
			break
		}
		c.keys[i], c.lastuse[i], c.vals[i] = c.keys[j], c.lastuse[j], c.vals[j]
		i = j
	}
}

// sweep removes up to goal entries idle for at least age, walking from the
// rover as ip_vs_lblc_check_expire does.
func (c *cache[E]) sweep(now, age int64, goal int) {
	j := c.rover
	for range cacheSlots {
		j = (j + 1) & cacheMask
		for c.keys[j] != 0 && now-c.lastuse[j] >= age {
			c.del(j)
			goal--
		}
		if goal <= 0 {
			break
		}
	}
	c.rover = j
}

// tick runs the kernel's periodic expiry check (a timer every
// CHECK_EXPIRE_INTERVAL) lazily, from the first Pick at or after it is due.
func (c *cache[E]) tick(now int64) {
	if !c.started {
		c.started, c.nextCheck, c.counter = true, now+cacheCheckInterval, 1
		return
	}
	if now < c.nextCheck {
		return
	}
	c.nextCheck = now + cacheCheckInterval
	if c.counter%cacheFullCheckEvery == 0 {
		c.sweep(now, cacheExpiration, c.n+1)
		c.counter = 1
		return
	}
	if c.n <= cacheMaxSize {
		c.counter++
		return
	}
	goal := min((c.n-cacheMaxSize)*4/3, cacheMaxSize/2)
	c.sweep(now, cacheEntryTimeout, goal)
}

// lblcOverloaded is is_overloaded of ip_vs_lblc.c: more active connections
// than weight while some real is below half its weight.
func (t *Table) lblcOverloaded(d int, loads []Load) bool {
	if loads[d].Active() <= t.weights[d] {
		return false
	}
	for i, w := range t.weights {
		if loads[i].Active()*2 < w {
			return true
		}
	}
	return false
}

// pickLBLC is ip_vs_lblc_schedule: the destination's cached real while it is
// available and not lblc-overloaded, else the wlc choice, which is cached.
func (t *Table) pickLBLC(f *Flow, loads []Load, ws *WorkerState, now int64) int {
	c := &ws.lblc
	c.tick(now)
	key := cacheKey(f)
	s := c.find(key)
	if s >= 0 {
		c.lastuse[s] = now
		if d := c.vals[s].resolve(t); d >= 0 && t.available(d, loads) && !t.lblcOverloaded(d, loads) {
			return d
		}
	}
	d := t.pickWLC(loads)
	if d < 0 {
		return -1
	}
	if s < 0 {
		s = c.insert(key, now)
	}
	if s >= 0 {
		c.vals[s] = makeRef(t, d)
		c.lastuse[s] = now
	}
	return d
}

// lblcrSet is ip_vs_dest_set: the reals serving one destination, newest first.
type lblcrSet struct {
	lastmod int64
	gen     uint32
	n       uint8
	m       [lblcrMaxSet]realRef
}

// refresh re-resolves the members after a rebuild and drops removed reals.
func (s *lblcrSet) refresh(t *Table) {
	if s.gen == t.gen {
		return
	}
	k := uint8(0)
	for j := range s.n {
		if s.m[j].resolve(t) >= 0 {
			s.m[k] = s.m[j]
			k++
		}
	}
	s.n, s.gen = k, t.gen
}

// min is ip_vs_dest_set_min: the weighted least-loaded available member.
func (s *lblcrSet) min(t *Table, loads []Load) int {
	least, loh, lw := -1, int64(0), int64(0)
	for j := range s.n {
		i := int(s.m[j].idx)
		if !t.available(i, loads) {
			continue
		}
		w := int64(t.weights[i])
		if doh := loads[i].overhead(); least < 0 || loh*w > doh*lw {
			least, loh, lw = i, doh, w
		}
	}
	return least
}

// max is ip_vs_dest_set_max: the weighted most-loaded member, overloaded or not.
func (s *lblcrSet) max(t *Table, loads []Load) int {
	most, moh, mw := -1, int64(0), int64(0)
	for j := range s.n {
		i := int(s.m[j].idx)
		w := int64(t.weights[i])
		if w <= 0 {
			continue
		}
		if doh := loads[i].overhead(); most < 0 || moh*w < doh*mw {
			most, moh, mw = i, doh, w
		}
	}
	return most
}

func (s *lblcrSet) erase(i int, now int64) {
	for j := range s.n {
		if int(s.m[j].idx) == i {
			copy(s.m[j:s.n], s.m[j+1:s.n])
			s.n--
			s.lastmod = now
			return
		}
	}
}

// insert is ip_vs_dest_set_insert: add at the head unless present or full.
func (s *lblcrSet) insert(t *Table, i int, now int64) {
	for j := range s.n {
		if int(s.m[j].idx) == i {
			return
		}
	}
	if s.n == lblcrMaxSet {
		return
	}
	copy(s.m[1:s.n+1], s.m[:s.n])
	s.m[0] = makeRef(t, i)
	s.n++
	s.lastmod = now
}

// pickLBLCR is ip_vs_lblcr_schedule: the least-loaded member of the
// destination's set unless it is lblc-overloaded, in which case the wlc
// choice joins the set. A set unchanged for cacheExpiration loses its
// most-loaded member.
func (t *Table) pickLBLCR(f *Flow, loads []Load, ws *WorkerState, now int64) int {
	c := &ws.lblcr
	c.tick(now)
	key := cacheKey(f)
	if s := c.find(key); s >= 0 {
		c.lastuse[s] = now
		set := &c.vals[s]
		set.refresh(t)
		d := set.min(t, loads)
		if set.n > 1 && now-set.lastmod > cacheExpiration {
			if m := set.max(t, loads); m >= 0 {
				set.erase(m, now)
			}
		}
		if d >= 0 && !t.lblcOverloaded(d, loads) {
			return d
		}
		d = t.pickWLC(loads)
		if d >= 0 {
			set.insert(t, d, now)
		}
		return d
	}
	d := t.pickWLC(loads)
	if d < 0 {
		return -1
	}
	if s := c.insert(key, now); s >= 0 {
		set := &c.vals[s]
		*set = lblcrSet{gen: t.gen}
		set.insert(t, d, now)
	}
	return d
}
