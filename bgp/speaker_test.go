package bgp

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/uvs-project/uvs/config"
)

// router is a GoBGP speaker standing in for the router in front of the directors: it
// listens on a free port of 127.0.0.1, accepts what it is sent and offers one route back.
type router struct {
	srv  *server.BgpServer
	port int
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newRouter(t *testing.T, password string) *router {
	t.Helper()
	r := &router{srv: server.NewBgpServer(), port: freePort(t)}
	go r.srv.Serve()
	ctx := context.Background()
	if err := r.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65000, RouterId: "198.18.255.1",
		ListenPort: int32(r.port), ListenAddresses: []string{"127.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.srv.Stop)
	if err := r.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65001, AuthPassword: password},
		Transport: &api.Transport{PassiveMode: true},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 9, KeepaliveInterval: 3}},
	}}); err != nil {
		t.Fatal(err)
	}
	// A route offered to the director, which must reject it.
	nlri, _ := gbgp.NewIPAddrPrefix(netip.MustParsePrefix("198.19.0.0/16"))
	nh, _ := gbgp.NewPathAttributeNextHop(netip.MustParseAddr("198.18.255.1"))
	if _, err := r.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{{Family: gbgp.RF_IPv4_UC, Nlri: nlri,
		Attrs: []gbgp.PathAttributeInterface{gbgp.NewPathAttributeOrigin(0), nh}}}}); err != nil {
		t.Fatal(err)
	}
	return r
}

// routes returns the router's routes: prefix -> next hop.
func (r *router) routes(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := r.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: gbgp.RF_IPv4_UC},
		func(prefix gbgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				if !p.PeerAddress.IsValid() || p.PeerAddress.IsUnspecified() {
					continue // its own route
				}
				for _, a := range p.Attrs {
					if nh, ok := a.(*gbgp.PathAttributeNextHop); ok {
						out[prefix.String()] = nh.Value.String()
					}
				}
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// uptime returns when the router's session with the director came up (0 when down).
func (r *router) uptime(t *testing.T) int64 {
	t.Helper()
	var up int64
	_ = r.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.State != nil && p.State.SessionState == api.PeerState_SESSION_STATE_ESTABLISHED && p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
			up = p.Timers.State.Uptime.Seconds*1e9 + int64(p.Timers.State.Uptime.Nanos)
		}
	})
	return up
}

// poll waits for cond, within the time BGP needs (connect retry plus an UPDATE).
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSpeakerAnnounceWithdrawReload(t *testing.T) {
	const secret = "s3cret-md5-key"
	r := newRouter(t, secret)
	var logs syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sp := NewSpeaker(log)
	sp.remotePort = uint32(r.port)
	t.Cleanup(sp.Close)
	pwFile := filepath.Join(t.TempDir(), "bgp.key")
	if err := os.WriteFile(pwFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.BGP{Present: true, ASN: 65001, RouterID: netip.MustParseAddr("198.18.0.2"), MaxPrefixes: 10,
		Neighbors: []config.Neighbor{{Address: netip.MustParseAddr("127.0.0.1"), ASN: 65000, HoldTime: 9 * time.Second, PasswordFile: pwFile}}}
	if err := sp.Apply(&cfg); err != nil {
		t.Fatal(err)
	}
	// Connect out only: no listener on port 179 (GoBGP's ListenPort -1).
	g, err := sp.srv.GetBgp(context.Background(), &api.GetBgpRequest{})
	if err != nil || g.Global.ListenPort != -1 {
		t.Errorf("GetBgp = %v, %v; want ListenPort -1", g, err)
	}
	vip1, vip2 := netip.MustParsePrefix("198.18.0.10/32"), netip.MustParsePrefix("198.18.0.11/32")
	if _, err := sp.Announce([]netip.Prefix{vip1, vip2}); err != nil {
		t.Fatal(err)
	}
	poll(t, "both VIPs at the router", func() bool { return len(r.routes(t)) == 2 })
	if got := r.routes(t)[vip1.String()]; got != "198.18.0.2" {
		t.Errorf("next hop %q, want router_id 198.18.0.2", got)
	}
	ss := sp.Sessions()
	if len(ss) != 1 || ss[0].State != StateEstablished || ss[0].ASN != 65000 {
		t.Errorf("sessions = %+v", ss)
	}
	// The route the router offers is rejected: nothing in the director's RIB but its own.
	var learned []string
	_ = sp.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: gbgp.RF_IPv4_UC},
		func(prefix gbgp.NLRI, _ []*apiutil.Path) { learned = append(learned, prefix.String()) })
	slices.Sort(learned)
	if !slices.Equal(learned, []string{"198.18.0.10/32", "198.18.0.11/32"}) {
		t.Errorf("director's RIB = %v, want only its own VIPs", learned)
	}

	// Withdraw one; the other stays, the session is not reset.
	up := r.uptime(t)
	if changed, err := sp.Announce([]netip.Prefix{vip2}); err != nil || !changed {
		t.Fatalf("announce: changed %v, err %v", changed, err)
	}
	poll(t, "vip1 withdrawn", func() bool { _, ok := r.routes(t)[vip1.String()]; return !ok })
	if changed, _ := sp.Announce([]netip.Prefix{vip2}); changed {
		t.Error("announcing the same set again changed something")
	}

	// A reload that changes the next hop and adds a neighbour keeps the session.
	cfg2 := cfg
	cfg2.NextHop = netip.MustParseAddr("198.18.0.3")
	cfg2.Neighbors = append(slices.Clone(cfg.Neighbors), config.Neighbor{Address: netip.MustParseAddr("127.0.0.2"), ASN: 65000, HoldTime: 9 * time.Second})
	if err := sp.Apply(&cfg2); err != nil {
		t.Fatal(err)
	}
	poll(t, "new next hop", func() bool { return r.routes(t)[vip2.String()] == "198.18.0.3" })
	if got := r.uptime(t); got != up {
		t.Errorf("session reset by a reload that did not change the neighbour (uptime %d -> %d)", up, got)
	}
	if n := len(sp.Sessions()); n != 2 {
		t.Errorf("%d sessions after adding a neighbour, want 2", n)
	}

	// Close withdraws everything.
	sp.Close()
	poll(t, "routes gone after Close", func() bool { return len(r.routes(t)) == 0 })
	if strings.Contains(logs.String(), secret) {
		t.Error("the password appears in the log")
	}
}

func TestReadPasswords(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "k")
	if err := os.WriteFile(f, []byte("abc\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.5")
	pw, err := ReadPasswords(&config.BGP{Neighbors: []config.Neighbor{{Address: a, PasswordFile: f}, {Address: b, Password: "x"}}})
	if err != nil || pw[a] != "abc" || pw[b] != "x" {
		t.Fatalf("%v %v", pw, err)
	}
	_, err = ReadPasswords(&config.BGP{Neighbors: []config.Neighbor{{Address: a, PasswordFile: filepath.Join(dir, "none")}}})
	if err == nil || !strings.Contains(err.Error(), "password_file") {
		t.Errorf("missing file: %v", err)
	}
}
