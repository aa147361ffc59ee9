package bench

import (
	"testing"
	"time"
)

func TestOverloadTarget(t *testing.T) {
	rows := func(noLoss float64, steps ...[2]float64) *Results {
		r := &Results{Rows: []Row{{Candidate: "u", Test: "udp", Size: 64, NoLossPPS: noLoss}}}
		for i, s := range steps {
			name := []string{"overload-1x", "overload-2x", "overload-max"}[i]
			r.Rows = append(r.Rows, Row{Candidate: "u", Test: name, Size: 64, OfferedPPS: s[0], DeliveredPPS: s[1]})
		}
		return r
	}
	tests := []struct {
		name string
		res  *Results
		met  bool
	}{
		// The quiet run of 2026-12-06 14:07: the paced generator offered less than
		// the loss-free rate at "1x" and every frame arrived.
		{"offered below loss-free, all delivered", rows(172e3, [2]float64{160e3, 160e3}, [2]float64{193e3, 192e3}, [2]float64{203e3, 203e3}), true},
		{"saturated at loss-free", rows(100e3, [2]float64{100e3, 99e3}, [2]float64{200e3, 97e3}, [2]float64{300e3, 96e3}), true},
		{"below loss-free when overloaded", rows(100e3, [2]float64{100e3, 99e3}, [2]float64{200e3, 90e3}), false},
		{"loses what it was offered", rows(100e3, [2]float64{80e3, 70e3}), false},
		// Above the loss-free rate, but less than a lower offered load delivered: livelock.
		{"falls as the load rises", rows(100e3, [2]float64{100e3, 100e3}, [2]float64{200e3, 180e3}, [2]float64{300e3, 150e3}), false},
		// Steps are taken in the order of their offered load, not their names.
		{"unpaced offered less than 2x", rows(100e3, [2]float64{100e3, 100e3}, [2]float64{200e3, 150e3}, [2]float64{150e3, 148e3}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := overloadTarget(tt.res, "u")
			if !ok {
				t.Fatal("no target")
			}
			if got.Met != tt.met {
				t.Errorf("met = %v, want %v (%s)", got.Met, tt.met, got.Detail)
			}
		})
	}
	if _, ok := overloadTarget(rows(0), "u"); ok {
		t.Error("a target without a loss-free rate")
	}
}

func TestFillLatency(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Microsecond)
		}
		return out
	}
	var row Row
	fillLatency(&row, []probeResult{{rtts: ms(100, 110, 120, 130), lost: 1}, {rtts: ms(60, 70, 80, 90)}})
	if row.Probes != 5 || row.Lost != 1 || row.DirectProbes != 4 || row.DirectLost != 0 {
		t.Errorf("probes = %+v", row)
	}
	// Nearest rank: p50 of four is the third, p99 the fourth.
	if row.P50us != 120 || row.DirectP50us != 80 || row.AddedP50us != 40 || row.AddedP99us != 40 {
		t.Errorf("latency = %+v", row)
	}
	row = Row{}
	fillLatency(&row, []probeResult{{rtts: ms(100)}})
	if row.AddedP50us != 0 || row.DirectProbes != 0 || row.P50us != 100 {
		t.Errorf("without direct probes = %+v", row)
	}
}
