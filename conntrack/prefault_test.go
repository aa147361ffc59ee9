package conntrack

import "testing"

func TestPrefaultKeepsTableEmpty(t *testing.T) {
	tb, err := New(Config{Capacity: 10000})
	if err != nil {
		t.Fatal(err)
	}
	tb.Prefault()
	if tb.Len() != 0 {
		t.Fatalf("Len %d after Prefault", tb.Len())
	}
	k := Key{Client: Map4([4]byte{198, 18, 0, 1}), VIP: Map4([4]byte{198, 18, 0, 2}), CPort: 1, VPort: 80, Proto: ProtoTCP}
	if tb.Lookup(&k) != nil {
		t.Fatal("Prefault created an entry")
	}
	if _, ok := tb.Insert(&Entry{Key: k}, 1); !ok || tb.Lookup(&k) == nil {
		t.Fatal("table unusable after Prefault")
	}
}
