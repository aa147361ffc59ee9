package conntrack

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// model is the slow, obviously right reference: a slice of every entry the
// table holds, expired or not, searched linearly.
type model struct {
	cap  int
	abs  uint64 // time without wrap-around; now is its low 32 bits
	now  uint32
	to   Timeouts
	recs []*mrec
}

type mrec struct {
	e          Entry  // what the entry must hold
	p          *Entry // where the table keeps it
	dl         uint64 // deadline on the model's unwrapped clock
	outputSeen bool
}

func (m *model) live(r *mrec) bool { return m.abs < r.dl }

func (m *model) setDeadline(r *mrec, timeout uint32) {
	r.dl = m.abs + uint64(timeout)
	r.e.Expires = uint32(r.dl)
}

func (m *model) find(k Key) *mrec {
	for _, r := range m.recs {
		if r.e.Key == k && m.live(r) {
			return r
		}
	}
	return nil
}

func (m *model) findReply(proto uint8, c [16]byte, cp uint16, real [16]byte, rp uint16) *mrec {
	for _, r := range m.recs {
		if r.e.Flags&FlagNAT != 0 && r.e.Key.Proto == proto && r.e.Key.Client == c && r.e.Key.CPort == cp &&
			r.e.Real == real && r.e.RPort == rp && m.live(r) {
			return r
		}
	}
	return nil
}

// opReader turns fuzz bytes into bounded choices.
type opReader struct {
	b []byte
	r *rand.Rand
}

func (o *opReader) next() uint32 {
	if o.r != nil {
		return o.r.Uint32()
	}
	if len(o.b) == 0 {
		return 0
	}
	v := uint32(o.b[0])
	if len(o.b) >= 2 {
		v |= uint32(o.b[1]) << 8
	}
	o.b = o.b[min(2, len(o.b)):]
	return v
}

func (o *opReader) n(k uint32) uint32 { return o.next() % k }
func (o *opReader) done() bool        { return o.r == nil && len(o.b) == 0 }

// runModel applies ops steps read from src to a table and the model, and
// checks after every step that they agree.
func runModel(t testing.TB, src *opReader, capacity, steps int) {
	tab, err := New(Config{Capacity: capacity, Seed: uint64(capacity)*7 + 1})
	if err != nil {
		t.Fatal(err)
	}
	m := &model{cap: capacity, abs: 0xfff00000, now: 0xfff00000, to: DefaultTimeouts()} // wraps soon
	tab.Tick(m.now)
	ref := [3]refTable{}
	for i := range ref {
		ref[i] = parseRef(t, refTables["normal"][i])
	}
	out := make([]Entry, 64)
	key := func() Key {
		// A small key space, so that lookups hit and keys repeat.
		v := src.n(48)
		k := Key{Client: Map4([4]byte{10, 0, 0, byte(v % 6)}), CPort: uint16(1000 + v/6), VIP: Map4([4]byte{192, 0, 2, 1}), VPort: 80, Proto: ProtoTCP}
		if v%5 == 0 {
			k.Proto = ProtoUDP
		}
		return k
	}
	for step := 0; step < steps && !src.done(); step++ {
		switch op := src.n(8); op {
		case 0, 1: // insert
			k := key()
			e := Entry{Key: k, Real: Map4([4]byte{10, 1, 0, byte(src.n(3))}), RPort: 8080, Service: uint16(src.n(4)), HopIf: 1}
			if src.n(2) == 0 {
				e.Flags = FlagNAT
			}
			var p *Entry
			var ok bool
			if src.n(2) == 0 {
				p, ok = tab.Insert(&e, m.now)
			} else {
				// find-or-insert, reclaiming an expired entry when full
				var s Spot
				var gone Entry
				var reclaimed bool
				if q := tab.LookupSpot(&k, &s); q != nil {
					if w := m.find(k); w == nil || w.p != q {
						t.Fatalf("step %d: LookupSpot %+v disagrees with the model", step, k)
					}
				}
				p, ok, reclaimed = tab.Admit(&e, m.now, &s, &gone)
				expiredLeft := false
				for _, r := range m.recs {
					expiredLeft = expiredLeft || !m.live(r)
				}
				switch {
				case reclaimed:
					idx := -1
					for i, r := range m.recs {
						if r.e == gone && !m.live(r) {
							idx = i
							break
						}
					}
					if idx < 0 || len(m.recs) != m.cap {
						t.Fatalf("step %d: Admit reclaimed %+v, not an expired entry of a full model", step, gone)
					}
					m.recs = append(m.recs[:idx], m.recs[idx+1:]...)
				case len(m.recs) == m.cap && expiredLeft && m.cap <= reclaimScan && m.find(k) == nil:
					t.Fatalf("step %d: full table with expired entries refused %+v", step, k)
				}
			}
			dup := m.find(k)
			switch {
			case dup != nil:
				if ok || p != dup.p {
					t.Fatalf("step %d: insert of live key %+v: ok=%v", step, k, ok)
				}
			case len(m.recs) == m.cap:
				if ok || p != nil || !tab.Full() {
					t.Fatalf("step %d: insert into full table succeeded", step)
				}
			default:
				if !ok || p == nil {
					t.Fatalf("step %d: insert refused with %d/%d", step, len(m.recs), m.cap)
				}
				want := e
				want.State = StateNone
				if k.Proto != ProtoTCP {
					want.State = StateUDP
				}
				r := &mrec{e: want, p: p}
				m.setDeadline(r, m.to.Of(want.State))
				m.recs = append(m.recs, r)
			}
		case 2: // lookup, one and batched
			k := key()
			got, want := tab.Lookup(&k), m.find(k)
			if (got == nil) != (want == nil) || (want != nil && got != want.p) {
				t.Fatalf("step %d: lookup %+v: got %v want %v", step, k, got, want)
			}
			keys := make([]Key, src.n(40))
			for i := range keys {
				keys[i] = key()
			}
			res := make([]*Entry, len(keys))
			tab.LookupBatch(keys, res)
			for i := range keys {
				want := m.find(keys[i])
				if (res[i] == nil) != (want == nil) || (want != nil && res[i] != want.p) {
					t.Fatalf("step %d: batch lookup %d: got %v want %v", step, i, res[i], want)
				}
			}
		case 3: // reply lookup
			k := key()
			real := Map4([4]byte{10, 1, 0, byte(src.n(3))})
			got, want := tab.LookupReply(k.Proto, k.Client, k.CPort, real, 8080), m.findReply(k.Proto, k.Client, k.CPort, real, 8080)
			if (got == nil) != (want == nil) || (want != nil && got != want.p) {
				t.Fatalf("step %d: reply lookup: got %v want %v", step, got, want)
			}
		case 4: // delete a random live entry
			if len(m.recs) == 0 {
				continue
			}
			i := int(src.n(uint32(len(m.recs))))
			tab.Delete(m.recs[i].p)
			m.recs = append(m.recs[:i], m.recs[i+1:]...)
		case 5: // a packet on a random live entry
			if len(m.recs) == 0 {
				continue
			}
			r := m.recs[src.n(uint32(len(m.recs)))]
			if !m.live(r) {
				continue // the data plane would not find it
			}
			if r.e.Key.Proto != ProtoTCP {
				tab.Touch(r.p, m.now)
				m.setDeadline(r, m.to.UDP)
				break
			}
			flags := []uint8{TCPSyn, TCPAck, TCPFin | TCPAck, TCPRst, TCPSyn | TCPAck}[src.n(5)]
			dir := DirInput
			if r.e.Flags&FlagNAT != 0 && src.n(2) == 0 {
				dir = DirOutput
			}
			tbl := 0
			if dir == DirOutput {
				tbl = 1
				r.outputSeen = true
				r.e.Flags |= FlagOutputSeen
			} else if r.e.Flags&FlagNAT == 0 && !r.outputSeen {
				tbl = 2
			}
			r.e.State = refNext(ref[tbl], r.e.State, flags)
			m.setDeadline(r, m.to.Of(r.e.State))
			tab.TCP(r.p, dir, flags, m.now)
		case 6: // time passes, sometimes a lot
			d := src.n(4000)
			if src.n(4) == 0 {
				d *= 1000
			}
			m.abs += uint64(d)
			m.now = uint32(m.abs)
			tab.Tick(m.now)
		case 7: // sweep
			budget := int(src.n(uint32(2*capacity + 2)))
			n := tab.Expire(m.now, budget, out[:src.n(uint32(len(out)))])
			for _, got := range out[:n] {
				idx := -1
				for i, r := range m.recs {
					if r.e == got && !m.live(r) {
						idx = i
						break
					}
				}
				if idx < 0 {
					t.Fatalf("step %d: Expire reported %+v, not an expired entry of the model", step, got)
				}
				m.recs = append(m.recs[:idx], m.recs[idx+1:]...)
			}
		}
		check(t, step, tab, m)
	}
	// A full sweep leaves nothing expired behind.
	big := make([]Entry, capacity)
	n := tab.Expire(m.now, 2*capacity+1, big)
	for _, got := range big[:n] {
		for i, r := range m.recs {
			if r.e == got && !m.live(r) {
				m.recs = append(m.recs[:i], m.recs[i+1:]...)
				break
			}
		}
	}
	for _, r := range m.recs {
		if !m.live(r) {
			t.Fatalf("full sweep left expired %+v", r.e)
		}
	}
	check(t, -1, tab, m)
}

func check(t testing.TB, step int, tab *Table, m *model) {
	if tab.Len() != len(m.recs) {
		t.Fatalf("step %d: Len %d, model %d", step, tab.Len(), len(m.recs))
	}
	for _, r := range m.recs {
		if *r.p != r.e {
			t.Fatalf("step %d: entry %+v, model %+v", step, *r.p, r.e)
		}
	}
	n := 0
	tab.Range(func(*Entry) bool { n++; return true })
	if n != len(m.recs) {
		t.Fatalf("step %d: Range saw %d, model %d", step, n, len(m.recs))
	}
}

func TestTableAgainstModel(t *testing.T) {
	for _, capacity := range []int{1, 2, 7, 32, 100} {
		for seed := uint64(0); seed < 20; seed++ {
			src := &opReader{r: rand.New(rand.NewPCG(seed, uint64(capacity)))}
			runModel(t, src, capacity, 3000)
		}
	}
}

func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 2, 0})
	f.Add(binary.LittleEndian.AppendUint64(nil, 0x0706050403020100))
	seed := make([]byte, 512)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range seed {
		seed[i] = byte(r.Uint32())
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, ops []byte) {
		capacity := 1
		if len(ops) > 0 {
			capacity = int(ops[0]%16) + 1
			ops = ops[1:]
		}
		runModel(t, &opReader{b: ops}, capacity, 1<<30)
	})
}
