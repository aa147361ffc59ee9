//go:build linux

package afpacket

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/forward/engine"
	"github.com/uvs-project/uvs/forward/packet"
)

// sllPkttypeOff is the offset of sll_pkttype in the struct sockaddr_ll that tpacket_rcv
// writes after the tpacket3_hdr (at TPACKET_ALIGN(sizeof(struct tpacket3_hdr)) = 48):
// family(2) protocol(2) ifindex(4) hatype(2) pkttype(1).
const sllPkttypeOff = unix.SizeofTpacket3Hdr + 10

// maxBlocksPerRound bounds how many blocks a worker takes from one ring before looking at its
// other rings, so that a flood on one interface cannot starve NAT replies on another.
const maxBlocksPerRound = 8

// idlePoll is how long a worker sleeps in poll() when its rings are empty. It wakes at once for
// a block or a stop request; the timeout only paces expiry on an idle director.
const idlePoll = 100 // ms

// Worker owns its rings, TX queues, engine (connection table and counters). Nothing in it is
// shared except the snapshot pointer (read once per block) and the stop flag.
type Worker struct {
	id    int
	rings []*rxRing  // one per interface slot
	tx    []*txQueue // one per interface slot
	eng   *engine.Engine
	snap  *atomic.Pointer[engine.Snapshot]
	stop  *atomic.Bool
	wake  int // eventfd written to stop the worker
	pfds  []unix.PollFd
	epoch time.Time
	spin  time.Duration // RingConfig.Spin if a ring is V2, else 0

	copyBuf  []byte // a V2 frame too large for its slot, read from the socket (see copied)
	copyBusy bool   // copyBuf holds a frame of the batch not yet flushed
	copyFrom unix.RawSockaddrLinklayer

	sinceExpire int   // V2: frames since the last expiry pass
	lastExpire  int64 // V2: coarse clock (ns since epoch) of the last expiry pass

	// dump is a control-side request for a copy of the connection table, served between
	// blocks: the table belongs to this goroutine alone.
	dump atomic.Pointer[dumpRequest]

	beats atomic.Uint64 // loop rounds, for Heartbeat; written by this worker alone
}

// Run forwards until the stop flag is set.
func (w *Worker) Run() {
	w.pfds = w.pfds[:0]
	for _, r := range w.rings {
		w.pfds = append(w.pfds, unix.PollFd{Fd: int32(r.fd), Events: unix.POLLIN | unix.POLLERR})
	}
	w.pfds = append(w.pfds, unix.PollFd{Fd: int32(w.wake), Events: unix.POLLIN})
	var spinUntil time.Time
	for !w.stop.Load() {
		bump64(&w.beats, 1)
		busy := false
		for _, r := range w.rings {
			for k := 0; k < maxBlocksPerRound; k++ {
				if r.v2 {
					if !w.burst(r) {
						break
					}
				} else {
					b := r.ready()
					if b == nil {
						break
					}
					w.block(r, b)
				}
				busy = true
			}
		}
		serveDump(&w.dump, w.eng.Table()) // one bounded chunk of a listing, if one is asked for
		w.drainSync()
		if busy {
			spinUntil = time.Time{}
			continue
		}
		if w.spin > 0 {
			// V2 rings: look again for a short while before paying for a sleep and a
			// wakeup (see RingConfig.Spin).
			now := time.Now()
			if spinUntil.IsZero() {
				spinUntil = now.Add(w.spin)
			}
			if now.Before(spinUntil) {
				continue
			}
			spinUntil = time.Time{}
		}
		w.eng.Begin(w.snap.Load(), int64(time.Since(w.epoch)))
		w.eng.Expire()
		_, _ = unix.Poll(w.pfds, idlePoll)
		if w.pfds[len(w.pfds)-1].Revents&unix.POLLIN != 0 {
			var b [8]byte
			_, _ = unix.Read(w.wake, b[:]) // clear the eventfd
		}
		for i, r := range w.rings {
			if w.pfds[i].Revents&unix.POLLERR != 0 {
				// The link went down (sk_err = ENETDOWN): reading SO_ERROR clears it, or
				// poll would return at once forever. The kernel puts the socket back in
				// its fanout group when the link comes up, and forwarding resumes.
				if errno, _ := unix.GetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_ERROR); errno != 0 {
					bump64(&w.eng.Stats().LinkErrors, 1)
				}
			}
		}
	}
}

// block processes every frame of one ring block, sends the batch, and returns the block to
// the kernel. Offsets and lengths from the kernel are checked before use.
func (w *Worker) block(r *rxRing, b []byte) {
	e := w.eng
	e.Begin(w.snap.Load(), int64(time.Since(w.epoch)))
	num := int(binary.NativeEndian.Uint32(b[blockNumPktsOff:]))
	off := int(binary.NativeEndian.Uint32(b[blockFirstPktOff:]))
	for i := 0; i < num; i++ {
		if off < blockDescLen || off%4 != 0 || off+unix.SizeofTpacket3Hdr > len(b) {
			break
		}
		h := frameHdr3(b, off)
		mac := off + int(h.Mac)
		end := mac + int(h.Snaplen)
		if mac-packet.VnetHdrLen < off+sllPkttypeOff+1 || end > len(b) {
			e.Drop(engine.DropTruncatedFrame)
		} else if h.Snaplen < h.Len {
			e.Drop(engine.DropTruncatedFrame)
		} else if pt := b[off+sllPkttypeOff]; pt == unix.PACKET_HOST || pt == unix.PACKET_BROADCAST || pt == unix.PACKET_MULTICAST && solicitedNode(b[mac:end]) {
			// Staged frames are handled in groups, their connections prefetched together.
			if e.Stage(b[mac-packet.VnetHdrLen:end], r.iface) {
				w.runStaged()
			}
		} else {
			// PACKET_OTHERHOST: a bridge flooded a frame addressed to someone else (often
			// one we sent ourselves, before the bridge learned the real server's MAC);
			// taking it would forward it again. Multicast is never ours either.
			e.Ignore()
		}
		next := int(h.Next_offset)
		if next <= 0 {
			break
		}
		off += next
	}
	w.runStaged()
	e.Expire()
	w.flush()
	r.release(b)
}

// runStaged handles the engine's staged frames, sending the batch whenever it fills up: the
// frames stay ours until they are released, so they can go before the block or burst is done.
func (w *Worker) runStaged() {
	for w.eng.Run() {
		w.flush()
	}
	if w.eng.Full() {
		w.flush()
	}
}

// Expiry pacing for V2 bursts (see burst).
const (
	burstExpireFrames = 256
	burstExpireNs     = int64(time.Millisecond)
)

// burstMax bounds the V2 slots one burst takes before it flushes: txBatchMax, the most one
// flush hands the kernel in one call.
const burstMax = txBatchMax

// burst processes the V2 slots the kernel has filled, up to burstMax, sends the batch and
// hands the slots back. It reports whether there was any. Offsets and lengths from the kernel
// are checked before use.
func (w *Worker) burst(r *rxRing) bool {
	first := r.next
	n := 0
	var now int64
	e := w.eng
	for n < burstMax {
		f := r.slot(r.next)
		st := loadSlotStatus(f)
		if st&unix.TP_STATUS_USER == 0 {
			break
		}
		if n == 0 {
			now = int64(time.Since(w.epoch))
			e.Begin(w.snap.Load(), now)
		}
		h := slotHdr2(f)
		mac := int(h.Mac)
		end := mac + int(h.Snaplen)
		switch {
		case st&unix.TP_STATUS_COPY != 0:
			// Too large for the slot: the whole frame waits on the socket, in order.
			w.copied(r)
		case mac-packet.VnetHdrLen < sllPkttypeOff2+1 || end > len(f) || h.Snaplen < h.Len:
			e.Drop(engine.DropTruncatedFrame)
		default:
			w.frame(f[mac-packet.VnetHdrLen:end], f[sllPkttypeOff2], r.iface)
		}
		n++
		if r.next++; r.next == r.slots {
			r.next = 0
		}
	}
	if n == 0 {
		return false
	}
	w.runStaged()
	// A V3 block expires up to 64 entries; bursts can be a frame or two, so a burst expires
	// only once burstExpireFrames frames or burstExpireNs have passed since the last time,
	// about as often per frame as V3 does.
	if w.sinceExpire += n; w.sinceExpire >= burstExpireFrames || now-w.lastExpire >= burstExpireNs {
		e.Expire()
		w.sinceExpire, w.lastExpire = 0, now
	}
	w.flush()
	for i := first; n > 0; n-- {
		storeSlotStatus(r.slot(i), unix.TP_STATUS_KERNEL)
		if i++; i == r.slots {
			i = 0
		}
	}
	return true
}

// frame hands one received frame (virtio_net_hdr first) of packet type pt to the engine.
func (w *Worker) frame(b []byte, pt uint8, iface int) {
	e := w.eng
	if pt == unix.PACKET_HOST || pt == unix.PACKET_BROADCAST || pt == unix.PACKET_MULTICAST && solicitedNode(b[min(packet.VnetHdrLen, len(b)):]) {
		if e.Stage(b, iface) {
			w.runStaged()
		}
		return
	}
	// PACKET_OTHERHOST: a bridge flooded a frame addressed to someone else (often one we
	// sent ourselves, before the bridge learned the real server's MAC); taking it would
	// forward it again. Multicast is never ours either.
	e.Ignore()
}

// copied reads the frame a TP_STATUS_COPY slot stands for from the socket's queue into the
// worker's copy buffer, where it stays until the batch is flushed (so a second one flushes
// first).
func (w *Worker) copied(r *rxRing) {
	e := w.eng
	if w.copyBusy {
		w.flush()
	}
	if w.copyBuf == nil {
		w.copyBuf = make([]byte, rxCopyBytes) // once, on the first super-frame
	}
	b := w.copyBuf
	n, errno := recvFrame(r.fd, b, &w.copyFrom)
	switch {
	case errno != 0:
		// The copy was not queued (receive buffer full): only the truncated slot exists.
		e.Drop(engine.DropTruncatedFrame)
	case n > len(b):
		e.Drop(engine.DropTruncatedFrame)
	default:
		w.copyBusy = true
		w.frame(b[:n], w.copyFrom.Pkttype, r.iface)
		w.runStaged() // the copy buffer holds one frame: handle it before the next copy
	}
}

// flush hands the batch to the TX queues, one system call per interface, and folds the
// queues' outcomes into the worker's counters.
func (w *Worker) flush() {
	e := w.eng
	for _, f := range e.Out() {
		if f.Iface < len(w.tx) {
			w.tx[f.Iface].add(f.Frame)
		}
	}
	var c txCounters
	for _, q := range w.tx {
		q.flush()
		c.add(&q.c)
		if q.big != nil {
			c.add(&q.big.c)
		}
	}
	e.Reset()
	w.copyBusy = false
	s := e.Stats()
	publish(&s.Drops[engine.DropTxRingFull], c.Full)
	publish(&s.Drops[engine.DropTxBusy], c.Busy)
	publish(&s.Drops[engine.DropTxError], c.Error)
	publish(&s.Drops[engine.DropTxOversize], c.Oversize)
	publish(&s.Drops[engine.DropTxStuck], c.Stuck)
	publish(&s.TxFrames, c.Sent)
}

// publish sets a counter the worker alone writes to v, skipping the store when it already
// holds v: an atomic store is an XCHG on amd64 (a locked, fencing instruction), a load a
// plain MOV, and the drop counters rarely change. With V2 bursts of a frame or two, six
// stores per flush were a fence every few frames.
func publish(c *atomic.Uint64, v uint64) {
	if c.Load() != v {
		c.Store(v)
	}
}

func (c *txCounters) add(o *txCounters) {
	c.Sent += o.Sent
	c.Full += o.Full
	c.Busy += o.Busy
	c.Error += o.Error
	c.Stuck += o.Stuck
	c.Oversize += o.Oversize
}

// Close releases the worker's sockets and rings.
func (w *Worker) Close() {
	for _, r := range w.rings {
		r.close()
	}
	for _, q := range w.tx {
		q.close()
	}
	if w.wake >= 0 {
		_ = unix.Close(w.wake)
		w.wake = -1
	}
}

// bump64 adds to a counter the worker alone writes (atomic load and store, no locked
// read-modify-write), as the engine does.
func bump64(c *atomic.Uint64, n uint64) { c.Store(c.Load() + n) }

// solicitedNode reports whether an Ethernet frame goes to an IPv6 solicited-node multicast
// group (33:33:ff:xx:xx:xx, RFC 4291 section 2.7.1 and RFC 2464 section 7): where a neighbour
// solicitation for a VIP arrives (packet type PACKET_MULTICAST), the only multicast a worker
// takes. Other multicast is never for a VIP.
func solicitedNode(frame []byte) bool {
	return len(frame) >= 3 && frame[0] == 0x33 && frame[1] == 0x33 && frame[2] == 0xff
}
