// Package bgp owns the embedded BGP speaker (GoBGP, as a library) that announces a
// director's VIPs to the routers in front of it, so that several directors share the
// traffic by ECMP, and the policy that decides which VIPs to announce.
//
// It connects out only (no listener on port 179 unless bgp.passive is set), runs no gRPC
// server, rejects every route a neighbour offers and shuts a neighbour down that offers
// more than bgp.max_prefixes. Passwords are handed to the kernel (TCP MD5, RFC 2385) and
// never logged or returned.
//
// It must not touch the data plane: it reads the published snapshot and a liveness
// signal, and it announces or withdraws host routes (IPv4 /32s to IPv4 neighbours, IPv6
// /128s to IPv6 neighbours, each session carrying its own family); nothing else.
package bgp
