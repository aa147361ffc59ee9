package engine

import (
	"runtime"
	"testing"

	"github.com/uvs-project/uvs/forward/internal/frametest"
	"github.com/uvs-project/uvs/forward/packet"
)

// BenchmarkEngineColdRing is the worker's user-space work as a saturated V2 ring sees it:
// frames of 16k established DR flows in a ring of 8192 2-KiB slots, each slot refilled
// ("by the kernel") right after it is handled, so every frame is read one lap after it was
// written, as when the ring is full; the output is copied into a 512-slot TX ring. "floor"
// does the floor forwarder's work on the same ring (the destination MAC rewritten, the frame
// copied out), so the difference is the engine's own cost at the cache state of the bench.
func BenchmarkEngineColdRing(b *testing.B) {
	const (
		flows    = 16384
		rxSlots  = 8192
		rxSlot   = 2048
		rxOff    = 82 // where tpacket_rcv puts the virtio_net_hdr of a small frame in a V2 slot
		txSlots  = 512
		txSlot   = 4096
		txOff    = 32
		capacity = 262144
	)
	e := newTestEngine(b, engineConfig(b, "dr", 80), capacity)
	ack := openFlows(b, e, flows)
	rx := make([]byte, rxSlots*rxSlot)
	tx := make([]byte, txSlots*txSlot)
	n := len(ack)
	j := uint32(0)
	fill := func(s int) {
		j = (j + 7_919) % flows
		flowFrame(rx[s*rxSlot+rxOff:s*rxSlot+rxOff+n], ack, j)
	}
	for s := 0; s < rxSlots; s++ {
		fill(s)
	}
	txHead := 0
	out := func(f []byte) {
		copy(tx[txHead*txSlot+txOff:], f)
		if txHead++; txHead == txSlots {
			txHead = 0
		}
	}
	const burst = 256
	for _, mode := range []string{"engine", "floor"} {
		b.Run(mode, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			e.Publish()
			before := e.stats.Forwarded.Load()
			cpu0 := threadCPU()
			s := 0
			b.ResetTimer()
			for i := 0; i < b.N; i += burst {
				first := s
				m := min(burst, b.N-i)
				for k := 0; k < m; k++ {
					f := rx[s*rxSlot+rxOff : s*rxSlot+rxOff+n]
					if mode == "floor" {
						copy(f[packet.VnetHdrLen:], frametest.MACB[:])
						out(f)
					} else if e.Stage(f, 0) {
						for e.Run() {
							for _, o := range e.Out() {
								out(o.Frame)
							}
							e.Reset()
						}
					}
					if s++; s == rxSlots {
						s = 0
					}
				}
				for e.Run() {
				}
				for _, o := range e.Out() {
					out(o.Frame)
				}
				e.Reset()
				for k := 0; k < m; k++ { // the kernel refills the slots handed back
					fill(first)
					if first++; first == rxSlots {
						first = 0
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			e.Publish()
			if mode == "engine" {
				if got := e.stats.Forwarded.Load() - before; got != uint64(b.N) {
					b.Fatalf("forwarded %d of %d (drops %v)", got, b.N, e.dropSummary())
				}
			}
		})
	}
}
