//go:build linux

package afpacket

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Offsets into struct tpacket_block_desc and struct tpacket_hdr_v1
// (include/uapi/linux/if_packet.h): version, offset_to_priv, then the v1 header.
const (
	blockStatusOff   = 8
	blockNumPktsOff  = 12
	blockFirstPktOff = 16
	blockDescLen     = 48
)

// blockStatus returns &block_status of the block starting at b. b must be at least
// blockDescLen bytes and 4-byte aligned (blocks are page aligned).
func blockStatus(b []byte) *uint32 {
	return (*uint32)(unsafe.Pointer(&b[blockStatusOff]))
}

// loadBlockStatus reads block_status with an atomic load: the kernel writes it from softirq context.
func loadBlockStatus(b []byte) uint32 { return atomic.LoadUint32(blockStatus(b)) }

// releaseBlock hands the block back to the kernel (TP_STATUS_KERNEL) with an atomic store, after
// every read of the block's frames.
func releaseBlock(b []byte) { atomic.StoreUint32(blockStatus(b), unix.TP_STATUS_KERNEL) }

// frameHdr3 returns the struct tpacket3_hdr at b[off:]. The caller has checked that
// off+unix.SizeofTpacket3Hdr <= len(b) and that off is 4-byte aligned.
func frameHdr3(b []byte, off int) *unix.Tpacket3Hdr {
	return (*unix.Tpacket3Hdr)(unsafe.Pointer(&b[off]))
}

// slotStatus returns &tp_status of a struct tpacket2_hdr TX slot starting at b.
func slotStatus(b []byte) *uint32 { return (*uint32)(unsafe.Pointer(&b[0])) }

func loadSlotStatus(b []byte) uint32     { return atomic.LoadUint32(slotStatus(b)) }
func storeSlotStatus(b []byte, v uint32) { atomic.StoreUint32(slotStatus(b), v) }

// slotHdr2 returns the struct tpacket2_hdr of a TX slot.
func slotHdr2(b []byte) *unix.Tpacket2Hdr { return (*unix.Tpacket2Hdr)(unsafe.Pointer(&b[0])) }

// sendmmsg wraps sendmmsg(2); x/sys/unix has the struct but no wrapper.
func sendmmsg(fd int, msgs []unix.Mmsghdr, flags int) (int, unix.Errno) {
	if len(msgs) == 0 {
		return 0, 0
	}
	n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])),
		uintptr(len(msgs)), uintptr(flags), 0, 0)
	return int(n), errno
}

// setIovec points iov at b.
func setIovec(iov *unix.Iovec, b []byte) {
	iov.Base = &b[0]
	iov.SetLen(len(b))
}

// setMsgIov points a msghdr at n iovecs starting at iov.
func setMsgIov(h *unix.Msghdr, iov *unix.Iovec, n int) {
	h.Iov = iov
	h.SetIovlen(n)
}

// setsockoptTpacketReq3 sets PACKET_RX_RING (or PACKET_TX_RING) with a struct tpacket_req3.
func setsockoptTpacketReq3(fd, opt int, req *unix.TpacketReq3) error {
	return unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, opt, req)
}

// recvFrame reads one frame from a packet socket's queue into b without blocking, with
// MSG_TRUNC so that n is the frame's real length even when b was too short, and writes the
// sender's link-layer address into sa. It allocates nothing (unix.Recvmsg would, for the
// address).
func recvFrame(fd int, b []byte, sa *unix.RawSockaddrLinklayer) (int, unix.Errno) {
	salen := uint32(unix.SizeofSockaddrLinklayer)
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_DONTWAIT|unix.MSG_TRUNC, uintptr(unsafe.Pointer(sa)), uintptr(unsafe.Pointer(&salen)))
	return int(n), errno
}
