package packet

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/uvs-project/uvs/forward/internal/frametest"
)

// decodeARP decodes f with gopacket and returns its Ethernet and ARP layers.
func decodeARP(t *testing.T, f []byte) (*layers.Ethernet, *layers.ARP) {
	t.Helper()
	pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("decode: %v", el.Error())
	}
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	arp, _ := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
	if eth == nil || arp == nil {
		t.Fatalf("not ethernet/arp: %v", pkt)
	}
	return eth, arp
}

func TestBuildARPReply(t *testing.T) {
	// A request built by gopacket: who has VIP? tell client.
	req := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: frametest.MACA[:], SourceProtAddress: frametest.Client[:], DstHwAddress: make([]byte, 6), DstProtAddress: frametest.VIP[:]}
	buf := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: frametest.MACA[:], DstMAC: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EthernetType: layers.EthernetTypeARP}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{}, eth, req); err != nil {
		t.Fatal(err)
	}
	f := buf.Bytes()
	var p Packet
	var a ARP
	if ParseL3(f, &p) != ClassARP || !ParseARP(f, &p, &a) {
		t.Fatal("request not parsed")
	}
	if a != (ARP{Op: ARPRequest, SenderMAC: frametest.MACA, SenderIP: frametest.Client, TargetIP: frametest.VIP}) {
		t.Fatalf("parsed %+v", a)
	}
	out := make([]byte, 100)
	for i := range out {
		out[i] = 0xee // padding must be zeroed
	}
	n := BuildARPReply(out, &a, frametest.MACB)
	if n != 60 {
		t.Fatalf("n = %d", n)
	}
	e, r := decodeARP(t, out[:n])
	if string(e.DstMAC) != string(frametest.MACA[:]) || string(e.SrcMAC) != string(frametest.MACB[:]) || r.Operation != layers.ARPReply ||
		string(r.SourceHwAddress) != string(frametest.MACB[:]) || string(r.SourceProtAddress) != string(frametest.VIP[:]) ||
		string(r.DstHwAddress) != string(frametest.MACA[:]) || string(r.DstProtAddress) != string(frametest.Client[:]) ||
		r.AddrType != layers.LinkTypeEthernet || r.Protocol != layers.EthernetTypeIPv4 {
		t.Fatalf("reply %+v %+v", e, r)
	}
	if string(out[42:60]) != string(make([]byte, 18)) || out[60] != 0xee {
		t.Fatal("padding")
	}
	if BuildARPReply(out[:59], &a, frametest.MACB) != 0 {
		t.Fatal("short buffer accepted")
	}
}

func TestBuildGratuitousARP(t *testing.T) {
	out := make([]byte, 60)
	if n := BuildGratuitousARP(out, frametest.MACB, frametest.VIP); n != 60 {
		t.Fatalf("n = %d", n)
	}
	e, r := decodeARP(t, out)
	if string(e.DstMAC) != "\xff\xff\xff\xff\xff\xff" || string(e.SrcMAC) != string(frametest.MACB[:]) || r.Operation != layers.ARPRequest ||
		string(r.SourceProtAddress) != string(frametest.VIP[:]) || string(r.DstProtAddress) != string(frametest.VIP[:]) ||
		string(r.SourceHwAddress) != string(frametest.MACB[:]) || string(r.DstHwAddress) != string(make([]byte, 6)) {
		t.Fatalf("garp %+v %+v", e, r)
	}
	if BuildGratuitousARP(out[:59], frametest.MACB, frametest.VIP) != 0 {
		t.Fatal("short buffer accepted")
	}
}

func TestParseARPRejects(t *testing.T) {
	good := make([]byte, 60)
	BuildGratuitousARP(good, frametest.MACB, frametest.VIP)
	tests := []struct {
		name string
		at   int
		val  byte
		cut  int
	}{
		{"hardware type", 15, 6, 0},
		{"protocol type", 16, 0x86, 0},
		{"hardware length", 18, 8, 0},
		{"protocol length", 19, 16, 0},
		{"opcode 3", 21, 3, 0},
		{"opcode 0", 21, 0, 0},
		{"truncated", 0, 0xff, 41},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := append([]byte(nil), good...)
			f[tt.at] = tt.val
			if tt.cut > 0 {
				f = f[:tt.cut]
			}
			var p Packet
			var a ARP
			if ParseL3(f, &p) != ClassARP || ParseARP(f, &p, &a) {
				t.Fatal("accepted")
			}
		})
	}
	p := Packet{L3: -1}
	var a ARP
	if ParseARP(good, &p, &a) {
		t.Fatal("negative offset accepted")
	}
}
