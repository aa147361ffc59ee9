package sched

// Slow, obviously-right reference models of the schedulers, written from the
// kernel's description of each rather than from this package's fast paths.

import (
	"slices"
	"sort"
)

// refReal is one real as the reference sees it: plain values, no atomics.
type refReal struct {
	addr     [4]byte
	port     uint16
	w        int32
	active   int32
	inactive int32
	over     bool
}

func refSnapshot(spec Spec, loads []Load) []refReal {
	rs := make([]refReal, len(spec.Reals))
	for i, r := range spec.Reals {
		rs[i] = refReal{r.Addr, r.Port, r.Weight, loads[i].Active(), loads[i].Inactive(), loads[i].Overloaded()}
	}
	return rs
}

func (r refReal) ok() bool           { return r.w > 0 && !r.over }
func (r refReal) overhead() int64    { return int64(r.active)*256 + int64(r.inactive) }
func (r refReal) sedOverhead() int64 { return int64(r.active) + 1 }

// refLeast returns the available real minimising cost/weight, the lowest
// index among equals; compares fractions exactly by cross-multiplying.
func refLeast(rs []refReal, cost func(refReal) int64, weighted bool) int {
	best := -1
	for i, r := range rs {
		if !r.ok() {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := rs[best]
		var less bool
		if weighted {
			less = cost(r)*int64(b.w) < cost(b)*int64(r.w)
		} else {
			less = cost(r) < cost(b)
		}
		if less {
			best = i
		}
	}
	return best
}

func refLC(rs []refReal) int  { return refLeast(rs, refReal.overhead, false) }
func refWLC(rs []refReal) int { return refLeast(rs, refReal.overhead, true) }
func refSED(rs []refReal) int { return refLeast(rs, refReal.sedOverhead, true) }

func refNQ(rs []refReal) int {
	for i, r := range rs {
		if r.ok() && r.active == 0 {
			return i
		}
	}
	return refSED(rs)
}

// refHighest returns the lowest-index available real of highest weight among
// those accepted by keep.
func refHighest(rs []refReal, keep func(refReal) bool) int {
	best := -1
	for i, r := range rs {
		if r.ok() && keep(r) && (best < 0 || r.w > rs[best].w) {
			best = i
		}
	}
	return best
}

func refFO(rs []refReal) int { return refHighest(rs, func(refReal) bool { return true }) }
func refOVF(rs []refReal) int {
	return refHighest(rs, func(r refReal) bool { return r.active <= r.w })
}

// refRR is the kernel's round robin: keep the last position, try each real
// after it once.
type refRR struct{ next int }

func (m *refRR) pick(rs []refReal) int {
	for k := range rs {
		i := (m.next + k) % len(rs)
		if rs[i].ok() {
			m.next = i + 1
			return i
		}
	}
	return -1
}

// refWRR is ip_vs_wrr_schedule literally: a list cursor cl (-1 = list head)
// and a current weight cw that drops by the gcd each time the cursor passes
// the head, back to the max weight when it reaches 0.
type refWRR struct {
	cl int
	cw int32
}

func newRefWRR(rs []refReal) *refWRR {
	var mw int32
	for _, r := range rs {
		mw = max(mw, r.w)
	}
	return &refWRR{cl: -1, cw: mw}
}

func (m *refWRR) pick(rs []refReal) int {
	var mw, di int32
	for _, r := range rs {
		if r.w > 0 {
			mw = max(mw, r.w)
			di = gcd(r.w, di)
		}
	}
	if mw == 0 {
		return -1
	}
	save := *m
	for range (len(rs) + 1) * int(mw/di+1) {
		m.cl++
		if m.cl == len(rs) {
			m.cl = -1
			m.cw -= di
			if m.cw <= 0 {
				m.cw = mw
			}
			continue
		}
		if r := rs[m.cl]; !r.over && r.w >= m.cw && r.w > 0 {
			return m.cl
		}
	}
	*m = save
	return -1
}

func refHash32(v uint32) uint32 { return (v * 0x61C88647) >> 24 }

func refDH(rs []refReal, f *Flow) int {
	if len(rs) == 0 {
		return -1
	}
	a := f.VIP
	v := uint64(a[0])<<24 | uint64(a[1])<<16 | uint64(a[2])<<8 | uint64(a[3])
	i := int(v*2654435761%256) % len(rs)
	if !rs[i].ok() {
		return -1
	}
	return i
}

// refSHTable lists each real weight times (at least once), round the list,
// until 256 buckets are filled.
func refSHTable(rs []refReal) []int {
	var b []int
	for len(b) < 256 {
		for i, r := range rs {
			for range max(r.w, 1) {
				b = append(b, i)
			}
		}
	}
	return b[:256]
}

func refSH(rs []refReal, f *Flow, flags Flags) int {
	if len(rs) == 0 {
		return -1
	}
	b := refSHTable(rs)
	a := f.Client
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	if flags&FlagSHPort != 0 && (f.Proto == 6 || f.Proto == 17 || f.Proto == 132) {
		v += uint32(f.ClientPort)
	}
	ih := int(refHash32(v))
	if rs[b[ih]].ok() {
		return b[ih]
	}
	if flags&FlagSHFallback == 0 {
		return -1
	}
	// ip_vs_sh_get_fallback: offsets 0..255 from ihash, each rehashed.
	for off := range 256 {
		if i := b[(off+ih+ih)%256]; rs[i].ok() {
			return i
		}
	}
	return -1
}

// refMHTable is Maglev as the paper writes it: full permutation lists, reals
// sorted by address and port, each taking weight/gcd turns per round.
func refMHTable(rs []refReal, m int) []int {
	type dest struct {
		i, turns int
		perm     []int
	}
	var g, mw int32
	for _, r := range rs {
		if r.w > 0 {
			g, mw = gcd(r.w, g), max(mw, r.w)
		}
	}
	if g == 0 {
		return nil
	}
	shift := 0
	for (mw/g)>>shift >= 1<<mhTurnBits {
		shift++
	}
	var ds []dest
	for i, r := range rs {
		if r.w <= 0 {
			continue
		}
		id := uint64(r.addr[0])<<40 | uint64(r.addr[1])<<32 | uint64(r.addr[2])<<24 | uint64(r.addr[3])<<16 | uint64(r.port)
		off := int(mix64(id^mhSeedOffset) % uint64(m))
		skip := int(mix64(id^mhSeedSkip)%uint64(m-1)) + 1
		perm := make([]int, m)
		for j := range perm {
			perm[j] = (off + j*skip) % m
		}
		ds = append(ds, dest{i: i, turns: max(int(r.w/g)>>shift, 1), perm: perm})
	}
	sort.Slice(ds, func(a, b int) bool {
		x, y := rs[ds[a].i], rs[ds[b].i]
		if c := slices.Compare(x.addr[:], y.addr[:]); c != 0 {
			return c < 0
		}
		return x.port < y.port
	})
	table := make([]int, m)
	for j := range table {
		table[j] = -1
	}
	next := make([]int, len(ds))
	filled := 0
	for {
		for d := range ds {
			for range ds[d].turns {
				for table[ds[d].perm[next[d]]] >= 0 {
					next[d]++
				}
				table[ds[d].perm[next[d]]] = ds[d].i
				if filled++; filled == m {
					return table
				}
			}
		}
	}
}

func refMH(table []int, rs []refReal, f *Flow, flags Flags) int {
	if table == nil {
		return -1
	}
	m := uint64(len(table))
	a := f.Client
	key := (uint64(a[0])<<24 | uint64(a[1])<<16 | uint64(a[2])<<8 | uint64(a[3])) << 16
	if flags&FlagMHPort != 0 && (f.Proto == 6 || f.Proto == 17 || f.Proto == 132) {
		key |= uint64(f.ClientPort)
	}
	ih := mhHash(key, 0) % m
	if rs[table[ih]].ok() {
		return table[ih]
	}
	if flags&FlagMHFallback == 0 {
		return -1
	}
	for off := range m {
		if i := table[mhHash(key, uint32((off+ih)%m))%m]; rs[i].ok() {
			return i
		}
	}
	return -1
}

// refTwoS draws two weighted reals with the worker's random stream and keeps
// the less loaded per weight, the first draw on ties.
func refTwoS(rs []refReal, ws *WorkerState, seed uint64) int {
	var total int64
	for _, r := range rs {
		if r.ok() {
			total += int64(r.w)
		}
	}
	if total == 0 {
		return -1
	}
	draw := func(r int64) int {
		var cum int64
		for i, x := range rs {
			if x.ok() {
				if cum += int64(x.w); cum >= r {
					return i
				}
			}
		}
		panic("unreachable")
	}
	c1 := draw(int64(ws.uniform(uint64(total+1), seed)))
	c2 := draw(int64(ws.uniform(uint64(total+1), seed)))
	a, b := rs[c1], rs[c2]
	if int64(b.w)*a.overhead() > int64(a.w)*b.overhead() {
		return c2
	}
	return c1
}

func refLBLCOver(rs []refReal, d int) bool {
	if rs[d].active <= rs[d].w {
		return false
	}
	for _, r := range rs {
		if r.active*2 < r.w {
			return true
		}
	}
	return false
}

type refIdent struct {
	addr [4]byte
	port uint16
}

func refFind(rs []refReal, id refIdent) int {
	for i, r := range rs {
		if r.addr == id.addr && r.port == id.port {
			return i
		}
	}
	return -1
}

// refTimer is the kernel's periodic expiry timer, run lazily.
type refTimer struct {
	started bool
	next    int64
	counter int
}

// due reports whether the full 24h expiry check runs now.
func (t *refTimer) due(now int64) bool {
	if !t.started {
		*t = refTimer{true, now + cacheCheckInterval, 1}
		return false
	}
	if now < t.next {
		return false
	}
	t.next = now + cacheCheckInterval
	if t.counter%cacheFullCheckEvery == 0 {
		t.counter = 1
		return true
	}
	t.counter++ // the reference never exceeds max_size
	return false
}

type refLBLCEntry struct {
	id      refIdent
	lastuse int64
}

type refLBLC struct {
	timer refTimer
	m     map[uint64]*refLBLCEntry
}

func (c *refLBLC) pick(rs []refReal, f *Flow, now int64) int {
	if c.m == nil {
		c.m = map[uint64]*refLBLCEntry{}
	}
	if c.timer.due(now) {
		for k, e := range c.m {
			if now-e.lastuse >= cacheExpiration {
				delete(c.m, k)
			}
		}
	}
	key := cacheKey(f)
	if e, ok := c.m[key]; ok {
		e.lastuse = now
		if d := refFind(rs, e.id); d >= 0 && rs[d].ok() && !refLBLCOver(rs, d) {
			return d
		}
	}
	d := refWLC(rs)
	if d >= 0 {
		c.m[key] = &refLBLCEntry{refIdent{rs[d].addr, rs[d].port}, now}
	}
	return d
}

type refLBLCREntry struct {
	members          []refIdent // newest first
	lastuse, lastmod int64
}

type refLBLCR struct {
	timer refTimer
	m     map[uint64]*refLBLCREntry
}

func (c *refLBLCR) pick(rs []refReal, f *Flow, now int64) int {
	if c.m == nil {
		c.m = map[uint64]*refLBLCREntry{}
	}
	if c.timer.due(now) {
		for k, e := range c.m {
			if now-e.lastuse >= cacheExpiration {
				delete(c.m, k)
			}
		}
	}
	key := cacheKey(f)
	e, ok := c.m[key]
	if !ok {
		d := refWLC(rs)
		if d >= 0 {
			c.m[key] = &refLBLCREntry{[]refIdent{{rs[d].addr, rs[d].port}}, now, now}
		}
		return d
	}
	e.lastuse = now
	e.members = slices.DeleteFunc(e.members, func(id refIdent) bool { return refFind(rs, id) < 0 })
	// Least loaded available member, first among equals.
	sub := make([]refReal, len(e.members))
	for j, id := range e.members {
		sub[j] = rs[refFind(rs, id)]
	}
	d := -1
	if j := refWLC(sub); j >= 0 {
		d = refFind(rs, e.members[j])
	}
	if len(e.members) > 1 && now-e.lastmod > cacheExpiration {
		most := -1
		for j, r := range sub {
			if r.w > 0 && (most < 0 || r.overhead()*int64(sub[most].w) > sub[most].overhead()*int64(r.w)) {
				most = j
			}
		}
		if most >= 0 {
			e.members = slices.Delete(e.members, most, most+1)
			e.lastmod = now
		}
	}
	if d >= 0 && !refLBLCOver(rs, d) {
		return d
	}
	d = refWLC(rs)
	if d >= 0 {
		id := refIdent{rs[d].addr, rs[d].port}
		if !slices.Contains(e.members, id) && len(e.members) < lblcrMaxSet {
			e.members = append([]refIdent{id}, e.members...)
			e.lastmod = now
		}
	}
	return d
}
