package afxdp

import (
	"encoding/binary"

	"github.com/uvs-project/uvs/forward/packet"
)

// IPv4 reassembly for the AF_XDP backend.
//
// The afpacket backend has the kernel reassemble fragments (PACKET_FANOUT_FLAG_DEFRAG) before a
// worker sees them. Frames an XDP program redirects never reach that code, so each afxdp worker
// reassembles the fragments it receives, bounded as the kernel is: defragSlots datagrams at a
// time per worker, each complete within defragTimeout of its first fragment, at most 65535
// bytes. The steering hash sends every fragment of a datagram (they share the addresses; ports
// are only in the first) to the same worker. Overlapping fragments drop the datagram, as the
// kernel does since Linux 4.19 (and RFC 5722 asks for IPv6). A reassembled datagram goes to
// the engine as one frame, which forwards it and fragments it again where the egress MTU is
// smaller (engine/frag.go). Fragments of a datagram that is dropped, evicted or never
// completed are counted as received frames dropped under "fragment".

// defragSlots bounds the datagrams a worker reassembles at once: 32 slots of 64 KiB are 2 MiB
// per worker, preallocated.
const defragSlots = 32

// defragTimeout is how long a datagram may take to arrive whole (ns). The kernel allows 30 s
// (ipfrag_time); a load balancer's clients retransmit long before that, and a short bound
// keeps a flood of lone fragments from holding the slots.
const defragTimeout = 2e9

// defragMax is the largest datagram (IPv4 total length).
const defragMax = 65535

// fragKey identifies a datagram (RFC 791: source, destination, protocol, identification).
type fragKey struct {
	src, dst [4]byte
	id       uint16
	proto    uint8
}

// fragSlot is one datagram under reassembly. The payload is kept at its offset in the slot's
// part of defrag.buf; have marks its 8-byte blocks.
type fragSlot struct {
	used     bool
	key      fragKey
	deadline int64
	frags    uint64 // fragments held, counted as drops if the datagram is given up
	hdr      [packet.EthHdrLen + 60]byte
	hdrLen   int // Ethernet + IPv4 header of the first fragment; 0 until it arrives
	total    int // payload length, known from the last fragment; -1 until then
	got      int // payload bytes held
	have     [defragMax/8/64 + 1]uint64
}

// defrag is one worker's reassembly state. Not safe for concurrent use.
type defrag struct {
	slots [defragSlots]fragSlot
	buf   []byte // defragSlots × 64 KiB
	out   []byte // virtio_net_hdr + Ethernet + IPv4 datagram handed to the engine
}

func newDefrag() *defrag {
	return &defrag{buf: make([]byte, defragSlots*(defragMax+1)), out: make([]byte, packet.VnetHdrLen+packet.EthHdrLen+defragMax)}
}

// fragResult is what add did with a frame.
type fragResult uint8

const (
	fragNot      fragResult = iota // not an IPv4 fragment (or not one defrag can judge): handle as is
	fragHeld                       // held until the datagram is whole
	fragComplete                   // the datagram is whole: the returned buffer holds it
)

// add takes a frame (Ethernet first). For the last missing fragment it returns the datagram,
// a virtio_net_hdr (zero) followed by the frame, valid until the next call. dropped is the
// number of fragments given up by this call (counted by the caller).
func (d *defrag) add(frame []byte, now int64) (res fragResult, out []byte, dropped uint64) {
	const l3 = packet.EthHdrLen
	if len(frame) < l3+20 || binary.BigEndian.Uint16(frame[12:]) != packet.EtherTypeIPv4 {
		return fragNot, nil, 0
	}
	ip := frame[l3:]
	fo := binary.BigEndian.Uint16(ip[6:])
	if fo&(packet.IPFlagMF|packet.IPFragOffMask) == 0 {
		return fragNot, nil, 0
	}
	ihl := int(ip[0]&0xf) * 4
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	// A fragment defrag cannot judge goes to the engine, which counts it under its reason
	// (version, header length, lengths, header checksum, options, or fragment).
	if ip[0]>>4 != 4 || ihl != 20 || tot < ihl || tot > len(ip) || packet.Checksum(ip[:ihl], 0) != 0xffff {
		return fragNot, nil, 0
	}
	payload := ip[ihl:tot]
	off := int(fo&packet.IPFragOffMask) * 8
	mf := fo&packet.IPFlagMF != 0
	key := fragKey{src: [4]byte(ip[12:16]), dst: [4]byte(ip[16:20]), id: binary.BigEndian.Uint16(ip[4:]), proto: ip[9]}
	if (mf && len(payload)%8 != 0) || ihl+off+len(payload) > defragMax || len(payload) == 0 {
		return fragNot, nil, 0 // the engine drops it under "fragment"
	}
	dropped = d.expire(now)
	i := d.find(key)
	if i < 0 {
		i, dropped = d.alloc(key, now, dropped)
	}
	s := &d.slots[i]
	first, last := off/8, (off+len(payload)+7)/8
	for b := first; b < last; b++ {
		if s.have[b/64]&(1<<(b%64)) != 0 {
			return fragHeld, nil, dropped + d.free(i) + 1 // overlap: the datagram and this fragment
		}
	}
	if s.total >= 0 && off+len(payload) > s.total || !mf && s.got > 0 && d.beyond(s, off+len(payload)) {
		return fragHeld, nil, dropped + d.free(i) + 1 // data past the end
	}
	base := i * (defragMax + 1)
	copy(d.buf[base+off:], payload)
	for b := first; b < last; b++ {
		s.have[b/64] |= 1 << (b % 64)
	}
	s.got += len(payload)
	s.frags++
	if off == 0 {
		s.hdrLen = l3 + ihl
		copy(s.hdr[:], frame[:l3+ihl])
	}
	if !mf {
		s.total = off + len(payload)
	}
	if s.hdrLen == 0 || s.total < 0 || s.got != s.total {
		return fragHeld, nil, dropped
	}
	n := packet.VnetHdrLen + s.hdrLen + s.total
	out = d.out[:n]
	clear(out[:packet.VnetHdrLen])
	copy(out[packet.VnetHdrLen:], s.hdr[:s.hdrLen])
	copy(out[packet.VnetHdrLen+s.hdrLen:], d.buf[base:base+s.total])
	h := out[packet.VnetHdrLen+l3 : packet.VnetHdrLen+s.hdrLen]
	binary.BigEndian.PutUint16(h[2:], uint16(s.hdrLen-l3+s.total))
	binary.BigEndian.PutUint16(h[6:], binary.BigEndian.Uint16(h[6:])&^(packet.IPFlagMF|packet.IPFragOffMask))
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:], ^packet.Checksum(h, 0))
	s.used = false
	return fragComplete, out, dropped
}

// beyond reports whether s holds data at or past end.
func (d *defrag) beyond(s *fragSlot, end int) bool {
	for b := (end + 7) / 8; b <= defragMax/8; b++ {
		if s.have[b/64]>>(b%64) == 0 {
			b |= 63 // nothing more in this word
			continue
		}
		if s.have[b/64]&(1<<(b%64)) != 0 {
			return true
		}
	}
	return false
}

func (d *defrag) find(k fragKey) int {
	for i := range d.slots {
		if d.slots[i].used && d.slots[i].key == k {
			return i
		}
	}
	return -1
}

// alloc takes a free slot for k, or gives up the oldest datagram for it.
func (d *defrag) alloc(k fragKey, now int64, dropped uint64) (int, uint64) {
	oldest := 0
	for i := range d.slots {
		if !d.slots[i].used {
			oldest = i
			break
		}
		if d.slots[i].deadline < d.slots[oldest].deadline {
			oldest = i
		}
	}
	dropped += d.free(oldest)
	s := &d.slots[oldest]
	*s = fragSlot{used: true, key: k, deadline: now + defragTimeout, total: -1}
	return oldest, dropped
}

// free gives up slot i and returns the number of fragments it held.
func (d *defrag) free(i int) uint64 {
	s := &d.slots[i]
	if !s.used {
		return 0
	}
	n := s.frags
	*s = fragSlot{}
	return n
}

// expire gives up the datagrams past their deadline and returns the fragments they held.
func (d *defrag) expire(now int64) uint64 {
	var n uint64
	for i := range d.slots {
		if d.slots[i].used && now > d.slots[i].deadline {
			n += d.free(i)
		}
	}
	return n
}

// dropAll gives up every datagram (the worker stops) and returns the fragments they held.
func (d *defrag) dropAll() uint64 {
	var n uint64
	for i := range d.slots {
		n += d.free(i)
	}
	return n
}
