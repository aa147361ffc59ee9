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
// zero, or NEEDS_CSUM with the L4 checksum's offsets for a partial TCP or UDP frame (IPv4, or
// IPv6 without extension headers).
func rxVnetHdr(hdr, frame []byte) {
	clear(hdr[:packet.VnetHdrLen])
	const l3 = packet.EthHdrLen
	if len(frame) < l3+20 {
		return
	}
	var (
		proto uint8
		l4    []byte
		ihl   int
	)
	ip := frame[l3:]
	switch binary.BigEndian.Uint16(frame[12:]) {
	case packet.EtherTypeIPv4:
		ihl = int(ip[0]&0xf) * 4
		tot := int(binary.BigEndian.Uint16(ip[2:]))
		if ip[0]>>4 != 4 || ihl < 20 || tot < ihl || tot > len(ip) || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			return
		}
		proto, l4 = ip[9], ip[ihl:tot]
	case packet.EtherTypeIPv6:
		// Only a transport header right after the fixed header: the stack's own TCP and UDP
		// (the senders that hand over partial checksums) put no extension header before it.
		ihl = 40
		if len(ip) < ihl || ip[0]>>4 != 6 {
			return
		}
		tot := ihl + int(binary.BigEndian.Uint16(ip[4:]))
		if tot > len(ip) {
			return
		}
		proto, l4 = ip[6], ip[ihl:tot]
	default:
		return
	}
	var off int
	switch proto {
	case packet.ProtoTCP:
		off = packet.TCPCsumOff
	case packet.ProtoUDP:
		off = packet.UDPCsumOff
	default:
		return
	}
	if len(l4) < off+2 {
		return
	}
	var sum uint16
	if ihl == 40 && ip[0]>>4 == 6 {
		sum = packet.PseudoHeaderSum6([16]byte(ip[8:24]), [16]byte(ip[24:40]), proto, uint32(len(l4)))
	} else {
		sum = packet.PseudoHeaderSum([4]byte(ip[12:16]), [4]byte(ip[16:20]), proto, uint16(len(l4)))
	}
	if binary.BigEndian.Uint16(l4[off:]) != sum {
		return
	}
	if packet.Checksum(l4, sum) == 0xffff {
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
	if len(frame) >= packet.EthHdrLen+40 && binary.BigEndian.Uint16(frame[12:]) == packet.EtherTypeIPv6 {
		if tot := packet.EthHdrLen + 40 + int(binary.BigEndian.Uint16(frame[packet.EthHdrLen+4:])); tot <= end {
			end = tot
		}
	} else if len(frame) >= packet.EthHdrLen+20 && binary.BigEndian.Uint16(frame[12:]) == packet.EtherTypeIPv4 {
		if tot := packet.EthHdrLen + int(binary.BigEndian.Uint16(frame[packet.EthHdrLen+2:])); tot <= end {
			end = tot
		}
	}
	if !packet.FinishChecksum(frame[:end], &vh) {
		return nil
	}
	return frame
}
