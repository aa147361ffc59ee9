package sched

// Peek answers "which real would Pick choose for f now" without changing anything: rr and
// wrr look at the shared position without advancing it, and lblc, lblcr and twos, whose
// choice depends on a worker's cache or random stream, answer with the weighted least
// connection choice and exact false (lblc and lblcr fall back to it when a destination is
// not cached; twos draws two candidates and keeps the better one, which wlc bounds).
// It returns -1 when no real is available. Operators use it to explain a decision
// (uvs trace) while the workers keep scheduling.
func (t *Table) Peek(f *Flow, loads []Load) (i int, exact bool) {
	if len(loads) < len(t.reals) {
		return -1, true
	}
	loads = loads[:len(t.reals)]
	if t.nAvail == 0 {
		return -1, true
	}
	switch t.kind {
	case KindRR, KindWRR:
		n := uint32(len(t.seq))
		if n == 0 {
			return -1, true
		}
		pos := t.pos.v.Load()
		for k := uint32(0); k < n; k++ {
			j := (pos + k) % n
			if r := int(t.seq[j]); t.available(r, loads) {
				return r, true
			}
		}
		return -1, true
	case KindLC:
		return t.pickLC(loads), true
	case KindWLC:
		return t.pickWLC(loads), true
	case KindSED:
		return t.pickSED(loads), true
	case KindNQ:
		return t.pickNQ(loads), true
	case KindFO:
		return t.pickFO(loads), true
	case KindOVF:
		return t.pickOVF(loads), true
	case KindDH:
		return t.pickDH(f, loads), true
	case KindSH:
		return t.pickSH(f, loads), true
	case KindMH:
		return t.pickMH(f, loads), true
	case KindLBLC, KindLBLCR, KindTwoS:
		return t.pickWLC(loads), false
	}
	return -1, true
}

// Weight returns the weight real i was built with, or 0 when i is out of range.
func (t *Table) Weight(i int) int32 {
	if i < 0 || i >= len(t.weights) {
		return 0
	}
	return t.weights[i]
}
