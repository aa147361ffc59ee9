package engine

import (
	"encoding/binary"

	"github.com/uvs-project/uvs/forward/packet"
)

// Fragments.
//
// Policy: bounded reassembly by the kernel, then fragmentation on the way out. The fanout
// group sets PACKET_FANOUT_FLAG_DEFRAG, so the kernel reassembles IPv4 fragments (within its
// own bounds: net.ipv4.ipfrag_high_thresh bytes and ipfrag_time seconds per namespace) before
// the steering program and the worker see them. Every datagram is therefore scheduled whole,
// by its ports, on the worker that owns its flow; and the kernel's reassembly cannot be made
// to use unbounded memory. A reassembled datagram larger than the egress MTU leaves in
// fragments again (RFC 791). Fragments that reach a worker anyway (the kernel could not
// reassemble them) are dropped under "fragment".

// fragScratchNeed is the scratch a datagram of ipLen bytes needs as fragments of mtu bytes.
func fragScratchNeed(ipLen, ihl, mtu int) int {
	per := (mtu - ihl) &^ 7
	if per <= 0 {
		return 0
	}
	n := (ipLen - ihl + per - 1) / per
	return n * (packet.VnetHdrLen + packet.EthHdrLen + mtu)
}

// fragment sends the IPv4 packet in frame (Ethernet header first, p parsed) as fragments of at
// most mtu bytes out of txIf. It returns false if the packet may not be fragmented (DF) or
// the scratch arena is too small.
func (e *Engine) fragment(frame []byte, txIf int, dst, src [6]byte, mtu int) bool {
	p := &e.p
	l3 := p.L3
	end := l3 + p.IPLen
	if end > len(frame) || p.L4-l3 != packet.IPv4HdrLen {
		return false
	}
	hdr := frame[l3 : l3+packet.IPv4HdrLen]
	flags := binary.BigEndian.Uint16(hdr[6:])
	if flags&packet.IPFlagDF != 0 {
		return false
	}
	per := (mtu - packet.IPv4HdrLen) &^ 7
	if per <= 0 {
		return false
	}
	if e.used+fragScratchNeed(p.IPLen, packet.IPv4HdrLen, mtu) > len(e.scratch) {
		e.Drop(DropScratchFull)
		return true
	}
	base := int(flags&packet.IPFragOffMask) * 8
	more := flags&packet.IPFlagMF != 0
	data := frame[l3+packet.IPv4HdrLen : end]
	for off := 0; off < len(data); off += per {
		n := min(per, len(data)-off)
		b := e.alloc(packet.VnetHdrLen + packet.EthHdrLen + packet.IPv4HdrLen + n)
		clear(b[:packet.VnetHdrLen])
		f := b[packet.VnetHdrLen:]
		copy(f[0:6], dst[:])
		copy(f[6:12], src[:])
		binary.BigEndian.PutUint16(f[12:], packet.EtherTypeIPv4)
		h := f[packet.EthHdrLen : packet.EthHdrLen+packet.IPv4HdrLen]
		copy(h, hdr)
		binary.BigEndian.PutUint16(h[2:], uint16(packet.IPv4HdrLen+n))
		fo := uint16((base + off) / 8)
		if more || off+n < len(data) {
			fo |= packet.IPFlagMF
		}
		binary.BigEndian.PutUint16(h[6:], fo)
		h[10], h[11] = 0, 0
		binary.BigEndian.PutUint16(h[10:], ^packet.Checksum(h, 0))
		copy(f[packet.EthHdrLen+packet.IPv4HdrLen:], data[off:off+n])
		e.queue(txIf, b)
	}
	return true
}
