// Package forward is the uvs data plane's control side: the Director, which the rest of
// uvs (cmd/uvs, control, bench) uses. It opens one worker per CPU with its sockets (AF_PACKET
// rings or AF_XDP, by director.backend) on every interface, builds and publishes snapshots
// when the config, a health check, a route or a neighbour changes, installs the kernel shield
// and the fanout steering program (afpacket) or the XDP program (afxdp), announces VIPs with
// gratuitous ARP and unsolicited neighbour advertisements, joins the IPv6 VIPs' solicited-node
// groups, saves and restores the connection tables, and logs
// summaries from the workers' counters. types.go names the snapshot and counter types the
// operator side reads.
//
// The work itself lives in subpackages:
//
//   - packet: pure frame code for IPv4 and IPv6 (parse, rewrite, checksums, ICMP and
//     ICMPv6, IPIP and the IPv6 tunnels, MSS, ARP, neighbour discovery);
//   - engine: the per-worker pipeline, the snapshot and its build, quorum and sorry-server
//     policy, the engine's drop reasons and counters;
//   - afpacket: the AF_PACKET backend (rings, TX, fanout, the worker loop);
//   - afxdp: the AF_XDP backend (UMEM, XSK sockets, the XDP program, the worker loop);
//   - steer: the flow-to-worker hash and its fanout BPF program;
//   - egress: egress resolution over netlink;
//   - shield: the kernel shield of the afpacket backend (a tcx program or an nftables table);
//   - privilege: capability dropping and namespace checks;
//   - statefile: the --state-file format.
//
// Workers share nothing but the read-only Snapshot (published through an atomic pointer and
// loaded once per ring block), per-real load counters and counters that each worker writes
// on its own cache line. The Director must not block a worker; workers never log.
package forward
