package conntrack

import "testing"

func TestSlot(t *testing.T) {
	tb, err := New(Config{Capacity: 64})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	for i := range 10 {
		e, ok := tb.Insert(&Entry{Key: Key{Client: Map4([4]byte{1, 2, 3, byte(i)}), CPort: 1, VPort: 80, Proto: ProtoTCP}}, 0)
		if !ok {
			t.Fatal("insert")
		}
		s, ok := tb.Slot(e)
		if !ok || s >= uint32(tb.Capacity()) || seen[s] {
			t.Fatalf("slot %d %v", s, ok)
		}
		seen[s] = true
	}
	copyOf := Entry{}
	if _, ok := tb.Slot(&copyOf); ok {
		t.Fatal("a copy has a slot")
	}
}
