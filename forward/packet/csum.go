package packet

import "encoding/binary"

// Internet checksum arithmetic (RFC 1071) and incremental updates (RFC 1624).
//
// Sums are kept "un-inverted": a value s in these helpers is the folded 16-bit
// ones'-complement sum, and the checksum field of a finished header holds ^s.
// A CHECKSUM_PARTIAL frame instead holds s of the pseudo-header in its L4
// checksum field (the kernel's ~csum_tcpudp_magic(saddr, daddr, len, proto, 0),
// see __tcp_v4_send_check in net/ipv4/tcp_ipv4.c and udp4_hwcsum).

// Checksum returns the folded ones'-complement sum of b added to initial,
// without the final complement (RFC 1071 section 4.1). Odd-length b is padded
// with a zero byte. It allocates nothing and reads only b.
func Checksum(b []byte, initial uint16) uint16 {
	// 32-bit big-endian words summed into 64 bits cannot overflow for any
	// b shorter than 2^34 bytes; folding modulo 0xffff is word-size neutral
	// because 2^16 = 1 (mod 0xffff).
	acc := uint64(initial)
	for len(b) >= 16 {
		acc += uint64(binary.BigEndian.Uint32(b[0:4]))
		acc += uint64(binary.BigEndian.Uint32(b[4:8]))
		acc += uint64(binary.BigEndian.Uint32(b[8:12]))
		acc += uint64(binary.BigEndian.Uint32(b[12:16]))
		b = b[16:]
	}
	for len(b) >= 4 {
		acc += uint64(binary.BigEndian.Uint32(b[0:4]))
		b = b[4:]
	}
	if len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b[0:2]))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return fold64(acc)
}

// fold64 folds a 64-bit accumulator into a 16-bit ones'-complement sum.
func fold64(acc uint64) uint16 {
	acc = (acc & 0xffffffff) + (acc >> 32)
	acc = (acc & 0xffffffff) + (acc >> 32)
	return Fold32(uint32(acc))
}

// Fold32 folds a 32-bit accumulator into a 16-bit ones'-complement sum.
func Fold32(s uint32) uint16 {
	s = (s & 0xffff) + (s >> 16)
	s = (s & 0xffff) + (s >> 16)
	return uint16(s)
}

// PseudoHeaderSum returns the folded, un-inverted sum of the IPv4 TCP/UDP
// pseudo-header (RFC 793 section 3.1, RFC 768): source, destination, zero,
// protocol and L4 length. This is the seed a CHECKSUM_PARTIAL frame carries in
// its L4 checksum field.
func PseudoHeaderSum(src, dst [4]byte, proto uint8, length uint16) uint16 {
	s := uint32(src[0])<<8 | uint32(src[1])
	s += uint32(src[2])<<8 | uint32(src[3])
	s += uint32(dst[0])<<8 | uint32(dst[1])
	s += uint32(dst[2])<<8 | uint32(dst[3])
	s += uint32(proto)
	s += uint32(length)
	return Fold32(s)
}

// csumDelta accumulates the RFC 1624 difference ~m + m' of changed 16-bit
// words. Several deltas are added together and applied once.
type csumDelta uint32

// add16 records a 16-bit word changing from old to new.
func (d *csumDelta) add16(old, new uint16) {
	*d += csumDelta(^old) + csumDelta(new)
}

// add32 records a 32-bit field (an IPv4 address) changing from old to new.
func (d *csumDelta) add32(old, new [4]byte) {
	d.add16(uint16(old[0])<<8|uint16(old[1]), uint16(new[0])<<8|uint16(new[1]))
	d.add16(uint16(old[2])<<8|uint16(old[3]), uint16(new[2])<<8|uint16(new[3]))
}

// applyChecksum returns the finished checksum field hc after the recorded
// changes: HC' = ~(~HC + ~m + m') (RFC 1624 eqn. 3, which fixes the -0
// result of the RFC 1141 form HC + m + ~m').
func (d csumDelta) applyChecksum(hc uint16) uint16 {
	return ^fold64(uint64(^hc) + uint64(d))
}

// applySeed returns a CHECKSUM_PARTIAL pseudo-header seed s after the recorded
// changes. The seed is an un-inverted sum, so the update is s' = s + ~m + m'.
func (d csumDelta) applySeed(s uint16) uint16 {
	return fold64(uint64(s) + uint64(d))
}
