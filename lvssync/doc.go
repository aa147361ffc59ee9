// Package lvssync speaks the IPVS connection synchronization protocol
// (net/netfilter/ipvs/ip_vs_sync.c): the master director sends connection
// records to 224.0.0.81, UDP port 8848, and backups install them, so that
// established connections survive a failover.
//
// It owns the wire format (version 1 messages sent and received, version 0
// received), IPVS's state and flag numbering, an optional HMAC block that
// authenticates a message and numbers it against replay, the bulk-copy
// request a returning backup sends, the UDP transport (multicast and unicast
// peers), and the Engine that ties them to a role (master, backup or both).
//
// It does not own the connection table. The data plane hands records to the
// Engine through a per-worker Ring (single producer, no locks, no
// allocation) and receives them through an Installer, which the caller
// implements on top of its tables. It must not block a worker: a full ring
// drops the record and counts it.
//
// The name is not "sync" so that it does not shadow the standard library.
package lvssync
