package afpacket

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/uvs-project/uvs/conntrack"
)

// A connection listing (uvs list --conns) is served by the worker that owns the table, between
// blocks, in bounded chunks: the control side posts a request holding a buffer it allocated,
// the worker copies at most len(buf) entries into it (conntrack.RangeFrom: no callback, no
// allocation) and signals; the control side appends the chunk and posts the next. A worker
// never stalls its ring for more than one chunk, whatever the table's size.

// dumpChunk is the most entries a worker copies per request: 2048 × 44 bytes = 88 KiB, a few
// microseconds of copying, about what one block of frames costs to process; a 1M-entry table
// takes 512 requests.
const dumpChunk = 2048

// dumpRequest asks a worker for one chunk of its connection table, from slot from. The worker
// sets n, next and end, then closes done; the control side reads them only after done.
type dumpRequest struct {
	from uint32
	buf  []conntrack.Entry
	n    int
	next uint32
	end  bool
	done chan struct{}
}

// serveDump serves the request posted in p, if any. Worker goroutine, between blocks. The
// compare-and-swap clears only the request it served: a newer one posted after a cancelled
// one stays for the next round.
func serveDump(p *atomic.Pointer[dumpRequest], t *conntrack.Table) {
	if req := p.Load(); req != nil {
		serveChunk(p, req, t)
	}
}

func serveChunk(p *atomic.Pointer[dumpRequest], req *dumpRequest, t *conntrack.Table) {
	req.n, req.next, req.end = t.RangeFrom(req.from, req.buf)
	p.CompareAndSwap(req, nil)
	close(req.done)
}

// requestDump collects a whole table chunk by chunk through p, calling wake after posting
// each request so an idle worker sees it at once. Control side.
func requestDump(ctx context.Context, p *atomic.Pointer[dumpRequest], wake func()) ([]conntrack.Entry, error) {
	var out []conntrack.Entry
	buf := make([]conntrack.Entry, dumpChunk)
	from := uint32(0)
	for {
		req := &dumpRequest{from: from, buf: buf, done: make(chan struct{})}
		if !p.CompareAndSwap(nil, req) {
			return nil, errors.New("forward: a connection dump is already running")
		}
		wake()
		select {
		case <-req.done:
		case <-ctx.Done():
			if !p.CompareAndSwap(req, nil) {
				<-req.done // the worker took it and finishes the chunk at once
			}
			return nil, fmt.Errorf("forward: connection dump: %w", ctx.Err())
		}
		out = append(out, req.buf[:req.n]...)
		if req.end {
			return out, nil
		}
		from = req.next
	}
}
