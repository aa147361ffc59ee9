package control

import (
	"net/netip"
	"strconv"
)

// IPv6 in ipvsadm's layouts (ipvsadm 1.26, print_service_entry and addrport_to_anyname): an
// address and port are "[addr]:port" (netip.AddrPort's form); an IPv6 service name is not
// cut at 33 bytes nor an IPv6 real's at 28, as IPv4 ones are, so the columns after a long
// address move right; a persistence netmask is the prefix length ("mask 64", "-M 64"),
// printed unless it is 128, where IPv4's is dotted and printed unless 255.255.255.255.

// persistMask returns the persistence netmask of a service on vip as uvs list and ipvsadm
// print it: dotted for IPv4, the prefix length for IPv6.
func persistMask(vip netip.Addr, bits int) string {
	if vip.Is6() {
		return strconv.Itoa(bits)
	}
	return maskString(bits)
}

// fullMask returns the netmask text of vip's whole address, which ipvsadm does not print.
func fullMask(vip netip.Addr) string {
	if vip.Is6() {
		return "128"
	}
	return "255.255.255.255"
}

// fullBits returns the prefix length of vip's whole address: 32 or 128.
func fullBits(vip netip.Addr) int {
	if vip.Is6() {
		return 128
	}
	return 32
}
