//go:build linux

package afpacket

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/uvs-project/uvs/forward/internal/netnstest"
	"github.com/uvs-project/uvs/forward/packet"
)

// TestIntegrationTXQueueRecovers sends through both TX paths, takes the link down (every
// transmit fails), and brings it back: failures are counted, ring slots the kernel could not
// send are skipped rather than left to stall the ring, and traffic flows again after.
func TestIntegrationTXQueueRecovers(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	for _, ring := range []bool{true, false} {
		t.Run(fmt.Sprintf("ring=%v", ring), func(t *testing.T) {
			p := netnstest.NSPrefix(t)
			a, b := netnstest.NewNS(t, p+"-a"), netnstest.NewNS(t, p+"-b")
			netnstest.VethPair(t, a, "a0", b, "b0")
			tap := netnstest.ListenAll(t, b, "b0", 0x88b5) // IEEE local experimental EtherType
			var q *txQueue
			var ifindex int
			netnstest.MustInNS(t, a, func() error {
				ifi, err := net.InterfaceByName("a0")
				if err != nil {
					return err
				}
				ifindex = ifi.Index
				q, err = openTX(ifi.Index, ring)
				return err
			})
			defer q.close()
			frames := make([][]byte, 3*txSlots)
			for i := range frames {
				f := make([]byte, packet.VnetHdrLen+64)
				e := f[packet.VnetHdrLen:]
				copy(e[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
				copy(e[6:12], []byte{0x02, 0, 0, 0, 0, 1})
				binary.BigEndian.PutUint16(e[12:], 0x88b5)
				binary.BigEndian.PutUint32(e[14:], uint32(i))
				frames[i] = f
			}
			send := func(from, to int) {
				for i := from; i < to; i++ {
					q.add(frames[i])
					if (i+1)%64 == 0 {
						q.flush()
					}
				}
				q.flush()
			}
			seen := func(i int) bool {
				return netnstest.AwaitFrame(tap, 2*time.Second, func(f []byte) bool {
					return len(f) >= 18 && binary.BigEndian.Uint32(f[14:]) == uint32(i)
				})
			}
			// A fresh veth may need a moment for carrier: retry the first batch.
			up := false
			for try := 0; try < 10 && !up; try++ {
				send(0, 64)
				up = seen(63)
			}
			if !up {
				t.Fatalf("frames sent while up did not arrive: %+v", q.c)
			}
			netnstest.Sh(t, "ip", "-n", a, "link", "set", "a0", "down")
			send(64, 64+2*txSlots) // more than the ring holds
			if q.c.Error+q.c.Busy+q.c.Full+q.c.Stuck == 0 && q.c.Sent >= uint64(64+2*txSlots) {
				t.Fatalf("no failure counted while the link was down: %+v", q.c)
			}
			netnstest.Sh(t, "ip", "-n", a, "link", "set", "a0", "up")
			netnstest.Sh(t, "ip", "-n", b, "link", "set", "b0", "up")
			time.Sleep(200 * time.Millisecond)
			// Drain what the down period left, then the ring must carry new frames.
			for k := 0; k < 4; k++ {
				q.flush()
			}
			// Empty the peer's socket of whatever arrived, so the check below cannot
			// lose frames to its receive buffer.
			for netnstest.AwaitFrame(tap, 100*time.Millisecond, func([]byte) bool { return false }) {
			}
			last := len(frames) - 1
			send(len(frames)-64, len(frames))
			if !seen(last) {
				t.Fatalf("after link up, frames do not arrive: %+v (ifindex %d)", q.c, ifindex)
			}
			t.Logf("counters %+v", q.c)
		})
	}
}
