package bench

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// IPv6 generator frames (GenConfig.Dst an IPv6 address): the same flows as IPv4's, from
// genSrcBase6 + i%genSrcAddrs (the IPv6 twin of genSrcBase's space, lab6.go). There is no
// header checksum; the L4 checksum covers the IPv6 pseudo-header (RFC 8200 section 8.1).

// genSrcBase6 is the twin of genSrcBase: flow sources differ in the last 32 bits.
var genSrcBase6, _ = Six(genSrcBase)

// Smallest frames, FCS included: an IPv6 header is 20 bytes longer than IPv4's, so 64-byte
// frames cannot carry IPv6 (14 + 40 + 8 + 4 = 66 for UDP, 78 for TCP).
const (
	MinFrameUDP6 = 14 + 40 + 8 + 4
	MinFrameTCP6 = 14 + 40 + 20 + 4
)

// MinFrameSize returns the smallest frame size (FCS included) the generator builds for
// proto to dst: 64 for IPv4, MinFrameUDP6 or MinFrameTCP6 for IPv6.
func MinFrameSize(dst netip.Addr, proto GenProto) int {
	switch {
	case !dst.Is6():
		return 64
	case proto == GenUDP:
		return MinFrameUDP6
	}
	return MinFrameTCP6
}

// buildFrame6 is buildFrame for an IPv6 destination.
func buildFrame6(cfg GenConfig) frameTemplate {
	n := cfg.Size - 4
	b := make([]byte, n)
	copy(b[0:6], cfg.DstMAC)
	copy(b[6:12], cfg.SrcMAC)
	binary.BigEndian.PutUint16(b[12:], unix.ETH_P_IPV6)
	ip := b[14:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(n-54))
	ip[7] = 64
	src := genSrcBase6.As16()
	copy(ip[8:20], src[:12]) // the last 4 bytes are the flow's
	dst := cfg.Dst.Addr().As16()
	copy(ip[24:40], dst[:])
	l4 := 54
	l4len := n - l4
	t := frameTemplate{b: b, l4: l4, v6: true}
	ip[6], t.csumOff = writeL4(b[l4:], cfg.Proto, cfg.Dst.Port(), l4len)
	t.csumOff += l4
	// Pseudo-header: source (its fixed 12 bytes here), destination, length, next header.
	t.l4Sum = sum16(src[:12]) + sum16(dst[:]) + uint32(l4len) + uint32(ip[6]) + sum16(b[l4:])
	return t
}

// setFlow6 is setFlow for a frame of buildFrame6.
func (t *frameTemplate) setFlow6(f []byte, i int) {
	v := uint32(i % genSrcAddrs)
	port := uint16(genSrcPort0 + (i/genSrcAddrs)%genSrcPorts)
	binary.BigEndian.PutUint32(f[34:], v) // source bytes 12..15
	binary.BigEndian.PutUint16(f[t.l4:], port)
	c := ^fold(t.l4Sum + v>>16 + v&0xffff + uint32(port))
	if c == 0 && f[20] == unix.IPPROTO_UDP {
		c = 0xffff // RFC 8200 section 8.1: a UDP checksum is never sent as zero over IPv6
	}
	binary.BigEndian.PutUint16(f[t.csumOff:], c)
}
