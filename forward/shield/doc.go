// Package shield keeps the director's own kernel away from the traffic uvs forwards: an eBPF
// program on the tcx ingress hook, or an nftables netdev table whose ingress chains do the
// same, drops frames to the VIPs and NAT replies from the real servers, IPv4 and IPv6,
// before the IP stack sees them (after AF_PACKET taps have had their copy), so the host
// neither answers them (RSTs, ICMP) nor forwards them. NewShield installs it, Update and
// UpdateAddrs replace its sets (or maps), Close removes it.
//
// It must not touch any table but its own, nor sit in the packet path of uvs itself.
package shield
