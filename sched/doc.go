// Package sched implements the IPVS schedulers (rr, wrr, lc, wlc, lblc, lblcr,
// dh, sh, sed, nq, fo, ovf, mh, twos) as pure code, following the kernel's
// net/netfilter/ipvs/ip_vs_<name>.c.
//
// Build turns a Spec (scheduler, flags, real servers) into an immutable Table,
// off the packet path; the caller publishes it with an atomic.Pointer. Workers
// call Table.Pick for each new connection with the live per-real Load counters,
// their own WorkerState (lblc/lblcr caches, twos random source) and the current
// monotonic time in nanoseconds.
//
// The package owns scheduling only. It must not do I/O, start goroutines, read
// clocks, take locks or allocate in Pick. The only state shared between workers
// is the Load counters and the rr/wrr position, both updated with atomics.
package sched
