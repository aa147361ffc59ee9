package sched

import "testing"

// TestPeekMatchesPickWithoutMoving checks that Peek names the real the next Pick returns
// and that peeking any number of times does not move rr or wrr.
func TestPeekMatchesPickWithoutMoving(t *testing.T) {
	reals := []RealSpec{
		{Addr: [4]byte{198, 18, 0, 1}, Port: 80, Weight: 3},
		{Addr: [4]byte{198, 18, 0, 2}, Port: 80, Weight: 0},
		{Addr: [4]byte{198, 18, 0, 3}, Port: 80, Weight: 2},
	}
	for _, k := range []Kind{KindRR, KindWRR, KindLC, KindWLC, KindSED, KindNQ, KindFO, KindOVF, KindDH, KindSH, KindMH} {
		t.Run(k.String(), func(t *testing.T) {
			tbl, err := Build(Spec{Kind: k, Reals: reals, MHTableSize: 251})
			if err != nil {
				t.Fatal(err)
			}
			loads := make([]Load, len(reals))
			ws := NewWorkerState(1)
			for n := 0; n < 20; n++ {
				f := Flow{Client: [4]byte{198, 19, 0, byte(n)}, ClientPort: uint16(1000 + n), VIP: [4]byte{198, 18, 0, 100}, Port: 80, Proto: 6}
				p1, exact := tbl.Peek(&f, loads)
				p2, _ := tbl.Peek(&f, loads)
				if !exact || p1 != p2 {
					t.Fatalf("peek %d: %d then %d (exact %v)", n, p1, p2, exact)
				}
				got := tbl.Pick(&f, loads, ws, 0)
				if got != p1 {
					t.Fatalf("flow %d: Peek said %d, Pick chose %d", n, p1, got)
				}
				if got >= 0 {
					loads[got].Add(1, 0, &reals[got])
				}
			}
		})
	}
}

func TestPeekNoneAvailable(t *testing.T) {
	tbl, err := Build(Spec{Kind: KindRR, Reals: []RealSpec{{Addr: [4]byte{198, 18, 0, 1}, Port: 80}}})
	if err != nil {
		t.Fatal(err)
	}
	if i, _ := tbl.Peek(&Flow{}, make([]Load, 1)); i != -1 {
		t.Fatalf("Peek with only a quiescent real = %d, want -1", i)
	}
}
