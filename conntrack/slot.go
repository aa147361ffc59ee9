package conntrack

// Slot returns the index of entry e in the table's arena, and false when e is not an
// entry of t (a copy, or another table's). The arena never moves, so a slot names an entry
// for as long as it lives; a caller may keep per-slot data beside the table (connection
// sync keeps each connection's packet count and when it was last sent). O(1): no probe.
func (t *Table) Slot(e *Entry) (uint32, bool) { return t.slotIndex(e) }
