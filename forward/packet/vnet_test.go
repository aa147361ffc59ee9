package packet

import (
	"testing"

	"github.com/google/gopacket/layers"
)

func TestVnetHdrRoundTrip(t *testing.T) {
	b := []byte{0x01, 0x81, 0x36, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00, 0xee}
	var h VnetHdr
	h.Decode(b)
	want := VnetHdr{Flags: VnetNeedsCsum, GSOType: VnetGSOTCPv4 | VnetGSOECN, HdrLen: 54, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}
	if h != want {
		t.Fatalf("Decode: %+v", h)
	}
	out := make([]byte, 11)
	out[10] = 0xee
	h.Encode(out)
	if string(out) != string(b) {
		t.Fatalf("Encode: %x", out)
	}
	h.Decode(b[:9])
	if h != (VnetHdr{}) {
		t.Fatal("short Decode must zero")
	}
	short := make([]byte, 9)
	want.Encode(short)
	if string(short) != string(make([]byte, 9)) {
		t.Fatal("short Encode wrote")
	}
}

func TestVnetHdrCheck(t *testing.T) {
	f := build(t, defaultSpec(layers.IPProtocolTCP, 100))
	var tcp Packet
	ParseL3(f, &tcp)
	ParseL4(f, &tcp)
	u := build(t, defaultSpec(layers.IPProtocolUDP, 100))
	var udp Packet
	ParseL3(u, &udp)
	ParseL4(u, &udp)
	tests := []struct {
		name string
		h    VnetHdr
		p    *Packet
		want Fault
	}{
		{"none", VnetHdr{}, &tcp, FaultNone},
		{"data valid", VnetHdr{Flags: VnetDataValid}, &tcp, FaultNone},
		{"tcp partial", VnetHdr{Flags: VnetNeedsCsum, CsumStart: 34, CsumOffset: 16}, &tcp, FaultNone},
		{"udp partial", VnetHdr{Flags: VnetNeedsCsum, CsumStart: 34, CsumOffset: 6}, &udp, FaultNone},
		{"tcp wrong offset", VnetHdr{Flags: VnetNeedsCsum, CsumStart: 34, CsumOffset: 6}, &tcp, FaultBadVnetHdr},
		{"tcp wrong start", VnetHdr{Flags: VnetNeedsCsum, CsumStart: 30, CsumOffset: 20}, &tcp, FaultBadVnetHdr},
		{"beyond frame", VnetHdr{Flags: VnetNeedsCsum, CsumStart: 34, CsumOffset: 200}, &tcp, FaultBadVnetHdr},
		{"tso", VnetHdr{Flags: VnetNeedsCsum, GSOType: VnetGSOTCPv4, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}, &tcp, FaultNone},
		{"tso ecn", VnetHdr{Flags: VnetNeedsCsum, GSOType: VnetGSOTCPv4 | VnetGSOECN, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}, &tcp, FaultNone},
		{"gso without csum", VnetHdr{GSOType: VnetGSOTCPv4, GSOSize: 1448}, &tcp, FaultBadVnetHdr},
		{"gso size 0", VnetHdr{Flags: VnetNeedsCsum, GSOType: VnetGSOUDPL4, CsumStart: 34, CsumOffset: 6}, &udp, FaultBadVnetHdr},
		{"unknown gso", VnetHdr{Flags: VnetNeedsCsum, GSOType: 2, GSOSize: 1, CsumStart: 34, CsumOffset: 16}, &tcp, FaultBadVnetHdr},
		{"ecn alone", VnetHdr{GSOType: VnetGSOECN}, &tcp, FaultBadVnetHdr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := tt.h.Check(tt.p, len(f)); r != tt.want {
				t.Fatalf("Check = %v, want %v", r, tt.want)
			}
		})
	}
}

func TestVnetHdrShift(t *testing.T) {
	h := VnetHdr{Flags: VnetNeedsCsum, GSOType: VnetGSOTCPv4, HdrLen: 70, GSOSize: 1448, CsumStart: 38, CsumOffset: 16}
	h.Shift(-4)
	if h.CsumStart != 34 || h.HdrLen != 66 || h.CsumOffset != 16 {
		t.Fatalf("Shift(-4): %+v", h)
	}
	h = VnetHdr{Flags: VnetDataValid, CsumStart: 3}
	h.Shift(20)
	if h != (VnetHdr{Flags: VnetDataValid, CsumStart: 3}) {
		t.Fatalf("Shift without offloads changed %+v", h)
	}
}
