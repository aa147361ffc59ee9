package afxdp

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/uvs-project/uvs/forward/packet"
)

// fragments cuts an Ethernet+IPv4 frame into fragments of at most mtu bytes of IP packet.
func fragments(frame []byte, mtu int) [][]byte {
	ip := frame[14:]
	payload := ip[20:]
	per := (mtu - 20) &^ 7
	var out [][]byte
	for off := 0; off < len(payload); off += per {
		end := min(off+per, len(payload))
		f := make([]byte, 14+20+end-off)
		copy(f, frame[:14+20])
		copy(f[34:], payload[off:end])
		h := f[14:34]
		binary.BigEndian.PutUint16(h[2:], uint16(20+end-off))
		fo := uint16(off / 8)
		if end < len(payload) {
			fo |= packet.IPFlagMF
		}
		binary.BigEndian.PutUint16(h[6:], fo)
		h[10], h[11] = 0, 0
		binary.BigEndian.PutUint16(h[10:], ^packet.Checksum(h, 0))
		out = append(out, f)
	}
	return out
}

func bigUDP(n int, id uint16) []byte {
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	f := udpFrame(payload, false)
	binary.BigEndian.PutUint16(f[14+4:], id)
	h := f[14:34]
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:], ^packet.Checksum(h, 0))
	return f
}

func TestDefrag(t *testing.T) {
	orig := bigUDP(4000, 7)
	frags := fragments(orig, 1500)
	if len(frags) != 3 {
		t.Fatalf("%d fragments", len(frags))
	}
	tests := []struct {
		name        string
		order       []int
		wantDone    bool
		wantDropped uint64
	}{
		{"in order", []int{0, 1, 2}, true, 0},
		{"reversed", []int{2, 1, 0}, true, 0},
		{"last first", []int{2, 0, 1}, true, 0},
		{"duplicate overlaps", []int{0, 0}, false, 2},
		{"missing middle", []int{0, 2}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDefrag()
			var done []byte
			var dropped uint64
			for _, i := range tt.order {
				res, out, n := d.add(frags[i], 1)
				dropped += n
				if res == fragNot {
					t.Fatalf("fragment %d not taken", i)
				}
				if res == fragComplete {
					done = append([]byte(nil), out...)
				}
			}
			if dropped != tt.wantDropped {
				t.Errorf("dropped %d, want %d", dropped, tt.wantDropped)
			}
			if (done != nil) != tt.wantDone {
				t.Fatalf("complete %v, want %v", done != nil, tt.wantDone)
			}
			if done != nil && !bytes.Equal(done[packet.VnetHdrLen:], orig) {
				t.Errorf("reassembled datagram differs from the original")
			}
		})
	}
}

func TestDefragBounds(t *testing.T) {
	d := newDefrag()
	if res, _, _ := d.add(bigUDP(100, 1), 0); res != fragNot {
		t.Fatal("a whole datagram was taken")
	}
	// Expiry: a held fragment is given up after defragTimeout.
	f := fragments(bigUDP(4000, 2), 1500)
	if res, _, _ := d.add(f[0], 0); res != fragHeld {
		t.Fatal("not held")
	}
	if n := d.expire(defragTimeout + 1); n != 1 {
		t.Fatalf("expired %d fragments, want 1", n)
	}
	// More datagrams than slots: the oldest are given up, the count stays exact.
	var dropped uint64
	for id := 0; id < defragSlots+5; id++ {
		_, _, n := d.add(fragments(bigUDP(4000, uint16(100+id)), 1500)[0], int64(id))
		dropped += n
	}
	if dropped != 5 {
		t.Fatalf("evicted %d, want 5", dropped)
	}
	if n := d.dropAll(); n != defragSlots {
		t.Fatalf("dropAll %d, want %d", n, defragSlots)
	}
}

// FuzzDefrag: random fragments never panic, and whatever completes is a consistent IPv4
// datagram (valid header checksum, total length matching, no fragment bits).
func FuzzDefrag(f *testing.F) {
	for _, fr := range fragments(bigUDP(3000, 9), 1000) {
		f.Add(fr, int64(0))
	}
	d := newDefrag() // 2 MiB: reused, emptied by dropAll after each input
	f.Fuzz(func(t *testing.T, frame []byte, seed int64) {
		defer d.dropAll()
		if len(frame) > 70000 {
			return
		}
		rng := rand.New(rand.NewPCG(uint64(seed), 1))
		frames := [][]byte{frame}
		if len(frame) > 40 {
			frames = append(frames, fragments(frame, 576+rng.IntN(1000))...)
		}
		rng.Shuffle(len(frames), func(i, j int) { frames[i], frames[j] = frames[j], frames[i] })
		for _, fr := range frames {
			res, out, _ := d.add(fr, 0)
			if res != fragComplete {
				continue
			}
			ip := out[packet.VnetHdrLen+14:]
			if packet.Checksum(ip[:20], 0) != 0xffff || int(binary.BigEndian.Uint16(ip[2:])) != len(ip) ||
				binary.BigEndian.Uint16(ip[6:])&(packet.IPFlagMF|packet.IPFragOffMask) != 0 {
				t.Fatalf("bad reassembled datagram: % x", out)
			}
		}
	})
}
