package conntrack

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The reference below is a transcription, as plain data, of the kernel's
// tcp_states and tcp_states_dos (net/netfilter/ipvs/ip_vs_proto_tcp.c,
// Linux 6.x), in the kernel's own layout: one row per flag, one column per
// current state. The implementation keeps the transposed layout; these tests
// check that the two agree cell by cell and over random packet sequences.
var refColumns = "sNO sES sSS sSR sFW sTW sCL sCW sLA sLI sSA"

var refTables = map[string][3]string{
	"normal": {
		/* INPUT */ `
syn sSR sES sES sSR sSR sSR sSR sSR sSR sSR sSR
fin sCL sCW sSS sTW sTW sTW sCL sCW sLA sLI sTW
ack sES sES sSS sES sFW sTW sCL sCW sCL sLI sES
rst sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sSR`,
		/* OUTPUT */ `
syn sSS sES sSS sSR sSS sSS sSS sSS sSS sLI sSR
fin sTW sFW sSS sTW sFW sTW sCL sTW sLA sLI sTW
ack sES sES sSS sES sFW sTW sCL sCW sLA sES sES
rst sCL sCL sSS sCL sCL sTW sCL sCL sCL sCL sCL`,
		/* INPUT-ONLY */ `
syn sSR sES sES sSR sSR sSR sSR sSR sSR sSR sSR
fin sCL sFW sSS sTW sFW sTW sCL sCW sLA sLI sTW
ack sES sES sSS sES sFW sTW sCL sCW sCL sLI sES
rst sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sCL`,
	},
	"secure": {
		/* INPUT */ `
syn sSR sES sES sSR sSR sSR sSR sSR sSR sSR sSA
fin sCL sCW sSS sTW sTW sTW sCL sCW sLA sLI sSA
ack sES sES sSS sSR sFW sTW sCL sCW sCL sLI sSA
rst sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sCL`,
		/* OUTPUT */ `
syn sSS sES sSS sSA sSS sSS sSS sSS sSS sLI sSA
fin sTW sFW sSS sTW sFW sTW sCL sTW sLA sLI sTW
ack sES sES sSS sES sFW sTW sCL sCW sLA sES sES
rst sCL sCL sSS sCL sCL sTW sCL sCL sCL sCL sCL`,
		/* INPUT-ONLY */ `
syn sSA sES sES sSR sSA sSA sSA sSA sSA sSA sSA
fin sCL sFW sSS sTW sFW sTW sCL sCW sLA sLI sTW
ack sES sES sSS sES sFW sTW sCL sCW sCL sLI sES
rst sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sCL`,
	},
}

var refNames = map[string]State{
	"sNO": StateNone, "sES": StateEstablished, "sSS": StateSynSent, "sSR": StateSynRecv,
	"sFW": StateFinWait, "sTW": StateTimeWait, "sCL": StateClose, "sCW": StateCloseWait,
	"sLA": StateLastAck, "sLI": StateListen, "sSA": StateSynack,
}

// refTable is the parsed reference: [flag row][current state] -> next.
type refTable map[string]map[State]State

func parseRef(t testing.TB, text string) refTable {
	t.Helper()
	cols := strings.Fields(refColumns)
	rt := refTable{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) != len(cols)+1 {
			t.Fatalf("bad reference row %q", line)
		}
		row := map[State]State{}
		for i, c := range cols {
			row[refNames[c]] = refNames[f[i+1]]
		}
		rt[f[0]] = row
	}
	return rt
}

// refNext is the reference set_tcp_state: flag priority rst, syn, fin, ack;
// no flag at all means CLOSE.
func refNext(rt refTable, cur State, flags uint8) State {
	var row string
	switch {
	case flags&TCPRst != 0:
		row = "rst"
	case flags&TCPSyn != 0:
		row = "syn"
	case flags&TCPFin != 0:
		row = "fin"
	case flags&TCPAck != 0:
		row = "ack"
	default:
		return StateClose
	}
	return rt[row][cur]
}

func allTCPStates() []State {
	var s []State
	for st := StateNone; st <= StateSynack; st++ {
		s = append(s, st)
	}
	return s
}

func TestTransitionTablesMatchReference(t *testing.T) {
	for _, mode := range []string{"normal", "secure"} {
		for ti, name := range []string{"input", "output", "input-only"} {
			t.Run(mode+"/"+name, func(t *testing.T) {
				rt := parseRef(t, refTables[mode][ti])
				for _, cur := range allTCPStates() {
					for flags := 0; flags < 64; flags++ {
						got := nextTCPState(mode == "secure", ti, cur, uint8(flags))
						want := refNext(rt, cur, uint8(flags))
						if got != want {
							t.Errorf("%s %s flags %#x: got %s want %s", name, cur, flags, got, want)
						}
					}
				}
			})
		}
	}
}

// TestTCPDifferential drives Table.TCP with random packets, directions and
// clock steps and checks state and deadline against the reference, for DR
// (input only) and NAT (two directions) entries.
func TestTCPDifferential(t *testing.T) {
	for _, secure := range []bool{false, true} {
		for _, nat := range []bool{false, true} {
			name := map[bool]string{false: "dr", true: "nat"}[nat]
			if secure {
				name += "/secure"
			}
			t.Run(name, func(t *testing.T) {
				mode := map[bool]string{false: "normal", true: "secure"}[secure]
				ref := [3]refTable{}
				for i := range ref {
					ref[i] = parseRef(t, refTables[mode][i])
				}
				tab, err := New(Config{Capacity: 16, SecureTCP: secure, Seed: 1})
				if err != nil {
					t.Fatal(err)
				}
				to := DefaultTimeouts()
				rng := rand.New(rand.NewPCG(1, 2))
				flagSet := []uint8{TCPSyn, TCPSyn | TCPAck, TCPAck, TCPFin | TCPAck, TCPFin, TCPRst, TCPRst | TCPAck, TCPPsh | TCPAck, 0, TCPPsh}
				for run := 0; run < 200; run++ {
					now := rng.Uint32() // includes wrap-around cases
					e := Entry{Key: Key{Client: Map4([4]byte{10, 0, 0, 1}), CPort: uint16(run), VIP: Map4([4]byte{10, 0, 0, 9}), VPort: 80, Proto: ProtoTCP}}
					if nat {
						e.Flags = FlagNAT
					}
					p, ok := tab.Insert(&e, now)
					if !ok || p.State != StateNone || p.Expires != now+to.None {
						t.Fatalf("insert: %+v %v", p, ok)
					}
					state, outputSeen := StateNone, false
					for step := 0; step < 40; step++ {
						now += rng.Uint32N(5000)
						dir := DirInput
						if nat && rng.IntN(2) == 0 {
							dir = DirOutput
						}
						if !nat && rng.IntN(20) == 0 {
							dir = DirOutput // a DR reply seen after all
						}
						fl := flagSet[rng.IntN(len(flagSet))]
						tbl := 0
						switch {
						case dir == DirOutput:
							tbl, outputSeen = 1, true
						case !nat && !outputSeen:
							tbl = 2
						}
						want := refNext(ref[tbl], state, fl)
						old, got := tab.TCP(p, dir, fl, now)
						if old != state || got != want || p.State != want {
							t.Fatalf("run %d step %d %s flags %#x from %s: got %s want %s", run, step, dir, fl, state, got, want)
						}
						if p.Expires != now+to.Of(want) {
							t.Fatalf("expires %d want %d", p.Expires, now+to.Of(want))
						}
						if tab.Lookup(&p.Key) != p {
							t.Fatal("lookup lost the entry before its timeout")
						}
						state = want
					}
					tab.Tick(p.Expires)
					if tab.Lookup(&p.Key) != nil {
						t.Fatal("entry visible at its deadline")
					}
					tab.Delete(p)
				}
			})
		}
	}
}

func TestTCPScenarios(t *testing.T) {
	type pkt struct {
		dir   Dir
		flags uint8
		want  State
	}
	tests := []struct {
		name string
		nat  bool
		pkts []pkt
	}{
		{"dr handshake and close", false, []pkt{
			{DirInput, TCPSyn, StateSynRecv},
			{DirInput, TCPAck, StateEstablished},
			{DirInput, TCPFin | TCPAck, StateFinWait},
			{DirInput, TCPAck, StateFinWait},
		}},
		{"nat handshake and close", true, []pkt{
			{DirInput, TCPSyn, StateSynRecv},
			{DirOutput, TCPSyn | TCPAck, StateSynRecv},
			{DirInput, TCPAck, StateEstablished},
			{DirInput, TCPFin | TCPAck, StateCloseWait},
			{DirOutput, TCPFin | TCPAck, StateTimeWait},
			{DirInput, TCPAck, StateTimeWait},
		}},
		{"nat server closes first", true, []pkt{
			{DirInput, TCPSyn, StateSynRecv},
			{DirOutput, TCPSyn | TCPAck, StateSynRecv},
			{DirInput, TCPAck, StateEstablished},
			{DirOutput, TCPFin | TCPAck, StateFinWait},
			{DirInput, TCPFin | TCPAck, StateTimeWait},
		}},
		{"rst on established", false, []pkt{
			{DirInput, TCPSyn, StateSynRecv},
			{DirInput, TCPAck, StateEstablished},
			{DirInput, TCPRst, StateClose},
		}},
		{"rst in syn_recv keeps it", false, []pkt{
			{DirInput, TCPSyn, StateSynRecv},
			{DirInput, TCPRst, StateSynRecv},
		}},
		{"no flags closes", false, []pkt{
			{DirInput, TCPSyn, StateSynRecv},
			{DirInput, 0, StateClose},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, _ := New(Config{Capacity: 4, Seed: 1})
			e := Entry{Key: Key{Proto: ProtoTCP, CPort: 1}}
			if tt.nat {
				e.Flags = FlagNAT
			}
			p, _ := tab.Insert(&e, 0)
			for i, k := range tt.pkts {
				if _, got := tab.TCP(p, k.dir, k.flags, uint32(i)); got != k.want {
					t.Fatalf("packet %d (%s %#x): got %s want %s", i, k.dir, k.flags, got, k.want)
				}
			}
		})
	}
}

func TestIsActive(t *testing.T) {
	active := map[State]bool{StateEstablished: true, StateSynSent: true, StateSynRecv: true, StateSynack: true}
	for s := StateInvalid; s < numStates; s++ {
		if IsActive(s) != active[s] {
			t.Errorf("IsActive(%s) = %v", s, IsActive(s))
		}
	}
}

func TestReusable(t *testing.T) {
	tests := []struct {
		name  string
		state State
		flags Flags
		proto uint8
		tcp   uint8
		want  bool
	}{
		{"time_wait syn", StateTimeWait, 0, ProtoTCP, TCPSyn, true},
		{"close syn", StateClose, FlagNAT, ProtoTCP, TCPSyn, true},
		{"fin_wait dr syn", StateFinWait, 0, ProtoTCP, TCPSyn, true},
		{"fin_wait nat syn", StateFinWait, FlagNAT, ProtoTCP, TCPSyn, false},
		{"fin_wait dr output seen", StateFinWait, FlagOutputSeen, ProtoTCP, TCPSyn, false},
		{"time_wait ack", StateTimeWait, 0, ProtoTCP, TCPAck, false},
		{"established syn", StateEstablished, 0, ProtoTCP, TCPSyn, false},
		{"syn_recv syn", StateSynRecv, 0, ProtoTCP, TCPSyn, false},
		{"udp", StateUDP, 0, ProtoUDP, TCPSyn, false},
		{"template", StateNone, FlagTemplate, ProtoTCP, TCPSyn, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Entry{Key: Key{Proto: tt.proto}, State: tt.state, Flags: tt.flags}
			if got := Reusable(e, tt.tcp); got != tt.want {
				t.Fatalf("got %v want %v", got, tt.want)
			}
		})
	}
}

func TestCreates(t *testing.T) {
	strict, _ := New(Config{Capacity: 1})
	sloppy, _ := New(Config{Capacity: 1, SloppyTCP: true})
	tests := []struct {
		proto         uint8
		flags         uint8
		strict, loose bool
	}{
		{ProtoTCP, TCPSyn, true, true},
		{ProtoTCP, TCPSyn | TCPAck, true, true},
		{ProtoTCP, TCPAck, false, true},
		{ProtoTCP, TCPSyn | TCPRst, false, false},
		{ProtoTCP, TCPRst, false, false},
		{ProtoUDP, 0, true, true},
	}
	for _, tt := range tests {
		if strict.Creates(tt.proto, tt.flags) != tt.strict || sloppy.Creates(tt.proto, tt.flags) != tt.loose {
			t.Errorf("Creates(%d, %#x) wrong", tt.proto, tt.flags)
		}
	}
}

func TestStateString(t *testing.T) {
	want := []string{"INVALID", "NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK", "UDP"}
	for i, w := range want {
		if got := State(i).String(); got != w {
			t.Errorf("State(%d) = %q want %q", i, got, w)
		}
	}
	if State(200).String() != "ERR!" {
		t.Error("out of range state")
	}
}

func TestTimeouts(t *testing.T) {
	d := DefaultTimeouts()
	if d.Established != 900000 || d.SynRecv != 60000 || d.UDP != 300000 || d.Close != 10000 || d.SynSent != 120000 {
		t.Fatalf("defaults %+v", d)
	}
	d.SetIPVS(100*time.Second, 0, -1)
	if d.Established != 100000 || d.FinWait != 120000 || d.UDP != 300000 {
		t.Fatalf("SetIPVS %+v", d)
	}
	d.SetIPVS(0, 30*time.Second, 20*time.Second)
	if d.Established != 100000 || d.FinWait != 30000 || d.UDP != 20000 {
		t.Fatalf("SetIPVS %+v", d)
	}
	tab, err := New(Config{Capacity: 2, Timeouts: Timeouts{Established: 5}})
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Timeouts(); got.Established != 5 || got.SynRecv != 60000 {
		t.Fatalf("partial timeouts not defaulted: %+v", got)
	}
	if _, err := New(Config{Timeouts: Timeouts{UDP: MaxTimeout + 1}}); err == nil {
		t.Fatal("accepted a timeout beyond MaxTimeout")
	}
	if _, err := New(Config{Capacity: -1}); err == nil {
		t.Fatal("accepted negative capacity")
	}
}
