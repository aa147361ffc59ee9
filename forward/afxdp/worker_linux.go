//go:build linux

package afxdp

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/engine"
	"github.com/uvs-project/uvs/forward/packet"
)

// rxBatch is how many frames a worker takes from one RX ring per round: 64 is one engine
// batch (the afpacket backend's block holds about as many 64-byte frames per KiB of block
// divided by 64), enough to spread the per-batch costs (snapshot load, pool lock, one sendto)
// over many frames while keeping latency to a few microseconds.
const rxBatch = 64

// txReserve is how many free chunks a worker keeps out of the fill ring for frames it
// generates (ARP replies, ICMP errors, TUN frames, copies of scratch frames).
const txReserve = 256

// idlePoll is how long a worker sleeps in poll() when its rings are empty (ms); it wakes at
// once for a frame or a stop request, the timeout only paces expiry on an idle director.
const idlePoll = 100

// maxKicks bounds the sendto calls of one flush: copy mode sends max_tx_budget frames per
// call (32 before Linux 6.17), so a 512-frame ring drains in 16.
const maxKicks = 16

// Worker owns its sockets (one per interface and queue), its free chunks and its engine.
// Shared with the others: the UMEM (each chunk owned by one party at a time), the pools
// (TryLock once per batch), the snapshot pointer and the stop flag.
type Worker struct {
	id    int
	eng   *engine.Engine
	umem  *UMEM
	socks []*Socket   // every socket of the worker
	tx    []*Socket   // per interface slot: its first socket, where txq has none
	txq   [][]*Socket // per interface slot, per queue: the worker's socket on that queue
	cur   *Socket     // the socket whose RX batch is in hand; nil between batches
	snap  *atomic.Pointer[engine.Snapshot]
	stop  *atomic.Bool
	wake  int
	pfds  []unix.PollFd
	epoch time.Time

	frag *defrag // IPv4 reassembly (the kernel's is bypassed)

	free []uint64 // chunk addresses this worker owns; cap = every chunk of the UMEM
	held []uint8  // per chunk: 1 while an RX chunk of this batch is queued for TX

	// Frames the kernel took from the TX rings, stored into the engine's TxFrames after each
	// flush. Drops are counted as they happen (Engine.EDrop).
	sent uint64

	dump  atomic.Pointer[dumpRequest]
	beats atomic.Uint64 // loop rounds, for Heartbeat; written by this worker alone
}

type dumpRequest struct {
	out  []conntrack.Entry
	done chan struct{}
}

// NewWorker returns worker id around eng with its share of the UMEM's chunks (first and
// count); sockets are added with Open.
func NewWorker(id int, eng *engine.Engine, u *UMEM, first, count int, snap *atomic.Pointer[engine.Snapshot], stop *atomic.Bool, epoch time.Time) (*Worker, error) {
	w := &Worker{id: id, eng: eng, umem: u, snap: snap, stop: stop, wake: -1, epoch: epoch,
		frag: newDefrag(), free: make([]uint64, 0, u.chunks), held: make([]uint8, u.chunks)}
	for c := first + count - 1; c >= first; c-- {
		w.free = append(w.free, uint64(c)*ChunkBytes)
	}
	var err error
	if w.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("afxdp: eventfd: %w", err)
	}
	return w, nil
}

// Open adds the worker's socket on (ifindex, queue) of interface slot and puts its share of
// chunks in the queue's fill ring. Each socket transmits too: see txSocket.
func (w *Worker) Open(ifindex, queue, slot, workers int) (*Socket, error) {
	s, err := w.umem.OpenSocket(ifindex, queue, slot)
	if err != nil {
		return nil, err
	}
	w.socks = append(w.socks, s)
	for len(w.tx) <= slot {
		w.tx = append(w.tx, nil)
	}
	if w.tx[slot] == nil {
		w.tx[slot] = s
	}
	for len(w.txq) <= slot {
		w.txq = append(w.txq, nil)
	}
	for len(w.txq[slot]) <= queue {
		w.txq[slot] = append(w.txq[slot], nil)
	}
	w.txq[slot][queue] = s
	p := s.pool
	p.mu.Lock()
	w.refill(p, fillRingSize/workers)
	p.mu.Unlock()
	return s, nil
}

// Engine returns the worker's engine.
func (w *Worker) Engine() *engine.Engine { return w.eng }

// Run forwards until the stop flag is set.
func (w *Worker) Run() {
	w.pfds = w.pfds[:0]
	for _, s := range w.socks {
		w.pfds = append(w.pfds, unix.PollFd{Fd: int32(s.fd), Events: unix.POLLIN})
	}
	w.pfds = append(w.pfds, unix.PollFd{Fd: int32(w.wake), Events: unix.POLLIN})
	for !w.stop.Load() {
		bump64(&w.beats, 1)
		busy := false
		for _, s := range w.socks {
			if w.batch(s) {
				busy = true
			}
		}
		if req := w.dump.Load(); req != nil {
			w.eng.Table().Range(func(e *conntrack.Entry) bool {
				req.out = append(req.out, *e)
				return true
			})
			w.dump.Store(nil)
			close(req.done)
		}
		// Sync records waiting for this worker (forward/engine/sync.go), between batches:
		// the table belongs to this goroutine alone.
		if w.eng.SyncPending() {
			w.eng.Begin(w.snap.Load(), int64(time.Since(w.epoch)))
			w.eng.DrainSync()
		}
		if busy {
			continue
		}
		now := int64(time.Since(w.epoch))
		w.eng.Begin(w.snap.Load(), now)
		w.eng.Expire()
		w.fragDrops(w.frag.expire(now))
		for _, s := range w.socks {
			w.tend(s.pool)
		}
		_, _ = unix.Poll(w.pfds, idlePoll)
		if w.pfds[len(w.pfds)-1].Revents&unix.POLLIN != 0 {
			var b [8]byte
			_, _ = unix.Read(w.wake, b[:])
		}
	}
	w.fragDrops(w.frag.dropAll())
}

// fragDrops counts n fragments given up by reassembly as received and dropped.
func (w *Worker) fragDrops(n uint64) {
	if n != 0 {
		st := w.eng.Stats()
		bump64(&st.RxFrames, n)
		bump64(&st.Faults[packet.FaultFragment], n)
	}
}

// batch processes up to rxBatch frames of s's RX ring, sends what they produced, returns the
// chunks it does not send to the free stack and tends the queue's pool. It reports whether
// there was anything to do.
func (w *Worker) batch(s *Socket) bool {
	r := s.rx
	n := r.loadProducer() - s.rxCons
	if n == 0 {
		return false
	}
	n = min(n, rxBatch)
	e := w.eng
	now := int64(time.Since(w.epoch))
	e.Begin(w.snap.Load(), now)
	mem := w.umem.mem
	w.cur = s
	var chunks [rxBatch]uint64
	for i := uint32(0); i < n; i++ {
		d := r.descs[(s.rxCons+i)&r.mask]
		chunk := d.Addr &^ (ChunkBytes - 1)
		chunks[i] = chunk
		off := d.Addr - chunk
		if off < packet.VnetHdrLen || off+uint64(d.Len) > ChunkBytes || chunk+ChunkBytes > uint64(len(mem)) {
			bump64(&e.Stats().RxFrames, 1)
			e.Drop(engine.DropTruncatedFrame)
			continue
		}
		buf := mem[d.Addr-packet.VnetHdrLen : d.Addr+uint64(d.Len)]
		res, dg, dropped := w.frag.add(buf[packet.VnetHdrLen:], now)
		w.fragDrops(dropped)
		switch res {
		case fragHeld:
			continue // copied: the chunk goes back to the free stack
		case fragComplete:
			buf = dg
		}
		rxVnetHdr(buf, buf[packet.VnetHdrLen:])
		if res == fragComplete {
			// A reassembled datagram's buffer is reused by the next one: the frames staged
			// before it go first (a flow's order), then it is handled and sent at once.
			w.runStaged()
			e.Handle(buf, s.Slot)
			w.flush()
			continue
		}
		// Staged frames are handled in groups, their connections prefetched together (as
		// the AF_PACKET worker does); the chunks stay ours until the batch ends.
		if e.Stage(buf, s.Slot) {
			w.runStaged()
		}
	}
	w.runStaged()
	s.rxCons += n
	r.storeConsumer(s.rxCons)
	e.Expire()
	w.flush()
	w.cur = nil
	for i := uint32(0); i < n; i++ {
		c := chunks[i] / ChunkBytes
		if w.held[c] != 0 {
			w.held[c] = 0 // on its way out: the completion ring returns it
			continue
		}
		w.free = append(w.free, chunks[i])
	}
	w.tend(s.pool)
	return true
}

// runStaged handles the engine's staged frames, sending the batch whenever it fills up.
func (w *Worker) runStaged() {
	for w.eng.Run() {
		w.flush()
	}
	if w.eng.Full() {
		w.flush()
	}
}

// tend drains the pool's completion ring into the free stack and refills its fill ring, if no
// other worker is doing so right now.
func (w *Worker) tend(p *Pool) {
	if !p.mu.TryLock() {
		return
	}
	c := p.comp
	prod := c.loadProducer()
	for ; p.compCons != prod; p.compCons++ {
		if len(w.free) == cap(w.free) {
			break // cannot happen: every chunk fits; never overrun the stack
		}
		w.free = append(w.free, c.addrs[p.compCons&c.mask]&^(ChunkBytes-1))
	}
	c.storeConsumer(p.compCons)
	w.refill(p, fillRingSize)
	p.mu.Unlock()
}

// refill moves up to max free chunks into p's fill ring, keeping txReserve. p.mu is held.
func (w *Worker) refill(p *Pool, max int) {
	f := p.fill
	room := int(f.size - (p.fillProd - f.loadConsumer()))
	n := min(room, len(w.free)-txReserve, max)
	if n <= 0 {
		return
	}
	for i := 0; i < n; i++ {
		f.addrs[(p.fillProd+uint32(i))&f.mask] = w.free[len(w.free)-1-i]
	}
	w.free = w.free[:len(w.free)-n]
	p.fillProd += uint32(n)
	f.storeProducer(p.fillProd)
	if f.needWakeup() {
		_, _, _ = unix.Syscall6(unix.SYS_RECVFROM, uintptr(p.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	}
}

// txSocket returns the socket a frame for interface slot leaves through. Each queue has its
// own TX: a frame leaves through the socket it arrived on when it goes back out of the same
// interface, and otherwise through the worker's socket on the same queue number of the other
// interface (or queue number modulo its queues), so the TX work of a multi-queue NIC spreads
// over its queues as the RX work does. Copy mode sends on the socket's queue (the skb's queue
// mapping, which veth turns into the peer's RX queue); zero-copy uses that queue's TX ring.
func (w *Worker) txSocket(slot int) *Socket {
	c := w.cur
	if c != nil && c.Slot == slot {
		return c
	}
	if slot < len(w.txq) {
		if qs := w.txq[slot]; len(qs) > 0 {
			q := w.id
			if c != nil {
				q = c.Queue
			}
			if s := qs[q%len(qs)]; s != nil {
				return s
			}
		}
	}
	if slot < len(w.tx) {
		return w.tx[slot]
	}
	return nil
}

// flush puts the batch's frames on the TX rings, kicks the kernel, and folds the outcomes into
// the engine's counters. A frame rewritten in place leaves from its own chunk; a frame the
// engine built in its scratch is copied into a free chunk.
func (w *Worker) flush() {
	e := w.eng
	mem := w.umem.mem
	for _, f := range e.Out() {
		s := w.txSocket(f.Iface)
		if s == nil {
			e.Drop(engine.DropTxError)
			continue
		}
		frame := finishTX(f.Frame)
		if frame == nil || len(frame) > MaxFrame {
			e.Drop(engine.DropTxOversize)
			continue
		}
		t := s.tx
		if s.txProd-t.loadConsumer() >= t.size {
			e.Drop(engine.DropTxRingFull)
			continue
		}
		var addr uint64
		if off := offsetIn(mem, frame); off >= 0 && off/ChunkBytes == (off+len(frame)-1)/ChunkBytes && w.held[off/ChunkBytes] == 0 {
			addr = uint64(off)
			w.held[off/ChunkBytes] = 1
		} else {
			if len(w.free) == 0 {
				e.Drop(engine.DropScratchFull) // no free chunk to copy the frame into
				continue
			}
			addr = w.free[len(w.free)-1]
			w.free = w.free[:len(w.free)-1]
			copy(mem[addr:addr+ChunkBytes], frame)
		}
		t.descs[s.txProd&t.mask] = unix.XDPDesc{Addr: addr, Len: uint32(len(frame))}
		s.txProd++
	}
	for _, s := range w.socks {
		if s.txProd != s.txDone {
			w.kick(s)
		}
	}
	e.Reset()
	e.Stats().TxFrames.Store(w.sent)
}

// kick publishes s's new TX descriptors and asks the kernel to send them, until it took them
// all or maxKicks calls were made (what is left goes with the next flush).
func (w *Worker) kick(s *Socket) {
	t := s.tx
	if t.loadProducer() != s.txProd {
		t.storeProducer(s.txProd)
	}
	for k := 0; k < maxKicks; k++ {
		cons := t.loadConsumer()
		w.sent += uint64(cons - s.txDone)
		s.txDone = cons
		if cons == s.txProd {
			return
		}
		if !w.umem.zc || t.needWakeup() {
			switch e := wakeTX(s.fd); e {
			case 0, unix.EAGAIN, unix.EBUSY, unix.ENOBUFS:
				// EAGAIN: the per-call budget ran out, or the completion ring is full;
				// tend() drains it. Call again.
				if e != 0 && t.loadConsumer() == cons {
					w.tend(s.pool)
				}
			default:
				// ENETDOWN, ENXIO: the link is down; the frames stay queued and leave
				// when it is up again (or the ring fills and later frames are dropped).
				bump64(&w.eng.Stats().LinkErrors, 1)
				return
			}
		}
	}
}

// Heartbeat returns the number of rounds the worker's loop has made (the Director's Alive
// watches it move). Safe for concurrent use.
func (w *Worker) Heartbeat() uint64 { return w.beats.Load() }

// Wake interrupts the worker's poll.
func (w *Worker) Wake() {
	if w.wake >= 0 {
		_, _ = unix.Write(w.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
}

// Dump returns a copy of the worker's connection table, copied by the worker between batches.
func (w *Worker) Dump(ctx context.Context) ([]conntrack.Entry, error) {
	req := &dumpRequest{done: make(chan struct{})}
	if !w.dump.CompareAndSwap(nil, req) {
		return nil, errors.New("afxdp: a connection dump is already running")
	}
	w.Wake()
	select {
	case <-req.done:
		return req.out, nil
	case <-ctx.Done():
		w.dump.CompareAndSwap(req, nil)
		return nil, fmt.Errorf("afxdp: connection dump: %w", ctx.Err())
	}
}

// CollectRingStats stores the kernel's socket counters (XDP_STATISTICS, cumulative) in the
// worker's ring counters: RingDrops counts frames the kernel dropped for a full RX ring or
// an empty fill ring, or for being larger than a chunk. Control side.
func (w *Worker) CollectRingStats() {
	var drops uint64
	for _, s := range w.socks {
		st, err := s.Stats()
		if err != nil {
			continue
		}
		drops += st.Rx_dropped + st.Rx_ring_full + st.Rx_fill_ring_empty_descs
	}
	w.eng.Stats().RingDrops.Store(drops)
}

// Close closes the worker's sockets.
func (w *Worker) Close() {
	for _, s := range w.socks {
		s.Close()
	}
	w.socks, w.tx, w.txq = nil, nil, nil
	if w.wake >= 0 {
		_ = unix.Close(w.wake)
		w.wake = -1
	}
}

func bump64(c *atomic.Uint64, n uint64) { c.Store(c.Load() + n) }
