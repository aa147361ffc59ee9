// Package packet is the pure frame code of the data plane: parsing Ethernet, 802.1Q, ARP,
// IPv4, IPv6 with its extension-header chain, TCP, UDP, ICMP and ICMPv6 (ParseL3, ParseL4,
// ParseARP, ParseNS), the virtio_net_hdr that AF_PACKET hands over with each frame
// (VnetHdr), the rewrites of the forwarding methods (RewriteDst, RewriteSrc and their IPv6
// forms for NAT; EncapIPIP, EncapIP6 and Encap6in4 for TUN), checksums (full, incremental per
// RFC 1624, over the IPv4 or IPv6 pseudo-header, and the partial-checksum case), ICMP and
// ICMPv6 errors, ARP replies and neighbour advertisements, the MSS clamp, and the
// packet-format faults that drop a frame (Fault).
//
// Every function works on a buffer the caller owns, in place or into a caller's buffer,
// and checks every length and offset it reads from the wire before use.
//
// It must not depend on Linux or on any other package of uvs, allocate, make system calls,
// keep state between calls or use clocks: it is bytes in, verdict and bytes out, and every
// parser and rewriter here has a fuzz target.
package packet
