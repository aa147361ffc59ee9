package sched

import "sync/atomic"

// Load is the live load of one real server, shared by all workers. Its fields
// are only touched with atomics, and it fills a cache line so that counters of
// neighbouring reals do not false-share.
//
// The caller owns a []Load parallel to Spec.Reals and keeps each Load across
// rebuilds for as long as its real stays, as the kernel keeps ip_vs_dest.
type Load struct {
	active   atomic.Int32 // activeconns
	inactive atomic.Int32 // inactconns
	overload atomic.Bool  // IP_VS_DEST_F_OVERLOAD
	_        [64 - 12]byte
}

// Active returns the number of active connections (the kernel's activeconns).
func (l *Load) Active() int32 { return l.active.Load() }

// Inactive returns the number of inactive connections (the kernel's inactconns).
func (l *Load) Inactive() int32 { return l.inactive.Load() }

// Overloaded reports whether the real is marked overloaded by its thresholds.
// An overloaded real gets no new connections.
func (l *Load) Overloaded() bool { return l.overload.Load() }

// overhead is ip_vs_dest_conn_overhead: active connections weigh 256 inactive ones.
func (l *Load) overhead() int64 {
	return int64(l.active.Load())<<8 + int64(l.inactive.Load())
}

// Add changes the counters by the deltas and then updates the overload flag
// from r's thresholds with the hysteresis of ip_vs_bind_dest and
// ip_vs_unbind_dest (ip_vs_conn.c): when the total grows, the flag is set once
// active+inactive >= Upper; when it shrinks, the flag is cleared below Lower,
// or below 3/4 of Upper when Lower is 0, or at once when there are no
// thresholds. Moving a connection between active and inactive (total
// unchanged) leaves the flag alone. r may be nil, meaning no thresholds.
func (l *Load) Add(activeDelta, inactiveDelta int32, r *RealSpec) {
	a := l.active.Add(activeDelta)
	i := l.inactive.Add(inactiveDelta)
	var upper, lower uint32
	if r != nil {
		upper, lower = r.Upper, r.Lower
	}
	total := int64(a) + int64(i)
	switch d := int64(activeDelta) + int64(inactiveDelta); {
	case d > 0:
		if upper != 0 && total >= int64(upper) {
			l.overload.Store(true)
		}
	case d < 0:
		switch {
		case lower != 0:
			if total < int64(lower) {
				l.overload.Store(false)
			}
		case upper != 0:
			if total*4 < int64(upper)*3 {
				l.overload.Store(false)
			}
		default:
			l.overload.Store(false)
		}
	}
}

// Reconfigure applies a threshold change of one real, as __ip_vs_update_dest
// (ip_vs_ctl.c) does: removing or raising the upper threshold clears the
// overload flag; otherwise the flag waits for the next Add.
func (l *Load) Reconfigure(prev, next *RealSpec) {
	if next.Upper == 0 || next.Upper > prev.Upper {
		l.overload.Store(false)
	}
}
