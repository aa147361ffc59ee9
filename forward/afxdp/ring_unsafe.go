//go:build linux

package afxdp

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is the part of an AF_XDP ring that every kind shares: the producer and consumer indexes
// and the flags word live in the mmap'ed area, and are read and written with atomic loads and
// stores (include/uapi/linux/if_xdp.h; the kernel side is net/xdp/xsk_queue.h).
type ring struct {
	mem      []byte
	producer *uint32
	consumer *uint32
	flags    *uint32
	mask     uint32
	size     uint32
}

// addrRing is a fill or completion ring: its entries are UMEM addresses (u64).
type addrRing struct {
	ring
	addrs []uint64
}

// descRing is an RX or TX ring: its entries are struct xdp_desc.
type descRing struct {
	ring
	descs []unix.XDPDesc
}

func (r *ring) loadProducer() uint32   { return atomic.LoadUint32(r.producer) }
func (r *ring) loadConsumer() uint32   { return atomic.LoadUint32(r.consumer) }
func (r *ring) storeProducer(v uint32) { atomic.StoreUint32(r.producer, v) }
func (r *ring) storeConsumer(v uint32) { atomic.StoreUint32(r.consumer, v) }
func (r *ring) needWakeup() bool       { return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0 }

// mapRing mmaps one ring of fd at pgoff with size entries of entBytes each, as described by
// off (from XDP_MMAP_OFFSETS).
func mapRing(fd int, pgoff int64, off unix.XDPRingOffset, size uint32, entBytes uintptr) (ring, unsafe.Pointer, error) {
	n := int(off.Desc) + int(size)*int(entBytes)
	mem, err := unix.Mmap(fd, pgoff, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return ring{}, nil, err
	}
	r := ring{
		mem:      mem,
		producer: (*uint32)(unsafe.Pointer(&mem[off.Producer])),
		consumer: (*uint32)(unsafe.Pointer(&mem[off.Consumer])),
		flags:    (*uint32)(unsafe.Pointer(&mem[off.Flags])),
		mask:     size - 1,
		size:     size,
	}
	return r, unsafe.Pointer(&mem[off.Desc]), nil
}

func mapAddrRing(fd int, pgoff int64, off unix.XDPRingOffset, size uint32) (*addrRing, error) {
	r, p, err := mapRing(fd, pgoff, off, size, 8)
	if err != nil {
		return nil, err
	}
	return &addrRing{ring: r, addrs: unsafe.Slice((*uint64)(p), size)}, nil
}

func mapDescRing(fd int, pgoff int64, off unix.XDPRingOffset, size uint32) (*descRing, error) {
	r, p, err := mapRing(fd, pgoff, off, size, unsafe.Sizeof(unix.XDPDesc{}))
	if err != nil {
		return nil, err
	}
	return &descRing{ring: r, descs: unsafe.Slice((*unix.XDPDesc)(p), size)}, nil
}

func (r *ring) unmap() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
}

// mmapOffsets reads XDP_MMAP_OFFSETS of fd.
func mmapOffsets(fd int) (unix.XDPMmapOffsets, error) {
	var off unix.XDPMmapOffsets
	l := uint32(unsafe.Sizeof(off))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return off, fmt.Errorf("afxdp: getsockopt XDP_MMAP_OFFSETS: %w", e)
	}
	return off, nil
}

// statistics reads XDP_STATISTICS of fd.
func statistics(fd int) (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	l := uint32(unsafe.Sizeof(st))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return st, e
	}
	return st, nil
}

// registerUMEM registers mem as the UMEM of fd (XDP_UMEM_REG) with chunkBytes chunks.
func registerUMEM(fd int, mem []byte, chunkBytes uint32) error {
	reg := unix.XDPUmemReg{
		Addr: uint64(uintptr(unsafe.Pointer(&mem[0]))),
		Len:  uint64(len(mem)),
		Size: chunkBytes,
	}
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_UMEM_REG,
		uintptr(unsafe.Pointer(&reg)), unsafe.Sizeof(reg), 0)
	if e != 0 {
		return e
	}
	return nil
}

// offsetIn returns the offset of b's first byte in mem, or -1 if b does not lie within mem.
// It is how a worker tells a frame it rewrote in place (in the UMEM) from one the engine
// built in its scratch.
func offsetIn(mem, b []byte) int {
	if len(b) == 0 || len(mem) == 0 {
		return -1
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < base || p+uintptr(len(b)) > base+uintptr(len(mem)) {
		return -1
	}
	return int(p - base)
}

// wakeTX kicks the kernel to transmit what the TX ring holds (copy mode sends only from
// sendto; need_wakeup asks for it in zero-copy mode too).
func wakeTX(fd int) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return e
}
