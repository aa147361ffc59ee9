package engine

import "sync/atomic"

// Counting in the hot path. An atomic Store is an XCHG on amd64 (a locked instruction and a
// full fence), and a forwarded packet used to pay six of them. The engine now adds to plain
// per-worker fields and publishes the sums with one atomic store per changed counter at the
// end of each block (Publish, which Expire calls): readers see counts at most one block old.

// pending holds the engine's own counts not yet published to EngineStats. Only the worker's
// goroutine touches it.
type pending struct {
	rx, fwd, replies, ignored uint64
	faults                    [len(EngineStats{}.Faults)]uint64
	drops                     [numDrops]uint64
}

// maxDirty bounds the service and real counters one block may touch before the engine
// publishes early: a block of 64-byte frames can hold thousands of flows but a director has
// few services, and publishing is only a store per counter.
const maxDirty = 128

// in counts a request of n bytes on c (a service's or real's counters of this worker).
func (e *Engine) in(c *Counters, n uint64) {
	e.touch(c)
	c.pend.inPkts++
	c.pend.inBytes += n
}

// outCount counts a NAT reply of n bytes on c.
func (e *Engine) outCount(c *Counters, n uint64) {
	e.touch(c)
	c.pend.outPkts++
	c.pend.outBytes += n
}

// conn counts a new connection on c.
func (e *Engine) conn(c *Counters) {
	e.touch(c)
	c.pend.conns++
}

func (e *Engine) touch(c *Counters) {
	if c.pend.dirty {
		return
	}
	if len(e.dirty) == cap(e.dirty) {
		e.publishCounters()
	}
	c.pend.dirty = true
	e.dirty = append(e.dirty, c)
}

// add publishes n more on a counter this worker alone writes.
func add(c *atomic.Uint64, n uint64) {
	if n != 0 {
		c.Store(c.Load() + n)
	}
}

func (e *Engine) publishCounters() {
	for i, c := range e.dirty {
		p := &c.pend
		add(&c.Conns, p.conns)
		add(&c.InPkts, p.inPkts)
		add(&c.InBytes, p.inBytes)
		add(&c.OutPkts, p.outPkts)
		add(&c.OutBytes, p.outBytes)
		*p = counterPend{}
		e.dirty[i] = nil
	}
	e.dirty = e.dirty[:0]
}

// Ignore counts a frame the backend leaves to the kernel before the engine sees it (a
// bridge's flooded copy of someone else's frame): received and ignored.
func (e *Engine) Ignore() {
	e.pend.rx++
	e.pend.ignored++
}

// Publish makes every count of this block visible to readers of EngineStats and of the
// services' and reals' Counters. Expire calls it; a backend that does not expire on a block
// calls it itself.
func (e *Engine) Publish() {
	p, s := &e.pend, e.stats
	add(&s.RxFrames, p.rx)
	add(&s.Forwarded, p.fwd)
	add(&s.Replies, p.replies)
	add(&s.Ignored, p.ignored)
	for i, n := range p.faults {
		add(&s.Faults[i], n)
	}
	for i, n := range p.drops {
		add(&s.Drops[i], n)
	}
	*p = pending{}
	e.publishCounters()
}
