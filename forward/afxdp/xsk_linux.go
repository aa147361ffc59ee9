//go:build linux

package afxdp

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ChunkBytes is the size of one UMEM chunk: one page, the largest aligned chunk the kernel
// accepts (xdp_umem_reg: a power of two from 2048 to PAGE_SIZE). A frame then holds up to
// ChunkBytes-XDP_PACKET_HEADROOM = 3840 bytes, more than the largest frame native XDP on veth
// lets through (veth caps the MTU at PAGE_SIZE minus headroom and skb_shared_info once a
// program is attached, and turns GSO off on the peer); MaxFrame says what is supported.
const ChunkBytes = 4096

// MaxFrame is the largest frame (Ethernet header included) a chunk holds after the kernel's
// XDP_PACKET_HEADROOM (256 bytes); a larger one is dropped by the kernel and counted in the
// socket's XDP_STATISTICS rx_dropped.
const MaxFrame = ChunkBytes - unix.XDP_PACKET_HEADROOM

// Ring sizes (entries, powers of two). The fill ring of a queue is what the kernel can buffer
// for the workers: 4096 frames absorb a burst of a few thousand (the malformed-frame barrage
// sends 2,400 back to back) while the workers catch up; an RX ring holds half of that, since
// a queue's frames spread over its workers' sockets. A worker takes at most rxBatch frames
// per round, so a TX ring of 512 holds several rounds; the completion ring, shared by every
// worker on the queue, takes what their TX rings send.
const (
	rxRingSize   = 2048
	txRingSize   = 512
	fillRingSize = 4096
	compRingSize = 2048
)

// UMEMBytes is the size of the UMEM of a director with workers workers and queues RX queues
// over all its interfaces. The kernel can only hold chunks the workers gave it through a fill
// ring (whatever sits in RX rings came from there), so each queue needs its fill ring's worth
// and as many again for frames on their way out (TX and completion rings); each worker
// needs its reserve for generated frames and a batch in hand. The size grows with workers
// plus queues, not with their product: 24 MiB per queue and 3.5 MiB per worker.
func UMEMBytes(workers, queues int) int {
	chunks := queues*(fillRingSize+compRingSize) + workers*(txReserve+2*rxBatch+txRingSize)
	return chunks * ChunkBytes
}

// UMEM is the packet memory every socket of the director shares: one anonymous mapping cut
// into ChunkBytes chunks, registered on the first socket and shared by the others
// (XDP_SHARED_UMEM). A chunk belongs to exactly one party at a time: a worker's free stack,
// the kernel (fill, RX, TX and completion rings), or the batch a worker is processing.
type UMEM struct {
	mem    []byte
	chunks int
	fd     int // the socket the UMEM is registered on; -1 until then
	pools  []*Pool
	zc     bool  // bound in zero-copy mode
	zcErr  error // why zero-copy was refused (copy mode in use), for the log
}

// Pool is the fill and completion ring of one (interface, queue): the kernel takes RX chunks
// from the fill ring and returns sent ones on the completion ring of the queue, whichever
// socket of the queue they belong to. Every worker with a socket on the queue refills and
// drains it, once per batch, under mu taken with TryLock: a worker that finds it held skips
// the round rather than wait, since the holder is doing the same work. The lock is never
// taken per packet. Chunks that one worker puts in the fill ring may arrive at another; each
// keeps what it receives, so the free stacks balance with the traffic.
type Pool struct {
	mu       sync.Mutex // guards the local indexes and the ring writes below
	fd       int        // the socket that owns the rings (the first bound on the queue)
	fill     *addrRing
	comp     *addrRing
	fillProd uint32
	compCons uint32
	Ifindex  int
	Queue    int
}

// Socket is one AF_XDP socket: bound to (Ifindex, Queue), owned by one worker.
type Socket struct {
	fd     int
	rx, tx *descRing
	rxCons uint32 // worker-owned local indexes
	txProd uint32
	txDone uint32 // TX consumer index last seen
	pool   *Pool
	Slot   int // interface slot
	Queue  int
}

// NewUMEM maps UMEMBytes(workers, queues) of memory. The kernel charges it to
// RLIMIT_MEMLOCK when it is registered, unless the process has CAP_IPC_LOCK.
func NewUMEM(workers, queues int) (*UMEM, error) {
	n := UMEMBytes(workers, queues) / ChunkBytes
	mem, err := unix.Mmap(-1, 0, n*ChunkBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("afxdp: mmap UMEM (%d MiB): %w", n*ChunkBytes>>20, err)
	}
	return &UMEM{mem: mem, chunks: n, fd: -1}, nil
}

// Chunks returns the number of chunks.
func (u *UMEM) Chunks() int { return u.chunks }

// ZeroCopy reports whether the sockets were bound in zero-copy mode.
func (u *UMEM) ZeroCopy() bool { return u.zc }

// ZeroCopyRefused returns why the first bind in zero-copy mode failed (nil if it did not).
func (u *UMEM) ZeroCopyRefused() error { return u.zcErr }

// Close unmaps the UMEM; every socket must be closed first.
func (u *UMEM) Close() {
	for _, p := range u.pools {
		p.fill.unmap()
		p.comp.unmap()
	}
	u.pools = nil
	if u.mem != nil {
		_ = unix.Munmap(u.mem)
		u.mem = nil
	}
}

// pool returns the pool of (ifindex, queue), or nil if no socket is bound there yet.
func (u *UMEM) pool(ifindex, queue int) *Pool {
	for _, p := range u.pools {
		if p.Ifindex == ifindex && p.Queue == queue {
			return p
		}
	}
	return nil
}

// bindBusyWait bounds how long a bind that finds its queue busy is retried: the deferred
// release of a previous socket's pool runs within milliseconds; a queue still busy after this
// belongs to a live socket.
const bindBusyWait = 2 * time.Second

// ErrNoAFXDP is returned when the kernel has no AF_XDP sockets.
var ErrNoAFXDP = errors.New("afxdp: the kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS=y, Linux 4.18+)")

// OpenSocket opens a socket on (ifindex, queue) for interface slot, sharing the UMEM. The
// first socket tries zero-copy and falls back to copy mode (the caller logs which: ZeroCopy);
// the others inherit the mode (the kernel allows no bind flags with XDP_SHARED_UMEM).
func (u *UMEM) OpenSocket(ifindex, queue, slot int) (*Socket, error) {
	if u.fd < 0 {
		s, err := u.openSocket(ifindex, queue, slot, unix.XDP_ZEROCOPY)
		if err == nil {
			u.zc = true
			return s, nil
		}
		u.zcErr = err
		if s, err = u.openSocket(ifindex, queue, slot, unix.XDP_COPY); err != nil {
			return nil, err
		}
		return s, nil
	}
	return u.openSocket(ifindex, queue, slot, 0)
}

func (u *UMEM) openSocket(ifindex, queue, slot int, mode uint16) (_ *Socket, err error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EAFNOSUPPORT) {
			return nil, ErrNoAFXDP
		}
		return nil, fmt.Errorf("afxdp: socket(AF_XDP): %w", err)
	}
	s := &Socket{fd: fd, Slot: slot, Queue: queue}
	first := u.fd < 0
	var newPool *Pool
	defer func() {
		if err != nil {
			if newPool != nil {
				newPool.fill.unmap()
				newPool.comp.unmap()
			}
			s.Close()
		}
	}()
	if first {
		if err := registerUMEM(fd, u.mem, ChunkBytes); err != nil {
			if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOMEM) {
				return nil, fmt.Errorf("afxdp: XDP_UMEM_REG (%d MiB): %w: the kernel charges the UMEM to RLIMIT_MEMLOCK; raise it (LimitMEMLOCK=infinity in the unit) or grant CAP_IPC_LOCK", len(u.mem)>>20, err)
			}
			return nil, fmt.Errorf("afxdp: XDP_UMEM_REG: %w", err)
		}
	}
	p := u.pool(ifindex, queue)
	if p == nil {
		// The first socket on a queue brings the queue's fill and completion rings.
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_UMEM_FILL_RING, fillRingSize); err != nil {
			return nil, fmt.Errorf("afxdp: setsockopt XDP_UMEM_FILL_RING: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_UMEM_COMPLETION_RING, compRingSize); err != nil {
			return nil, fmt.Errorf("afxdp: setsockopt XDP_UMEM_COMPLETION_RING: %w", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_RX_RING, rxRingSize); err != nil {
		return nil, fmt.Errorf("afxdp: setsockopt XDP_RX_RING: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_TX_RING, txRingSize); err != nil {
		return nil, fmt.Errorf("afxdp: setsockopt XDP_TX_RING: %w", err)
	}
	// Copy mode sends at most max_tx_budget (32) frames per sendto; a whole batch is better.
	// Linux 6.17+; older kernels keep 32 and the flush calls sendto again.
	_ = unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, txRingSize)
	off, err := mmapOffsets(fd)
	if err != nil {
		return nil, err
	}
	if p == nil {
		newPool = &Pool{fd: fd, Ifindex: ifindex, Queue: queue}
		if newPool.fill, err = mapAddrRing(fd, unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, fillRingSize); err != nil {
			return nil, fmt.Errorf("afxdp: mmap fill ring: %w", err)
		}
		if newPool.comp, err = mapAddrRing(fd, unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, compRingSize); err != nil {
			return nil, fmt.Errorf("afxdp: mmap completion ring: %w", err)
		}
	}
	if s.rx, err = mapDescRing(fd, unix.XDP_PGOFF_RX_RING, off.Rx, rxRingSize); err != nil {
		return nil, fmt.Errorf("afxdp: mmap RX ring: %w", err)
	}
	if s.tx, err = mapDescRing(fd, unix.XDP_PGOFF_TX_RING, off.Tx, txRingSize); err != nil {
		return nil, fmt.Errorf("afxdp: mmap TX ring: %w", err)
	}
	sa := &unix.SockaddrXDP{Ifindex: uint32(ifindex), QueueID: uint32(queue)}
	switch {
	case first:
		sa.Flags = mode | unix.XDP_USE_NEED_WAKEUP
	case p != nil:
		sa.Flags = unix.XDP_SHARED_UMEM // same queue: share its pool (fill and completion)
		sa.SharedUmemFD = uint32(p.fd)
	default:
		sa.Flags = unix.XDP_SHARED_UMEM // another queue or device: own rings, same UMEM
		sa.SharedUmemFD = uint32(u.fd)
	}
	// A queue an AF_XDP socket of a process that just exited was bound to stays taken until
	// the kernel's deferred release of its buffer pool runs (xp_release_deferred, a work
	// item): bind fails with EBUSY for a moment. Wait for it, bounded.
	err = unix.Bind(fd, sa)
	for deadline := time.Now().Add(bindBusyWait); errors.Is(err, unix.EBUSY) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		err = unix.Bind(fd, sa)
	}
	if err != nil {
		what := "copy"
		if mode == unix.XDP_ZEROCOPY {
			what = "zero-copy"
		}
		return nil, fmt.Errorf("afxdp: bind to ifindex %d queue %d (%s): %w", ifindex, queue, what, err)
	}
	if first {
		u.fd = fd
	}
	if newPool != nil {
		u.pools = append(u.pools, newPool)
		p = newPool
	}
	s.pool = p
	return s, nil
}

// Close closes the socket and unmaps its rings. The pool's rings stay mapped until the UMEM
// closes.
func (s *Socket) Close() {
	if s.rx != nil {
		s.rx.unmap()
	}
	if s.tx != nil {
		s.tx.unmap()
	}
	if s.fd >= 0 {
		_ = unix.Close(s.fd)
		s.fd = -1
	}
}

// FD returns the socket's file descriptor (for the XSKMAP).
func (s *Socket) FD() int { return s.fd }

// Stats returns the kernel's counters of the socket (XDP_STATISTICS, cumulative).
func (s *Socket) Stats() (unix.XDPStatistics, error) { return statistics(s.fd) }

// Queues returns the number of RX queues of a device, from sysfs (/sys/class/net/DEV/queues).
func Queues(name string) int {
	ents, err := readDirNames("/sys/class/net/" + name + "/queues")
	if err != nil {
		return 1
	}
	n := 0
	for _, e := range ents {
		if len(e) > 3 && e[:3] == "rx-" {
			n++
		}
	}
	return max(n, 1)
}
