package sched

import "math/bits"

// Pick returns the index into Spec.Reals of the real server for a new
// connection, or -1 if none is available (no reals, all quiescent or
// overloaded, or the hash bucket's real is unavailable without a fallback
// flag). loads is parallel to Spec.Reals. ws is the calling worker's own
// state; it may be nil except for lblc, lblcr and twos. now is a monotonic
// time in nanoseconds; only lblc and lblcr use it.
//
// Pick does not allocate, lock or call through interfaces.
func (t *Table) Pick(f *Flow, loads []Load, ws *WorkerState, now int64) int {
	if len(loads) < len(t.reals) {
		return -1
	}
	loads = loads[:len(t.reals)]
	// lblc and lblcr run their cache expiry even with nothing to pick.
	if t.nAvail == 0 && t.kind != KindLBLC && t.kind != KindLBLCR {
		return -1
	}
	switch t.kind {
	case KindRR, KindWRR:
		return t.pickSeq(loads)
	case KindLC:
		return t.pickLC(loads)
	case KindWLC:
		return t.pickWLC(loads)
	case KindSED:
		return t.pickSED(loads)
	case KindNQ:
		return t.pickNQ(loads)
	case KindFO:
		return t.pickFO(loads)
	case KindOVF:
		return t.pickOVF(loads)
	case KindDH:
		return t.pickDH(f, loads)
	case KindSH:
		return t.pickSH(f, loads)
	case KindMH:
		return t.pickMH(f, loads)
	case KindLBLC:
		if ws == nil {
			return -1
		}
		return t.pickLBLC(f, loads, ws, now)
	case KindLBLCR:
		if ws == nil {
			return -1
		}
		return t.pickLBLCR(f, loads, ws, now)
	case KindTwoS:
		if ws == nil {
			return -1
		}
		return t.pickTwoS(loads, ws)
	}
	return -1
}

// available is the test every scheduler applies before handing out a real:
// weight > 0 (not quiescent) and IP_VS_DEST_F_OVERLOAD clear.
func (t *Table) available(i int, loads []Load) bool {
	return t.weights[i] > 0 && !loads[i].Overloaded()
}

func (t *Table) anyAvailable(loads []Load) bool {
	for i := range t.weights {
		if t.available(i, loads) {
			return true
		}
	}
	return false
}

// pickSeq serves rr and wrr: ip_vs_rr_schedule and ip_vs_wrr_schedule walk
// the reals (wrr: the gcd-stepped sequence) from the last position, skipping
// overloaded and quiescent reals. The position is one atomic shared by all
// workers and advanced past the chosen entry with compare-and-swap, so picks
// from any number of workers interleave into exactly the kernel's sequence.
func (t *Table) pickSeq(loads []Load) int {
	n := uint32(len(t.seq))
	if n == 0 {
		return -1
	}
	checked := false
retry:
	for {
		old := t.pos.v.Load()
		for k := uint32(0); k < n; k++ {
			j := old + k
			if j >= n {
				j -= n
			}
			i := int(t.seq[j])
			if !t.available(i, loads) {
				// A long wrr sequence is only worth walking if some
				// real can be picked at all.
				if !checked && n > uint32(len(t.reals)) {
					if !t.anyAvailable(loads) {
						return -1
					}
					checked = true
				}
				continue
			}
			next := j + 1
			if next == n {
				next = 0
			}
			if t.pos.v.CompareAndSwap(old, next) {
				return i
			}
			continue retry
		}
		return -1
	}
}

// pickLC is ip_vs_lc_schedule: the least overhead wins, first one on ties.
func (t *Table) pickLC(loads []Load) int {
	least, loh := -1, int64(0)
	for i := range t.weights {
		if !t.available(i, loads) {
			continue
		}
		if doh := loads[i].overhead(); least < 0 || doh < loh {
			least, loh = i, doh
		}
	}
	return least
}

// pickWLC is ip_vs_wlc_schedule (and __ip_vs_lblc_schedule): the least
// overhead/weight wins, compared as loh*dw > doh*lw, first one on ties.
func (t *Table) pickWLC(loads []Load) int {
	least, loh, lw := -1, int64(0), int64(0)
	for i, w := range t.weights {
		if !t.available(i, loads) {
			continue
		}
		if doh := loads[i].overhead(); least < 0 || loh*int64(w) > doh*lw {
			least, loh, lw = i, doh, int64(w)
		}
	}
	return least
}

// pickSED is ip_vs_sed_schedule: as wlc with overhead active+1
// (ip_vs_sed_dest_overhead), inactive connections ignored.
func (t *Table) pickSED(loads []Load) int {
	least, loh, lw := -1, int64(0), int64(0)
	for i, w := range t.weights {
		if !t.available(i, loads) {
			continue
		}
		if doh := int64(loads[i].Active()) + 1; least < 0 || loh*int64(w) > doh*lw {
			least, loh, lw = i, doh, int64(w)
		}
	}
	return least
}

// pickNQ is ip_vs_nq_schedule: the first idle real (no active connections)
// wins at once; otherwise as sed.
func (t *Table) pickNQ(loads []Load) int {
	least, loh, lw := -1, int64(0), int64(0)
	for i, w := range t.weights {
		if !t.available(i, loads) {
			continue
		}
		a := int64(loads[i].Active())
		if a == 0 {
			return i
		}
		if doh := a + 1; least < 0 || loh*int64(w) > doh*lw {
			least, loh, lw = i, doh, int64(w)
		}
	}
	return least
}

// pickFO is ip_vs_fo_schedule: the available real with the highest weight,
// the first one on ties.
func (t *Table) pickFO(loads []Load) int {
	h, hw := -1, int32(0)
	for i, w := range t.weights {
		if w > hw && !loads[i].Overloaded() {
			h, hw = i, w
		}
	}
	return h
}

// pickOVF is ip_vs_ovf_schedule: the highest-weight real whose active
// connections do not exceed its weight, the first one on ties.
func (t *Table) pickOVF(loads []Load) int {
	h, hw := -1, int32(0)
	for i, w := range t.weights {
		if !t.available(i, loads) || loads[i].Active() > w {
			continue
		}
		if h < 0 || w > hw {
			h, hw = i, w
		}
	}
	return h
}

// pickDH is ip_vs_dh_schedule: the bucket of the packet's destination address,
// hashed as ip_vs_dh_hashkey (addr*2654435761 & mask, so only the low octet
// matters); an unavailable real means no real (dh has no fallback).
func (t *Table) pickDH(f *Flow, loads []Load) int {
	i := int(t.buckets[(be32(f.VIP)*2654435761)&hashTabMask])
	if !t.available(i, loads) {
		return -1
	}
	return i
}

func hasPorts(proto uint8) bool {
	return proto == protoTCP || proto == protoUDP || proto == protoSCTP
}

// shHash is ip_vs_sh_hashkey on the host-order address and port.
func shHash(addr uint32, port uint16, offset uint32) uint32 {
	return (offset + hash32(uint32(port)+addr, hashTabBits)) & hashTabMask
}

// pickSH is ip_vs_sh_schedule: the bucket of the client address (and port
// with sh-port). With sh-fallback an unavailable real is skipped by rehashing
// with growing offsets, as ip_vs_sh_get_fallback.
func (t *Table) pickSH(f *Flow, loads []Load) int {
	addr := be32(f.Client)
	var port uint16
	if t.flags&FlagSHPort != 0 && hasPorts(f.Proto) {
		port = f.ClientPort
	}
	ih := shHash(addr, port, 0)
	if i := int(t.buckets[ih]); t.available(i, loads) {
		return i
	}
	if t.flags&FlagSHFallback == 0 {
		return -1
	}
	for off := uint32(0); off < hashTabSize; off++ {
		roff := (off + ih) % hashTabSize
		if i := int(t.buckets[shHash(addr, port, roff)]); t.available(i, loads) {
			return i
		}
	}
	return -1
}

const mhSeedLookup = 0x2545f4914f6cdd1d

// mhHash stands in for ip_vs_mh_hashkey: a fixed keyed mix of address, port
// and fallback offset.
func mhHash(key uint64, offset uint32) uint64 {
	return mix64(mix64(key^mhSeedLookup) + uint64(offset))
}

// pickMH is ip_vs_mh_schedule: the Maglev slot of the client address (and
// port with mh-port); with mh-fallback an unavailable real is skipped by
// rehashing with growing offsets, as ip_vs_mh_get_fallback.
func (t *Table) pickMH(f *Flow, loads []Load) int {
	key := uint64(be32(f.Client)) << 16
	if t.flags&FlagMHPort != 0 && hasPorts(f.Proto) {
		key |= uint64(f.ClientPort)
	}
	m := t.mhSize
	ih := uint32(mhHash(key, 0) % uint64(m))
	if i := int(t.buckets[ih]); t.available(i, loads) {
		return i
	}
	if t.flags&FlagMHFallback == 0 || !t.anyAvailable(loads) {
		return -1
	}
	for off := uint32(0); off < m; off++ {
		roff := off + ih
		if roff >= m {
			roff -= m
		}
		if i := int(t.buckets[mhHash(key, roff)%uint64(m)]); t.available(i, loads) {
			return i
		}
	}
	return -1
}

// pickTwoS is ip_vs_twos_schedule: two reals drawn at random in proportion to
// weight, the one with the lower overhead/weight wins (the first on ties).
func (t *Table) pickTwoS(loads []Load, ws *WorkerState) int {
	var total int64
	last := -1
	for i, w := range t.weights {
		if t.available(i, loads) {
			total += int64(w)
			last = i
		}
	}
	if last < 0 {
		return -1
	}
	total++ // draws are in [0, total], as the kernel's
	r1 := int64(ws.uniform(uint64(total), t.seed))
	r2 := int64(ws.uniform(uint64(total), t.seed))
	c1, c2 := -1, -1
	var w1, w2, oh1, oh2 int64
	for i, w := range t.weights {
		if !t.available(i, loads) {
			continue
		}
		r1 -= int64(w)
		r2 -= int64(w)
		if r1 <= 0 && c1 < 0 {
			c1, w1, oh1 = i, int64(w), loads[i].overhead()
		}
		if r2 <= 0 && c2 < 0 {
			c2, w2, oh2 = i, int64(w), loads[i].overhead()
		}
		if c1 >= 0 && c2 >= 0 {
			break
		}
	}
	if c1 < 0 { // loads changed between the two passes
		return last
	}
	if c2 >= 0 && w2*oh1 > w1*oh2 {
		return c2
	}
	return c1
}

// uniform returns a random number in [0, n) from the worker's stream, mixed
// with the table's seed.
func (ws *WorkerState) uniform(n, seed uint64) uint64 {
	ws.rng += 0x9e3779b97f4a7c15
	hi, _ := bits.Mul64(mix64(ws.rng^seed), n)
	return hi
}
