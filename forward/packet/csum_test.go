package packet

import (
	"math/rand/v2"
	"testing"

	"github.com/uvs-project/uvs/forward/internal/frametest"
)

func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 2000)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for n := 0; n < 70; n++ {
		for _, init := range []uint16{0, 1, 0xfffe, 0xffff} {
			want := Fold32(uint32(frametest.RefSum(b[:n])) + uint32(init))
			if n == 0 {
				want = init
			}
			if got := Checksum(b[:n], init); got != want {
				t.Fatalf("n=%d init=%#x: %#04x, want %#04x", n, init, got, want)
			}
		}
	}
	for _, v := range []byte{0x00, 0xff} {
		for i := range b {
			b[i] = v
		}
		if got, want := Checksum(b, 0), frametest.RefSum(b); got != want {
			t.Fatalf("all %#x: %#04x, want %#04x", v, got, want)
		}
	}
	// RFC 1071 section 3 example.
	if got := Checksum([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0); got != 0xddf2 {
		t.Fatalf("RFC 1071 example: %#04x", got)
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	for _, n := range []int{0, 8, 20, 65535} {
		if got, want := PseudoHeaderSum(frametest.Client, frametest.VIP, 6, uint16(n)), frametest.RefPseudo(frametest.Client, frametest.VIP, 6, n); got != want {
			t.Fatalf("n=%d: %#04x, want %#04x", n, got, want)
		}
	}
}

// TestIncrementalUpdate checks RFC 1624 updates against recomputation over
// random data, for finished checksums and for partial seeds.
func TestIncrementalUpdate(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 40)
	for i := 0; i < 20000; i++ {
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if i%7 == 0 {
			clear(b[:8]) // exercise the all-zero words
		}
		before := frametest.RefSum(b)
		hc := ^before
		var old, nw [4]byte
		copy(old[:], b[4:8])
		nw = [4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
		if i%5 == 0 {
			nw = [4]byte{}
		}
		oldW := uint16(b[10])<<8 | uint16(b[11])
		newW := uint16(r.Uint32())
		var d csumDelta
		d.add32(old, nw)
		d.add16(oldW, newW)
		copy(b[4:8], nw[:])
		b[10], b[11] = byte(newW>>8), byte(newW)
		after := frametest.RefSum(b)
		if got := d.applyChecksum(hc); !frametest.CsumEqual(got, ^after) {
			t.Fatalf("applyChecksum: %#04x, want %#04x", got, ^after)
		}
		if got := d.applySeed(before); !frametest.CsumEqual(got, after) {
			t.Fatalf("applySeed: %#04x, want %#04x", got, after)
		}
	}
}
