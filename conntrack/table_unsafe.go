package conntrack

import "unsafe"

// slotIndex returns the slot of e from its address, and false when e does not
// point at the start of an entry of t (a copy, or another table's entry).
// The arena never moves, so the address is stable while the table lives.
func (t *Table) slotIndex(e *Entry) (uint32, bool) {
	if len(t.entries) == 0 || e == nil {
		return 0, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(t.entries)))
	p := uintptr(unsafe.Pointer(e))
	if p < base {
		return 0, false
	}
	d := p - base
	if d%unsafe.Sizeof(Entry{}) != 0 || d/unsafe.Sizeof(Entry{}) >= uintptr(len(t.entries)) {
		return 0, false
	}
	return uint32(d / unsafe.Sizeof(Entry{})), true
}
