package vrrp

import (
	"encoding/binary"
	"net/netip"
)

// VRRPv3 over IPv6 (RFC 5798 §5.1.2): adverts go to ff02::12 from the interface's link-local
// address with hop limit 255, carry 16-byte addresses, and their checksum covers the IPv6
// pseudo-header (RFC 8200 §8.1). keepalived sends them with traffic class 0xc0.

const (
	// HopLimit is the only hop limit an IPv6 advertisement may arrive with (RFC 5798 §5.1.2.3).
	HopLimit = 255
	// TrafficClass is the IPv6 traffic class keepalived sends adverts with (IPV6_TCLASS).
	TrafficClass = 0xc0

	ipv6HdrLen = 40 // The fixed IPv6 header; adverts carry no extension headers.

	// MaxMessage6 is the longest IPv6 advertisement message: 255 addresses of 16 bytes.
	MaxMessage6 = headerLen + 16*MaxAddrs
	// MaxPacket6 is the longest IPv6 advertisement with its IPv6 header.
	MaxPacket6 = ipv6HdrLen + MaxMessage6
)

// Group6 is the VRRP IPv6 multicast group ff02::12 (all VRRP routers, link scope).
var Group6 = netip.AddrFrom16([16]byte{0xff, 0x02, 15: 0x12})

// GroupFor returns the multicast group of adverts sent from src: Group6 for IPv6, else Group.
func GroupFor(src netip.Addr) netip.Addr {
	if src.Is6() && !src.Is4In6() {
		return Group6
	}
	return Group
}

// ParseIPv6 checks the IPv6 header of a whole packet (a capture, or a packet socket) and
// returns the VRRP message after it, a sub-slice of b. h.TTL is the hop limit and h.TOS the
// traffic class. A packet with extension headers is dropped: adverts are sent without.
// A raw AF_INET6 socket delivers the message without this header; the speaker reads the
// same fields from ancillary data instead.
func ParseIPv6(b []byte, h *IPv4) ([]byte, Drop) {
	if len(b) < ipv6HdrLen {
		return nil, DropShort
	}
	if b[0]>>4 != 6 {
		return nil, DropIPHeader
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	// A jumbogram (payload length 0) needs a hop-by-hop option, so it is an extension header
	// too: dropped like them.
	if plen == 0 || ipv6HdrLen+plen > len(b) || b[6] != Protocol {
		return nil, DropIPHeader
	}
	h.TOS = b[0]<<4 | b[1]>>4
	h.TTL = b[7]
	h.Src = netip.AddrFrom16([16]byte(b[8:24]))
	h.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	return b[ipv6HdrLen : ipv6HdrLen+plen], DropNone
}

// AppendPacket6 appends a whole IPv6 packet carrying the message for a (traffic class 0xc0,
// flow label 0, hop limit 255, as keepalived's), for tests and captures: the speaker sends
// the message alone on a raw socket and the kernel adds this header.
func AppendPacket6(b []byte, a *Advert, src, dst netip.Addr) []byte {
	start := len(b)
	b = append(b, 0x60|TrafficClass>>4, TrafficClass<<4&0xf0, 0, 0, 0, 0, Protocol, HopLimit)
	s, d := src.As16(), dst.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	b = AppendMessage(b, a, src, dst)
	binary.BigEndian.PutUint16(b[start+4:start+6], uint16(len(b)-start-ipv6HdrLen))
	return b
}

// pseudo6 is the unfolded sum of the IPv6 pseudo-header (RFC 8200 §8.1) for a VRRP message of
// n bytes.
func pseudo6(src, dst netip.Addr, n int) uint32 {
	s, d := src.As16(), dst.As16()
	acc := sum(0, s[:])
	acc = sum(acc, d[:])
	acc += uint32(n)>>16 + uint32(n)&0xffff
	acc += Protocol
	return acc
}
