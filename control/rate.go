package control

import "sync"

// EstimatorInterval is how often the rate estimator samples the counters: every 2 s, as
// the kernel's estimator (ip_vs_est.c) does.
const EstimatorInterval = 2

// estimate is one rate estimator, ip_vs_estimator: rates are kept scaled (conns and packets
// per second times 2^10, bytes per second times 2^5) and smoothed with an EWMA of weight
// 1/4 per 2-second sample, as estimation_timer does; reading rounds up the way
// ip_vs_read_estimator does.
type estimate struct {
	last                              Stats
	cps, inpps, outpps, inbps, outbps int64
	seen                              uint64 // the last sample round that saw this key
}

// sample folds one 2-second sample of the counters into the estimate.
func (e *estimate) sample(s Stats) {
	// A counter that went down belongs to a service or real that was removed and added
	// again: start over from it.
	if s.Conns < e.last.Conns || s.InPackets < e.last.InPackets || s.OutPackets < e.last.OutPackets ||
		s.InBytes < e.last.InBytes || s.OutBytes < e.last.OutBytes {
		*e = estimate{last: s, seen: e.seen}
		return
	}
	ewma := func(avg *int64, delta uint64, shift uint) {
		rate := int64(delta << shift)
		*avg += (rate - *avg) >> 2
	}
	// Conns and packets: delta over 2 s, scaled by 2^10: << 9. Bytes: scaled by 2^5: << 4.
	ewma(&e.cps, s.Conns-e.last.Conns, 9)
	ewma(&e.inpps, s.InPackets-e.last.InPackets, 9)
	ewma(&e.outpps, s.OutPackets-e.last.OutPackets, 9)
	ewma(&e.inbps, s.InBytes-e.last.InBytes, 4)
	ewma(&e.outbps, s.OutBytes-e.last.OutBytes, 4)
	e.last = s
}

// rates returns the per-second rates, as ip_vs_read_estimator.
func (e *estimate) rates() Rates {
	r := func(v int64, round int64, shift uint) uint64 {
		if v <= 0 {
			return 0
		}
		return uint64((v + round) >> shift)
	}
	return Rates{
		CPS:    r(e.cps, 0x1FF, 10),
		InPPS:  r(e.inpps, 0x1FF, 10),
		OutPPS: r(e.outpps, 0x1FF, 10),
		InBPS:  r(e.inbps, 0xF, 5),
		OutBPS: r(e.outbps, 0xF, 5),
	}
}

// estimator holds one estimate per service and per real server.
type estimator struct {
	mu    sync.Mutex // guards m and round
	m     map[counterKey]*estimate
	round uint64
}

func newEstimator() *estimator { return &estimator{m: map[counterKey]*estimate{}} }

// update samples every counter in cur; keys not in cur are forgotten. A key seen for the
// first time starts from its current counters with zero rates, as ip_vs_start_estimator.
func (es *estimator) update(cur map[counterKey]Stats) {
	es.mu.Lock()
	defer es.mu.Unlock()
	es.round++
	for k, s := range cur {
		e := es.m[k]
		if e == nil {
			es.m[k] = &estimate{last: s, seen: es.round}
			continue
		}
		e.sample(s)
		e.seen = es.round
	}
	for k, e := range es.m {
		if e.seen != es.round {
			delete(es.m, k)
		}
	}
}

// rates returns the rates of k (zero when unknown).
func (es *estimator) rates(k counterKey) Rates {
	es.mu.Lock()
	defer es.mu.Unlock()
	if e := es.m[k]; e != nil {
		return e.rates()
	}
	return Rates{}
}

// zero clears the rates of the keys for which match is true (ipvsadm -Z zeroes the
// estimator with the counters, ip_vs_zero_estimator).
func (es *estimator) zero(match func(counterKey) bool) {
	es.mu.Lock()
	defer es.mu.Unlock()
	for k, e := range es.m {
		if match(k) {
			*e = estimate{last: e.last, seen: e.seen}
		}
	}
}
