package bench

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// confineProcess pins every thread of this process to cpu and returns what
// puts every thread (those created since included) back on the CPUs the
// process had. During a run the bench's own goroutines (the prober, the
// polling of counters, the Go runtime's threads) then stay off the
// director's CPU, where they would compete with the forwarder under test;
// the threads that belong there (the floor's) pin themselves to it. New
// threads inherit the mask of the thread that creates them. Errors are
// ignored: a thread that ends while it is being pinned is no harm.
func confineProcess(cpu int) (restore func()) {
	var old unix.CPUSet
	if cpu < 0 || unix.SchedGetaffinity(0, &old) != nil {
		return func() {}
	}
	var set unix.CPUSet
	set.Set(cpu)
	eachThread(func(tid int) { _ = unix.SchedSetaffinity(tid, &set) })
	return func() { eachThread(func(tid int) { _ = unix.SchedSetaffinity(tid, &old) }) }
}

// eachThread calls fn with the id of every thread of this process.
func eachThread(fn func(tid int)) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			fn(tid)
		}
	}
}
