package afxdp

import (
	"encoding/binary"

	"github.com/uvs-project/uvs/forward/packet"
)

// An XDP program sees frame bytes, not the skb's checksum state. A local sender on veth with
// TX checksum offload hands over a CHECKSUM_PARTIAL frame: its TCP or UDP checksum field holds
// only the pseudo-header sum, and the real checksum is left for a device that never computes
// it once the frame is redirected to an AF_XDP socket. rxVnetHdr recognises such a frame (the
// field equals the pseudo-header sum and the full sum does not verify) and describes it as
// AF_PACKET would, with VIRTIO_NET_HDR_F_NEEDS_CSUM, so the engine takes its partial-checksum
// path; the worker completes the checksum (packet.FinishChecksum) before transmitting. A
// frame with a complete checksum costs one 16-bit comparison; only a candidate is summed.

// rxVnetHdr writes into hdr (packet.VnetHdrLen bytes) the virtio_net_hdr that describes frame:
// zero, or NEEDS_CSUM with the L4 checksum's offsets for a partial IPv4 TCP or UDP frame.
func rxVnetHdr(hdr, frame []byte) {
	clear(hdr[:packet.VnetHdrLen])
	const l3 = packet.EthHdrLen
	if len(frame) < l3+20 || binary.BigEndian.Uint16(frame[12:]) != packet.EtherTypeIPv4 {
		return
	}
	ip := frame[l3:]
	ihl := int(ip[0]&0xf) * 4
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	if ip[0]>>4 != 4 || ihl < 20 || tot < ihl || tot > len(ip) || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
		return
	}
	var off int
	switch ip[9] {
	case packet.ProtoTCP:
		off = packet.TCPCsumOff
	case packet.ProtoUDP:
		off = packet.UDPCsumOff
	default:
		return
	}
	l4 := ip[ihl:tot]
	if len(l4) < off+2 {
		return
	}
	seed := packet.PseudoHeaderSum([4]byte(ip[12:16]), [4]byte(ip[16:20]), ip[9], uint16(len(l4)))
	if binary.BigEndian.Uint16(l4[off:]) != seed {
		return
	}
	if packet.Checksum(l4, seed) == 0xffff {
		return // a complete checksum that happens to equal the seed
	}
	vh := packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: uint16(l3 + ihl), CsumOffset: uint16(off)}
	vh.Encode(hdr)
}

// finishTX completes the checksum of an outgoing frame (virtio_net_hdr, then the frame) whose
// header asks for it, and returns the frame without the header. It returns nil for a frame
// that cannot be sent without offload (GSO, or offsets outside the frame).
func finishTX(buf []byte) []byte {
	if len(buf) < packet.VnetHdrLen {
		return nil
	}
	var vh packet.VnetHdr
	vh.Decode(buf)
	frame := buf[packet.VnetHdrLen:]
	if vh.GSOType != packet.VnetGSONone {
		return nil
	}
	if !vh.Partial() {
		return frame
	}
	// The sum must stop where the IP packet ends, before any Ethernet padding.
	end := len(frame)
	if len(frame) >= packet.EthHdrLen+20 && binary.BigEndian.Uint16(frame[12:]) == packet.EtherTypeIPv4 {
		if tot := packet.EthHdrLen + int(binary.BigEndian.Uint16(frame[packet.EthHdrLen+2:])); tot <= end {
			end = tot
		}
	}
	if !packet.FinishChecksum(frame[:end], &vh) {
		return nil
	}
	return frame
}
