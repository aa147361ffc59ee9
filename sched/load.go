package sched

import "sync/atomic"

// Load is the live load of one real server, shared by all workers. It fills a
// cache line so that counters of neighbouring reals do not false-share.
//
// Both counts live in one word, w = active + inactive<<32 in two's
// complement, so a connection changing state costs one atomic add and a
// reader sees both counts of the same instant. Each count stays a valid
// int32 on its own: decoding sign-extends the low half and takes the rest as
// the high half, so a transiently negative count borrows from and later
// returns to the other without corrupting it.
//
// The caller owns a []Load parallel to Spec.Reals and keeps each Load across
// rebuilds for as long as its real stays, as the kernel keeps ip_vs_dest. To
// grow the array, allocate a new one and MoveTo each old Load into it: counts
// added to an old Load by a worker still on the previous snapshot are
// forwarded, never lost.
type Load struct {
	w        atomic.Uint64 // active + inactive<<32 (or loadMoved, see MoveTo)
	next     atomic.Pointer[Load]
	overload atomic.Bool // IP_VS_DEST_F_OVERLOAD
	_        [64 - 17]byte
}

// loadMoved marks a Load whose counts moved to next: inactive = 2^30, far
// above any real count (a worker table holds at most 2^28 entries), so an
// Add that lands on it sees the mark in its own result and forwards itself.
const (
	loadMoved      = uint64(1) << 62
	loadMovedFloor = int32(1) << 29
)

func packLoad(active, inactive int32) uint64 {
	return uint64(int64(active)) + uint64(int64(inactive))<<32
}

func unpackLoad(w uint64) (active, inactive int32) {
	active = int32(uint32(w))
	inactive = int32((int64(w) - int64(active)) >> 32)
	return active, inactive
}

// counts returns the counts of l, following a move.
func (l *Load) counts() (active, inactive int32) {
	for {
		a, i := unpackLoad(l.w.Load())
		if i < loadMovedFloor {
			return a, i
		}
		l = l.next.Load()
	}
}

// Active returns the number of active connections (the kernel's activeconns).
func (l *Load) Active() int32 { a, _ := l.counts(); return a }

// Inactive returns the number of inactive connections (the kernel's inactconns).
func (l *Load) Inactive() int32 { _, i := l.counts(); return i }

// Overloaded reports whether the real is marked overloaded by its thresholds.
// An overloaded real gets no new connections.
func (l *Load) Overloaded() bool {
	for {
		n := l.next.Load()
		if n == nil {
			return l.overload.Load()
		}
		l = n
	}
}

// overhead is ip_vs_dest_conn_overhead: active connections weigh 256 inactive ones.
func (l *Load) overhead() int64 {
	a, i := l.counts()
	return int64(a)<<8 + int64(i)
}

// Add changes the counters by the deltas and then updates the overload flag
// from r's thresholds with the hysteresis of ip_vs_bind_dest and
// ip_vs_unbind_dest (ip_vs_conn.c): when the total grows, the flag is set once
// active+inactive >= Upper; when it shrinks, the flag is cleared below Lower,
// or below 3/4 of Upper when Lower is 0, or at once when there are no
// thresholds. Moving a connection between active and inactive (total
// unchanged) leaves the flag alone. r may be nil, meaning no thresholds.
// The counts take one atomic add; the flag is written only when it changes.
func (l *Load) Add(activeDelta, inactiveDelta int32, r *RealSpec) {
	d := packLoad(activeDelta, inactiveDelta)
	a, i := unpackLoad(l.w.Add(d))
	if i >= loadMovedFloor {
		// Moved by a rebuild after this worker loaded its snapshot: take the
		// delta back and apply it where the counts went.
		l.w.Add(-d)
		l.next.Load().Add(activeDelta, inactiveDelta, r)
		return
	}
	var upper, lower uint32
	if r != nil {
		upper, lower = r.Upper, r.Lower
	}
	total := int64(a) + int64(i)
	switch dt := int64(activeDelta) + int64(inactiveDelta); {
	case dt > 0:
		if upper != 0 && total >= int64(upper) {
			l.setOverload(true)
		}
	case dt < 0:
		switch {
		case lower != 0:
			if total < int64(lower) {
				l.setOverload(false)
			}
		case upper != 0:
			if total*4 < int64(upper)*3 {
				l.setOverload(false)
			}
		default:
			l.setOverload(false)
		}
	}
}

// setOverload stores the flag only when it changes, so the common case (no
// thresholds, flag clear) leaves the cache line shared.
func (l *Load) setOverload(v bool) {
	if l.overload.Load() != v {
		l.overload.Store(v)
	}
}

// MoveTo moves l's counts and overload flag into n, a Load no worker counts
// on yet, and forwards every later Add on l (from workers still on an older
// snapshot) to n, so no count is lost. The control side calls it, from one
// goroutine, when it grows a load array; l must not be reused afterwards.
func (l *Load) MoveTo(n *Load) {
	if n == l || l.next.Load() != nil {
		return
	}
	l.next.Store(n)
	a, i := unpackLoad(l.w.Swap(loadMoved))
	n.w.Add(packLoad(a, i))
	if l.overload.Load() {
		n.overload.Store(true)
	}
}

// Reconfigure applies a threshold change of one real, as __ip_vs_update_dest
// (ip_vs_ctl.c) does: removing or raising the upper threshold clears the
// overload flag; otherwise the flag waits for the next Add.
func (l *Load) Reconfigure(prev, next *RealSpec) {
	if next.Upper == 0 || next.Upper > prev.Upper {
		for m := l.next.Load(); m != nil; m = l.next.Load() {
			l = m
		}
		l.setOverload(false)
	}
}

// GrowLoads returns a load array of at least n entries holding old's counts:
// old itself when it is long enough, otherwise a new array into which each
// old Load has been moved (MoveTo), so that workers still counting on old
// lose nothing.
func GrowLoads(old []Load, n int) []Load {
	if n <= len(old) {
		return old
	}
	loads := make([]Load, max(2*n, 8))
	for i := range old {
		old[i].MoveTo(&loads[i])
	}
	return loads
}
