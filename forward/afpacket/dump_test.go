package afpacket

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/uvs-project/uvs/conntrack"
)

func dumpTable(t *testing.T, n int) *conntrack.Table {
	tab, err := conntrack.New(conntrack.Config{Capacity: n + 10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		e := conntrack.Entry{Key: conntrack.Key{Client: conntrack.Map4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), CPort: 1000, VIP: conntrack.Map4([4]byte{192, 0, 2, 1}), VPort: 80, Proto: conntrack.ProtoTCP}}
		if _, ok := tab.Insert(&e, 0); !ok {
			t.Fatal("insert refused")
		}
	}
	return tab
}

// TestDumpInChunks serves a listing of a table larger than several chunks from a goroutine
// standing in for the worker, which serves at most one chunk per "block".
func TestDumpInChunks(t *testing.T) {
	const n = 3*dumpChunk + 17
	tab := dumpTable(t, n)
	var p atomic.Pointer[dumpRequest]
	wake := make(chan struct{}, 1)
	stop := make(chan struct{})
	served := 0
	go func() {
		for {
			select {
			case <-wake:
			case <-stop:
				return
			}
			if p.Load() != nil {
				served++
			}
			serveDump(&p, tab)
		}
	}()
	defer close(stop)
	out, err := requestDump(context.Background(), &p, func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[conntrack.Key]bool{}
	for _, e := range out {
		seen[e.Key] = true
	}
	if len(out) != n || len(seen) != n {
		t.Fatalf("listed %d entries (%d distinct), want %d", len(out), len(seen), n)
	}
	if served != 4 {
		t.Fatalf("%d chunks served, want 4", served)
	}
}

// TestDumpClearsOnlyItsRequest: a worker finishing a request the control side already gave up
// on must not wipe a newer request posted meanwhile (it used to Store(nil)).
func TestDumpClearsOnlyItsRequest(t *testing.T) {
	tab := dumpTable(t, 10)
	var p atomic.Pointer[dumpRequest]
	old := &dumpRequest{buf: make([]conntrack.Entry, 4), done: make(chan struct{})}
	p.Store(old)
	// The worker loaded old; the control side cancelled it and posted a new one.
	newer := &dumpRequest{buf: make([]conntrack.Entry, 4), done: make(chan struct{})}
	p.CompareAndSwap(old, nil)
	p.CompareAndSwap(nil, newer)
	serveChunk(&p, old, tab)
	if p.Load() != newer {
		t.Fatal("serving a stale request wiped the newer one")
	}
	serveDump(&p, tab)
	if p.Load() != nil || newer.n != 4 || newer.end {
		t.Fatalf("newer request: pending %v, %d entries, end %v", p.Load() != nil, newer.n, newer.end)
	}
}

// TestServeDumpAllocs: the worker's side of a listing allocates nothing.
func TestServeDumpAllocs(t *testing.T) {
	tab := dumpTable(t, 3000)
	buf := make([]conntrack.Entry, dumpChunk)
	reqs := make([]dumpRequest, 200)
	for i := range reqs {
		reqs[i] = dumpRequest{buf: buf, done: make(chan struct{})}
	}
	var p atomic.Pointer[dumpRequest]
	i := 0
	if a := testing.AllocsPerRun(100, func() {
		p.Store(&reqs[i])
		i++
		serveDump(&p, tab)
	}); a != 0 {
		t.Fatalf("%v allocations per chunk served", a)
	}
}
