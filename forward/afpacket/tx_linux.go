//go:build linux

package afpacket

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// txBatchMax is the most frames one flush hands the kernel: UIO_MAXIOV (1024) is also the
// largest vlen sendmmsg accepts, and a 256 KiB RX block holds at most about 2000 minimum-size
// frames, so a block takes at most two flushes.
const txBatchMax = 1024

// Transmit slots of the TX ring: 4 KiB holds the tpacket2 header, the virtio_net_hdr and a
// frame of up to about 4000 bytes (MTU 1500 and "baby jumbo" links). Larger frames (GSO
// super-frames from veth) go through the queue's sendmmsg path instead.
const (
	txSlotBytes  = 4096
	txSlots      = 512 // 2 MiB per ring: a full flush of small frames plus room for slots still SENDING
	txDataOffset = 32  // TPACKET2_HDRLEN - sizeof(struct sockaddr_ll): where tpacket_snd reads data
)

// txCounters are the TX outcomes of one queue, owned by its worker.
type txCounters struct {
	Sent     uint64 // frames the kernel accepted
	Full     uint64 // no free TX slot (ring mode)
	Busy     uint64 // EAGAIN/ENOBUFS: socket or device queue full
	Error    uint64 // other send errors (ENETDOWN, EMSGSIZE, ...)
	Stuck    uint64 // ring slots the kernel failed to send and we skipped
	Oversize uint64 // frames larger than the egress can take
	poisoned uint64 // ring slots marked for skipping; the walk counts them as taken
}

// txQueue transmits frames on one interface for one worker. Frames are queued with add and
// go to the kernel in one call per flush. Every queued frame starts with a virtio_net_hdr
// (the socket has PACKET_VNET_HDR), so GSO super-frames and CHECKSUM_PARTIAL frames keep
// their offload state.
type txQueue struct {
	fd   int
	ring bool // TX ring mode; otherwise sendmmsg

	// sendmmsg mode (also the ring's path for frames too large for a slot). Queued frames
	// must stay valid until flush: they point into the RX block or the worker's scratch.
	msgs []unix.Mmsghdr
	iovs []unix.Iovec
	n    int

	// TX ring mode.
	mem        []byte
	head, tail int      // next slot to fill; oldest slot handed to the kernel and not yet seen done
	pending    int      // slots from tail to head (txSlots when full: then head == tail too)
	queued     int      // slots filled since the last flush
	big        *txQueue // sendmmsg queue for frames over a slot
	stalled    bool     // a wait for a slot timed out; no more waits until one is free

	c txCounters
}

// openTX opens a send-only packet socket on ifindex: bound with protocol 0, it receives nothing.
func openTX(ifindex int, ring bool) (_ *txQueue, err error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("forward: socket AF_PACKET: %w", err)
	}
	q := &txQueue{fd: fd, ring: ring}
	defer func() {
		if err != nil {
			q.close()
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return nil, fmt.Errorf("forward: setsockopt PACKET_VNET_HDR: %w", err)
	}
	// A burst of a full batch of 64 KiB frames must not hit EAGAIN on the socket's send buffer.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 64<<20); err != nil {
		return nil, fmt.Errorf("forward: setsockopt SO_SNDBUFFORCE: %w", err)
	}
	if ring {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
			return nil, fmt.Errorf("forward: setsockopt PACKET_VERSION: %w", err)
		}
		// PACKET_LOSS: a malformed slot is skipped (set AVAILABLE, head advanced) instead of
		// stopping the ring at TP_STATUS_WRONG_FORMAT; we rely on it to clear stuck slots.
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_LOSS, 1); err != nil {
			return nil, fmt.Errorf("forward: setsockopt PACKET_LOSS: %w", err)
		}
		req := unix.TpacketReq{Block_size: txSlotBytes * 16, Block_nr: txSlots / 16, Frame_size: txSlotBytes, Frame_nr: txSlots}
		if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
			return nil, fmt.Errorf("forward: setsockopt PACKET_TX_RING: %w", err)
		}
		mem, err := unix.Mmap(fd, 0, txSlotBytes*txSlots, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return nil, fmt.Errorf("forward: mmap tx ring: %w", err)
		}
		q.mem = mem
	} else {
		q.msgs = make([]unix.Mmsghdr, txBatchMax)
		q.iovs = make([]unix.Iovec, txBatchMax)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		return nil, fmt.Errorf("forward: bind tx ifindex %d: %w", ifindex, err)
	}
	if ring {
		big, err := openTX(ifindex, false)
		if err != nil {
			return nil, err
		}
		q.big = big
	}
	return q, nil
}

func (q *txQueue) close() {
	if q.big != nil {
		q.big.close()
		q.big = nil
	}
	if q.mem != nil {
		_ = unix.Munmap(q.mem)
		q.mem = nil
	}
	if q.fd >= 0 {
		_ = unix.Close(q.fd)
		q.fd = -1
	}
}

// add queues b (virtio_net_hdr + frame). In sendmmsg mode b must stay valid and unchanged
// until the next flush. It returns false when the frame was dropped (and counted).
func (q *txQueue) add(b []byte) bool {
	if !q.ring {
		if q.n == len(q.msgs) {
			q.flush()
		}
		setIovec(&q.iovs[q.n], b)
		h := &q.msgs[q.n].Hdr
		*h = unix.Msghdr{}
		setMsgIov(h, &q.iovs[q.n], 1)
		q.n++
		return true
	}
	if len(b) > txSlotBytes-txDataOffset {
		// Too large for a slot: it goes through the sendmmsg socket, after every frame
		// queued before it, so that a flow's frames keep their order.
		q.drain()
		ok := q.big.add(b)
		q.big.flush()
		return ok
	}
	slot := q.slot(q.head)
	if (q.pending == txSlots || loadSlotStatus(slot) != unix.TP_STATUS_AVAILABLE) && !q.waitSlot(slot) {
		q.c.Full++
		return false
	}
	copy(slot[txDataOffset:], b)
	h := slotHdr2(slot)
	h.Len = uint32(len(b))
	storeSlotStatus(slot, unix.TP_STATUS_SEND_REQUEST)
	q.head++
	if q.head == txSlots {
		q.head = 0
	}
	q.pending++
	q.queued++
	if q.queued == txBatchMax {
		q.flush()
	}
	return true
}

// flush hands every queued frame to the kernel with one system call (more only after errors).
func (q *txQueue) flush() {
	if !q.ring {
		q.flushMmsg()
		return
	}
	q.big.flush()
	if q.queued == 0 {
		// Nothing new since the last kick: look at what the kernel finished, and kick
		// again only if it left the oldest slot waiting (a kick that failed), so that a
		// flush with no output (a batch of ignored frames, a wait for a slot) costs no
		// system call.
		q.walk()
		if q.pending == 0 || loadSlotStatus(q.slot(q.tail)) != unix.TP_STATUS_SEND_REQUEST {
			return
		}
	}
	q.queued = 0
	for attempt := 0; attempt < 2; attempt++ {
		errno := q.kick()
		q.walk()
		if q.pending == 0 || loadSlotStatus(q.slot(q.tail)) != unix.TP_STATUS_SEND_REQUEST {
			return
		}
		// The kernel stopped at tail and left it at SEND_REQUEST with its head on it.
		// Overwriting the status would stall the ring for good (tpacket_snd stops at the
		// first slot that is not SEND_REQUEST), so a slot is dropped by poisoning its
		// length instead: with PACKET_LOSS the kernel skips it and moves its head on.
		switch errno {
		case 0:
			return // it took what it could; the rest goes with the next flush
		case unix.ENETDOWN, unix.ENXIO:
			// Link down: tpacket_snd looks at no slot. Drop everything pending rather
			// than send stale frames in a burst when the link returns.
			for i, n := q.tail, q.pending; n > 0; n-- {
				if b := q.slot(i); loadSlotStatus(b) == unix.TP_STATUS_SEND_REQUEST && slotHdr2(b).Len != 0 {
					slotHdr2(b).Len = 0
					q.c.Error++
					q.c.poisoned++
				}
				if i++; i == txSlots {
					i = 0
				}
			}
			return
		case unix.EAGAIN, unix.ENOBUFS:
			q.c.Busy++
		default:
			q.c.Error++
		}
		// A transmit failed (device queue full, qdisc drop): skip that one frame.
		q.c.Stuck++
		q.c.poisoned++
		slotHdr2(q.slot(q.tail)).Len = 0
	}
}

// txWaitMax bounds how long add waits for a TX slot. On a veth a slot stays SENDING until
// the receiver frees the skb, microseconds later; a slot still busy after this long means the
// link is down or stuck, and frames are dropped (and counted) rather than the worker stopped.
const txWaitMax = 20 * time.Millisecond

// waitSlot kicks the queued frames and waits until slot is free: the frame in hand has had
// all its work done, so it is worth a wait, and while the worker waits, surplus frames are
// dropped in the RX ring before any work (counted by the kernel). After a wait times out the
// queue is stalled: frames are dropped at once until a slot comes free again, so a dead link
// cannot hold the worker for txWaitMax per frame.
func (q *txQueue) waitSlot(slot []byte) bool {
	var deadline time.Time
	for {
		q.flush()
		if q.pending < txSlots && loadSlotStatus(slot) == unix.TP_STATUS_AVAILABLE {
			q.stalled = false
			return true
		}
		if q.stalled {
			return false
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(txWaitMax)
		} else if now.After(deadline) {
			q.stalled = true
			return false
		}
		// POLLOUT: packet_poll reports it once the slot at the kernel's head is
		// available, and the skb destructor wakes us (sock_wfree).
		pfd := [1]unix.PollFd{{Fd: int32(q.fd), Events: unix.POLLOUT}}
		_, _ = unix.Poll(pfd[:], 1)
	}
}

// drain kicks the ring until no slot is left at SEND_REQUEST (or a bounded wait passes), so
// that a frame sent another way goes after them.
func (q *txQueue) drain() {
	var deadline time.Time
	for {
		q.flush()
		if q.pending == 0 || loadSlotStatus(q.slot(q.tail)) != unix.TP_STATUS_SEND_REQUEST {
			return
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(txWaitMax)
		} else if now.After(deadline) {
			return
		}
		pfd := [1]unix.PollFd{{Fd: int32(q.fd), Events: unix.POLLOUT}}
		_, _ = unix.Poll(pfd[:], 1)
	}
}

// walk moves tail over the slots the kernel has taken (SENDING, or AVAILABLE once their skb
// was freed), counting them.
func (q *txQueue) walk() {
	for q.pending > 0 {
		b := q.slot(q.tail)
		if loadSlotStatus(b) == unix.TP_STATUS_SEND_REQUEST {
			return
		}
		if q.c.poisoned > 0 && slotHdr2(b).Len == 0 {
			q.c.poisoned--
		} else {
			q.c.Sent++
		}
		q.pending--
		if q.tail++; q.tail == txSlots {
			q.tail = 0
		}
	}
}

func (q *txQueue) slot(i int) []byte { return q.mem[i*txSlotBytes : (i+1)*txSlotBytes] }

// kick asks the kernel to send every SEND_REQUEST slot from its head on. It is a raw system
// call: with MSG_DONTWAIT tpacket_snd never sleeps, so the runtime need not be told
// (entersyscall/exitsyscall). Told, it lets sysmon take the worker's P during a long kick
// (the transmit's softirq runs inside it) and wakes another thread to hold it: futex and
// context-switch work on the worker's CPU for every large batch (gVisor's fdbased endpoint
// writes with raw system calls for the same reason).
func (q *txQueue) kick() unix.Errno {
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(q.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return errno
}

func (q *txQueue) flushMmsg() {
	sent := 0
	for sent < q.n {
		n, errno := sendmmsg(q.fd, q.msgs[sent:q.n], unix.MSG_DONTWAIT)
		if n > 0 {
			sent += n
			q.c.Sent += uint64(n)
			continue
		}
		switch errno {
		case unix.EAGAIN, unix.ENOBUFS:
			// The device or socket is full: drop the rest of the batch rather than block.
			q.c.Busy += uint64(q.n - sent)
			sent = q.n
		case unix.ENETDOWN, unix.ENXIO:
			q.c.Error += uint64(q.n - sent)
			sent = q.n
		case unix.EMSGSIZE:
			q.c.Oversize++
			sent++
		default:
			q.c.Error++
			sent++
		}
	}
	q.n = 0
}
