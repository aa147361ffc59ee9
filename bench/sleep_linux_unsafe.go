//go:build linux

package bench

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// threadSleep sleeps the calling thread (the generator's, locked and pinned)
// in nanosleep for d, at most genMaxSleep. It neither spins nor yields to the
// Go scheduler: runtime.Gosched or time.Sleep from a goroutine locked to its
// thread hand its P to another thread and back on every call (two futex
// wakeups, possibly on the director's CPU), and a spinning generator holds
// its CPU against the probes, the real servers' echo and the softirq work
// that share it, which delays them by up to a scheduler slice (milliseconds
// of p99 that belong to the harness, not to the forwarder). A raw system
// call keeps the P (RunBench adds Ps for the threads that hold one). The
// thread's timer slack is set to 1 us (setTimerSlack) so that a sleep ends
// close to when it is due; pacing catches up on lateness anyway (while frames
// are due, batches leave back to back).
func threadSleep(d time.Duration) {
	d = min(d, genMaxSleep)
	ts := unix.NsecToTimespec(d.Nanoseconds())
	_, _, _ = unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}
