// Package forward is the uvs data plane and its control side.
//
// It owns the AF_PACKET sockets (TPACKET_V3 receive rings with PACKET_VNET_HDR, transmit by
// sendmmsg or a TX ring), the fanout steering program, frame parsing and rewriting (DR, NAT,
// IPIP), the worker loop, ARP for VIPs, the nftables shield that keeps the host's kernel away
// from VIP traffic, and egress resolution from the host's routes and neighbours over netlink.
//
// The per-packet code (ParseL3, ParseL4, the rewrites, the engine) is pure: bytes in, verdict
// and bytes out, zero allocations, no locks, no interface calls, no clocks; tests drive it
// without sockets. Workers share nothing but the read-only Snapshot (published through an
// atomic pointer and loaded once per ring block), per-real load counters and counters that
// each worker writes on its own cache line.
//
// It must not block the worker loop: a frame that cannot be handled is counted under a named
// drop reason and dropped. Workers never log; the Director logs summaries from counters.
package forward
