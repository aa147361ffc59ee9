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
// The state machine follows the Linux kernel's IPVS
// (net/netfilter/ipvs/ip_vs_proto_tcp.c, ip_vs_conn.c, ip_vs_core.c); the
// comments on each function cite the behaviour they reproduce.
package conntrack
