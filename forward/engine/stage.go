package engine

import (
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/packet"
)

// Batched connection lookups. On a big table a connection lookup is two dependent cache
// misses (index word, entry): about 200 ns at 1M entries, most of a packet's cost. Stage and
// Run let the backend hand the engine several frames before any is processed: Run first
// hashes the connection key of each frame that goes to a service and prefetches their index
// words and entries together (conntrack.Prefetch: the misses overlap), then handles the
// frames in order, each lookup starting from the hash already computed. Handle alone still
// works, frame by frame.

// stageCap is how many frames Run prefetches at once: two conntrack lookupChunks (16) of
// independent misses, enough to keep a core's 10-20 miss buffers busy, while the staged
// frames' headers (one or two cache lines each) stay in L1.
const stageCap = 32

// staged is a frame waiting in the stage, with its connection key and hash once Run has
// computed them (ok).
type staged struct {
	buf  []byte
	rxIf int
	key  conntrack.Key
	h    uint64
	ok   bool
	// svc and p are set for a frame to a service: the classification and parse hashStaged
	// did, which Run hands to handleStaged instead of doing them again.
	svc *Service
	p   packet.Packet
}

type stage struct {
	frames [stageCap]staged
	n      int // frames staged
	next   int // next frame Run handles
	hashed bool
	snap   *Snapshot // the snapshot hashStaged classified by
	hs     [stageCap]uint64
	hint   *staged // the frame Handle is processing from the stage, or nil
}

// Stage queues one received frame (as for Handle) and reports whether the stage is full, in
// which case the caller must call Run before staging more. The frame must stay valid until
// Run has handled it.
func (e *Engine) Stage(buf []byte, rxIf int) bool {
	s := &e.stage
	f := &s.frames[s.n]
	f.buf, f.rxIf, f.ok, f.svc = buf, rxIf, false, nil // p and key are written only with them
	s.n++
	return s.n == stageCap
}

// Run handles the staged frames in order after prefetching their connections. After each
// frame it stops early, returning true, if the batch is Full (as a backend checks after each
// Handle): the caller sends it and calls Run again.
// It returns false once the stage is empty.
func (e *Engine) Run() bool {
	s := &e.stage
	if !s.hashed {
		e.hashStaged()
	}
	for first := true; s.next < s.n; first = false {
		if !first && e.Full() {
			return true // the caller flushes; one frame per call at least, so Run progresses
		}
		f := &s.frames[s.next]
		s.next++
		if f.ok {
			s.hint = f
		}
		if f.svc != nil && s.snap == e.snap {
			e.handleStaged(f)
		} else {
			e.Handle(f.buf, f.rxIf)
		}
		s.hint = nil
	}
	s.n, s.next, s.hashed = 0, 0, false
	return false
}

// hashStaged computes the connection key and hash of every staged frame addressed to a
// service and prefetches them.
func (e *Engine) hashStaged() {
	s := &e.stage
	s.hashed = true
	s.snap = e.snap
	m := 0
	for i := 0; i < s.n; i++ {
		f := &s.frames[i]
		if len(f.buf) < packet.VnetHdrLen {
			continue
		}
		frame := f.buf[packet.VnetHdrLen:]
		p := &f.p // kept for handleStaged
		switch packet.ParseL3(frame, p) {
		case packet.ClassIPv4:
			if packet.ParseL4(frame, p) != packet.FaultNone {
				continue
			}
			if f.svc = e.snap.cls.service(p.Dst, p.Proto, p.DstPort); f.svc == nil {
				continue
			}
			f.key.Set4(p.Src, p.Dst, p.SrcPort, p.DstPort, p.Proto)
		case packet.ClassIPv6:
			if !e.snap.has6 || packet.ParseL4(frame, p) != packet.FaultNone || p.Proto == packet.ProtoICMPv6 && p.ICMPType == packet.ICMPv6NeighborSolicit {
				continue // a solicitation is handle6's before any service
			}
			if f.svc = e.snap.cls6.service(&p.Dst6, p.Proto, p.DstPort); f.svc == nil {
				continue
			}
			f.key = conntrack.Key{Client: p.Src6, VIP: p.Dst6, CPort: p.SrcPort, VPort: p.DstPort, Proto: p.Proto}
		default:
			continue
		}
		f.h = e.ct.Hash(&f.key)
		f.ok = true
		s.hs[m] = f.h
		m++
	}
	e.ct.Prefetch(s.hs[:m])
}

// lookupConn is request's connection lookup: from the hash Run computed for this frame, if it
// did, else from scratch. A miss leaves in e.spot where a new entry goes.
func (e *Engine) lookupConn(key *conntrack.Key) *conntrack.Entry {
	if f := e.stage.hint; f != nil && (key == &f.key || f.key.Equal(key)) {
		return e.ct.LookupSpotHash(key, f.h, &e.spot)
	}
	return e.ct.LookupSpot(key, &e.spot)
}

// handleStaged is Handle (or handle6) for a staged frame to a service (f.svc): hashStaged has
// parsed it, classified it and built its connection key by the snapshot still in use (Run
// checks; Begin comes between batches), so what Handle would do first again is taken from
// there: the parse (f.p), the service and the addresses (the key's).
func (e *Engine) handleStaged(f *staged) {
	e.pend.rx++
	e.vh.Decode(f.buf[:packet.VnetHdrLen])
	e.p = f.p
	e.src, e.dst = f.key.Client, f.key.VIP
	if e.snap.isStandby(e.dst) {
		e.Drop(DropVRRPBackup)
		return
	}
	e.request(f.buf, f.buf[packet.VnetHdrLen:], f.rxIf, f.svc)
}
