package sched

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"sync/atomic"
)

// Limits enforced by Build.
const (
	// MaxReals is the most real servers one Table holds; lookup tables store
	// real indexes as uint16.
	MaxReals = 1<<16 - 1
	// MaxWeight is the largest weight, as ipvsadm -w allows. It keeps the
	// cross-multiplied load comparisons (overhead*weight) inside int64.
	MaxWeight = 65535
	// DefaultMHTableSize is the Maglev table size when Spec.MHTableSize is 0.
	DefaultMHTableSize = 65537
	// MaxMHTableSize bounds Spec.MHTableSize.
	MaxMHTableSize = 1 << 24
	// MaxWRRSequence bounds the precomputed wrr sequence (sum of weight/gcd).
	MaxWRRSequence = 1 << 20
)

// Protocol numbers whose ports the -port flags hash, as ip_vs_sh_get_port.
const (
	protoTCP  = 6
	protoUDP  = 17
	protoSCTP = 132
)

// Build errors.
var (
	ErrKind          = errors.New("invalid scheduler kind")
	ErrFlags         = errors.New("scheduler flags do not apply to this scheduler")
	ErrTooManyReals  = errors.New("too many real servers")
	ErrWeight        = errors.New("weight out of range")
	ErrDuplicateReal = errors.New("duplicate real server")
	ErrThreshold     = errors.New("lower threshold is higher than upper threshold")
	ErrMHTableSize   = errors.New("mh table size must be a prime above the number of reals")
	ErrWRRTooLong    = errors.New("wrr sequence too long: weights/gcd sum too large")
)

// RealSpec describes one real server of a service.
type RealSpec struct {
	Addr   [4]byte // IPv4 address; hash input for mh and identity across rebuilds
	Port   uint16
	Weight int32  // 0 = quiescent: no new connections
	Upper  uint32 // upper connection threshold (ipvsadm -x), 0 = none
	Lower  uint32 // lower connection threshold (ipvsadm -y), 0 = none
}

// Spec describes a service's scheduler and its real servers.
type Spec struct {
	Kind        Kind
	Flags       Flags
	Reals       []RealSpec
	MHTableSize uint32 // Maglev table size, a prime; 0 means DefaultMHTableSize
	Seed        uint64 // mixed into the twos random draws
}

// Flow is the part of a new connection that schedulers look at.
type Flow struct {
	Client     [4]byte
	ClientPort uint16
	VIP        [4]byte // packet destination address (dh, lblc and lblcr key on it)
	Port       uint16  // packet destination port
	Proto      uint8
}

// Table is a built scheduler. It is immutable after Build except for the
// rr/wrr position, an atomic, so any number of workers may call Pick at once.
type Table struct {
	kind  Kind
	flags Flags
	gen   uint32 // identity of this build, checked by lblc/lblcr cache entries
	seed  uint64

	reals   []RealSpec
	weights []int32 // copy of reals[i].Weight, dense for the scan loops
	nAvail  int     // reals with weight > 0

	seq     []uint16 // rr: 0..n-1; wrr: the gcd-stepped sequence
	buckets []uint16 // dh/sh: 256 buckets; mh: the Maglev lookup table
	mhSize  uint32

	ident     []uint32 // open addressing: (addr,port) -> index+1, for cache remapping
	identMask uint32

	// pos is the rr/wrr position in seq, shared by all workers, and by the tables Rebuild
	// made from this one with the same sequence (see Rebuild).
	pos *cursor
}

// cursor is an rr/wrr position on a cache line of its own: every worker's pick writes it.
type cursor struct {
	_ [64]byte
	v atomic.Uint32
	_ [60]byte
}

var tableGen atomic.Uint32

// Kind returns the table's scheduler.
func (t *Table) Kind() Kind { return t.kind }

// Len returns the number of reals the table was built with.
func (t *Table) Len() int { return len(t.reals) }

// Build validates spec and builds its Table. It allocates and may take a few
// milliseconds (mh), so it runs off the packet path.
func Build(spec Spec) (*Table, error) {
	var errs []error
	if !spec.Kind.Valid() {
		errs = append(errs, fmt.Errorf("sched: build: %w: %d", ErrKind, spec.Kind))
	}
	allowed := Flags(0)
	switch spec.Kind {
	case KindSH:
		allowed = FlagSHFallback | FlagSHPort
	case KindMH:
		allowed = FlagMHFallback | FlagMHPort
	}
	if spec.Flags&^allowed != 0 {
		errs = append(errs, fmt.Errorf("sched: build %s: %w: %s", spec.Kind, ErrFlags, spec.Flags&^allowed))
	}
	n := len(spec.Reals)
	if n > MaxReals {
		errs = append(errs, fmt.Errorf("sched: build: %w: %d > %d", ErrTooManyReals, n, MaxReals))
		return nil, errors.Join(errs...)
	}
	for i, r := range spec.Reals {
		if r.Weight < 0 || r.Weight > MaxWeight {
			errs = append(errs, fmt.Errorf("sched: build: real %d: %w: %d", i, ErrWeight, r.Weight))
		}
		if r.Lower != 0 && r.Upper != 0 && r.Lower > r.Upper {
			errs = append(errs, fmt.Errorf("sched: build: real %d: %w", i, ErrThreshold))
		}
	}
	mhSize := spec.MHTableSize
	if spec.Kind == KindMH {
		if mhSize == 0 {
			mhSize = DefaultMHTableSize
		}
		if mhSize > MaxMHTableSize || !isPrime(mhSize) || int(mhSize) <= n {
			errs = append(errs, fmt.Errorf("sched: build: %w: %d", ErrMHTableSize, mhSize))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	t := &Table{
		kind:    spec.Kind,
		flags:   spec.Flags,
		gen:     tableGen.Add(1),
		seed:    spec.Seed,
		reals:   append([]RealSpec(nil), spec.Reals...),
		weights: make([]int32, n),
		mhSize:  mhSize,
		pos:     new(cursor),
	}
	for i, r := range spec.Reals {
		t.weights[i] = r.Weight
		if r.Weight > 0 {
			t.nAvail++
		}
	}
	if err := t.buildIdent(); err != nil {
		return nil, err
	}
	switch spec.Kind {
	case KindRR:
		t.seq = make([]uint16, n)
		for i := range t.seq {
			t.seq[i] = uint16(i)
		}
	case KindWRR:
		seq, err := wrrSequence(t.weights)
		if err != nil {
			return nil, err
		}
		t.seq = seq
	case KindDH:
		t.buckets = dhBuckets(n)
	case KindSH:
		t.buckets = shBuckets(t.weights)
	case KindMH:
		t.buckets = mhPopulate(t.reals, mhSize)
	}
	return t, nil
}

// buildIdent indexes reals by (addr, port) so that worker caches can find a
// real again in a rebuilt table. It rejects duplicate reals, as ipvsadm does.
func (t *Table) buildIdent() error {
	size := uint32(4)
	for size < uint32(2*len(t.reals)) {
		size <<= 1
	}
	t.ident = make([]uint32, size)
	t.identMask = size - 1
	for i, r := range t.reals {
		h := uint32(identHash(r.Addr, r.Port)) & t.identMask
		for t.ident[h] != 0 {
			o := &t.reals[t.ident[h]-1]
			if o.Addr == r.Addr && o.Port == r.Port {
				return fmt.Errorf("sched: build: real %d %v:%d: %w", i, r.Addr, r.Port, ErrDuplicateReal)
			}
			h = (h + 1) & t.identMask
		}
		t.ident[h] = uint32(i) + 1
	}
	return nil
}

// lookup returns the index of the real (addr, port), or -1.
func (t *Table) lookup(addr [4]byte, port uint16) int {
	h := uint32(identHash(addr, port)) & t.identMask
	for {
		v := t.ident[h]
		if v == 0 {
			return -1
		}
		if r := &t.reals[v-1]; r.Addr == addr && r.Port == port {
			return int(v - 1)
		}
		h = (h + 1) & t.identMask
	}
}

func identHash(a [4]byte, port uint16) uint64 {
	return mix64(uint64(be32(a))<<16 | uint64(port) | 1<<63)
}

// mix64 is the splitmix64 finaliser.
func mix64(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	z ^= z >> 31
	return z
}

func be32(a [4]byte) uint32 {
	return uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
}

func gcd(a, b int32) int32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func isPrime(n uint32) bool {
	if n < 2 {
		return false
	}
	for d := uint32(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// wrrSequence unrolls ip_vs_wrr_schedule: the current weight cw starts at the
// largest weight and steps down by the gcd of the weights; at each step every
// real whose weight is >= cw is picked in list order. Weights 4,3,2 give
// A A B A B C A B C.
func wrrSequence(w []int32) ([]uint16, error) {
	var g, mw int32
	var sum int64
	for _, x := range w {
		if x > 0 {
			g = gcd(x, g)
			mw = max(mw, x)
		}
	}
	if g == 0 {
		return nil, nil
	}
	for _, x := range w {
		if x > 0 {
			sum += int64(x / g)
		}
	}
	if sum > MaxWRRSequence {
		return nil, fmt.Errorf("sched: build wrr: %w: %d > %d", ErrWRRTooLong, sum, MaxWRRSequence)
	}
	seq := make([]uint16, 0, sum)
	for cw := mw; cw > 0; cw -= g {
		for i, x := range w {
			if x >= cw {
				seq = append(seq, uint16(i))
			}
		}
	}
	return seq, nil
}

// Hash bucket tables of ip_vs_dh.c and ip_vs_sh.c.
const (
	hashTabBits = 8
	hashTabSize = 1 << hashTabBits
	hashTabMask = hashTabSize - 1
)

// hash32 is the kernel's hash_32 (include/linux/hash.h).
func hash32(v uint32, bits uint) uint32 { return (v * 0x61C88647) >> (32 - bits) }

// dhBuckets is ip_vs_dh_reassign: buckets go to the reals in turn, one each,
// whatever their weight.
func dhBuckets(n int) []uint16 {
	if n == 0 {
		return nil
	}
	b := make([]uint16, hashTabSize)
	for i := range b {
		b[i] = uint16(i % n)
	}
	return b
}

// shBuckets is ip_vs_sh_reassign: each real takes as many consecutive buckets
// as its weight (at least one), round the list until 256 are filled.
func shBuckets(w []int32) []uint16 {
	if len(w) == 0 {
		return nil
	}
	b := make([]uint16, hashTabSize)
	d, count := 0, int32(0)
	for i := range b {
		b[i] = uint16(d)
		count++
		if count >= w[d] {
			d = (d + 1) % len(w)
			count = 0
		}
	}
	return b
}

// Maglev permutation seeds: any two fixed, different constants.
const (
	mhSeedOffset = 0x9e3779b97f4a7c15
	mhSeedSkip   = 0xc2b2ae3d27d4eb4f
	// mhTurnBits bounds a real's turns per round (ip_vs_mh_shift_weight), so
	// that a few large weights do not fill the table in one round.
	mhTurnBits = 8
)

// mhPopulate builds the Maglev lookup table (ip_vs_mh_populate, cilium
// pkg/maglev). Reals are taken sorted by (addr, port), so the table does not
// depend on their order in the Spec. Each real with weight > 0 fills
// weight/gcd (shifted down to mhTurnBits bits) slots per round; weight-0 reals
// get none.
func mhPopulate(reals []RealSpec, m uint32) []uint16 {
	type setup struct {
		idx        uint16
		perm, skip uint32
		turns      int32
	}
	var g, mw int32
	for _, r := range reals {
		if r.Weight > 0 {
			g = gcd(r.Weight, g)
			mw = max(mw, r.Weight)
		}
	}
	if g == 0 {
		return nil
	}
	shift := max(bits.Len32(uint32(mw/g))-mhTurnBits, 0)
	ds := make([]setup, 0, len(reals))
	for i, r := range reals {
		if r.Weight <= 0 {
			continue
		}
		id := uint64(be32(r.Addr))<<16 | uint64(r.Port)
		turns := (r.Weight / g) >> shift
		if turns == 0 {
			turns = 1
		}
		ds = append(ds, setup{
			idx:   uint16(i),
			perm:  uint32(mix64(id^mhSeedOffset) % uint64(m)),
			skip:  uint32(mix64(id^mhSeedSkip)%uint64(m-1)) + 1,
			turns: turns,
		})
	}
	sort.Slice(ds, func(a, b int) bool {
		ra, rb := &reals[ds[a].idx], &reals[ds[b].idx]
		if x, y := be32(ra.Addr), be32(rb.Addr); x != y {
			return x < y
		}
		return ra.Port < rb.Port
	})
	table := make([]uint16, m)
	filled := make([]uint64, (m+63)/64)
	n := uint32(0)
	for {
		for d := range ds {
			s := &ds[d]
			for range s.turns {
				c := s.perm
				for filled[c>>6]&(1<<(c&63)) != 0 {
					c += s.skip
					if c >= m {
						c -= m
					}
				}
				s.perm = c
				filled[c>>6] |= 1 << (c & 63)
				table[c] = s.idx
				if n++; n == m {
					return table
				}
			}
		}
	}
}

// MaskAddr returns a with all but its first bits bits cleared: the client part
// of a persistence template key (ipvsadm -M). bits is clamped to [0, 32].
func MaskAddr(a [4]byte, bits int) [4]byte {
	bits = min(max(bits, 0), 32)
	m := uint32(0)
	if bits > 0 {
		m = ^uint32(0) << (32 - bits)
	}
	v := be32(a) & m
	return [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// Rebuild is Build for a service whose previous table is prev (which may be
// nil). rr continues from prev's position, as ip_vs_rr keeps its cursor when
// reals change, instead of restarting at the first real after every health
// check flap. wrr restarts its sequence, as ip_vs_wrr_dest_changed resets its
// cursor to the list head.
//
// When the rr or wrr sequence is unchanged (the same reals in the same slots, for wrr with the
// same weights: a change elsewhere in the config, a flap that only changes an rr real's
// weight), the new table shares prev's cursor: workers still picking on prev until the new
// snapshot is published advance the same position, so no pick is repeated across the swap.
func Rebuild(prev *Table, spec Spec) (*Table, error) {
	t, err := Build(spec)
	if err != nil || prev == nil || prev.kind != t.kind || len(t.seq) == 0 {
		return t, err
	}
	if slices.Equal(prev.seq, t.seq) && sameIdentities(prev.reals, t.reals) {
		t.pos = prev.pos // rr or wrr with its sequence unchanged
		return t, nil
	}
	if t.kind != KindRR {
		return t, nil
	}
	if len(prev.reals) > 0 {
		next := prev.reals[prev.pos.v.Load()%uint32(len(prev.reals))]
		if i := t.lookup(next.Addr, next.Port); i >= 0 {
			t.pos.v.Store(uint32(i))
			return t, nil
		}
	}
	t.pos.v.Store(prev.pos.v.Load() % uint32(len(t.seq)))
	return t, nil
}

// sameIdentities reports whether a and b name the same reals (address and port) in the same
// slots.
func sameIdentities(a, b []RealSpec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Addr != b[i].Addr || a[i].Port != b[i].Port {
			return false
		}
	}
	return true
}
