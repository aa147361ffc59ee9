package engine

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/forward/packet"
)

func TestFragmentReassembledDatagram(t *testing.T) {
	e := newTestEngine(t, engineConfig(t, "dr", 80), 1024)
	s := defaultSpec(layers.IPProtocolUDP, 4000)
	s.dport, s.df = 53, false
	in := withVnet(build(t, s), false)
	payload := append([]byte(nil), in[packet.VnetHdrLen+14+20:]...) // UDP header + data
	e.Reset()
	e.Handle(in, 0)
	if len(e.out) != 3 {
		t.Fatalf("%d frames out, want 3 fragments of a 4028-byte datagram at MTU 1500 (drops %v)", len(e.out), e.dropSummary())
	}
	var got []byte
	for i, o := range e.out {
		f := o.Frame[packet.VnetHdrLen:]
		h := f[14:34]
		if packet.Checksum(h, 0) != 0xffff {
			t.Fatalf("fragment %d: bad header checksum", i)
		}
		tot := int(binary.BigEndian.Uint16(h[2:]))
		fo := binary.BigEndian.Uint16(h[6:])
		if tot > 1500 || len(f) != 14+tot {
			t.Fatalf("fragment %d: length %d, frame %d", i, tot, len(f))
		}
		if int(fo&packet.IPFragOffMask)*8 != len(got) {
			t.Fatalf("fragment %d: offset %d, want %d", i, int(fo&packet.IPFragOffMask)*8, len(got))
		}
		if last := i == len(e.out)-1; (fo&packet.IPFlagMF != 0) == last {
			t.Fatalf("fragment %d: MF %v", i, fo&packet.IPFlagMF != 0)
		}
		got = append(got, f[34:]...)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("fragments do not reassemble to the datagram")
	}

	// With DF the datagram cannot be fragmented: counted, not sent, and the client is told
	// the MTU (fragmentation needed from the VIP).
	s.df = true
	e.Reset()
	in = withVnet(build(t, s), false)
	orig := append([]byte(nil), in[packet.VnetHdrLen:]...)
	e.Handle(in, 0)
	if len(e.out) != 1 || e.dropSummary()["too_big"] != 1 {
		t.Fatalf("DF datagram: out %d, drops %v", len(e.out), e.dropSummary())
	}
	checkFragNeeded(t, e.out[0].Frame, orig, 1500)
}
