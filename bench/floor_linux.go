package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/forward/afpacket"
)

// floorSpin is how long the V2 floor keeps looking for the next frame before
// it sleeps in poll(): uvs's own spin (afpacket.RingConfig.Spin), so that
// both spend the same idle time per burst and their costs per packet compare
// like with like below saturation, where the spin is thread time.
var floorSpin = afpacket.RingConfig{}.WithDefaults().Spin

// The floor is the smallest forwarder on the rings uvs uses: frames come in
// through an AF_PACKET receive ring, get the next hop's destination MAC, and
// leave through a TPACKET_V2 transmit ring, batched per block (V3) or per
// burst (V2). No parsing beyond the link header, no table, no scheduler. It
// is tuned as uvs is (the same ring geometry, PACKET_VNET_HDR on both
// sockets, PACKET_IGNORE_OUTGOING, one kick per batch, a thread pinned to the
// director's CPU), so that `uvs bench` shows how far the director's own work
// is from what its mechanism costs. The kernel's own copy of every frame is
// dropped by a tcx ingress program (dropall_linux.go), which runs after the
// AF_PACKET taps: the cheapest drop there is (uvs's shield does that job).

// FloorRing is the receive ring the floor reads.
type FloorRing uint8

// Receive rings.
const (
	FloorInvalid FloorRing = iota
	FloorV3                // TPACKET_V3: blocks, woken when a block retires
	FloorV2                // TPACKET_V2: one slot per frame, woken per frame
	FloorAFXDP             // AF_XDP sockets, as the afxdp backend (floor_afxdp_linux.go)
)

// String returns "v3" or "v2".
func (f FloorRing) String() string {
	switch f {
	case FloorV3:
		return "v3"
	case FloorV2:
		return "v2"
	case FloorAFXDP:
		return "afxdp"
	}
	return fmt.Sprintf("FloorRing(%d)", f)
}

// Ring geometry, as uvs's defaults (forward/ring_linux.go, tx_linux.go).
const (
	floorBlockBytes = 256 << 10 // V3 block; V2 uses the same blocks cut into floorV2Frame slots
	floorBlocks     = 32        // V3; V2 takes floorV2Blocks, as uvs (afpacket.RingConfig.Blocks)
	floorV2Blocks   = 64
	floorV2Frame    = 2048 // a 1514-byte frame with its headers and virtio_net_hdr
	floorTxSlot     = 4096
	floorTxSlots    = 512
	floorTxData     = 32 // TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)
	floorVnetLen    = 10 // struct virtio_net_hdr
	// floorV2Batch bounds the frames read from a V2 ring before one TX kick:
	// uvs's burst bound (afpacket's burstMax, txBatchMax).
	floorV2Batch = 1024
	// floorTxWait bounds how long a full TX ring is waited for before the
	// frame is dropped (the link is down).
	floorTxWait = 100 * time.Millisecond
)

// Offsets in struct tpacket3_hdr and tpacket2_hdr (include/uapi/linux/if_packet.h).
const (
	tp3Next    = 0
	tp3Snaplen = 12
	tp3Len     = 16
	tp3Mac     = 24
	tp3Pkttype = 48 + 10 // sockaddr_ll at TPACKET_ALIGN(sizeof(tpacket3_hdr)); sll_pkttype at 10
	tp2Len     = 4
	tp2Snaplen = 8
	tp2Mac     = 12
	tp2Pkttype = 32 + 10
	blkNum     = 12
	blkFirst   = 16
	blkStatus  = 8
)

// FloorConfig describes one floor forwarder.
type FloorConfig struct {
	Iface  string           // Interface in the director's namespace.
	SrcMAC net.HardwareAddr // The interface's MAC.
	DstMAC net.HardwareAddr // The next hop every frame goes to.
	Ring   FloorRing
	CPU    int // CPU to pin to; -1 = none.
}

// FloorCounters are what the floor did.
type FloorCounters struct {
	Forwarded, Ignored, Truncated, TxDropped uint64
	// floor-afxdp only: what the kernel could not hand to its sockets (RX ring full, fill
	// ring empty, other drops: XDP_STATISTICS).
	RxRingFull, FillRingEmpty, RxDropped uint64
}

// Floor is a running floor forwarder.
type Floor struct {
	tid  atomic.Int32 // the forwarding thread, for its CPU time
	stop atomic.Bool
	wake int
	// group is why the floor's thread could not get a cpu cgroup of its own
	// (floorCPUGroup), or "".
	group string
	done  chan error
	c     FloorCounters
}

// StartFloor starts the floor forwarder of cfg on node n. It returns once
// the sockets are open; Stop ends it.
func StartFloor(n *Node, cfg FloorConfig) (*Floor, error) {
	f := &Floor{done: make(chan error, 1), wake: -1}
	var err error
	if f.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("bench: floor: eventfd: %w", err)
	}
	ready := make(chan error, 1)
	go func() {
		f.done <- n.Do(func() error { return f.run(cfg, ready) })
	}()
	if err := <-ready; err != nil {
		<-f.done
		unix.Close(f.wake)
		return nil, err
	}
	return f, nil
}

// CPU returns the CPU time of the forwarding thread so far
// (/proc/self/task/TID/schedstat), or 0.
func (f *Floor) CPU() time.Duration {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(int(f.tid.Load())) + "/schedstat")
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.Fields(string(b) + " 0")[0], 10, 64)
	return time.Duration(v)
}

// SharedGroup returns why the floor's thread shares the bench process's
// scheduling weight (no cpu cgroup of its own), or "" when it has its own.
func (f *Floor) SharedGroup() string { return f.group }

// Stop ends the floor and returns its counters.
func (f *Floor) Stop() (FloorCounters, error) {
	f.stop.Store(true)
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	_, _ = unix.Write(f.wake, one)
	err := <-f.done
	unix.Close(f.wake)
	return f.c, err
}

type floorTx struct {
	fd      int
	mem     []byte
	head    int
	queued  int
	dropped uint64
	pfd     [1]unix.PollFd
}

func (f *Floor) run(cfg FloorConfig, ready chan<- error) (err error) {
	defer func() {
		if ready != nil {
			ready <- err
		}
	}()
	f.tid.Store(int32(unix.Gettid()))
	if cfg.CPU >= 0 {
		// Restored when the floor ends: the thread goes back to the runtime's
		// pool, and pinned it would run any goroutine of the bench on the
		// director's CPU.
		var old, set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &old); err != nil {
			return fmt.Errorf("bench: floor: sched_getaffinity: %w", err)
		}
		set.Set(cfg.CPU)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("bench: floor: sched_setaffinity: %w", err)
		}
		defer unix.SchedSetaffinity(0, &old)
	}
	// The floor's own scheduling group (floor_cgroup_linux.go): with the bench's
	// generator thread in its group it had half the weight of uvs on the director's CPU.
	restore, why := floorCPUGroup()
	defer restore()
	f.group = why
	ifi, err := net.InterfaceByName(cfg.Iface)
	if err != nil {
		return fmt.Errorf("bench: floor: %w", err)
	}
	if cfg.Ring == FloorAFXDP {
		r := ready
		ready = nil
		return f.runXDP(cfg, ifi, r)
	}
	rfd, rmem, err := openFloorRX(ifi.Index, cfg.Ring)
	if err != nil {
		return err
	}
	defer unix.Close(rfd)
	defer unix.Munmap(rmem)
	tx, err := openFloorTX(ifi.Index)
	if err != nil {
		return err
	}
	defer unix.Close(tx.fd)
	defer unix.Munmap(tx.mem)
	var mac [12]byte
	copy(mac[:6], cfg.DstMAC)
	copy(mac[6:], cfg.SrcMAC)
	ready <- nil
	ready = nil
	pfds := []unix.PollFd{{Fd: int32(rfd), Events: unix.POLLIN | unix.POLLERR}, {Fd: int32(f.wake), Events: unix.POLLIN}}
	if cfg.Ring == FloorV3 {
		f.loopV3(rmem, tx, &mac, pfds)
	} else {
		f.loopV2(rmem, tx, &mac, pfds)
	}
	f.c.TxDropped = tx.dropped
	return nil
}

func (f *Floor) loopV3(mem []byte, tx *floorTx, mac *[12]byte, pfds []unix.PollFd) {
	next := 0
	for !f.stop.Load() {
		b := mem[next*floorBlockBytes : (next+1)*floorBlockBytes]
		st := ringStatus(b[blkStatus:])
		if st.Load()&unix.TP_STATUS_USER == 0 {
			_, _ = unix.Poll(pfds, 100)
			continue
		}
		num := int(binary.NativeEndian.Uint32(b[blkNum:]))
		off := int(binary.NativeEndian.Uint32(b[blkFirst:]))
		for i := 0; i < num; i++ {
			if off < 48 || off+tp3Pkttype+1 > len(b) {
				break
			}
			m := off + int(binary.NativeEndian.Uint16(b[off+tp3Mac:]))
			end := m + int(binary.NativeEndian.Uint32(b[off+tp3Snaplen:]))
			switch {
			case m-floorVnetLen < off+tp3Pkttype+1 || end > len(b) || binary.NativeEndian.Uint32(b[off+tp3Snaplen:]) < binary.NativeEndian.Uint32(b[off+tp3Len:]):
				f.c.Truncated++
			case b[off+tp3Pkttype] != unix.PACKET_HOST:
				f.c.Ignored++
			default:
				tx.put(b[m-floorVnetLen:end], mac)
				f.c.Forwarded++
			}
			nx := int(binary.NativeEndian.Uint32(b[off+tp3Next:]))
			if nx <= 0 {
				break
			}
			off += nx
		}
		tx.kick()
		st.Store(unix.TP_STATUS_KERNEL)
		if next++; next == floorBlocks {
			next = 0
		}
	}
}

func (f *Floor) loopV2(mem []byte, tx *floorTx, mac *[12]byte, pfds []unix.PollFd) {
	nframes := len(mem) / floorV2Frame
	next := 0
	var spinUntil time.Time
	for !f.stop.Load() {
		n := 0
		first := next
		for n < floorV2Batch {
			b := mem[next*floorV2Frame : (next+1)*floorV2Frame]
			if ringStatus(b).Load()&unix.TP_STATUS_USER == 0 {
				break
			}
			m := int(binary.NativeEndian.Uint16(b[tp2Mac:]))
			snap := binary.NativeEndian.Uint32(b[tp2Snaplen:])
			end := m + int(snap)
			switch {
			case m-floorVnetLen < tp2Pkttype+1 || end > len(b) || snap < binary.NativeEndian.Uint32(b[tp2Len:]):
				f.c.Truncated++
			case b[tp2Pkttype] != unix.PACKET_HOST:
				f.c.Ignored++
			default:
				tx.put(b[m-floorVnetLen:end], mac)
				f.c.Forwarded++
			}
			n++
			if next++; next == nframes {
				next = 0
			}
		}
		if n > 0 {
			tx.kick()
			// The frames were copied into TX slots: hand their RX slots back.
			for i, k := first, 0; k < n; k++ {
				ringStatus(mem[i*floorV2Frame:]).Store(unix.TP_STATUS_KERNEL)
				if i++; i == nframes {
					i = 0
				}
			}
			spinUntil = time.Time{}
			continue
		}
		// Nothing ready: spin a little (the next frame of a burst is
		// microseconds away), then sleep until a frame wakes us.
		now := time.Now()
		if spinUntil.IsZero() {
			spinUntil = now.Add(floorSpin)
		}
		if now.Before(spinUntil) {
			continue
		}
		spinUntil = time.Time{}
		_, _ = unix.Poll(pfds, 100)
	}
}

// put copies a virtio_net_hdr + frame into the next TX slot with the new
// MACs, waiting for a slot when the ring is full.
func (t *floorTx) put(b []byte, mac *[12]byte) {
	if len(b) > floorTxSlot-floorTxData || len(b) < floorVnetLen+14 {
		t.dropped++
		return
	}
	slot := t.mem[t.head*floorTxSlot : (t.head+1)*floorTxSlot]
	st := ringStatus(slot)
	if st.Load() != tpStatusAvailable {
		// Full: kick until the kernel has taken the slot (a kick can fail
		// with ENOBUFS and leave it at SEND_REQUEST) and freed it (on a
		// veth, when the receiver frees the skb).
		deadline := time.Now().Add(floorTxWait)
		for st.Load() != tpStatusAvailable {
			if time.Now().After(deadline) {
				t.dropped++
				return
			}
			t.queued = 1
			t.kick()
			if st.Load() != tpStatusAvailable {
				_, _ = unix.Poll(t.pfd[:], 1)
			}
		}
	}
	d := slot[floorTxData:]
	copy(d, b)
	copy(d[floorVnetLen:], mac[:])
	binary.NativeEndian.PutUint32(slot[tp2Len:], uint32(len(b)))
	st.Store(tpStatusSendRequest)
	t.queued++
	if t.head++; t.head == floorTxSlots {
		t.head = 0
	}
}

// kick sends every queued slot, without waiting.
func (t *floorTx) kick() {
	if t.queued == 0 {
		return
	}
	t.queued = 0
	_, _, _ = unix.Syscall6(unix.SYS_SENDTO, uintptr(t.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
}

func openFloorRX(ifindex int, ring FloorRing) (_ int, _ []byte, err error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("bench: floor: socket: %w", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	ver := unix.TPACKET_V3
	if ring == FloorV2 {
		ver = unix.TPACKET_V2
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, ver); err != nil {
		return -1, nil, fmt.Errorf("bench: floor: PACKET_VERSION: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return -1, nil, fmt.Errorf("bench: floor: PACKET_VNET_HDR: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return -1, nil, fmt.Errorf("bench: floor: PACKET_IGNORE_OUTGOING: %w", err)
	}
	switch ring {
	case FloorV3:
		req := unix.TpacketReq3{Block_size: floorBlockBytes, Block_nr: floorBlocks, Frame_size: 2048,
			Frame_nr: floorBlockBytes / 2048 * floorBlocks, Retire_blk_tov: 1}
		err = unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req)
	case FloorV2:
		req := unix.TpacketReq{Block_size: floorBlockBytes, Block_nr: floorV2Blocks, Frame_size: floorV2Frame,
			Frame_nr: floorBlockBytes / floorV2Frame * floorV2Blocks}
		err = unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req)
	default:
		return -1, nil, errors.New("bench: floor: no ring version")
	}
	if err != nil {
		return -1, nil, fmt.Errorf("bench: floor: PACKET_RX_RING: %w", err)
	}
	blocks := floorBlocks
	if ring == FloorV2 {
		blocks = floorV2Blocks
	}
	mem, err := unix.Mmap(fd, 0, floorBlockBytes*blocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return -1, nil, fmt.Errorf("bench: floor: mmap: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		unix.Munmap(mem)
		return -1, nil, fmt.Errorf("bench: floor: bind: %w", err)
	}
	return fd, mem, nil
}

func openFloorTX(ifindex int) (_ *floorTx, err error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("bench: floor: socket: %w", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	for _, o := range []struct{ level, opt, v int }{
		{unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1},
		{unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 64 << 20},
		{unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2},
		{unix.SOL_PACKET, unix.PACKET_LOSS, 1}, // skip a malformed slot rather than stop the ring
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return nil, fmt.Errorf("bench: floor: setsockopt %d: %w", o.opt, err)
		}
	}
	req := unix.TpacketReq{Block_size: floorTxSlot * 16, Block_nr: floorTxSlots / 16, Frame_size: floorTxSlot, Frame_nr: floorTxSlots}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
		return nil, fmt.Errorf("bench: floor: PACKET_TX_RING: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, floorTxSlot*floorTxSlots, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("bench: floor: mmap: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("bench: floor: bind: %w", err)
	}
	t := &floorTx{fd: fd, mem: mem}
	t.pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT}
	return t, nil
}
