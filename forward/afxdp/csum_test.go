package afxdp

import (
	"encoding/binary"
	"testing"

	"github.com/uvs-project/uvs/forward/packet"
)

// udpFrame returns a UDP frame; partial leaves the checksum as a CHECKSUM_PARTIAL sender does.
func udpFrame(payload []byte, partial bool) []byte {
	b := make([]byte, 14+20+8+len(payload))
	binary.BigEndian.PutUint16(b[12:], packet.EtherTypeIPv4)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(payload)))
	ip[8] = 64
	ip[9] = packet.ProtoUDP
	copy(ip[12:], []byte{198, 19, 0, 1})
	copy(ip[16:], []byte{198, 18, 1, 100})
	binary.BigEndian.PutUint16(ip[10:], ^packet.Checksum(ip[:20], 0))
	u := ip[20:]
	binary.BigEndian.PutUint16(u[0:], 5000)
	binary.BigEndian.PutUint16(u[2:], 53)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(u[8:], payload)
	seed := packet.PseudoHeaderSum([4]byte(ip[12:16]), [4]byte(ip[16:20]), packet.ProtoUDP, uint16(8+len(payload)))
	if partial {
		binary.BigEndian.PutUint16(u[6:], seed)
	} else {
		binary.BigEndian.PutUint16(u[6:], ^packet.Checksum(u, seed))
	}
	return b
}

// udpFrame6 is udpFrame over IPv6 (no extension header).
func udpFrame6(payload []byte, partial bool) []byte {
	b := make([]byte, 14+40+8+len(payload))
	binary.BigEndian.PutUint16(b[12:], packet.EtherTypeIPv6)
	ip := b[14:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(8+len(payload)))
	ip[6] = packet.ProtoUDP
	ip[7] = 64
	copy(ip[8:], []byte{0x20, 0x01, 0, 2, 0, 0, 0, 0x64, 12: 0, 0, 0, 0x10})
	copy(ip[24:], []byte{0x20, 0x01, 0, 2, 0, 0, 0, 0x64, 12: 0, 0, 1, 0})
	u := ip[40:]
	binary.BigEndian.PutUint16(u[0:], 5000)
	binary.BigEndian.PutUint16(u[2:], 53)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(u[8:], payload)
	seed := packet.PseudoHeaderSum6([16]byte(ip[8:24]), [16]byte(ip[24:40]), packet.ProtoUDP, uint32(8+len(payload)))
	if partial {
		binary.BigEndian.PutUint16(u[6:], seed)
	} else {
		binary.BigEndian.PutUint16(u[6:], ^packet.Checksum(u, seed))
	}
	return b
}

func l4Valid(frame []byte) bool {
	if binary.BigEndian.Uint16(frame[12:]) == packet.EtherTypeIPv6 {
		ip := frame[14:]
		n := int(binary.BigEndian.Uint16(ip[4:]))
		seed := packet.PseudoHeaderSum6([16]byte(ip[8:24]), [16]byte(ip[24:40]), ip[6], uint32(n))
		return packet.Checksum(ip[40:40+n], seed) == 0xffff
	}
	ip := frame[14:]
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	seed := packet.PseudoHeaderSum([4]byte(ip[12:16]), [4]byte(ip[16:20]), ip[9], uint16(tot-20))
	return packet.Checksum(ip[20:tot], seed) == 0xffff
}

func TestRxVnetHdr(t *testing.T) {
	tests := []struct {
		name    string
		frame   []byte
		partial bool
	}{
		{"complete", udpFrame([]byte("hello"), false), false},
		{"partial", udpFrame([]byte("hello"), true), true},
		{"partial, empty payload", udpFrame(nil, true), true},
		{"partial, padded", append(udpFrame([]byte("x"), true), 0, 0, 0, 0), true},
		{"IPv6 complete", udpFrame6([]byte("hello"), false), false},
		{"IPv6 partial", udpFrame6([]byte("hello"), true), true},
		{"IPv6 partial, padded", append(udpFrame6([]byte("x"), true), 0, 0, 0, 0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := append(make([]byte, packet.VnetHdrLen), tt.frame...)
			rxVnetHdr(buf, buf[packet.VnetHdrLen:])
			var vh packet.VnetHdr
			vh.Decode(buf)
			if vh.Partial() != tt.partial {
				t.Fatalf("partial %v, want %v (%+v)", vh.Partial(), tt.partial, vh)
			}
			out := finishTX(buf)
			if out == nil || !l4Valid(out) {
				t.Fatalf("after finishTX: checksum invalid: % x", out)
			}
		})
	}
}

// FuzzRxVnetHdr: any frame, no panic; a frame found partial leaves finishTX with a valid
// checksum; a frame not found partial is left unchanged.
func FuzzRxVnetHdr(f *testing.F) {
	f.Add(udpFrame([]byte("hello"), true))
	f.Add(udpFrame([]byte("hello"), false))
	f.Add(udpFrame6([]byte("hello"), true))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		buf := append(make([]byte, packet.VnetHdrLen), frame...)
		rxVnetHdr(buf, buf[packet.VnetHdrLen:])
		var vh packet.VnetHdr
		vh.Decode(buf)
		before := string(buf[packet.VnetHdrLen:])
		out := finishTX(buf)
		if !vh.Partial() {
			if out == nil || string(out) != before {
				t.Fatal("a frame with a complete (or no) checksum was changed")
			}
			return
		}
		if out == nil || !l4Valid(out) {
			t.Fatalf("partial frame: checksum invalid after finishTX: % x", out)
		}
	})
}
