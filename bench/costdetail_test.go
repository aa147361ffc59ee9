//go:build linux

package bench

import (
	"strings"
	"testing"
)

// TestCostDetail checks the cost target's wording: the ratio is the floor's rate over uvs's,
// the thread times and CPU shares are beside it, and each unsaturated forwarder is named.
func TestCostDetail(t *testing.T) {
	uc := &Row{OfferedPPS: 200000, DeliveredPPS: 100000, ProcNsPerPkt: 2500}
	fc := &Row{OfferedPPS: 200000, DeliveredPPS: 150000, ProcNsPerPkt: 1600}
	d, ok := costDetail("uvs-afxdp-w1", "floor-afxdp", uc, fc)
	if !ok {
		t.Errorf("both saturated, got not comparable: %s", d)
	}
	for _, want := range []string{"cost 1.50x the floor's", "floor-afxdp 0.150 / uvs-afxdp-w1 0.100 Mpps",
		"own threads 2500 vs 1600 ns/pkt (1.56x)", "25% vs 24% of the CPU"} {
		if !strings.Contains(d, want) {
			t.Errorf("detail %q lacks %q", d, want)
		}
	}
	if strings.Contains(d, "not comparable") {
		t.Errorf("detail %q says not comparable", d)
	}
	// Different numbers of busy loops: each rate times loops+1.
	u4, f3 := *uc, *fc
	u4.CostLoops, f3.CostLoops = 4, 3
	d, _ = costDetail("uvs-afxdp-w1", "floor-afxdp", &u4, &f3)
	if want := "cost 1.20x the floor's (floor-afxdp 0.150 Mpps beside 3 busy loops / uvs-afxdp-w1 0.100 beside 4"; !strings.Contains(d, want) {
		t.Errorf("detail %q lacks %q", d, want)
	}
	uc.OfferedPPS = 101000 // carried 99%
	d, ok = costDetail("uvs-afxdp-w1", "floor-afxdp", uc, fc)
	if ok || !strings.Contains(d, "not comparable: uvs-afxdp-w1 carried 99% of the 0.101 Mpps offered") || strings.Contains(d, "floor-afxdp carried") {
		t.Errorf("uvs unsaturated: ok %v, detail %q", ok, d)
	}
}

// TestRoundRatios: the cost target lists each round's ratio and their median, skipping a
// round in which either forwarder was not saturated, and says nothing with one round.
func TestRoundRatios(t *testing.T) {
	row := func(cand string, delivered float64) Row {
		return Row{Candidate: cand, Test: costTest, Size: 64, OfferedPPS: 200000, DeliveredPPS: delivered}
	}
	rounds := [][]Row{
		{row("uvs", 100000), row("floor", 110000)},
		{row("uvs", 100000), row("floor", 130000)},
		{row("uvs", 100000), row("floor", 199000)}, // the floor carried 99.5%: not saturated
		{row("uvs", 100000), row("floor", 120000)},
	}
	if got, want := roundRatios(rounds, "uvs", "floor"), "; round by round 1.10x 1.30x 1.20x (median 1.20x)"; got != want {
		t.Errorf("roundRatios = %q, want %q", got, want)
	}
	if got := roundRatios(rounds[:1], "uvs", "floor"); got != "" {
		t.Errorf("one round: %q", got)
	}
}
