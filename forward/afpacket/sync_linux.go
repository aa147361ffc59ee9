//go:build linux

package afpacket

import "time"

// drainSync installs the sync records waiting for this worker (forward/engine/sync.go),
// between blocks: the table belongs to this goroutine alone.
func (w *Worker) drainSync() {
	if w.eng.SyncPending() {
		w.eng.Begin(w.snap.Load(), int64(time.Since(w.epoch)))
		w.eng.DrainSync()
	}
}
