// Package afxdp is the AF_XDP backend of the director: an XDP program, built in pure Go with
// cilium/ebpf's asm package, classifies each frame at the driver (VIP traffic, NAT replies,
// ARP for VIPs, ICMP errors about connections) and redirects it through an XSKMAP to the
// AF_XDP socket of the worker that owns the client, hashing exactly as package steer's fanout
// program does; everything else passes to the stack untouched. Workers share one UMEM, read
// their RX rings in batches, hand each frame to the engine, and send the batch through their
// TX rings (the forwarded frame in place, generated frames copied into a free chunk).
//
// It owns the UMEM, the XSK sockets and rings, the XDP program, its maps and its bpf_link. It
// must not parse or rewrite packets (package engine does), and it holds no per-packet locks:
// see Pool for how workers share one fill and one completion ring.
package afxdp
