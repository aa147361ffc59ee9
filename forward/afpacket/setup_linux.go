//go:build linux

package afpacket

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/engine"
)

// The control side of a worker: creating it, opening its rings and TX queues, installing the
// fanout program, and the requests it serves between blocks (a stop, a table dump).

// NewWorker returns worker id around eng, with no interface yet (see Open). Run forwards by
// the snapshot in snap until stop is set; epoch is the start of the coarse clock.
func NewWorker(id int, eng *engine.Engine, snap *atomic.Pointer[engine.Snapshot], stop *atomic.Bool, epoch time.Time) (*Worker, error) {
	w := &Worker{id: id, eng: eng, snap: snap, stop: stop, wake: -1, epoch: epoch}
	var err error
	if w.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("forward: eventfd: %w", err)
	}
	return w, nil
}

// Open adds the RX ring and TX queue of interface slot (ifindex): the ring joins the fanout
// group (0: a new one), and the group and whether PACKET_IGNORE_OUTGOING took are returned
// for the next worker's ring. txRing selects a TX ring over sendmmsg.
func (w *Worker) Open(ifindex, slot int, cfg RingConfig, group uint16, ignoreOut, txRing bool) (uint16, bool, error) {
	r, err := openRX(ifindex, slot, cfg)
	if err != nil {
		return group, ignoreOut, err
	}
	w.rings = append(w.rings, r)
	if r.v2 {
		w.spin = cfg.WithDefaults().Spin
	}
	if group, ignoreOut, err = r.joinFanout(group, ignoreOut); err != nil {
		return group, ignoreOut, err
	}
	q, err := openTX(ifindex, txRing)
	if err != nil {
		return group, ignoreOut, err
	}
	w.tx = append(w.tx, q)
	return group, ignoreOut, nil
}

// Engine returns the worker's engine.
func (w *Worker) Engine() *engine.Engine { return w.eng }

// SetFanoutProgram installs the steering program of interface slot's fanout group (one
// socket of the group is enough).
func (w *Worker) SetFanoutProgram(slot int, prog []unix.SockFilter) error {
	return w.rings[slot].setFanoutProgram(prog)
}

// Wake interrupts the worker's poll, to see a stop request or a dump request at once.
func (w *Worker) Wake() {
	if w.wake >= 0 {
		_, _ = unix.Write(w.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
}

// Dump returns a copy of the worker's connection table (connections and persistence
// templates), which the worker copies between two ring blocks, dumpChunk entries at a time.
func (w *Worker) Dump(ctx context.Context) ([]conntrack.Entry, error) {
	return requestDump(ctx, &w.dump, w.Wake)
}

// CollectRingStats adds the kernel's per-socket ring counters (PACKET_STATISTICS, which reset
// on each read) to the worker's counters. Control side.
func (w *Worker) CollectRingStats() {
	for _, r := range w.rings {
		pkts, drops, freezes, err := r.stats()
		if err != nil {
			continue
		}
		s := w.eng.Stats()
		s.RingPackets.Add(uint64(pkts))
		s.RingDrops.Add(uint64(drops))
		s.RingFreezes.Add(uint64(freezes))
	}
}
