package lvssync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"net/netip"
	"sync/atomic"
)

// The auth block. When a key is set, every message uvs sends carries this
// block directly after the 8-byte version 1 header, before the first
// record; the header's size counts it, nr_conns does not:
//
//	 0               1               2               3
//	+---------------+---------------+-------------------------------+
//	|  0x80 marker  |  algorithm=1  |     ver_size = 32 (v0, 32)    |
//	+---------------+---------------+-------------------------------+
//	|                   sequence number (64 bits)                   |
//	+---------------------------------------------------------------+
//	|                       reserved, zero                          |
//	+---------------------------------------------------------------+
//	|     HMAC-SHA-256 of the whole message with this field zero,   |
//	|                 truncated to 128 bits (16 bytes)              |
//	+---------------------------------------------------------------+
//
// It is shaped like a record so that a kernel receiver fails cleanly: it
// reads ver_size 32 (in bounds, version 0), then type 0x80, which is
// neither IPv4 (0) nor IPv6 (bit 0), so ip_vs_proc_sync_conn returns -10
// and the kernel drops the whole buffer. A keyed message is therefore never
// half-installed by an IPVS peer; keyed sync is between uvs directors only.
// The sequence number starts at the sender's start time in nanoseconds and
// grows by one per message, so a restarted sender continues above its old
// numbers; receivers keep a 64-message window per sender (as IPsec's
// anti-replay window, RFC 4303 section 3.4.3).
const (
	AuthLen       = 32
	authMarker    = 0x80
	authAlgSHA256 = 1
	macOff        = 16
	macLen        = 16
)

// Signer fills the auth block of messages built with auth. It does not
// allocate per message. Not safe for concurrent use.
type Signer struct {
	mac hash.Hash
	seq *atomic.Uint64 // may be shared by the Signers of one sender: one number space
	sum [sha256.Size]byte
}

// NewSigner returns a Signer for key whose first sequence number is seq+1.
func NewSigner(key []byte, seq uint64) *Signer {
	s := &Signer{mac: hmac.New(sha256.New, key), seq: new(atomic.Uint64)}
	s.seq.Store(seq)
	return s
}

// newSharedSigner returns a Signer for key numbering from seq, which other Signers of the
// same sender share: a receiver keeps one replay window per sender address, so the live
// messages and a bulk copy's must not have two sequences.
func newSharedSigner(key []byte, seq *atomic.Uint64) *Signer {
	return &Signer{mac: hmac.New(sha256.New, key), seq: seq}
}

// Sign numbers msg and writes its MAC. msg must have an auth block at
// HeaderLen (NewBuilder with auth, or a bulk request) and its final size.
func (s *Signer) Sign(msg []byte) {
	a := msg[HeaderLen : HeaderLen+AuthLen]
	a[0], a[1] = authMarker, authAlgSHA256
	binary.BigEndian.PutUint16(a[2:4], AuthLen)
	binary.BigEndian.PutUint64(a[4:12], s.seq.Add(1))
	clear(a[12:AuthLen])
	s.mac.Reset()
	s.mac.Write(msg)
	copy(a[macOff:], s.mac.Sum(s.sum[:0])[:macLen])
}

// window is one sender's anti-replay state.
type window struct {
	top  uint64 // highest sequence number accepted
	seen uint64 // bit i: top-i was accepted
}

// maxSenders bounds the replay windows kept; only authenticated senders get one.
const maxSenders = 256

// Verifier checks auth blocks and sequence numbers. Not safe for
// concurrent use: the receive goroutine owns it.
type Verifier struct {
	mac     hash.Hash
	sum     [sha256.Size]byte
	saved   [macLen]byte
	windows map[netip.Addr]*window
}

// NewVerifier returns a Verifier for key.
func NewVerifier(key []byte) *Verifier {
	return &Verifier{mac: hmac.New(sha256.New, key), windows: map[netip.Addr]*window{}}
}

// Verify checks msg (header h) from sender. It returns ReasonUnkeyed for a
// message without an auth block, ReasonAuth for a wrong MAC or algorithm,
// and ReasonReplay for a sequence number seen before or older than the
// window. msg is modified while the MAC is computed and restored after.
func (v *Verifier) Verify(msg []byte, h Header, from netip.Addr) Reason {
	if h.Auth == 0 {
		return ReasonUnkeyed
	}
	a := msg[h.Auth : h.Auth+AuthLen]
	if a[1] != authAlgSHA256 || binary.BigEndian.Uint16(a[2:4]) != AuthLen {
		return ReasonAuth
	}
	copy(v.saved[:], a[macOff:])
	clear(a[macOff:])
	v.mac.Reset()
	v.mac.Write(msg)
	sum := v.mac.Sum(v.sum[:0])
	copy(a[macOff:], v.saved[:])
	if !hmac.Equal(sum[:macLen], v.saved[:]) {
		return ReasonAuth
	}
	return v.replay(from, binary.BigEndian.Uint64(a[4:12]))
}

func (v *Verifier) replay(from netip.Addr, seq uint64) Reason {
	w := v.windows[from]
	if w == nil {
		if len(v.windows) >= maxSenders {
			clear(v.windows) // only keyed senders get here; start over rather than grow
		}
		v.windows[from] = &window{top: seq, seen: 1}
		return ReasonNone
	}
	switch {
	case seq > w.top:
		d := seq - w.top
		if d >= 64 {
			w.seen = 1
		} else {
			w.seen = w.seen<<d | 1
		}
		w.top = seq
	case w.top-seq >= 64:
		return ReasonReplay
	default:
		bit := uint64(1) << (w.top - seq)
		if w.seen&bit != 0 {
			return ReasonReplay
		}
		w.seen |= bit
	}
	return ReasonNone
}
