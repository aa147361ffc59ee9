// Package engine is the per-worker forwarding pipeline and the snapshot it forwards by,
// independent of how frames are received and sent.
//
// An Engine takes one received frame at a time (Handle), decides from the published Snapshot
// and its own connection table (conntrack) what to do with it (DR, NAT, TUN, an ARP reply,
// an ICMP error or relay, an RST, a counted drop or "leave it to the kernel"), rewrites it in
// place or generates frames in its scratch arena, and queues them (Out) for the backend to
// send once per batch. Its counters (EngineStats) and its own drop reasons (Drop; what the
// packet checks refuse is packet.Fault) live here too.
//
// The control side builds snapshots with a Registry (Build, Commit): service and real server
// identities that survive reloads, health, quorum with hysteresis and the sorry server
// (policy.go), slow start and draining. Restore and SaveConns map the state file's entries
// (package statefile) to and from the tables.
//
// A variable holding a real server is called dest, as IPVS's struct ip_vs_dest: real is a
// builtin.
//
// It must not do I/O, make system calls, take locks, allocate per packet, log or read clocks
// in the per-packet path (the backend passes the time to Begin once per batch); it knows no
// socket, ring or kernel interface, so that any backend (AF_PACKET today, AF_XDP beside it)
// can drive it and tests drive it with frames in memory.
package engine
