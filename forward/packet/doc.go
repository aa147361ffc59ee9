// Package packet is the pure frame code of the data plane: parsing Ethernet, 802.1Q, ARP,
// IPv4, TCP, UDP and ICMP (ParseL3, ParseL4, ParseARP), the virtio_net_hdr that AF_PACKET
// hands over with each frame (VnetHdr), the rewrites of the forwarding methods (RewriteDst,
// RewriteSrc for NAT, EncapIPIP for TUN), checksums (full, incremental per RFC 1624, and the
// partial-checksum case), ICMP errors, ARP replies, the MSS clamp, and the packet-format
// faults that drop a frame (Fault).
//
// Every function works on a buffer the caller owns, in place or into a caller's buffer,
// and checks every length and offset it reads from the wire before use.
//
// It must not depend on Linux or on any other package of uvs, allocate, make system calls,
// keep state between calls or use clocks: it is bytes in, verdict and bytes out, and every
// parser and rewriter here has a fuzz target.
package packet
