package packet

import "encoding/binary"

// ARP (RFC 826) for IPv4 over Ethernet.
const (
	arpLen        = 28 // htype, ptype, hlen, plen, op, sha, spa, tha, tpa
	arpHTypeEther = 1
	arpFrameLen   = EthHdrLen + arpLen

	// ARPRequest and ARPReply are the ARP opcodes (RFC 826).
	ARPRequest = 1
	ARPReply   = 2
)

// ARP holds the fields of an Ethernet/IPv4 ARP packet (RFC 826). It is a
// plain value owned by the caller.
type ARP struct {
	Op        uint16
	SenderMAC [6]byte
	SenderIP  [4]byte
	TargetMAC [6]byte
	TargetIP  [4]byte
}

// ParseARP reads the ARP packet of a frame that ParseL3 classified as
// ClassARP; frame starts at the Ethernet header and p.L3 locates the ARP
// header. It returns false unless the packet is a complete Ethernet/IPv4
// request or reply (hardware type 1, protocol 0x0800, lengths 6 and 4).
func ParseARP(frame []byte, p *Packet, a *ARP) bool {
	l3 := p.L3
	if l3 < 0 || l3 > len(frame) || len(frame)-l3 < arpLen {
		return false
	}
	b := frame[l3 : l3+arpLen]
	if binary.BigEndian.Uint16(b[0:2]) != arpHTypeEther ||
		binary.BigEndian.Uint16(b[2:4]) != EtherTypeIPv4 ||
		b[4] != 6 || b[5] != 4 {
		return false
	}
	op := binary.BigEndian.Uint16(b[6:8])
	if op != ARPRequest && op != ARPReply {
		return false
	}
	a.Op = op
	copy(a.SenderMAC[:], b[8:14])
	copy(a.SenderIP[:], b[14:18])
	copy(a.TargetMAC[:], b[18:24])
	copy(a.TargetIP[:], b[24:28])
	return true
}

// BuildARPReply writes into dst an untagged Ethernet frame answering req for
// req.TargetIP with mac: unicast to req.SenderMAC, zero-padded to the 60-byte
// Ethernet minimum. It returns the frame length, or 0 if dst is shorter
// than 60 bytes. Deciding whether req deserves an answer (a VIP we own, a
// request op) is the caller's job.
func BuildARPReply(dst []byte, req *ARP, mac [6]byte) int {
	a := ARP{
		Op:        ARPReply,
		SenderMAC: mac,
		SenderIP:  req.TargetIP,
		TargetMAC: req.SenderMAC,
		TargetIP:  req.SenderIP,
	}
	return BuildARP(dst, req.SenderMAC, &a)
}

// BuildGratuitousARP writes into dst a broadcast gratuitous ARP request
// announcing that ip is at mac (sender and target IP both ip, target MAC
// zero: the ARP Announcement of RFC 5227 section 3), zero-padded to 60 bytes.
// It returns the frame length, or 0 if dst is shorter than 60 bytes.
func BuildGratuitousARP(dst []byte, mac [6]byte, ip [4]byte) int {
	a := ARP{Op: ARPRequest, SenderMAC: mac, SenderIP: ip, TargetIP: ip}
	return BuildARP(dst, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, &a)
}

// BuildARP writes the Ethernet header (to ethDst from a.SenderMAC) and a,
// padded to MinFrameLen.
func BuildARP(dst []byte, ethDst [6]byte, a *ARP) int {
	if len(dst) < MinFrameLen {
		return 0
	}
	f := dst[:MinFrameLen]
	copy(f[0:6], ethDst[:])
	copy(f[6:12], a.SenderMAC[:])
	binary.BigEndian.PutUint16(f[12:14], etherTypeARP)
	b := f[EthHdrLen:arpFrameLen]
	binary.BigEndian.PutUint16(b[0:2], arpHTypeEther)
	binary.BigEndian.PutUint16(b[2:4], EtherTypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:8], a.Op)
	copy(b[8:14], a.SenderMAC[:])
	copy(b[14:18], a.SenderIP[:])
	copy(b[18:24], a.TargetMAC[:])
	copy(b[24:28], a.TargetIP[:])
	clear(f[arpFrameLen:])
	return MinFrameLen
}
