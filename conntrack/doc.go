// Package conntrack owns the director's connection table: the IPVS TCP state
// machine, per-state timeouts, incremental expiry and persistence templates.
//
// It is pure code. It does no I/O, starts no goroutines and reads no clock:
// time is a coarse millisecond tick (uint32, wrapping) passed in by the caller.
// A Table belongs to one worker goroutine and is not safe for concurrent use;
// the fanout steering sends both NAT directions of a flow, and every flow of a
// persistence client, to the same worker, so tables are never shared.
//
// The table is open addressing over pointer-free value entries preallocated at
// New, so the garbage collector never scans it and the hot path never
// allocates. It must not grow, log, or evict established connections.
//
// A worker's packet path, per batch (now read once):
//
//	t.Tick(now)
//	e := t.Lookup(&k)                  // or LookupReply for a NAT reply
//	if e != nil && conntrack.Reusable(e, flags) {
//		t.Delete(e)                    // and move e's real counters
//		e = nil
//	}
//	if e == nil && t.Creates(k.Proto, flags) {
//		// schedule (through the template for persistence), then
//		e, ok = t.Insert(&conntrack.Entry{Key: k, ...}, now) // !ok: count a drop
//	}
//	old, new := t.TCP(e, conntrack.DirInput, flags, now) // or t.Touch(e, now)
//	// IsActive(old) != IsActive(new): move the real's active/inactive count
//	...
//	n := t.Expire(now, budget, expired[:]) // once per batch; account for each
//
// The state machine follows the Linux kernel's IPVS
// (net/netfilter/ipvs/ip_vs_proto_tcp.c, ip_vs_conn.c, ip_vs_core.c); the
// comments on each function cite the behaviour they reproduce.
package conntrack
