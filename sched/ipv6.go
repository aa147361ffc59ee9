package sched

import "encoding/binary"

// IPv6 helpers for the schedulers and persistence. The schedulers hash and compare 32-bit
// client and destination addresses; an IPv6 address enters them folded to 32 bits by XOR of
// its four words, as IPVS folds it for sh and dh (ip_vs_sh_hashkey, ip_vs_dh_hashkey), so one
// client keeps its real server whatever the family. Persistence masks the full address first.

// MaskAddr6 returns a with all but its first bits bits cleared: the client part of an IPv6
// persistence template key (persistence_netmask as a prefix length). bits is clamped to
// [0, 128].
func MaskAddr6(a [16]byte, bits int) [16]byte {
	bits = min(max(bits, 0), 128)
	var out [16]byte
	full := bits / 8
	copy(out[:full], a[:full])
	if rem := bits % 8; rem != 0 {
		out[full] = a[full] & byte(0xff<<(8-rem))
	}
	return out
}

// Fold6 folds an IPv6 address to 32 bits by XOR of its words (big-endian), IPVS's addr_fold,
// returned in the [4]byte form Flow.Client and Flow.VIP take.
func Fold6(a [16]byte) [4]byte {
	v := binary.BigEndian.Uint32(a[0:]) ^ binary.BigEndian.Uint32(a[4:]) ^
		binary.BigEndian.Uint32(a[8:]) ^ binary.BigEndian.Uint32(a[12:])
	return [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}
