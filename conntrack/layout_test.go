package conntrack

import (
	"encoding/binary"
	"runtime"
	"strconv"
	"testing"
	"unsafe"
)

// Layout benchmarks: the same open-addressing scheme as Table (uint32 index
// words with tag bits, load 1/2, linear probing) over entries of several
// sizes, IPv4 and IPv6-sized (16-byte addresses), to measure what an entry
// that shares one cache line (or straddles two) costs a lookup hit that then
// reads the fields the engine needs (service, real slot, state, deadline).
// They measure layouts only; Table itself is BenchmarkLookup.

type key4 struct {
	Client, VIP  [4]byte
	CPort, VPort uint16
	Proto        uint8
}

type key16 struct {
	Client, VIP  [16]byte
	CPort, VPort uint16
	Proto        uint8
}

func (k *key4) hash(s uint64) uint64 {
	x := uint64(binary.LittleEndian.Uint32(k.Client[:]))<<32 | uint64(binary.LittleEndian.Uint32(k.VIP[:]))
	y := uint64(k.CPort)<<32 | uint64(k.VPort)<<16 | uint64(k.Proto)
	const c1, c2 = 0x9e3779b97f4a7c15, 0xd6e8feb86659fd93
	return mix(mix(x^s, y^c1), s^c2)
}

func (k *key16) hash(s uint64) uint64 {
	const c1, c2 = 0x9e3779b97f4a7c15, 0xd6e8feb86659fd93
	a := mix(binary.LittleEndian.Uint64(k.Client[:])^s, binary.LittleEndian.Uint64(k.Client[8:])^c1)
	b := mix(binary.LittleEndian.Uint64(k.VIP[:])^a, binary.LittleEndian.Uint64(k.VIP[8:])^c2)
	y := uint64(k.CPort)<<32 | uint64(k.VPort)<<16 | uint64(k.Proto)
	return mix(b^y^s, c1^c2)
}

// v4, 44 bytes: today's Entry, straddling a line for 10 of 16 slots.
type ent4x44 struct {
	Key                     key4
	Real                    [4]byte
	RPort, Service, RealIdx uint16
	Expires, Ctl            uint32
	State, Flags, HopIf     uint8
	HopMAC                  [6]byte
}

// v4, 32 bytes: everything a request needs; ctl and the NAT hop (12 bytes)
// would sit in a parallel cold array.
type ent4x32 struct {
	Key                     key4
	Real                    [4]byte
	RPort, Service, RealIdx uint16
	Expires                 uint32
	State, Flags            uint8
}

// v4, 64 bytes: today's fields padded to a line.
type ent4x64 struct {
	ent4x44
	_ [20]byte
}

// v6, 80 bytes: today's fields with 16-byte addresses.
type ent16x80 struct {
	Key                     key16
	Real                    [16]byte
	RPort, Service, RealIdx uint16
	Expires, Ctl            uint32
	State, Flags, HopIf     uint8
	HopMAC                  [6]byte
}

// v6, 64 bytes: key and the request fields in one line; the real's address
// (checked through Service/RealIdx instead), ctl and the hop go cold.
type ent16x64 struct {
	Key                     key16
	RPort, Service, RealIdx uint16
	Expires                 uint32
	State, Flags            uint8
	_                       [12]byte
}

type layoutEntry[K any] interface {
	key() *K
	value() uint32
}

func (e *ent4x44) key() *key4   { return &e.Key }
func (e *ent4x32) key() *key4   { return &e.Key }
func (e *ent4x64) key() *key4   { return &e.Key }
func (e *ent16x80) key() *key16 { return &e.Key }
func (e *ent16x64) key() *key16 { return &e.Key }
func (e *ent4x44) value() uint32 {
	return e.Expires + uint32(e.Service+e.RealIdx+e.RPort) + uint32(e.State)
}
func (e *ent4x32) value() uint32 {
	return e.Expires + uint32(e.Service+e.RealIdx+e.RPort) + uint32(e.State)
}
func (e *ent4x64) value() uint32 {
	return e.Expires + uint32(e.Service+e.RealIdx+e.RPort) + uint32(e.State)
}
func (e *ent16x80) value() uint32 {
	return e.Expires + uint32(e.Service+e.RealIdx+e.RPort) + uint32(e.State)
}
func (e *ent16x64) value() uint32 {
	return e.Expires + uint32(e.Service+e.RealIdx+e.RPort) + uint32(e.State)
}
func (k *key4) set(i uint32) {
	binary.BigEndian.PutUint32(k.Client[:], i*2654435761)
	k.CPort = 40000
	k.Proto = 6
}
func (k *key16) set(i uint32) {
	binary.BigEndian.PutUint32(k.Client[12:], i*2654435761)
	k.CPort = 40000
	k.Proto = 6
}
func (k *key4) h(s uint64) uint64  { return k.hash(s) }
func (k *key16) h(s uint64) uint64 { return k.hash(s) }

type layoutKey[K any] interface {
	*K
	comparable
	set(uint32)
	h(uint64) uint64
}

type ltable[K comparable, E any, PK layoutKey[K], PE interface {
	*E
	layoutEntry[K]
}] struct {
	idx              []uint32
	ents             []E
	n                uint64
	idxMask, tagMask uint32
}

func newLTable[K comparable, E any, PK layoutKey[K], PE interface {
	*E
	layoutEntry[K]
}](n int) *ltable[K, E, PK, PE] {
	t := &ltable[K, E, PK, PE]{idx: make([]uint32, 2*n), ents: make([]E, n), n: uint64(2 * n)}
	b := uint(0)
	for 1<<b <= n {
		b++
	}
	t.idxMask = 1<<b - 1
	t.tagMask = ^t.idxMask
	for i := 0; i < n; i++ {
		PE(&t.ents[i]).key()
		k := PE(&t.ents[i]).key()
		PK(k).set(uint32(i))
		h := PK(k).h(layoutSeed)
		p, tag := (h>>32)*t.n>>32, uint32(h)&t.tagMask
		for t.idx[p] != 0 {
			if p++; p == t.n {
				p = 0
			}
		}
		t.idx[p] = tag | uint32(i+1)
	}
	return t
}

func (t *ltable[K, E, PK, PE]) lookup(k *K) PE {
	h := PK(k).h(layoutSeed)
	p, tag := (h>>32)*t.n>>32, uint32(h)&t.tagMask
	for {
		w := t.idx[p]
		if w == 0 {
			return nil
		}
		if w&t.tagMask == tag {
			e := PE(&t.ents[w&t.idxMask-1])
			if *e.key() == *k {
				return e
			}
		}
		if p++; p == t.n {
			p = 0
		}
	}
}

func benchLayout[K comparable, E any, PK layoutKey[K], PE interface {
	*E
	layoutEntry[K]
}](b *testing.B, n int) {
	runtime.GC()
	t := newLTable[K, E, PK, PE](n)
	var e E
	b.ReportMetric(float64(unsafe.Sizeof(e)), "B/entry")
	straddle := 0
	base := uintptr(unsafe.Pointer(&t.ents[0]))
	for i := 0; i < 64; i++ {
		if a := (base + uintptr(i)*unsafe.Sizeof(e)); a/64 != (a+unsafe.Sizeof(e)-1)/64 && unsafe.Sizeof(e) <= 64 {
			straddle++
		}
	}
	b.ReportMetric(float64(straddle)/64*100, "%straddle")
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuNanos()
	var sum uint32
	var k K
	j := uint32(0)
	for i := 0; i < b.N; i++ {
		j = (j + 7_919_993) % uint32(n)
		PK(&k).set(j)
		sum += t.lookup(&k).value()
	}
	sinkLayout = sum
	reportCPU(b, c0)
}

var sinkLayout uint32

const layoutSeed = 0x2d358dccaa6c78a5

// BenchmarkLayout is a lookup hit in random order per entry layout (v4 and
// IPv6-sized keys) at 1M and 4M entries.
func BenchmarkLayout(b *testing.B) {
	for _, n := range []int{1 << 20, 4 << 20} {
		name := strconv.Itoa(n>>20) + "M"
		b.Run("v4-44B/"+name, func(b *testing.B) { benchLayout[key4, ent4x44](b, n) })
		b.Run("v4-32B/"+name, func(b *testing.B) { benchLayout[key4, ent4x32](b, n) })
		b.Run("v4-64B/"+name, func(b *testing.B) { benchLayout[key4, ent4x64](b, n) })
		b.Run("v6-80B/"+name, func(b *testing.B) { benchLayout[key16, ent16x80](b, n) })
		b.Run("v6-64B/"+name, func(b *testing.B) { benchLayout[key16, ent16x64](b, n) })
	}
}

func TestLayoutSizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"v4-44", unsafe.Sizeof(ent4x44{}), 44}, {"v4-32", unsafe.Sizeof(ent4x32{}), 32},
		{"v4-64", unsafe.Sizeof(ent4x64{}), 64}, {"v6-80", unsafe.Sizeof(ent16x80{}), 80},
		{"v6-64", unsafe.Sizeof(ent16x64{}), 64},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d bytes", c.name, c.got)
		}
	}
}
