package afpacket

// Heartbeat returns how many rounds the worker's loop has made. A running worker makes one
// at least every idlePoll (100 ms), busy or idle; a worker whose count stops has stalled.
// Safe to call from any goroutine.
func (w *Worker) Heartbeat() uint64 { return w.beats.Load() }
