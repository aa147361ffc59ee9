package bench

import (
	"sync/atomic"
	"unsafe"
)

// ringStatus returns the tp_status word at the start of a TX ring frame. b
// is mmap'd ring memory, so the word is 4-byte aligned and outlives b's
// slice header; it is shared with the kernel and must be accessed
// atomically (STYLE.md, hot path rule 6).
func ringStatus(b []byte) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&b[0]))
}
