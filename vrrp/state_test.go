package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

var (
	t0    = time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	self  = netip.MustParseAddr("198.18.5.10")
	lower = netip.MustParseAddr("198.18.5.9")  // a peer with a lower address
	upper = netip.MustParseAddr("198.18.5.11") // a peer with a higher address
)

// step is one event of a scenario: at (from t0), either a timer, an advert (prio, from),
// start, stop, fault or a priority change, then the state and send expected.
type step struct {
	at       time.Duration
	ev       string // start, timer, advert, stop, fault, unfault, prio
	prio     uint8  // advert priority, or new priority for "prio"
	from     netip.Addr
	interval time.Duration // advert interval (0 = 1 s)
	want     State
	send     int // -1: no send; otherwise the priority sent
}

func run(t *testing.T, p Params, steps []step) *Machine {
	t.Helper()
	if p.Primary == (netip.Addr{}) {
		p.Primary = self
	}
	if p.AdvertInt == 0 {
		p.AdvertInt = time.Second
	}
	m := NewMachine(p)
	for i, s := range steps {
		now := t0.Add(s.at)
		var out Output
		switch s.ev {
		case "start":
			out = m.Start(now, false)
		case "timer":
			out = m.Timer(now)
		case "advert":
			iv := s.interval
			if iv == 0 {
				iv = time.Second
			}
			out = m.Receive(now, &Advert{Version: p.Version, VRID: p.VRID, Priority: s.prio, Interval: iv}, s.from)
		case "stop":
			out = m.Stop(now)
		case "fault":
			out = m.SetFault(now, true)
		case "unfault":
			out = m.SetFault(now, false)
		case "prio":
			out = m.SetPriority(now, s.prio)
		default:
			t.Fatalf("step %d: unknown event %q", i, s.ev)
		}
		if m.State() != s.want || out.To != s.want {
			t.Fatalf("step %d (%s at %v): state %v, want %v", i, s.ev, s.at, m.State(), s.want)
		}
		gotSend := -1
		if out.Send {
			gotSend = int(out.Priority)
		}
		if gotSend != s.send {
			t.Fatalf("step %d (%s at %v): sent %d, want %d", i, s.ev, s.at, gotSend, s.send)
		}
	}
	return m
}

const ms = time.Millisecond

func TestMachine(t *testing.T) {
	// v2, priority 100: skew = 156/256 s = 609.375 ms; master down = 3.609375 s.
	v2skew := 156 * time.Second / 256
	tests := []struct {
		name  string
		p     Params
		steps []step
	}{
		{"backup becomes master after master down", Params{Version: 2, Priority: 100}, []step{
			{at: 0, ev: "start", want: StateBackup, send: -1},
			{at: 3*time.Second + v2skew - 1, ev: "timer", want: StateBackup, send: -1},
			{at: 3*time.Second + v2skew, ev: "timer", want: StateMaster, send: 100},
			{at: 4*time.Second + v2skew - 1, ev: "timer", want: StateMaster, send: -1},
			{at: 4*time.Second + v2skew, ev: "timer", want: StateMaster, send: 100},
		}},
		{"adverts keep a backup", Params{Version: 2, Priority: 100}, []step{
			{at: 0, ev: "start", want: StateBackup, send: -1},
			{at: 3 * time.Second, ev: "advert", prio: 150, from: lower, want: StateBackup, send: -1},
			{at: 6 * time.Second, ev: "timer", want: StateBackup, send: -1},
			{at: 6*time.Second + v2skew, ev: "timer", want: StateMaster, send: 100},
		}},
		{"priority 0 takes over after skew only", Params{Version: 2, Priority: 100}, []step{
			{at: 0, ev: "start", want: StateBackup, send: -1},
			{at: time.Second, ev: "advert", prio: 150, from: lower, want: StateBackup, send: -1},
			{at: 2 * time.Second, ev: "advert", prio: 0, from: lower, want: StateBackup, send: -1},
			{at: 2*time.Second + v2skew - 1, ev: "timer", want: StateBackup, send: -1},
			{at: 2*time.Second + v2skew, ev: "timer", want: StateMaster, send: 100},
		}},
		{"v3 learns the master's interval", Params{Version: 3, Priority: 100}, []step{
			{at: 0, ev: "start", want: StateBackup, send: -1},
			// 3 × 500 ms + 156 × 500 ms / 256 = 1804.6875 ms.
			{at: time.Second, ev: "advert", prio: 200, from: lower, interval: 500 * ms, want: StateBackup, send: -1},
			{at: time.Second + 1804*ms, ev: "timer", want: StateBackup, send: -1},
			{at: time.Second + 1805*ms, ev: "timer", want: StateMaster, send: 100},
			// As master it advertises at its own interval.
			{at: 3*time.Second + 805*ms, ev: "timer", want: StateMaster, send: 100},
		}},
		{"v3 skew scales with the interval", Params{Version: 3, Priority: 100, AdvertInt: 2 * time.Second}, []step{
			// 3 × 2 s + 156 × 2 s / 256 = 7218.75 ms.
			{at: 0, ev: "start", want: StateBackup, send: -1},
			{at: 7218 * ms, ev: "timer", want: StateBackup, send: -1},
			{at: 7219 * ms, ev: "timer", want: StateMaster, send: 100},
		}},
		{"master yields to a higher priority", Params{Version: 2, Priority: 100, InitialMaster: true}, []step{
			{at: 0, ev: "start", want: StateBackup, send: -1},
			{at: 4 * time.Second, ev: "timer", want: StateMaster, send: 100},
			{at: 5 * time.Second, ev: "advert", prio: 99, from: upper, want: StateMaster, send: 100},
			{at: 5 * time.Second, ev: "advert", prio: 101, from: lower, want: StateBackup, send: 0},
		}},
		{"equal priority: higher address wins", Params{Version: 2, Priority: 100}, []step{
			{at: 0, ev: "start", want: StateBackup, send: -1},
			{at: 4 * time.Second, ev: "timer", want: StateMaster, send: 100},
			{at: 5 * time.Second, ev: "advert", prio: 100, from: lower, want: StateMaster, send: 100},
			{at: 5 * time.Second, ev: "advert", prio: 100, from: upper, want: StateBackup, send: 0},
		}},
		{"master answers a leaving master at once", Params{Version: 2, Priority: 100}, []step{
			{at: 0, ev: "start", want: StateBackup, send: -1},
			{at: 4 * time.Second, ev: "timer", want: StateMaster, send: 100},
			{at: 4*time.Second + 100*ms, ev: "advert", prio: 0, from: upper, want: StateMaster, send: 100},
		}},
		{"preempt: a higher backup discards a lower master", Params{Version: 2, Priority: 200}, []step{
			// skew 56/256 s = 218.75 ms.
			{at: 0, ev: "start", want: StateBackup, send: -1},
			{at: time.Second, ev: "advert", prio: 100, from: upper, want: StateBackup, send: -1},
			{at: 3*time.Second + 219*ms, ev: "timer", want: StateMaster, send: 200},
		}},
		{"nopreempt: a higher backup stays backup", Params{Version: 2, Priority: 200, NoPreempt: true}, []step{
			{at: 0, ev: "start", want: StateBackup, send: -1},
			{at: time.Second, ev: "advert", prio: 100, from: upper, want: StateBackup, send: -1},
			{at: 2 * time.Second, ev: "advert", prio: 100, from: upper, want: StateBackup, send: -1},
			{at: 5 * time.Second, ev: "timer", want: StateBackup, send: -1},
			{at: 5*time.Second + 219*ms, ev: "timer", want: StateMaster, send: 200},
		}},
		{"preempt_delay", Params{Version: 2, Priority: 200, PreemptDelay: 5 * time.Second}, []step{
			{at: 0, ev: "start", want: StateBackup, send: -1},
			{at: 1 * time.Second, ev: "advert", prio: 100, from: upper, want: StateBackup, send: -1},
			{at: 5 * time.Second, ev: "advert", prio: 100, from: upper, want: StateBackup, send: -1},
			// 6 s: the delay has passed, the advert is discarded; master down runs from 5 s.
			{at: 6 * time.Second, ev: "advert", prio: 100, from: upper, want: StateBackup, send: -1},
			{at: 8*time.Second + 218*ms, ev: "timer", want: StateBackup, send: -1},
			{at: 8*time.Second + 219*ms, ev: "timer", want: StateMaster, send: 200},
		}},
		{"owner with state master starts master", Params{Version: 2, Priority: 255, InitialMaster: true}, []step{
			{at: 0, ev: "start", want: StateMaster, send: 255},
			{at: time.Second, ev: "timer", want: StateMaster, send: 255},
		}},
		{"stop sends priority 0", Params{Version: 2, Priority: 255, InitialMaster: true}, []step{
			{at: 0, ev: "start", want: StateMaster, send: 255},
			{at: 500 * ms, ev: "stop", want: StateInit, send: 0},
		}},
		{"fault from master sends priority 0, recovers as backup", Params{Version: 2, Priority: 255, InitialMaster: true}, []step{
			{at: 0, ev: "start", want: StateMaster, send: 255},
			{at: 500 * ms, ev: "fault", want: StateFault, send: 0},
			{at: 10 * time.Second, ev: "timer", want: StateFault, send: -1},
			{at: 10 * time.Second, ev: "advert", prio: 100, from: upper, want: StateFault, send: -1},
			{at: 11 * time.Second, ev: "unfault", want: StateBackup, send: -1},
			// priority 255: skew 1/256 s.
			{at: 14*time.Second + 4*ms, ev: "timer", want: StateMaster, send: 255},
		}},
		{"tracking lowers a master's priority and it yields", Params{Version: 2, Priority: 150, InitialMaster: true}, []step{
			{at: 0, ev: "start", want: StateBackup, send: -1},
			{at: 4 * time.Second, ev: "timer", want: StateMaster, send: 150},
			{at: 4*time.Second + 10*ms, ev: "prio", prio: 50, want: StateMaster, send: 50},
			{at: 4*time.Second + 20*ms, ev: "advert", prio: 100, from: lower, want: StateBackup, send: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, tt.p, tt.steps) })
	}
}

// TestForce covers the sync-group moves.
func TestForce(t *testing.T) {
	p := Params{Version: 2, Priority: 100, AdvertInt: time.Second, Primary: self}
	m := NewMachine(p)
	m.Start(t0, false)
	if out := m.Force(t0, StateMaster); m.State() != StateMaster || !out.Send || out.Priority != 100 {
		t.Fatalf("force master from backup: %v %+v", m.State(), out)
	}
	if out := m.Force(t0, StateBackup); m.State() != StateBackup || !out.Send || out.Priority != 0 {
		t.Fatalf("force backup from master: %v %+v", m.State(), out)
	}
	m.Force(t0, StateFault)
	if out := m.Force(t0, StateMaster); m.State() != StateFault || out.Changed() {
		t.Fatalf("force master from fault: %v %+v", m.State(), out)
	}
	if got := m.Transitions(); got != 4 {
		t.Fatalf("transitions = %d, want 4", got)
	}
}

// TestSplitBrainHeal: two masters that hear each other again end with one master, which
// advertises at once and announces the VIPs again.
func TestSplitBrainHeal(t *testing.T) {
	hi := NewMachine(Params{Version: 2, Priority: 150, AdvertInt: time.Second, Primary: lower})
	lo := NewMachine(Params{Version: 2, Priority: 100, AdvertInt: time.Second, Primary: upper})
	for _, m := range []*Machine{hi, lo} {
		m.Start(t0, false)
		m.Timer(t0.Add(5 * time.Second))
		if m.State() != StateMaster {
			t.Fatal("not master after master down")
		}
	}
	now := t0.Add(5*time.Second + 300*ms)
	out := hi.Receive(now, &Advert{Version: 2, Priority: 100, Interval: time.Second}, upper)
	if hi.State() != StateMaster || !out.Send || out.Priority != 150 || !out.Announce {
		t.Fatalf("winner: %v %+v", hi.State(), out)
	}
	out = lo.Receive(now, &Advert{Version: 2, Priority: 150, Interval: time.Second}, lower)
	if lo.State() != StateBackup || !out.Send || out.Priority != 0 || lo.Master() != lower {
		t.Fatalf("loser: %v %+v", lo.State(), out)
	}
	// The other order: the loser yields first; its priority 0 makes the winner announce.
	out = hi.Receive(now, &Advert{Version: 2, Priority: 0, Interval: time.Second}, upper)
	if hi.State() != StateMaster || !out.Send || !out.Announce {
		t.Fatalf("winner after priority 0: %v %+v", hi.State(), out)
	}
}
