package conntrack

import "testing"

// TestHashSpread checks that keys differing only in a few bits spread over
// the index: the mean displacement from home at load 1/2 must stay near
// linear probing's expected 0.5.
func TestHashSpread(t *testing.T) {
	n := 100_000
	tab, _ := New(Config{Capacity: n, Seed: 42})
	for i := 0; i < n; i++ {
		tab.Insert(&Entry{Key: ckey(i)}, 0)
	}
	total, worst := 0, 0
	for i := 0; i < n; i++ {
		k := ckey(i)
		h, _ := tab.home(tab.hashKey(&k, false))
		pos, _ := tab.mainSlotOf(tab.Lookup(&k))
		d := int((uint64(pos) + tab.nslots - h) % tab.nslots)
		total += d
		worst = max(worst, d)
	}
	if mean := float64(total) / float64(n); mean > 1 || worst > 100 {
		t.Fatalf("mean displacement %.2f, worst %d", mean, worst)
	}
}
