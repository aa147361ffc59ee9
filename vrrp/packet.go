package vrrp

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Wire constants (RFC 3768 §5, RFC 5798 §5).
const (
	Protocol   = 112  // Protocol is VRRP's IPv4 protocol number.
	TTL        = 255  // TTL is the only TTL a multicast advertisement may arrive with (RFC 5798 §5.1.1.3).
	TOS        = 0xc0 // TOS is IPTOS_PREC_INTERNETCONTROL, as keepalived sends.
	typeAdvert = 1    // The only VRRP packet type.

	headerLen   = 8  // Fixed VRRP header, both versions.
	authDataLen = 8  // v2 authentication data, always present (RFC 3768 §5.3.10).
	ipv4HdrLen  = 20 // An IPv4 header without options, as advertisements are sent.

	// MaxAddrs bounds the address count: the count field is one byte.
	MaxAddrs = 255

	// MaxPacket is the longest advertisement: IPv4 header with options, 255 addresses and
	// v2 authentication data. Receive buffers of this size never truncate one.
	MaxPacket = 60 + headerLen + 4*MaxAddrs + authDataLen
)

// Group is the VRRP IPv4 multicast group 224.0.0.18.
var Group = netip.AddrFrom4([4]byte{224, 0, 0, 18})

// Auth types of VRRPv2 (RFC 2338 §5.3.6; RFC 3768 keeps only 0, keepalived still speaks 1).
const (
	AuthNone = 0 // AuthNone is no authentication.
	AuthPass = 1 // AuthPass is a clear-text password in the packet: compatibility only, no security.
	AuthAH   = 2 // AuthAH is IPsec AH; not supported, such adverts are dropped.
)

// Checksum says how the VRRPv3 checksum covers the IPv4 pseudo-header.
type Checksum uint8

// Checksum variants. VRRPv2 always uses ChecksumPlain.
const (
	ChecksumInvalid Checksum = iota
	// ChecksumPseudo includes the IPv4 pseudo-header (RFC 5798 §5.2.8 as keepalived reads it):
	// the default sent for v3.
	ChecksumPseudo
	// ChecksumPlain covers the VRRP message only, as v2 (RFC 9568 and some vendors;
	// keepalived's v3_checksum_as_v2).
	ChecksumPlain
	// ChecksumPseudoGroup is the pseudo-header with 224.0.0.18 as destination even for
	// unicast: keepalived before 2.0.11 (its old_unicast_checksum). Accepted, never sent.
	ChecksumPseudoGroup
)

func (c Checksum) String() string {
	switch c {
	case ChecksumPseudo:
		return "pseudo-header"
	case ChecksumPlain:
		return "plain"
	case ChecksumPseudoGroup:
		return "pseudo-header-group"
	}
	return "invalid"
}

// Drop is why a received packet was not an acceptable advertisement.
type Drop uint8

// Drop reasons, each a counter.
const (
	DropNone        Drop = iota // Accepted.
	DropShort                   // Shorter than its headers, or the address count does not fit.
	DropIPHeader                // Not IPv4, bad IHL or total length, a fragment, or not protocol 112.
	DropTTL                     // TTL other than 255 (RFC 5798 §7.1: it may come from off-link).
	DropVersion                 // VRRP version other than the instance's.
	DropType                    // Packet type other than advertisement.
	DropChecksum                // Bad checksum, in every accepted variant.
	DropVRID                    // No instance with this virtual router ID on the interface.
	DropInterval                // VRRPv2 advertisement interval differs from ours (RFC 3768 §7.1).
	DropAuth                    // Auth type or password differ (v2).
	DropUnicastPeer             // Unicast source not in unicast_peer.
	DropOwn                     // Our own advertisement looped back.
	numDrops
)

var dropNames = [numDrops]string{"none", "short", "ip_header", "ttl", "version", "type", "checksum", "vrid", "interval", "auth", "unicast_peer", "own"}

func (d Drop) String() string {
	if d < numDrops {
		return dropNames[d]
	}
	return "invalid"
}

// DropReasons lists every drop reason but DropNone, in counter order.
func DropReasons() []Drop {
	out := make([]Drop, 0, numDrops-1)
	for d := DropShort; d < numDrops; d++ {
		out = append(out, d)
	}
	return out
}

// Advert is one advertisement. Addrs is owned by the caller: Decode appends into its
// capacity, so a reused Advert decodes without allocating.
type Advert struct {
	Version  uint8 // 2 or 3.
	VRID     uint8
	Priority uint8         // 0: the master is leaving; 255: the address owner.
	Interval time.Duration // v2: whole seconds (1..255); v3: centiseconds (1..4095).
	AuthType uint8         // v2 only.
	Auth     [authDataLen]byte
	Addrs    []netip.Addr
	Checksum Checksum // Decode: the variant that verified. Encode: the one to write (v3).
}

// IPv4 holds the fields of a received IPv4 header that VRRP checks.
type IPv4 struct {
	Src, Dst netip.Addr
	TTL      uint8
	TOS      uint8
}

// ParseIPv4 checks the IPv4 header of a packet read from a raw socket and returns the
// VRRP message after it. The message is a sub-slice of b.
func ParseIPv4(b []byte, h *IPv4) ([]byte, Drop) {
	if len(b) < ipv4HdrLen {
		return nil, DropShort
	}
	if b[0]>>4 != 4 {
		return nil, DropIPHeader
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < ipv4HdrLen || total < ihl || total > len(b) {
		return nil, DropIPHeader
	}
	// More fragments, or a fragment offset: never an advertisement.
	if binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 || b[9] != Protocol {
		return nil, DropIPHeader
	}
	h.TOS, h.TTL = b[1], b[8]
	h.Src = netip.AddrFrom4([4]byte(b[12:16]))
	h.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	return b[ihl:total], DropNone
}

// Decode parses and verifies the VRRP message m that came from src to dst. It checks the
// version is 2 or 3, the type, the length against the address count, and the checksum
// (for v3 every variant of Checksum). Which version and VRID are wanted is the caller's.
func Decode(m []byte, src, dst netip.Addr, a *Advert) Drop {
	if len(m) < headerLen {
		return DropShort
	}
	ver, typ := m[0]>>4, m[0]&0x0f
	if ver != 2 && ver != 3 {
		return DropVersion
	}
	if typ != typeAdvert {
		return DropType
	}
	// An IPv6 advert (RFC 5798 §5.2.9) carries 16-byte addresses. keepalived also sends
	// VRRPv2 over IPv6 (its default version): the v2 header, 16-byte addresses, no
	// authentication data, and the IPv6 pseudo-header checksum (keepalived-v2ipv6.pcap).
	v6 := src.Is6() && !src.Is4In6()
	if v6 != (dst.Is6() && !dst.Is4In6()) || !src.IsValid() || !dst.IsValid() {
		return DropIPHeader // the caller's addresses, not the wire: never one of each family
	}
	alen := 4
	if v6 {
		alen = 16
	}
	n := int(m[3])
	want := headerLen + alen*n
	if ver == 2 && !v6 {
		want += authDataLen
	}
	// Trailing bytes beyond the message are tolerated (padding); a short one is not.
	if len(m) < want {
		return DropShort
	}
	m = m[:want]
	a.Version, a.VRID, a.Priority = ver, m[1], m[2]
	if ver == 2 && v6 {
		if checksum(pseudo6(src, dst, len(m)), m) != 0 {
			return DropChecksum
		}
		a.Checksum = ChecksumPseudo
		a.AuthType, a.Auth = m[4], [authDataLen]byte{}
		a.Interval = time.Duration(m[5]) * time.Second
	} else if ver == 2 {
		if checksum(0, m) != 0 {
			return DropChecksum
		}
		a.Checksum = ChecksumPlain
		a.AuthType = m[4]
		a.Interval = time.Duration(m[5]) * time.Second
		copy(a.Auth[:], m[headerLen+4*n:])
	} else if v6 {
		// IPv6 has only the pseudo-header variant (RFC 5798 §5.2.8; keepalived lets the
		// kernel compute it, IPV6_CHECKSUM).
		if checksum(pseudo6(src, dst, len(m)), m) != 0 {
			return DropChecksum
		}
		a.Checksum = ChecksumPseudo
	} else {
		switch {
		case checksum(pseudo(src, dst, len(m)), m) == 0:
			a.Checksum = ChecksumPseudo
		case checksum(0, m) == 0:
			a.Checksum = ChecksumPlain
		case dst != Group && checksum(pseudo(src, Group, len(m)), m) == 0:
			a.Checksum = ChecksumPseudoGroup
		default:
			return DropChecksum
		}
	}
	if ver == 3 {
		a.AuthType, a.Auth = 0, [authDataLen]byte{}
		a.Interval = time.Duration(binary.BigEndian.Uint16(m[4:6])&0x0fff) * 10 * time.Millisecond
	}
	a.Addrs = a.Addrs[:0]
	for i := range n {
		o := headerLen + alen*i
		if v6 {
			a.Addrs = append(a.Addrs, netip.AddrFrom16([16]byte(m[o:o+16])))
		} else {
			a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte(m[o:o+4])))
		}
	}
	return DropNone
}

// AppendMessage appends the VRRP message for a, sent from src to dst, to b. a.Interval is
// rounded down to whole seconds (v2) or centiseconds (v3); a.Addrs must be of src's family
// and at most MaxAddrs are written (an IPv6 v2 message, keepalived's, has no auth data). For IPv4 v3, a.Checksum picks
// the variant (ChecksumPlain, else the pseudo-header); IPv6 always uses the pseudo-header.
func AppendMessage(b []byte, a *Advert, src, dst netip.Addr) []byte {
	start := len(b)
	n := min(len(a.Addrs), MaxAddrs)
	b = append(b, a.Version<<4|typeAdvert, a.VRID, a.Priority, uint8(n))
	if a.Version == 2 {
		b = append(b, a.AuthType, uint8(min(a.Interval/time.Second, 255)), 0, 0)
	} else {
		cs := min(a.Interval/(10*time.Millisecond), 0x0fff)
		b = binary.BigEndian.AppendUint16(b, uint16(cs))
		b = append(b, 0, 0)
	}
	v6 := src.Is6() && !src.Is4In6()
	for _, ad := range a.Addrs[:n] {
		if v6 {
			v := ad.As16()
			b = append(b, v[:]...)
			continue
		}
		v4 := ad.As4()
		b = append(b, v4[:]...)
	}
	if a.Version == 2 && !v6 {
		b = append(b, a.Auth[:]...)
	}
	m := b[start:]
	var seed uint32
	switch {
	case v6:
		seed = pseudo6(src, dst, len(m))
	case a.Version == 3 && a.Checksum != ChecksumPlain:
		seed = pseudo(src, dst, len(m))
	}
	binary.BigEndian.PutUint16(m[6:8], ^fold(sum(seed, m)))
	return b
}

// AppendPacket appends a whole IPv4 packet (header as keepalived builds it: TOS 0xc0, no
// DF, TTL 255, the given ID) carrying the message for a, for a socket with IP_HDRINCL.
func AppendPacket(b []byte, a *Advert, src, dst netip.Addr, id uint16) []byte {
	start := len(b)
	b = append(b, 0x45, TOS, 0, 0, byte(id>>8), byte(id), 0, 0, TTL, Protocol, 0, 0)
	s4, d4 := src.As4(), dst.As4()
	b = append(b, s4[:]...)
	b = append(b, d4[:]...)
	b = AppendMessage(b, a, src, dst)
	h := b[start:]
	binary.BigEndian.PutUint16(h[2:4], uint16(len(h)))
	binary.BigEndian.PutUint16(h[10:12], ^fold(sum(0, h[:ipv4HdrLen])))
	return b
}

// pseudo is the unfolded sum of the IPv4 pseudo-header for a VRRP message of n bytes.
func pseudo(src, dst netip.Addr, n int) uint32 {
	s, d := src.As4(), dst.As4()
	var acc uint32
	acc += uint32(s[0])<<8 | uint32(s[1])
	acc += uint32(s[2])<<8 | uint32(s[3])
	acc += uint32(d[0])<<8 | uint32(d[1])
	acc += uint32(d[2])<<8 | uint32(d[3])
	acc += Protocol
	acc += uint32(n)
	return acc
}

// sum adds b as big-endian 16-bit words to acc (RFC 1071), an odd byte padded with zero.
func sum(acc uint32, b []byte) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// checksum is the one's complement of the folded sum; 0 for a message that verifies.
func checksum(seed uint32, b []byte) uint16 { return ^fold(sum(seed, b)) }
