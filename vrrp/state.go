package vrrp

import (
	"net/netip"
	"time"
)

// State is an instance's VRRP state. The values are those of the metric
// uvs_vrrp_state{instance}; the zero value is Init, the state before Start and after Stop.
type State uint8

// States (RFC 5798 §6.4, plus keepalived's fault).
const (
	StateInit   State = iota // Not started, or stopped.
	StateBackup              // Watching the master; answers nothing for the VIPs.
	StateMaster              // Owns the VIPs: answers ARP, forwards, advertises.
	StateFault               // Tracking failed: owns nothing, advertises nothing.
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "init"
	case StateBackup:
		return "backup"
	case StateMaster:
		return "master"
	case StateFault:
		return "fault"
	}
	return "invalid"
}

// Params are the settings of one instance that the state machine needs.
type Params struct {
	VRID          uint8
	Priority      uint8         // Configured priority, 1..255 (255: address owner).
	AdvertInt     time.Duration // Our advertisement interval.
	Version       uint8         // 2 or 3.
	NoPreempt     bool          // A backup does not take over from a lower-priority master.
	PreemptDelay  time.Duration // A backup waits this long after first seeing a lower-priority master.
	InitialMaster bool          // state = "master": with priority 255, master at once (as keepalived).
	Primary       netip.Addr    // Our address in adverts' IP source: breaks priority ties.
}

// Output says what the caller must do after an event: send an advertisement with
// Priority, and, when To differs from From, carry out a transition.
type Output struct {
	Send     bool
	Priority uint8 // Priority to advertise when Send (0 when leaving master).
	// Announce asks for a round of gratuitous ARP without a transition: a master heard
	// another master with a lower priority (a healed split brain) and re-asserts the VIPs.
	Announce bool
	From, To State
}

// Changed reports whether the event changed the state.
func (o Output) Changed() bool { return o.From != o.To }

// Machine is one instance's state machine (RFC 3768 §6.4, RFC 5798 §6.4). It does no I/O
// and reads no clock: every event carries the time. One goroutine owns it.
type Machine struct {
	p            Params
	state        State
	prio         uint8         // Effective priority: configured, lowered by tracking.
	masterAdvInt time.Duration // v3: the master's interval, learned from its adverts.
	masterDownAt time.Time     // Backup: when the master is declared dead.
	advertAt     time.Time     // Master: next advertisement.
	lowerSince   time.Time     // Backup: first lower-priority advert of the current master (preempt_delay).
	master       netip.Addr    // Current master's address; invalid when unknown.
	masterPrio   uint8         // Priority in the current master's last advert.
	transitions  uint64
}

// NewMachine returns a machine in StateInit.
func NewMachine(p Params) *Machine {
	return &Machine{p: p, prio: p.Priority, masterAdvInt: p.AdvertInt}
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Priority returns the effective priority.
func (m *Machine) Priority() uint8 { return m.prio }

// Master returns the current master's address (ours when master), invalid when unknown.
func (m *Machine) Master() netip.Addr { return m.master }

// Transitions counts state changes since NewMachine, Start included.
func (m *Machine) Transitions() uint64 { return m.transitions }

// Params returns the machine's parameters.
func (m *Machine) Params() Params { return m.p }

// SetParams replaces the parameters that may change without a restart (priority, advert
// interval, preemption, initial state, primary address); the state is kept.
func (m *Machine) SetParams(now time.Time, p Params) Output {
	old := m.p
	m.p = p
	if p.Version == 2 || m.state != StateBackup {
		m.masterAdvInt = p.AdvertInt
	}
	out := Output{From: m.state, To: m.state}
	if p.Priority != old.Priority {
		out = m.SetPriority(now, p.Priority)
	}
	if m.state == StateMaster && p.AdvertInt != old.AdvertInt {
		m.advertAt = now.Add(p.AdvertInt)
	}
	return out
}

// skew is the Skew_Time: v2 (256-priority)/256 s (RFC 3768 §6.1), v3 scaled by the
// master's interval (RFC 5798 §6.1).
func (m *Machine) skew() time.Duration {
	if m.p.Version == 2 {
		return time.Duration(256-int(m.prio)) * time.Second / 256
	}
	return time.Duration(256-int(m.prio)) * m.masterAdvInt / 256
}

// MasterDownInterval is 3 × the master's advertisement interval + Skew_Time.
func (m *Machine) MasterDownInterval() time.Duration {
	iv := m.p.AdvertInt
	if m.p.Version == 3 {
		iv = m.masterAdvInt
	}
	return 3*iv + m.skew()
}

// Deadline returns when Timer must next be called; zero when no timer runs.
func (m *Machine) Deadline() time.Time {
	switch m.state {
	case StateMaster:
		return m.advertAt
	case StateBackup:
		return m.masterDownAt
	}
	return time.Time{}
}

func (m *Machine) enter(now time.Time, s State) {
	if m.state == s {
		return
	}
	m.state = s
	m.transitions++
	switch s {
	case StateMaster:
		m.master = m.p.Primary
		m.masterPrio = m.prio
		m.advertAt = now.Add(m.p.AdvertInt)
	case StateBackup:
		m.masterAdvInt = m.p.AdvertInt
		m.masterDownAt = now.Add(m.MasterDownInterval())
		m.lowerSince = time.Time{}
		if m.master == m.p.Primary {
			m.master = netip.Addr{}
		}
	default:
		m.master = netip.Addr{}
	}
}

// Start leaves Init: master at once when the initial state is master and we own the
// address (priority 255), else backup (keepalived 2.x does the same: a state MASTER
// instance below 255 waits a master-down interval in backup first). With fault set the
// instance starts in fault.
func (m *Machine) Start(now time.Time, fault bool) Output {
	out := Output{From: m.state}
	switch {
	case fault:
		m.enter(now, StateFault)
	case m.p.InitialMaster && m.prio == 255:
		m.enter(now, StateMaster)
		out.Send, out.Priority = true, m.prio
	default:
		m.enter(now, StateBackup)
	}
	out.To = m.state
	return out
}

// Stop returns to Init. A master first advertises priority 0, so that a backup takes
// over after its skew time instead of the whole master-down interval.
func (m *Machine) Stop(now time.Time) Output {
	out := Output{From: m.state}
	if m.state == StateMaster {
		out.Send, out.Priority = true, 0
	}
	m.enter(now, StateInit)
	out.To = m.state
	return out
}

// Timer runs the timers due at now: a master's advertisement, a backup's master-down.
func (m *Machine) Timer(now time.Time) Output {
	out := Output{From: m.state, To: m.state}
	switch m.state {
	case StateMaster:
		if !now.Before(m.advertAt) {
			out.Send, out.Priority = true, m.prio
			m.advertAt = now.Add(m.p.AdvertInt)
		}
	case StateBackup:
		if !now.Before(m.masterDownAt) {
			m.enter(now, StateMaster)
			out.Send, out.Priority = true, m.prio
		}
	}
	out.To = m.state
	return out
}

// Receive handles an advertisement that passed the checks of the caller (TTL, version,
// VRID, auth, interval for v2, unicast peers) from src.
func (m *Machine) Receive(now time.Time, a *Advert, src netip.Addr) Output {
	out := Output{From: m.state, To: m.state}
	switch m.state {
	case StateBackup:
		if a.Priority == 0 {
			// The master is leaving: take over after the skew time only (RFC 5798 §6.4.2).
			m.masterDownAt = now.Add(m.skew())
			m.master = netip.Addr{}
			return out
		}
		accept := m.p.NoPreempt || a.Priority >= m.prio
		if !accept && m.p.PreemptDelay > 0 {
			// A lower-priority master keeps the VIPs until preempt_delay has passed.
			if m.lowerSince.IsZero() || m.master != src {
				m.lowerSince = now
			}
			accept = now.Sub(m.lowerSince) < m.p.PreemptDelay
		} else if a.Priority >= m.prio {
			m.lowerSince = time.Time{}
		}
		if accept {
			if m.p.Version == 3 && a.Interval > 0 {
				m.masterAdvInt = a.Interval
			}
			m.masterDownAt = now.Add(m.MasterDownInterval())
			m.master, m.masterPrio = src, a.Priority
		}
		// Otherwise the advert is discarded and the master-down timer preempts.
	case StateMaster:
		if a.Priority == 0 {
			// Another master is leaving; make sure the backups hear us (RFC 5798 §6.4.3),
			// and announce the VIPs again: the neighbours may have followed the other one
			// (a healed split brain).
			out.Send, out.Priority, out.Announce = true, m.prio, true
			m.advertAt = now.Add(m.p.AdvertInt)
			return out
		}
		if a.Priority > m.prio || (a.Priority == m.prio && addrGreater(src, m.p.Primary)) {
			m.enter(now, StateBackup)
			if m.p.Version == 3 && a.Interval > 0 {
				m.masterAdvInt = a.Interval
				m.masterDownAt = now.Add(m.MasterDownInterval())
			}
			m.master, m.masterPrio = src, a.Priority
			// Say we stop being master (priority 0), so that the winner announces the VIPs
			// again: after a split brain the neighbours may still point at us. Whichever of
			// the two hears the other first, the winner's gratuitous ARP follows.
			out.Send, out.Priority = true, 0
			break
		}
		// Another master that loses to us (a split brain healing): advertise at once so it
		// yields, and announce the VIPs again, since the neighbours may have followed its
		// gratuitous ARP (keepalived does the same).
		out.Send, out.Priority, out.Announce = true, m.prio, true
		m.advertAt = now.Add(m.p.AdvertInt)
	}
	out.To = m.state
	return out
}

// SetPriority changes the effective priority (tracking). A master advertises the new
// priority at once, so that a preempting backup needs no extra interval to see it.
func (m *Machine) SetPriority(now time.Time, prio uint8) Output {
	out := Output{From: m.state, To: m.state}
	if prio == m.prio {
		return out
	}
	m.prio = prio
	if m.state == StateMaster {
		out.Send, out.Priority = true, prio
		m.advertAt = now.Add(m.p.AdvertInt)
	}
	return out
}

// SetFault enters fault (a master first advertises priority 0, as keepalived does) or
// leaves it for backup.
func (m *Machine) SetFault(now time.Time, fault bool) Output {
	out := Output{From: m.state, To: m.state}
	switch {
	case fault && m.state != StateFault && m.state != StateInit:
		if m.state == StateMaster {
			out.Send, out.Priority = true, 0
		}
		m.enter(now, StateFault)
	case !fault && m.state == StateFault:
		m.enter(now, StateBackup)
	}
	out.To = m.state
	return out
}

// Force moves the machine to s because another member of its sync group moved there.
// It does not leave Init or Fault for master or backup.
func (m *Machine) Force(now time.Time, s State) Output {
	out := Output{From: m.state, To: m.state}
	if m.state == s || m.state == StateInit {
		return out
	}
	switch s {
	case StateMaster:
		if m.state != StateBackup {
			return out
		}
		m.enter(now, StateMaster)
		out.Send, out.Priority = true, m.prio
	case StateBackup:
		if m.state == StateFault {
			return out
		}
		if m.state == StateMaster {
			// Tell the backups we go: they take over after their skew time.
			out.Send, out.Priority = true, 0
		}
		m.enter(now, StateBackup)
	case StateFault:
		if m.state == StateMaster {
			out.Send, out.Priority = true, 0
		}
		m.enter(now, StateFault)
	}
	out.To = m.state
	return out
}

// addrGreater compares IPv4 addresses as unsigned integers (RFC 5798 §6.4.3).
func addrGreater(a, b netip.Addr) bool { return a.Compare(b) > 0 }
