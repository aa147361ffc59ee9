package packet

import "encoding/binary"

// VnetHdrLen is the size of struct virtio_net_hdr, which AF_PACKET places
// before every frame once PACKET_VNET_HDR is set (net/packet/af_packet.c).
const VnetHdrLen = 10

// Flags of struct virtio_net_hdr (include/uapi/linux/virtio_net.h).
const (
	// VnetNeedsCsum is VIRTIO_NET_HDR_F_NEEDS_CSUM: the frame is
	// CHECKSUM_PARTIAL and the L4 checksum field at CsumStart+CsumOffset
	// holds the un-inverted pseudo-header sum; the checksum over
	// [CsumStart, end) is still to be computed.
	VnetNeedsCsum = 1
	// VnetDataValid is VIRTIO_NET_HDR_F_DATA_VALID: the checksum was
	// verified (CHECKSUM_UNNECESSARY). Set by AF_PACKET on receive only.
	VnetDataValid = 2
)

// GSO types of struct virtio_net_hdr (include/uapi/linux/virtio_net.h).
const (
	VnetGSONone  = 0    // VIRTIO_NET_HDR_GSO_NONE
	VnetGSOTCPv4 = 1    // VIRTIO_NET_HDR_GSO_TCPV4
	VnetGSOUDP   = 3    // VIRTIO_NET_HDR_GSO_UDP (UFO)
	VnetGSOTCPv6 = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	VnetGSOUDPL4 = 5    // VIRTIO_NET_HDR_GSO_UDP_L4 (USO)
	VnetGSOECN   = 0x80 // VIRTIO_NET_HDR_GSO_ECN, or'ed into a TCP type
)

// VnetHdr mirrors struct virtio_net_hdr (include/uapi/linux/virtio_net.h).
// AF_PACKET encodes it in the legacy virtio byte order, which is
// little-endian on the little-endian hosts uvs supports (vio_le() in
// net/packet/af_packet.c). CsumStart is relative to the start of the
// Ethernet frame. It is a plain value owned by the caller.
type VnetHdr struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16
	GSOSize    uint16
	CsumStart  uint16
	CsumOffset uint16
}

// Decode reads h from the first VnetHdrLen bytes of b. A shorter b leaves h
// zeroed (no offload, no checksum work pending).
func (h *VnetHdr) Decode(b []byte) {
	if len(b) < VnetHdrLen {
		*h = VnetHdr{}
		return
	}
	_ = b[9]
	h.Flags = b[0]
	h.GSOType = b[1]
	h.HdrLen = binary.LittleEndian.Uint16(b[2:4])
	h.GSOSize = binary.LittleEndian.Uint16(b[4:6])
	h.CsumStart = binary.LittleEndian.Uint16(b[6:8])
	h.CsumOffset = binary.LittleEndian.Uint16(b[8:10])
}

// Encode writes h into the first VnetHdrLen bytes of b. It writes nothing if
// b is shorter.
func (h *VnetHdr) Encode(b []byte) {
	if len(b) < VnetHdrLen {
		return
	}
	_ = b[9]
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.LittleEndian.PutUint16(b[2:4], h.HdrLen)
	binary.LittleEndian.PutUint16(b[4:6], h.GSOSize)
	binary.LittleEndian.PutUint16(b[6:8], h.CsumStart)
	binary.LittleEndian.PutUint16(b[8:10], h.CsumOffset)
}

// Partial reports whether the frame is CHECKSUM_PARTIAL; pass it as the
// partial argument of RewriteDst and RewriteSrc.
func (h *VnetHdr) Partial() bool { return h.Flags&VnetNeedsCsum != 0 }

// Check validates h against a frame of frameLen bytes that ParseL4 accepted
// into p, and returns DropBadVnetHdr if it is inconsistent: checksum offsets
// outside the frame, a CHECKSUM_PARTIAL TCP or UDP frame whose checksum does
// not start at p.L4 with the protocol's checksum offset (16 for TCP, 6 for
// UDP; the rewrites update the seed there), an unknown GSO type (which the
// kernel's virtio_net_hdr_to_skb refuses too), or GSO without NEEDS_CSUM or
// with GSOSize 0 (the L4 checksum field then has no meaning uvs could
// update; GRO output is CHECKSUM_PARTIAL, see tcp_gro_complete). Whether GSO
// frames are forwarded at all is the caller's policy (DropGSO): they can
// be NAT-rewritten and sent back with the same header, but not IPIP
// encapsulated, since virtio_net_hdr has no IPIP GSO type.
func (h *VnetHdr) Check(p *Packet, frameLen int) Fault {
	if h.Flags&VnetNeedsCsum != 0 {
		start := int(h.CsumStart)
		if start+int(h.CsumOffset)+2 > frameLen {
			return FaultBadVnetHdr
		}
		switch p.Proto {
		case ProtoTCP:
			if start != p.L4 || h.CsumOffset != TCPCsumOff {
				return FaultBadVnetHdr
			}
		case ProtoUDP:
			if start != p.L4 || h.CsumOffset != UDPCsumOff {
				return FaultBadVnetHdr
			}
		}
	}
	switch h.GSOType &^ VnetGSOECN {
	case VnetGSONone:
		if h.GSOType != VnetGSONone {
			return FaultBadVnetHdr // ECN bit alone
		}
		return FaultNone
	case VnetGSOTCPv4, VnetGSOUDP, VnetGSOTCPv6, VnetGSOUDPL4:
		if h.Flags&VnetNeedsCsum == 0 || h.GSOSize == 0 {
			return FaultBadVnetHdr
		}
		return FaultNone
	}
	return FaultBadVnetHdr
}

// Shift adjusts h after delta bytes were added to (positive) or removed
// from (negative) the front of the frame, e.g. Shift(-4) after SetEthernet
// stripped a VLAN tag: CsumStart moves if VnetNeedsCsum is set, HdrLen
// (the length of all headers, used for GSO) if it is non-zero.
func (h *VnetHdr) Shift(delta int) {
	if h.Flags&VnetNeedsCsum != 0 {
		h.CsumStart = uint16(int(h.CsumStart) + delta)
	}
	if h.HdrLen != 0 {
		h.HdrLen = uint16(int(h.HdrLen) + delta)
	}
}
