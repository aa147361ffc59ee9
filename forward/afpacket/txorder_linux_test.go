//go:build linux

package afpacket

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/forward/internal/netnstest"
	"github.com/uvs-project/uvs/forward/packet"
)

// TestIntegrationTXBatchOrder pushes batches through one TX ring queue and checks, at the
// peer, that every frame arrived once and in order: a full V3 block of 64-byte frames (far
// more than the ring's slots) in one flush, with no frame dropped for want of a slot; and
// small frames with frames too large for a slot (which leave through the sendmmsg socket)
// interleaved.
func TestIntegrationTXBatchOrder(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	const etype = 0x88b5     // IEEE local experimental EtherType
	full := (256 << 10) / 64 // the engine's frame list for a default 256 KiB block
	for _, tt := range []struct {
		name  string
		n     int
		size  func(i int) int
		batch bool // add everything, then flush once
	}{
		{"full block of 64-byte frames", full, func(int) int { return 64 }, true},
		{"large frames between small ones", 600, func(i int) int {
			if i%50 == 25 {
				return 6000 // over the 4064 bytes a slot holds
			}
			return 64
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := netnstest.NSPrefix(t)
			a, b := netnstest.NewNS(t, p+"-a"), netnstest.NewNS(t, p+"-b")
			netnstest.VethPair(t, a, "a0", b, "b0")
			netnstest.Sh(t, "ip", "-n", a, "link", "set", "a0", "mtu", "9000")
			netnstest.Sh(t, "ip", "-n", b, "link", "set", "b0", "mtu", "9000")
			tap := netnstest.ListenAll(t, b, "b0", etype)
			rc, err := tap.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			_ = rc.Control(func(fd uintptr) {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
			})
			var q *txQueue
			netnstest.MustInNS(t, a, func() error {
				ifi, err := net.InterfaceByName("a0")
				if err != nil {
					return err
				}
				q, err = openTX(ifi.Index, true)
				return err
			})
			defer q.close()
			frames := make([][]byte, tt.n)
			for i := range frames {
				f := make([]byte, packet.VnetHdrLen+tt.size(i))
				e := f[packet.VnetHdrLen:]
				copy(e[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
				copy(e[6:12], []byte{0x02, 0, 0, 0, 0, 1})
				binary.BigEndian.PutUint16(e[12:], etype)
				binary.BigEndian.PutUint32(e[14:], uint32(i))
				frames[i] = f
			}
			// A fresh veth may need a moment for carrier: wait until a probe passes.
			probe := append([]byte(nil), frames[0]...)
			binary.BigEndian.PutUint32(probe[packet.VnetHdrLen+14:], 0xffffffff)
			up := false
			for try := 0; try < 20 && !up; try++ {
				q.add(probe)
				q.flush()
				up = netnstest.AwaitFrame(tap, 200*time.Millisecond, func(f []byte) bool {
					return len(f) >= 18 && binary.BigEndian.Uint32(f[14:]) == 0xffffffff
				})
			}
			if !up {
				t.Fatal("the veth does not carry frames")
			}
			for netnstest.AwaitFrame(tap, 50*time.Millisecond, func([]byte) bool { return false }) {
			}
			before, bigBefore := q.c, q.big.c
			got := make(chan []uint32, 1)
			go func() {
				var seq []uint32
				buf := make([]byte, 65536)
				for len(seq) < tt.n {
					_ = tap.SetReadDeadline(time.Now().Add(2 * time.Second))
					m, _, err := tap.ReadFrom(buf)
					if err != nil {
						break
					}
					if m >= 18 {
						if v := binary.BigEndian.Uint32(buf[14:]); v != 0xffffffff {
							seq = append(seq, v)
						}
					}
				}
				got <- seq
			}()
			for _, f := range frames {
				if !q.add(f) {
					t.Fatalf("add dropped a frame: %+v", q.c)
				}
			}
			q.flush()
			seq := <-got
			sent := q.c.Sent + q.big.c.Sent - before.Sent - bigBefore.Sent
			if q.c.Full != before.Full || q.c.Stuck != before.Stuck {
				t.Errorf("frames dropped for want of a slot: %+v", q.c)
			}
			if sent != uint64(tt.n) {
				t.Errorf("kernel accepted %d of %d frames: %+v, big %+v", sent, tt.n, q.c, q.big.c)
			}
			if len(seq) != tt.n {
				t.Fatalf("peer received %d of %d frames", len(seq), tt.n)
			}
			for i, v := range seq {
				if v != uint32(i) {
					t.Fatalf("frame %d arrived as number %d: out of order", v, i)
				}
			}
		})
	}
}
