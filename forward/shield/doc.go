// Package shield keeps the director's own kernel away from the traffic uvs forwards: an
// nftables netdev table whose ingress chains drop frames to the VIPs and NAT replies from
// the real servers before the IP stack sees them (after AF_PACKET taps have had their copy),
// so the host neither answers them (RSTs, ICMP) nor forwards them. Shield installs it,
// Update replaces its sets, Close removes it.
//
// It must not touch any table but its own, nor sit in the packet path of uvs itself.
package shield
