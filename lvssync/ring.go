package lvssync

import (
	"sync/atomic"
)

// Ring is a single-producer, single-consumer queue of records from one
// worker to the Engine's sender. Put never blocks and never allocates: a
// full ring drops the record and counts it, as a worker must not wait for
// the sync sender (ip_vs_sync.c likewise drops when sync_qlen_max is
// reached). The producer is the worker goroutine that owns the ring; the
// consumer is the Engine's sender goroutine.
type Ring struct {
	_       [64]byte
	head    atomic.Uint64 // next slot to read; written by the consumer
	_       [56]byte
	tail    atomic.Uint64 // next slot to write; written by the producer
	_       [56]byte
	dropped atomic.Uint64 // records Put could not queue
	buf     []Conn
	mask    uint64
}

// NewRing returns a ring of size records, rounded up to a power of two (at least 16).
func NewRing(size int) *Ring {
	n := 16
	for n < size {
		n <<= 1
	}
	return &Ring{buf: make([]Conn, n), mask: uint64(n - 1)}
}

// Put queues a copy of c. It reports false, counting a drop, when the ring
// is full. c's PEData and PEName must not alias memory the producer reuses.
func (r *Ring) Put(c *Conn) bool {
	t := r.tail.Load()
	if t-r.head.Load() > r.mask {
		r.dropped.Add(1)
		return false
	}
	r.buf[t&r.mask] = *c
	r.tail.Store(t + 1)
	return true
}

// Dropped is the number of records Put refused.
func (r *Ring) Dropped() uint64 { return r.dropped.Load() }

// Len is the number of records queued.
func (r *Ring) Len() int { return int(r.tail.Load() - r.head.Load()) }

// Drain passes every queued record to fn, in order, and frees its slot. Only the
// consumer calls it.
func (r *Ring) Drain(fn func(*Conn)) int {
	h, t := r.head.Load(), r.tail.Load()
	for i := h; i != t; i++ {
		fn(&r.buf[i&r.mask])
	}
	r.head.Store(t)
	return int(t - h)
}
