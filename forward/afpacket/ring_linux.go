//go:build linux

package afpacket

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/forward/packet"
)

// RingConfig sizes one receive ring. The zero value means defaults.
type RingConfig struct {
	// Version is the ring layout: config.RXRingV2 (a slot per frame, a wakeup per frame) or
	// config.RXRingV3 (frames packed into blocks, a wakeup per block). Zero means
	// config.DefaultRXRing.
	Version config.RXRing
	// Spin is how long a worker whose rings hold a V2 ring keeps looking for the next frame
	// after the last one before it sleeps in poll(). A wakeup costs the sender's softirq a
	// scheduler call and the worker several microseconds; the next frame of a burst is
	// usually closer than that. Default 50 us: at a trickle of 50 requests per second that
	// is 0.25% of a CPU.
	Spin time.Duration
	// Solo says that this ring is the only one on its interface (one worker). Its fanout
	// group then uses PACKET_FANOUT_LB, which picks the only member without running a
	// steering program, instead of PACKET_FANOUT_CBPF. It stays in a group for
	// PACKET_FANOUT_FLAG_DEFRAG (the engine expects reassembled datagrams, engine/frag.go)
	// and PACKET_FANOUT_FLAG_IGNORE_OUTGOING.
	Solo bool
	// BlockBytes is the size of one ring block. A block must hold the largest frame veth hands
	// us: a 64 KiB GSO super-frame plus the 10-byte virtio_net_hdr and the 48-byte
	// tpacket3_hdr, so the minimum is 128 KiB; the default 256 KiB holds two such frames or
	// about 2000 minimum-size ones.
	BlockBytes int
	// Blocks is the number of blocks (default 32 for V3: 8 MiB per ring, enough to absorb a
	// burst of about 60000 small frames while the worker is busy with earlier blocks; 64 for
	// V2: 16 MiB, 8192 slots of 2 KiB).
	Blocks int
	// BlockTimeout is tp_retire_blk_tov: how long the kernel keeps a partly filled block
	// before handing it to the worker. It bounds the latency the ring adds at low rates.
	// Default 1 ms, the smallest value the kernel accepts.
	BlockTimeout time.Duration
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c RingConfig) WithDefaults() RingConfig {
	if c.BlockBytes == 0 {
		c.BlockBytes = 256 << 10
	}
	if c.Version == 0 {
		c.Version = config.DefaultRXRing
	}
	if c.Blocks == 0 {
		c.Blocks = 32
		if c.Version == config.RXRingV2 {
			// A V2 slot takes 2 KiB whatever the frame's size: 64 blocks (16 MiB) hold
			// 8192 frames, about 25 ms at 300,000 frames per second.
			c.Blocks = 64
		}
	}
	if c.BlockTimeout == 0 {
		c.BlockTimeout = time.Millisecond
	}
	if c.Spin == 0 {
		c.Spin = 50 * time.Microsecond
	}
	return c
}

// rxSlotBytes is a V2 receive slot: the tpacket2_hdr, sockaddr_ll and virtio_net_hdr (76
// bytes to the MAC header) and a frame of up to 1972 bytes, a 1500-byte MTU with room to
// spare. A larger frame (a GSO super-frame from veth, a jumbo frame) is truncated in its slot
// and marked TP_STATUS_COPY, and the kernel queues the whole frame on the socket
// (PACKET_COPY_THRESH), where the worker reads it with recvmsg, in order.
const rxSlotBytes = 2048

// rxCopyBytes is the buffer a TP_STATUS_COPY frame is read into: the virtio_net_hdr and
// a 64 KiB GSO super-frame with its link header.
const rxCopyBytes = packet.VnetHdrLen + 65535 + 14 + 4

// sllPkttypeOff2 is the offset of sll_pkttype in a V2 slot: the sockaddr_ll follows the
// tpacket2_hdr at TPACKET_ALIGN(32) = 32.
const sllPkttypeOff2 = 32 + 10

// minBlockBytes is the smallest block that holds a 64 KiB frame with its headers.
const minBlockBytes = 128 << 10

// rxFrameSize only satisfies packet_set_ring's checks: TPACKET_V3 packs frames of any size
// into a block, so tp_frame_size is not a real limit.
const rxFrameSize = 2048

// rxRing is one AF_PACKET socket with a TPACKET_V3 receive ring, bound to one interface and
// joined to that interface's fanout group. It is owned by one worker goroutine.
type rxRing struct {
	fd        int
	mem       []byte // the mmap'd ring; blocks are BlockBytes apart
	blockSize int
	blocks    int
	next      int // index of the next block (V3) or slot (V2) to read
	iface     int // interface slot (index into the director's interface list)
	v2        bool
	slots     int  // V2: slots in the ring
	solo      bool // RingConfig.Solo
}

// openRX creates the socket in the order the kernel requires: PACKET_VERSION and
// PACKET_VNET_HDR before PACKET_RX_RING (packet_setsockopt returns EBUSY afterwards), the
// ring before bind so that no frame is queued outside the ring, and fanout after bind.
func openRX(ifindex, iface int, cfg RingConfig) (_ *rxRing, err error) {
	cfg = cfg.WithDefaults()
	if cfg.BlockBytes < minBlockBytes || cfg.BlockBytes%unix.Getpagesize() != 0 {
		return nil, fmt.Errorf("forward: ring block size %d: must be a multiple of the page size and at least %d", cfg.BlockBytes, minBlockBytes)
	}
	// Protocol 0: the socket receives nothing until bind names ETH_P_ALL.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("forward: socket AF_PACKET: %w", err)
	}
	r := &rxRing{fd: fd, blockSize: cfg.BlockBytes, blocks: cfg.Blocks, iface: iface, v2: cfg.Version == config.RXRingV2, solo: cfg.Solo}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	version := unix.TPACKET_V3
	if r.v2 {
		version = unix.TPACKET_V2
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, version); err != nil {
		return nil, fmt.Errorf("forward: setsockopt PACKET_VERSION: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return nil, fmt.Errorf("forward: setsockopt PACKET_VNET_HDR: %w", err)
	}
	// Frames we (or anyone on this host) transmit are not ours to forward again.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return nil, fmt.Errorf("forward: setsockopt PACKET_IGNORE_OUTGOING: %w", err)
	}
	if r.v2 {
		// Frames too large for a slot are queued whole on the socket as well.
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_COPY_THRESH, 1); err != nil {
			return nil, fmt.Errorf("forward: setsockopt PACKET_COPY_THRESH: %w", err)
		}
		// The copies are charged to the receive buffer: room for a ring's worth of
		// super-frames.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
		r.slots = cfg.BlockBytes / rxSlotBytes * cfg.Blocks
		req := unix.TpacketReq{
			Block_size: uint32(cfg.BlockBytes),
			Block_nr:   uint32(cfg.Blocks),
			Frame_size: rxSlotBytes,
			Frame_nr:   uint32(r.slots),
		}
		if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
			return nil, fmt.Errorf("forward: setsockopt PACKET_RX_RING: %w", err)
		}
	} else {
		tov := uint32(cfg.BlockTimeout / time.Millisecond)
		if tov == 0 {
			tov = 1
		}
		req := unix.TpacketReq3{
			Block_size:     uint32(cfg.BlockBytes),
			Block_nr:       uint32(cfg.Blocks),
			Frame_size:     rxFrameSize,
			Frame_nr:       uint32(cfg.BlockBytes / rxFrameSize * cfg.Blocks),
			Retire_blk_tov: tov,
		}
		if err := setsockoptTpacketReq3(fd, unix.PACKET_RX_RING, &req); err != nil {
			return nil, fmt.Errorf("forward: setsockopt PACKET_RX_RING: %w", err)
		}
	}
	mem, err := unix.Mmap(fd, 0, cfg.BlockBytes*cfg.Blocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("forward: mmap rx ring: %w", err)
	}
	r.mem = mem
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("forward: bind ifindex %d: %w", ifindex, err)
	}
	return r, nil
}

func (r *rxRing) close() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
	if r.fd >= 0 {
		_ = unix.Close(r.fd)
		r.fd = -1
	}
}

// slot returns V2 slot i; slots are contiguous because BlockBytes is a multiple of
// rxSlotBytes.
func (r *rxRing) slot(i int) []byte { return r.mem[i*rxSlotBytes : (i+1)*rxSlotBytes] }

// ready returns the next block if the kernel has handed it to user space, or nil.
func (r *rxRing) ready() []byte {
	b := r.mem[r.next*r.blockSize : (r.next+1)*r.blockSize]
	if loadBlockStatus(b)&unix.TP_STATUS_USER == 0 {
		return nil
	}
	return b
}

// release returns the current block to the kernel and moves to the next one.
func (r *rxRing) release(b []byte) {
	releaseBlock(b)
	r.next++
	if r.next == r.blocks {
		r.next = 0
	}
}

// rxStats reads PACKET_STATISTICS (tpacket_stats, or tpacket_stats_v3 with the freeze count);
// the kernel resets them on each read.
func (r *rxRing) stats() (packets, drops, freezes uint32, err error) {
	if r.v2 {
		s, err := unix.GetsockoptTpacketStats(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("forward: getsockopt PACKET_STATISTICS: %w", err)
		}
		return s.Packets, s.Drops, 0, nil
	}
	s, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("forward: getsockopt PACKET_STATISTICS: %w", err)
	}
	return s.Packets, s.Drops, s.Freeze_q_cnt, nil
}

// joinFanout adds the socket to fanout group id (PACKET_FANOUT_CBPF). id 0 asks the kernel for
// a fresh unique id (PACKET_FANOUT_FLAG_UNIQUEID), which is returned for the other members.
// PACKET_FANOUT_FLAG_DEFRAG has the kernel reassemble IPv4 fragments before steering (see
// frag.go for the policy). PACKET_FANOUT_FLAG_IGNORE_OUTGOING keeps frames this host
// transmits out of the group: a fanout group's hook does not honour the sockets'
// PACKET_IGNORE_OUTGOING, and without the flag every frame a worker sends is copied back into
// a ring (dev_queue_xmit_nit) only to be skipped. Kernels before 4.20 lack the flag; then
// the group is joined without it (ignoreOut false) and workers skip those frames by type.
func (r *rxRing) joinFanout(id uint16, ignoreOut bool) (uint16, bool, error) {
	flags := unix.PACKET_FANOUT_CBPF | unix.PACKET_FANOUT_FLAG_DEFRAG
	if r.solo {
		flags = unix.PACKET_FANOUT_LB | unix.PACKET_FANOUT_FLAG_DEFRAG
	}
	if ignoreOut {
		flags |= unix.PACKET_FANOUT_FLAG_IGNORE_OUTGOING
	}
	arg := int(id) | flags<<16
	if id == 0 {
		arg |= unix.PACKET_FANOUT_FLAG_UNIQUEID << 16
	}
	err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_FANOUT, arg)
	if err == unix.EINVAL && ignoreOut && id == 0 {
		return r.joinFanout(id, false)
	}
	if err != nil {
		return 0, ignoreOut, fmt.Errorf("forward: setsockopt PACKET_FANOUT: %w", err)
	}
	if id != 0 {
		return id, ignoreOut, nil
	}
	v, err := unix.GetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
	if err != nil {
		return 0, ignoreOut, fmt.Errorf("forward: getsockopt PACKET_FANOUT: %w", err)
	}
	return uint16(v & 0xffff), ignoreOut, nil
}

// setFanoutProgram installs the steering program for the whole fanout group
// (PACKET_FANOUT_DATA); the kernel swaps it atomically under RCU.
func (r *rxRing) setFanoutProgram(prog []unix.SockFilter) error {
	if len(prog) == 0 || r.solo {
		return nil // a solo ring's group has no program (RingConfig.Solo)
	}
	fp := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(r.fd, unix.SOL_PACKET, unix.PACKET_FANOUT_DATA, &fp); err != nil {
		return fmt.Errorf("forward: setsockopt PACKET_FANOUT_DATA: %w", err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
