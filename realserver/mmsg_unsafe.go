//go:build linux

package realserver

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr mirrors struct mmsghdr (include/linux/socket.h): a msghdr and the received length.
type mmsghdr struct {
	Hdr unix.Msghdr
	Len uint32
	_   [4]byte
}

// mmsgBatch is a preallocated recvmmsg batch: n buffers of size bytes, each with its iovec,
// which starts head bytes into the buffer (headroom the kernel does not write).
// The headers point into Go memory that the batch keeps alive; the kernel writes only during
// the system call.
type mmsgBatch struct {
	msgs []mmsghdr
	iovs []unix.Iovec
	bufs [][]byte
	head int
}

func newMMsgBatch(n, size, head int) *mmsgBatch {
	b := &mmsgBatch{msgs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n), bufs: make([][]byte, n), head: head}
	size += head
	mem := make([]byte, n*size)
	for i := range b.msgs {
		b.bufs[i] = mem[i*size : (i+1)*size : (i+1)*size]
		b.iovs[i].Base = &b.bufs[i][head]
		b.iovs[i].SetLen(size - head)
		b.msgs[i].Hdr.Iov = &b.iovs[i]
		b.msgs[i].Hdr.SetIovlen(1)
	}
	return b
}

// recv fills the batch with up to len(msgs) datagrams without blocking and returns how many.
func (b *mmsgBatch) recv(fd int) (int, error) {
	for i := range b.msgs {
		b.msgs[i].Len = 0
		b.msgs[i].Hdr.Flags = 0
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.msgs[0])),
		uintptr(len(b.msgs)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// packet returns datagram i of the last recv, headroom included; a truncated one (MSG_TRUNC)
// comes back empty.
func (b *mmsgBatch) packet(i int) []byte {
	m := &b.msgs[i]
	if m.Hdr.Flags&unix.MSG_TRUNC != 0 || b.head+int(m.Len) > len(b.bufs[i]) {
		return nil
	}
	return b.bufs[i][:b.head+int(m.Len)]
}
