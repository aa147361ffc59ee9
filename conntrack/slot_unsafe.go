package conntrack

import "unsafe"

// Slot returns the index of entry e in the table's arena, and false when e is not an
// entry of t (a copy, or another table's). The arena never moves, so a slot names an entry
// for as long as it lives; a caller may keep per-slot data beside the table (connection
// sync keeps when each connection was last sent). O(1): no probe.
func (t *Table) Slot(e *Entry) (uint32, bool) {
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
