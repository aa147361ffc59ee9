package vrrp

import "net/netip"

// GARPLen is the length of a gratuitous ARP frame as BuildGARP writes it (Ethernet + ARP,
// unpadded: the device pads to the minimum, as keepalived's frames are).
const GARPLen = 14 + 28

// BuildGARP writes into dst (at least GARPLen bytes) the gratuitous ARP that keepalived sends
// for a VIP on becoming master: an ARP request from mac, broadcast, with sender and target
// protocol address both ip and target hardware address ff:ff:ff:ff:ff:ff.
func BuildGARP(dst []byte, mac [6]byte, ip netip.Addr) int {
	_ = dst[GARPLen-1]
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	a := ip.As4()
	copy(dst[0:6], bcast[:])
	copy(dst[6:12], mac[:])
	dst[12], dst[13] = 0x08, 0x06 // ETH_P_ARP
	dst[14], dst[15] = 0, 1       // ARPHRD_ETHER
	dst[16], dst[17] = 0x08, 0x00 // ETH_P_IP
	dst[18], dst[19] = 6, 4
	dst[20], dst[21] = 0, 1 // ARPOP_REQUEST
	copy(dst[22:28], mac[:])
	copy(dst[28:32], a[:])
	copy(dst[32:38], bcast[:])
	copy(dst[38:42], a[:])
	return GARPLen
}
