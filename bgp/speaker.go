package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/uvs-project/uvs/config"
)

// Timers that have no key of their own.
const (
	// connectRetry is how soon a session that failed is tried again. GoBGP's default (120 s)
	// would keep a director that just came back out of the ECMP set for two minutes.
	connectRetry = 5 * time.Second
	// BFD intervals (GoBGP's defaults, in microseconds): a session is declared dead after
	// bfdMultiplier missed packets, about 900 ms.
	bfdInterval   = 300000
	bfdMultiplier = 3
	opTimeout     = 10 * time.Second // bound on one call into GoBGP
)

// SessionState is a BGP finite state machine state (RFC 4271 section 8.2.2).
type SessionState uint8

// Session states.
const (
	StateInvalid SessionState = iota
	StateIdle
	StateConnect
	StateActive
	StateOpenSent
	StateOpenConfirm
	StateEstablished
)

var stateNames = [...]string{"invalid", "idle", "connect", "active", "opensent", "openconfirm", "established"}

func (s SessionState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "invalid"
}

// Session is one neighbour's session as Sessions reports it. It carries no password.
type Session struct {
	Address netip.Addr
	ASN     uint32
	State   SessionState
	BFD     string // BFD session state ("up", "down", ...), "" without BFD
}

// neighbor is a neighbour as applied: the config with its password resolved.
type neighbor struct {
	conf     config.Neighbor
	password string
}

func (n neighbor) same(o neighbor) bool {
	a, b := n.conf, o.conf
	a.Line, b.Line = 0, 0
	return a == b && n.password == o.password
}

// Speaker is the embedded BGP speaker. Its methods are safe for concurrent use.
type Speaker struct {
	log *slog.Logger

	mu        sync.Mutex // guards everything below; serialises calls into GoBGP that change it
	srv       *server.BgpServer
	global    config.BGP // as applied (Neighbors ignored)
	peers     map[netip.Addr]neighbor
	nextHop   netip.Addr // of the IPv4 /32s
	nextHop6  netip.Addr // of the IPv6 /128s; :: means each session's local address
	announced map[netip.Prefix]bool
	closed    bool

	remotePort uint32 // tests: connect to this port instead of 179

	stopWatch context.CancelFunc // ends the peer-state watcher of srv
}

// NewSpeaker returns a speaker that has not started; Apply starts it.
func NewSpeaker(log *slog.Logger) *Speaker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Speaker{log: log, peers: map[netip.Addr]neighbor{}, announced: map[netip.Prefix]bool{}}
}

// ReadPasswords resolves every neighbour's password (reading password_file), so that a
// reload can be refused before anything changes. Errors name the file, never its content.
func ReadPasswords(b *config.BGP) (map[netip.Addr]string, error) {
	out := map[netip.Addr]string{}
	for _, n := range b.Neighbors {
		p := n.Password
		if n.PasswordFile != "" {
			data, err := os.ReadFile(n.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("bgp: neighbour %s: password_file: %w", n.Address, err)
			}
			p = strings.TrimRight(string(data), "\r\n")
			if len(p) > config.MaxBGPPasswordBytes {
				return nil, fmt.Errorf("bgp: neighbour %s: password_file %s: longer than the %d bytes TCP MD5 allows", n.Address, n.PasswordFile, config.MaxBGPPasswordBytes)
			}
		}
		out[n.Address] = p
	}
	return out, nil
}

// sameGlobal reports whether a and b need no restart of the speaker between them.
func sameGlobal(a, b *config.BGP) bool {
	return a.Present == b.Present && a.ASN == b.ASN && a.RouterID == b.RouterID && a.Passive == b.Passive && a.MaxPrefixes == b.MaxPrefixes
}

// Apply makes the speaker run b: it starts it, stops it (b.Present false; routes are
// withdrawn), or changes it in place. Neighbours that did not change keep their sessions;
// a changed neighbour's session is reset; a changed next hop re-announces every route
// (an implicit withdraw, no session reset). Only a change of asn, router_id, passive or
// max_prefixes restarts the speaker and so resets every session.
func (s *Speaker) Apply(b *config.BGP) error {
	pw, err := ReadPasswords(b)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("bgp: speaker closed")
	}
	if s.srv != nil && !sameGlobal(&s.global, b) {
		s.log.Info("bgp: restarting the speaker: asn, router_id, passive or max_prefixes changed")
		s.stopLocked()
	}
	if !b.Present {
		return nil
	}
	if s.srv == nil {
		if err := s.startLocked(b); err != nil {
			return err
		}
	}
	s.global = *b
	s.global.Neighbors = nil
	want := map[netip.Addr]neighbor{}
	for _, n := range b.Neighbors {
		want[n.Address] = neighbor{conf: n, password: pw[n.Address]}
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var errs []error
	for _, a := range slices.SortedFunc(maps.Keys(s.peers), netip.Addr.Compare) {
		if n, ok := want[a]; ok && n.same(s.peers[a]) {
			continue
		}
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: remove neighbour %s: %w", a, err))
		}
		delete(s.peers, a)
	}
	for _, a := range slices.SortedFunc(maps.Keys(want), netip.Addr.Compare) {
		if _, ok := s.peers[a]; ok {
			continue
		}
		n := want[a]
		pc := peerConfig(b, n)
		pc.Transport.RemotePort = s.remotePort
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: pc}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: add neighbour %s: %w", a, err))
			continue
		}
		s.peers[a] = n
		s.log.Info("bgp: neighbour configured", "neighbor", a.String(), "asn", n.conf.ASN,
			"hold_time", n.conf.HoldTime.String(), "md5", n.password != "", "bfd", n.conf.BFD)
	}
	nh, nh6 := b.NextHopOrRouterID(), nextHop6(b)
	if nh != s.nextHop || nh6 != s.nextHop6 {
		changed4, changed6 := nh != s.nextHop, nh6 != s.nextHop6
		s.nextHop, s.nextHop6 = nh, nh6
		for _, p := range slices.SortedFunc(maps.Keys(s.announced), comparePrefix) {
			if p.Addr().Is4() && !changed4 || p.Addr().Is6() && !changed6 {
				continue
			}
			if err := s.addPathLocked(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// peerConfig is the GoBGP neighbour for n: connect out, reject every route offered (the
// global import policy), cap what the neighbour may send.
func peerConfig(b *config.BGP, n neighbor) *api.Peer {
	hold := uint64(n.conf.HoldTime / time.Second)
	// A session carries its own family: IPv4 unicast (the /32s) to an IPv4 neighbour, IPv6
	// unicast (the /128s) to an IPv6 one.
	fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if n.conf.Address.Is6() {
		fam.Afi = api.Family_AFI_IP6
	}
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: n.conf.Address.String(),
			PeerAsn:         n.conf.ASN,
			AuthPassword:    n.password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          hold,
			KeepaliveInterval: max(hold/3, 1),
			ConnectRetry:      uint64(connectRetry / time.Second),
			// After a reset (BFD down, say) GoBGP waits this long before it connects again;
			// its default, 30 s, would keep a recovered director out of the ECMP set.
			IdleHoldTimeAfterReset: uint64(connectRetry / time.Second),
		}},
		Transport: &api.Transport{PassiveMode: false},
		AfiSafis: []*api.AfiSafi{{
			Config:       &api.AfiSafiConfig{Family: fam, Enabled: true},
			PrefixLimits: &api.PrefixLimit{Family: fam, MaxPrefixes: uint32(b.MaxPrefixes)},
		}},
	}
	if n.conf.BFD {
		p.Bfd = &api.BfdPeerConfig{Enabled: true, DesiredMinimumTxInterval: bfdInterval,
			RequiredMinimumReceive: bfdInterval, DetectionMultiplier: bfdMultiplier}
	}
	return p
}

func (s *Speaker) startLocked(b *config.BGP) error {
	srv := server.NewBgpServer(server.LoggerOption(s.log, nil)) // no GrpcListenAddress: no gRPC server
	go srv.Serve()
	port := int32(-1) // GoBGP: no listener
	if b.Passive {
		port = 179
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: b.ASN, RouterId: b.RouterID.String(), ListenPort: port,
	}}); err != nil {
		srv.Stop()
		if b.Passive {
			return fmt.Errorf("bgp: start: %w (passive = true listens on port 179, which needs CAP_NET_BIND_SERVICE; uvs run keeps it only with --keep-capabilities)", err)
		}
		return fmt.Errorf("bgp: start: %w", err)
	}
	// Reject every route a neighbour offers: a director originates routes, it never uses
	// any. The global RIB's import policy applies to every path, its own included, so the
	// policy accepts locally originated paths and rejects the rest.
	pol := &api.Policy{Name: "uvs-import", Statements: []*api.Statement{{
		Name:       "uvs-local-only",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	}}}
	if err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: pol}); err != nil {
		srv.Stop()
		return fmt.Errorf("bgp: import policy: %w", err)
	}
	if err := srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Direction: api.PolicyDirection_POLICY_DIRECTION_IMPORT, Policies: []*api.Policy{{Name: pol.Name}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}}); err != nil {
		srv.Stop()
		return fmt.Errorf("bgp: import policy: %w", err)
	}
	wctx, cancelWatch := context.WithCancel(context.Background())
	rearm := make(chan netip.Addr, 16)
	was := map[netip.Addr]bool{} // established; owned by the watcher's goroutine
	if err := srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
			if ev.Type != apiutil.PEER_EVENT_STATE {
				return
			}
			a := ev.Peer.State.NeighborAddress
			up := ev.Peer.State.SessionState == gbgp.BGP_FSM_ESTABLISHED
			if was[a] && !up {
				select {
				case rearm <- a:
				default:
				}
			}
			was[a] = up
		},
	}, server.WatchPeer()); err != nil {
		cancelWatch()
		srv.Stop()
		return fmt.Errorf("bgp: watch peers: %w", err)
	}
	go s.rearmBFD(wctx, srv, rearm)
	s.stopWatch = cancelWatch
	s.srv = srv
	s.peers = map[netip.Addr]neighbor{}
	s.nextHop, s.nextHop6 = b.NextHopOrRouterID(), nextHop6(b)
	for p := range s.announced {
		if err := s.addPathLocked(p); err != nil {
			s.log.Error("bgp: re-announce", "prefix", p.String(), "err", err)
		}
	}
	s.log.Info("bgp: speaker started", "asn", b.ASN, "router_id", b.RouterID.String(), "listen", b.Passive)
	return nil
}

func (s *Speaker) stopLocked() {
	if s.srv == nil {
		return
	}
	s.stopWatch()
	s.srv.Stop() // sends a CEASE to every established neighbour: their routes go at once
	s.srv = nil
	s.peers = map[netip.Addr]neighbor{}
}

func (s *Speaker) addPathLocked(p netip.Prefix) error {
	path, err := s.pathLocked(p)
	if err != nil {
		return fmt.Errorf("bgp: announce %s: %w", p, err)
	}
	if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{path}}); err != nil {
		return fmt.Errorf("bgp: announce %s: %w", p, err)
	}
	return nil
}

func (s *Speaker) deletePathLocked(p netip.Prefix) error {
	path, err := s.pathLocked(p)
	if err != nil {
		return fmt.Errorf("bgp: withdraw %s: %w", p, err)
	}
	if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{path}}); err != nil {
		return fmt.Errorf("bgp: withdraw %s: %w", p, err)
	}
	return nil
}

// pathLocked is the GoBGP path for p: an IPv4 unicast NLRI with a NEXT_HOP attribute, or an
// IPv6 unicast one in MP_REACH_NLRI (RFC 4760) with next_hop6, or :: which GoBGP replaces
// with the session's local address (next-hop-self; RFC 2545's global next hop).
func (s *Speaker) pathLocked(p netip.Prefix) (*apiutil.Path, error) {
	nlri, err := gbgp.NewIPAddrPrefix(p)
	if err != nil {
		return nil, err
	}
	origin := gbgp.NewPathAttributeOrigin(gbgp.BGP_ORIGIN_ATTR_TYPE_IGP)
	if p.Addr().Is6() {
		reach, err := gbgp.NewPathAttributeMpReachNLRI(gbgp.RF_IPv6_UC, []gbgp.PathNLRI{{NLRI: nlri}}, s.nextHop6)
		if err != nil {
			return nil, fmt.Errorf("next hop: %w", err)
		}
		return &apiutil.Path{Family: gbgp.RF_IPv6_UC, Nlri: nlri, Attrs: []gbgp.PathAttributeInterface{origin, reach}}, nil
	}
	nh, err := gbgp.NewPathAttributeNextHop(s.nextHop)
	if err != nil {
		return nil, fmt.Errorf("next hop: %w", err)
	}
	return &apiutil.Path{Family: gbgp.RF_IPv4_UC, Nlri: nlri, Attrs: []gbgp.PathAttributeInterface{origin, nh}}, nil
}

// nextHop6 is the next hop of the /128s: next_hop6, or :: for each session's own address.
func nextHop6(b *config.BGP) netip.Addr {
	if b.NextHop6.IsValid() {
		return b.NextHop6
	}
	return netip.IPv6Unspecified()
}

// Announce makes the announced routes exactly want: new prefixes are announced, missing
// ones withdrawn, the others left alone. Sessions are never reset. It returns whether
// anything changed. Before Apply has started the speaker it only records want.
func (s *Speaker) Announce(want []netip.Prefix) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, errors.New("bgp: speaker closed")
	}
	w := map[netip.Prefix]bool{}
	for _, p := range want {
		w[p.Masked()] = true
	}
	changed := false
	var errs []error
	for _, p := range slices.SortedFunc(maps.Keys(s.announced), comparePrefix) {
		if w[p] {
			continue
		}
		changed = true
		if s.srv != nil {
			if err := s.deletePathLocked(p); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		delete(s.announced, p)
		s.log.Info("bgp: withdrawn", "prefix", p.String())
	}
	for _, p := range slices.SortedFunc(maps.Keys(w), comparePrefix) {
		if s.announced[p] {
			continue
		}
		changed = true
		if s.srv != nil {
			if err := s.addPathLocked(p); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		s.announced[p] = true
		nh := s.nextHop
		if p.Addr().Is6() {
			nh = s.nextHop6 // :: = each session's local address
		}
		s.log.Info("bgp: announced", "prefix", p.String(), "next_hop", nh.String())
	}
	return changed, errors.Join(errs...)
}

// Running reports whether the speaker runs (the applied config has [bgp]).
func (s *Speaker) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv != nil
}

// Announced returns the announced prefixes, sorted.
func (s *Speaker) Announced() []netip.Prefix {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.SortedFunc(maps.Keys(s.announced), comparePrefix)
}

// Sessions returns every configured neighbour's session, sorted by address.
func (s *Speaker) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	out := make([]Session, 0, len(s.peers))
	for _, a := range slices.SortedFunc(maps.Keys(s.peers), netip.Addr.Compare) {
		out = append(out, Session{Address: a, ASN: s.peers[a].conf.ASN, State: StateIdle})
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_ = s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.State == nil {
			return
		}
		a, err := netip.ParseAddr(p.State.NeighborAddress)
		if err != nil {
			return
		}
		i := slices.IndexFunc(out, func(x Session) bool { return x.Address == a })
		if i < 0 {
			return
		}
		if st := SessionState(p.State.SessionState); st > StateInvalid && st <= StateEstablished {
			out[i].State = st
		}
		if s.peers[a].conf.BFD {
			out[i].BFD = "down"
			if b := p.State.BfdState; b != nil {
				out[i].BFD = bfdStateName(b.SessionState)
			}
		}
	})
	return out
}

func bfdStateName(s api.BfdSessionState) string {
	switch s {
	case api.BfdSessionState_BFD_SESSION_STATE_UP:
		return "up"
	case api.BfdSessionState_BFD_SESSION_STATE_INIT:
		return "init"
	case api.BfdSessionState_BFD_SESSION_STATE_ADMIN_DOWN:
		return "admin_down"
	}
	return "down"
}

// Close withdraws every route (a CEASE to each neighbour ends its sessions, which removes
// them at once) and stops the speaker.
func (s *Speaker) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.srv != nil {
		for p := range s.announced {
			_ = s.deletePathLocked(p)
		}
	}
	s.stopLocked()
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// rearmBFD recreates a BFD neighbour whose session went down. GoBGP v4.8.0's BFD resets
// the BGP session when BFD expires, also while the session is already down; the reset
// waits in the peer's state machine and kills the next session the moment it comes up,
// whose BFD then expires again (the router stops BFD with BGP): the neighbour never comes
// back. A fresh peer (DeletePeer, AddPeer) starts with no pending reset and BFD down.
// Only a session that is already down is touched.
func (s *Speaker) rearmBFD(ctx context.Context, srv *server.BgpServer, ch <-chan netip.Addr) {
	for {
		var a netip.Addr
		select {
		case <-ctx.Done():
			return
		case a = <-ch:
		}
		s.mu.Lock()
		n, ok := s.peers[a]
		if ok && n.conf.BFD && s.srv == srv {
			octx, cancel := context.WithTimeout(ctx, opTimeout)
			err := srv.DeletePeer(octx, &api.DeletePeerRequest{Address: a.String()})
			if err == nil {
				pc := peerConfig(&s.global, n)
				pc.Transport.RemotePort = s.remotePort
				err = srv.AddPeer(octx, &api.AddPeerRequest{Peer: pc})
			}
			cancel()
			if err != nil {
				delete(s.peers, a)
				s.log.Error("bgp: re-create BFD neighbour after its session went down", "neighbor", a.String(), "err", err)
			} else {
				s.log.Info("bgp: BFD neighbour re-created after its session went down", "neighbor", a.String())
			}
		}
		s.mu.Unlock()
	}
}
