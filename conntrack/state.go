package conntrack

import "time"

// IP protocol numbers the table distinguishes.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// TCP header flag bits, as in byte 13 of the TCP header (RFC 9293).
const (
	TCPFin uint8 = 0x01
	TCPSyn uint8 = 0x02
	TCPRst uint8 = 0x04
	TCPPsh uint8 = 0x08
	TCPAck uint8 = 0x10
)

// State is the state of a connection. The TCP states are those of IPVS
// (IP_VS_TCP_S_*, include/uapi/linux/ip_vs.h); every other protocol uses the
// single StateUDP, as IPVS's UDP protocol has the single state "UDP".
type State uint8

// States. StateInvalid marks a free slot and is never the state of a live
// entry.
const (
	StateInvalid State = iota
	StateNone
	StateEstablished
	StateSynSent
	StateSynRecv
	StateFinWait
	StateTimeWait
	StateClose
	StateCloseWait
	StateLastAck
	StateListen
	StateSynack
	StateUDP

	numStates
)

// numTCPStates is IP_VS_TCP_S_LAST: the TCP states None..Synack.
const numTCPStates = int(StateSynack)

var stateNames = [numStates]string{
	StateInvalid:     "INVALID",
	StateNone:        "NONE",
	StateEstablished: "ESTABLISHED",
	StateSynSent:     "SYN_SENT",
	StateSynRecv:     "SYN_RECV",
	StateFinWait:     "FIN_WAIT",
	StateTimeWait:    "TIME_WAIT",
	StateClose:       "CLOSE",
	StateCloseWait:   "CLOSE_WAIT",
	StateLastAck:     "LAST_ACK",
	StateListen:      "LISTEN",
	StateSynack:      "SYNACK",
	StateUDP:         "UDP",
}

// String returns the state name as `ipvsadm -Lnc` prints it.
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "ERR!"
}

// IsTCP reports whether s is one of the TCP states.
func (s State) IsTCP() bool { return s >= StateNone && s <= StateSynack }

// IsActive reports whether a connection in state s counts as active for its
// real server (ipvsadm's ActiveConn), and otherwise as inactive (InActConn).
//
// This follows the current kernel, not the folklore "only ESTABLISHED is
// active": since Linux 4.8 (tcp_state_active_table in ip_vs_proto_tcp.c) the
// pre-established states SYN_SENT, SYN_RECV and SYNACK count as active too.
// New connections start inactive (IPVS sets IP_VS_CONN_F_INACTIVE on every
// new connection, ip_vs_ctl.c __ip_vs_update_dest) in state NONE, and UDP
// connections never leave the inactive count: udp_state_transition never
// touches the counters.
func IsActive(s State) bool {
	switch s {
	case StateEstablished, StateSynSent, StateSynRecv, StateSynack:
		return true
	}
	return false
}

// Dir is the direction of a packet relative to the client.
type Dir uint8

// Directions. DirInput is client to real server (the only direction the
// director sees for DR and TUN); DirOutput is real server to client, seen only
// for NAT.
const (
	DirInvalid Dir = iota
	DirInput
	DirOutput
)

// String returns "input" or "output".
func (d Dir) String() string {
	switch d {
	case DirInput:
		return "input"
	case DirOutput:
		return "output"
	}
	return "invalid"
}

// Flags are per-entry bits.
type Flags uint8

// Entry flags.
const (
	// FlagNAT marks a NAT (masquerading) connection: the table keeps it in the
	// reply index for LookupReply, and its TCP state uses the two-direction
	// tables from the first packet.
	FlagNAT Flags = 1 << iota
	// FlagTemplate marks a persistence template (IP_VS_CONN_F_TEMPLATE).
	FlagTemplate
	// FlagOnePacket marks a one-packet-scheduling UDP entry
	// (IP_VS_CONN_F_ONE_PACKET): it expires at once and no lookup returns it.
	FlagOnePacket
	// FlagAssured is set on a template once one of its connections reaches
	// ESTABLISHED, or sees a UDP reply (IP_VS_CTPL_S_ASSURED).
	FlagAssured
	// FlagOutputSeen is set when a non-NAT entry sees an output packet; from
	// then on it uses the two-direction tables (IPVS clears
	// IP_VS_CONN_F_NOOUTPUT the same way).
	FlagOutputSeen
	// FlagSynced marks an entry installed from a sync record (IP_VS_CONN_F_SYNC): a
	// backup's copy of the master's connection. Packets handled here clear nothing; a
	// newer record may replace it, which a local entry without the flag never is.
	FlagSynced

	// flagUnlinked marks a template the caller deleted while it still
	// controlled connections: it is out of the index and invisible, and its
	// slot is freed when the last connection goes (as IPVS's
	// ip_vs_check_template rehashes an invalid template out of reach).
	flagUnlinked Flags = 1 << 7
)

// tcpRow is the index of the TCP flag row, as tcp_state_idx in
// ip_vs_proto_tcp.c: RST wins over SYN, SYN over FIN, FIN over ACK.
func tcpRow(flags uint8) int {
	switch {
	case flags&TCPRst != 0:
		return 3
	case flags&TCPSyn != 0:
		return 0
	case flags&TCPFin != 0:
		return 1
	case flags&TCPAck != 0:
		return 2
	}
	return -1
}

// Transition tables, arranged by current state: for each state the next state
// on a SYN, FIN, ACK and RST packet, in that order. IPVS arranges the same
// transitions by flag row (tcp_states and tcp_states_dos in
// ip_vs_proto_tcp.c); the tests check these against a transcription of the
// kernel's layout.
type transitions [numTCPStates][4]State

const (
	nO = StateNone
	eS = StateEstablished
	sS = StateSynSent
	sR = StateSynRecv
	fW = StateFinWait
	tW = StateTimeWait
	cL = StateClose
	cW = StateCloseWait
	lA = StateLastAck
	lI = StateListen
	sA = StateSynack
)

var (
	// Client to server, two-direction (NAT) connections.
	tcpInput = transitions{
		/* NONE        */ {sR, cL, eS, cL},
		/* ESTABLISHED */ {eS, cW, eS, cL},
		/* SYN_SENT    */ {eS, sS, sS, cL},
		/* SYN_RECV    */ {sR, tW, eS, sR},
		/* FIN_WAIT    */ {sR, tW, fW, cL},
		/* TIME_WAIT   */ {sR, tW, tW, cL},
		/* CLOSE       */ {sR, cL, cL, cL},
		/* CLOSE_WAIT  */ {sR, cW, cW, cL},
		/* LAST_ACK    */ {sR, lA, cL, lA},
		/* LISTEN      */ {sR, lI, lI, lI},
		/* SYNACK      */ {sR, tW, eS, sR},
	}
	// Server to client.
	tcpOutput = transitions{
		/* NONE        */ {sS, tW, eS, cL},
		/* ESTABLISHED */ {eS, fW, eS, cL},
		/* SYN_SENT    */ {sS, sS, sS, sS},
		/* SYN_RECV    */ {sR, tW, eS, cL},
		/* FIN_WAIT    */ {sS, fW, fW, cL},
		/* TIME_WAIT   */ {sS, tW, tW, tW},
		/* CLOSE       */ {sS, cL, cL, cL},
		/* CLOSE_WAIT  */ {sS, tW, cW, cL},
		/* LAST_ACK    */ {sS, lA, lA, cL},
		/* LISTEN      */ {lI, lI, eS, cL},
		/* SYNACK      */ {sR, tW, eS, cL},
	}
	// Client to server when the director never sees the replies (DR, TUN).
	tcpInputOnly = transitions{
		/* NONE        */ {sR, cL, eS, cL},
		/* ESTABLISHED */ {eS, fW, eS, cL},
		/* SYN_SENT    */ {eS, sS, sS, cL},
		/* SYN_RECV    */ {sR, tW, eS, sR},
		/* FIN_WAIT    */ {sR, fW, fW, cL},
		/* TIME_WAIT   */ {sR, tW, tW, cL},
		/* CLOSE       */ {sR, cL, cL, cL},
		/* CLOSE_WAIT  */ {sR, cW, cW, cL},
		/* LAST_ACK    */ {sR, lA, cL, lA},
		/* LISTEN      */ {sR, lI, lI, lI},
		/* SYNACK      */ {sR, tW, eS, cL},
	}

	// The secure_tcp variants: a SYN flood leaves entries in SYNACK rather
	// than SYN_RECV, so they can be given a shorter timeout.
	tcpInputSecure = transitions{
		/* NONE        */ {sR, cL, eS, cL},
		/* ESTABLISHED */ {eS, cW, eS, cL},
		/* SYN_SENT    */ {eS, sS, sS, cL},
		/* SYN_RECV    */ {sR, tW, sR, sR},
		/* FIN_WAIT    */ {sR, tW, fW, cL},
		/* TIME_WAIT   */ {sR, tW, tW, cL},
		/* CLOSE       */ {sR, cL, cL, cL},
		/* CLOSE_WAIT  */ {sR, cW, cW, cL},
		/* LAST_ACK    */ {sR, lA, cL, lA},
		/* LISTEN      */ {sR, lI, lI, lI},
		/* SYNACK      */ {sA, sA, sA, cL},
	}
	tcpOutputSecure = transitions{
		/* NONE        */ {sS, tW, eS, cL},
		/* ESTABLISHED */ {eS, fW, eS, cL},
		/* SYN_SENT    */ {sS, sS, sS, sS},
		/* SYN_RECV    */ {sA, tW, eS, cL},
		/* FIN_WAIT    */ {sS, fW, fW, cL},
		/* TIME_WAIT   */ {sS, tW, tW, tW},
		/* CLOSE       */ {sS, cL, cL, cL},
		/* CLOSE_WAIT  */ {sS, tW, cW, cL},
		/* LAST_ACK    */ {sS, lA, lA, cL},
		/* LISTEN      */ {lI, lI, eS, cL},
		/* SYNACK      */ {sA, tW, eS, cL},
	}
	tcpInputOnlySecure = transitions{
		/* NONE        */ {sA, cL, eS, cL},
		/* ESTABLISHED */ {eS, fW, eS, cL},
		/* SYN_SENT    */ {eS, sS, sS, cL},
		/* SYN_RECV    */ {sR, tW, eS, sR},
		/* FIN_WAIT    */ {sA, fW, fW, cL},
		/* TIME_WAIT   */ {sA, tW, tW, cL},
		/* CLOSE       */ {sA, cL, cL, cL},
		/* CLOSE_WAIT  */ {sA, cW, cW, cL},
		/* LAST_ACK    */ {sA, lA, cL, lA},
		/* LISTEN      */ {sA, lI, lI, lI},
		/* SYNACK      */ {sA, tW, eS, cL},
	}
)

// Table selectors for nextTCPState.
const (
	tableInput = iota
	tableOutput
	tableInputOnly
)

var tcpTables = [2][3]*transitions{
	{&tcpInput, &tcpOutput, &tcpInputOnly},
	{&tcpInputSecure, &tcpOutputSecure, &tcpInputOnlySecure},
}

// nextTCPState is set_tcp_state's lookup: a packet with none of RST, SYN,
// FIN, ACK moves the connection to CLOSE, as in the kernel.
func nextTCPState(secure bool, table int, cur State, flags uint8) State {
	row := tcpRow(flags)
	if row < 0 || !cur.IsTCP() {
		return StateClose
	}
	s := 0
	if secure {
		s = 1
	}
	return tcpTables[s][table][cur-StateNone][row]
}

// Creates reports whether a packet of protocol proto with TCP flags tcpFlags
// may create a new connection when no entry matches. As tcp_conn_schedule in
// ip_vs_proto_tcp.c: a TCP packet needs SYN (or SloppyTCP) and no RST; ACK is
// not checked, so a SYN+ACK can be scheduled (active FTP). Every other
// protocol creates on any packet.
func (t *Table) Creates(proto uint8, tcpFlags uint8) bool {
	if proto != ProtoTCP {
		return true
	}
	return (tcpFlags&TCPSyn != 0 || t.sloppyTCP) && tcpFlags&TCPRst == 0
}

// Reusable reports whether a packet with tcpFlags that matched e should
// instead start a new connection: the caller deletes e (Delete, moving the
// real's counters) and schedules afresh, forwarding the same packet. This is
// IPVS's conn_reuse_mode (ip_vs_core.c is_new_conn, is_new_conn_expected)
// with bits 1 and 2 set: a SYN on a TCP entry in TIME_WAIT or CLOSE, or in
// FIN_WAIT when the director sees only the client side (DR/TUN, where
// FIN_WAIT is the last state it can observe). There is no conntrack to drop,
// so unlike kube-proxy's IPVS the SYN is never held back for a second.
//
// Persistence needs no special case: the caller reschedules through the
// template, which still names the same real server.
func Reusable(e *Entry, tcpFlags uint8) bool {
	if e == nil || e.Key.Proto != ProtoTCP || e.Flags&FlagTemplate != 0 || tcpFlags&TCPSyn == 0 {
		return false
	}
	switch e.State {
	case StateTimeWait, StateClose:
		return true
	case StateFinWait:
		return e.Flags&(FlagNAT|FlagOutputSeen) == 0
	}
	return false
}

// Timeouts holds the idle timeout of each state in milliseconds. A zero field
// means the IPVS default for that state.
type Timeouts struct {
	None        uint32
	Established uint32
	SynSent     uint32
	SynRecv     uint32
	FinWait     uint32
	TimeWait    uint32
	Close       uint32
	CloseWait   uint32
	LastAck     uint32
	Listen      uint32
	Synack      uint32
	UDP         uint32
}

// MaxTimeout is the largest timeout in milliseconds (about 12 days). It keeps
// every deadline within half the uint32 tick range, where the wrap-safe
// comparison of ticks is exact.
const MaxTimeout = 1 << 30

// DefaultTimeouts returns the IPVS defaults: tcp_timeouts in
// ip_vs_proto_tcp.c and udp_timeouts in ip_vs_proto_udp.c.
func DefaultTimeouts() Timeouts {
	const s = 1000
	return Timeouts{
		None:        2 * s,
		Established: 15 * 60 * s,
		SynSent:     2 * 60 * s,
		SynRecv:     60 * s,
		FinWait:     2 * 60 * s,
		TimeWait:    2 * 60 * s,
		Close:       10 * s,
		CloseWait:   60 * s,
		LastAck:     30 * s,
		Listen:      2 * 60 * s,
		Synack:      120 * s,
		UDP:         5 * 60 * s,
	}
}

// SetIPVS sets the timeouts that `ipvsadm --set tcp tcpfin udp` sets
// (ip_vs_ctl.c ip_vs_set_timeout): ESTABLISHED, FIN_WAIT and UDP. A zero or
// negative duration leaves that timeout unchanged, as ipvsadm's 0 does;
// durations are truncated to milliseconds and capped at MaxTimeout.
func (t *Timeouts) SetIPVS(tcp, tcpFin, udp time.Duration) {
	set := func(dst *uint32, d time.Duration) {
		if d <= 0 {
			return
		}
		ms := d.Milliseconds()
		if ms > MaxTimeout {
			ms = MaxTimeout
		}
		*dst = uint32(ms)
	}
	set(&t.Established, tcp)
	set(&t.FinWait, tcpFin)
	set(&t.UDP, udp)
}

// withDefaults returns t with zero fields replaced by defaults.
func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	pairs := [...]struct{ v, d *uint32 }{
		{&t.None, &d.None}, {&t.Established, &d.Established}, {&t.SynSent, &d.SynSent},
		{&t.SynRecv, &d.SynRecv}, {&t.FinWait, &d.FinWait}, {&t.TimeWait, &d.TimeWait},
		{&t.Close, &d.Close}, {&t.CloseWait, &d.CloseWait}, {&t.LastAck, &d.LastAck},
		{&t.Listen, &d.Listen}, {&t.Synack, &d.Synack}, {&t.UDP, &d.UDP},
	}
	for _, p := range pairs {
		if *p.v == 0 {
			*p.v = *p.d
		}
	}
	return t
}

// table returns the timeouts indexed by State.
func (t Timeouts) table() [numStates]uint32 {
	return [numStates]uint32{
		StateNone:        t.None,
		StateEstablished: t.Established,
		StateSynSent:     t.SynSent,
		StateSynRecv:     t.SynRecv,
		StateFinWait:     t.FinWait,
		StateTimeWait:    t.TimeWait,
		StateClose:       t.Close,
		StateCloseWait:   t.CloseWait,
		StateLastAck:     t.LastAck,
		StateListen:      t.Listen,
		StateSynack:      t.Synack,
		StateUDP:         t.UDP,
	}
}

// Of returns the timeout of state s in milliseconds (0 for StateInvalid).
func (t Timeouts) Of(s State) uint32 {
	if s >= numStates {
		return 0
	}
	return t.table()[s]
}
