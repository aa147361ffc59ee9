package frametest

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Addresses the test frames use. MACA sends and MACB receives the frames Build makes; MACC
// and MACD are free for next hops and peers. Client, VIP and RealSrv are IPv4 addresses
// (documentation ranges, and one private real server).
var (
	MACA    = [6]byte{0x02, 0, 0, 0, 0, 0x0a}
	MACB    = [6]byte{0x02, 0, 0, 0, 0, 0x0b}
	MACC    = [6]byte{0x02, 0, 0, 0, 0, 0x0c}
	MACD    = [6]byte{0x02, 0, 0, 0, 0, 0x0d}
	Client  = [4]byte{198, 51, 100, 7}
	VIP     = [4]byte{203, 0, 113, 10}
	RealSrv = [4]byte{10, 1, 2, 3}
)

// Spec describes an IPv4 test frame for Build.
type Spec struct {
	VLAN     bool   // one 802.1Q tag carrying TCI
	TCI      uint16 // priority and VLAN id when VLAN is set
	Proto    layers.IPProtocol
	Src, Dst [4]byte
	SPort    uint16
	DPort    uint16
	TTL      uint8
	DF       bool
	TOS      uint8
	ID       uint16
	Flags    uint8 // TCP: FIN=0x01, SYN=0x02, PSH=0x08, ACK=0x10
	Options  bool  // one IPv4 option (router alert)
	Payload  []byte
	NoCsum   bool  // UDP checksum 0
	Partial  bool  // L4 checksum field holds the pseudo-header seed
	Pad      int   // trailing Ethernet padding
	ICMPType uint8 // ICMP type when Proto is ICMPv4
}

// DefaultSpec returns a DF frame from Client:40000 to VIP:80 with TTL 64, SYN|ACK flags for
// TCP, echo request for ICMP, and n bytes of patterned payload.
func DefaultSpec(proto layers.IPProtocol, n int) Spec {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return Spec{Proto: proto, Src: Client, Dst: VIP, SPort: 40000, DPort: 80, TTL: 64, DF: true, ID: 0x1234, Flags: 0x12, Payload: p, ICMPType: 8}
}

// Serialize serializes ls with gopacket, fixing lengths and computing checksums, and
// returns a copy the caller owns. Frames shorter than 60 bytes come back padded to 60.
func Serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// Build serializes s with gopacket. Checksums and lengths are computed by gopacket, then
// adjusted for NoCsum and Partial. gopacket's padding to 60 bytes is cut; s.Pad bytes of
// zeros are appended instead.
func Build(t testing.TB, s Spec) []byte {
	t.Helper()
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(MACA[:]), DstMAC: net.HardwareAddr(MACB[:]), EthernetType: layers.EthernetTypeIPv4}
	ls = append(ls, eth)
	if s.VLAN {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{Priority: uint8(s.TCI >> 13), VLANIdentifier: s.TCI & 0xfff, Type: layers.EthernetTypeIPv4})
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TOS: s.TOS, Id: s.ID, TTL: s.TTL, Protocol: s.Proto,
		SrcIP: net.IP(append([]byte(nil), s.Src[:]...)), DstIP: net.IP(append([]byte(nil), s.Dst[:]...))}
	if s.DF {
		ip.Flags = layers.IPv4DontFragment
	}
	if s.Options {
		ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
	}
	ls = append(ls, ip)
	switch s.Proto {
	case layers.IPProtocolTCP:
		ls = append(ls, TCP(s.SPort, s.DPort, s.Flags, ip))
	case layers.IPProtocolUDP:
		ls = append(ls, UDP(s.SPort, s.DPort, ip))
	case layers.IPProtocolICMPv4:
		ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(s.ICMPType, 0), Id: 7, Seq: 9})
	}
	ls = append(ls, gopacket.Payload(s.Payload))
	f := Serialize(t, ls...)
	l3 := 14
	if s.VLAN {
		l3 = 18
	}
	l4 := l3 + int(f[l3]&0xf)*4
	f = f[:l3+int(binary.BigEndian.Uint16(f[l3+2:]))] // drop gopacket's padding to 60
	switch {
	case s.Proto == layers.IPProtocolUDP && s.NoCsum:
		f[l4+6], f[l4+7] = 0, 0
	case s.Partial && s.Proto == layers.IPProtocolTCP:
		binary.BigEndian.PutUint16(f[l4+16:], RefPseudo(s.Src, s.Dst, 6, len(f)-l4))
	case s.Partial && s.Proto == layers.IPProtocolUDP:
		binary.BigEndian.PutUint16(f[l4+6:], RefPseudo(s.Src, s.Dst, 17, len(f)-l4))
	}
	return append(f, make([]byte, s.Pad)...)
}

// TCP returns the TCP header of the test frames (IPv4 and IPv6): seq 1000, ack 2000, window
// 512, the FIN, SYN, PSH and ACK bits of flags (as in Spec.Flags), checksummed over ip.
func TCP(sport, dport uint16, flags uint8, ip gopacket.NetworkLayer) *layers.TCP {
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1000, Ack: 2000, Window: 512,
		SYN: flags&0x02 != 0, ACK: flags&0x10 != 0, FIN: flags&0x01 != 0, PSH: flags&0x08 != 0}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	return tcp
}

// UDP returns the UDP header of the test frames, checksummed over ip.
func UDP(sport, dport uint16, ip gopacket.NetworkLayer) *layers.UDP {
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	_ = udp.SetNetworkLayerForChecksum(ip)
	return udp
}
