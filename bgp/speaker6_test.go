package bgp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/uvs-project/uvs/config"
)

func TestHostPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.0.10":       "198.18.0.10/32",
		"2001:2:0:c8::100":  "2001:2:0:c8::100/128",
		"::ffff:198.18.0.1": "198.18.0.1/32",
	} {
		if got := HostPrefix(netip.MustParseAddr(in)); got.String() != want {
			t.Errorf("HostPrefix(%s) = %s, want %s", in, got, want)
		}
	}
}

// newRouter6 is newRouter over IPv6: a GoBGP speaker on [::1] with the IPv6 unicast family.
func newRouter6(t *testing.T) *router {
	t.Helper()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &router{srv: server.NewBgpServer(), port: port}
	go r.srv.Serve()
	ctx := context.Background()
	if err := r.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65000, RouterId: "198.18.255.1",
		ListenPort: int32(r.port), ListenAddresses: []string{"::1"}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.srv.Stop)
	fam := &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	if err := r.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "::1", PeerAsn: 65001},
		Transport: &api.Transport{PassiveMode: true},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 9, KeepaliveInterval: 3}},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}}},
	}}); err != nil {
		t.Fatal(err)
	}
	return r
}

// routes6 returns the router's IPv6 routes learned from the director: prefix -> next hop.
func (r *router) routes6(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := r.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: gbgp.RF_IPv6_UC},
		func(prefix gbgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				for _, a := range p.Attrs {
					if mp, ok := a.(*gbgp.PathAttributeMpReachNLRI); ok {
						out[prefix.String()] = mp.Nexthop.String()
					}
				}
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSpeakerIPv6 announces a /128 over a session to an IPv6 neighbour (IPv6 unicast in
// MP_REACH_NLRI): next hop the session's local address by default, next_hop6 when set
// (changed by a reload without a session reset); the IPv4 /32 announced beside it does not
// go to the IPv6 session; a withdrawal removes the /128.
func TestSpeakerIPv6(t *testing.T) {
	r := newRouter6(t)
	sp := NewSpeaker(slog.New(slog.DiscardHandler))
	sp.remotePort = uint32(r.port)
	t.Cleanup(sp.Close)
	cfg := config.BGP{Present: true, ASN: 65001, RouterID: netip.MustParseAddr("198.18.0.2"), MaxPrefixes: 10,
		Neighbors: []config.Neighbor{{Address: netip.MustParseAddr("::1"), ASN: 65000, HoldTime: 9 * time.Second}}}
	if err := sp.Apply(&cfg); err != nil {
		t.Fatal(err)
	}
	vip6, vip4 := HostPrefix(netip.MustParseAddr("2001:2:0:c8::100")), HostPrefix(netip.MustParseAddr("198.18.0.10"))
	if _, err := sp.Announce([]netip.Prefix{vip4, vip6}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the /128 at the router", func() bool { return r.routes6(t)[vip6.String()] != "" })
	if got := r.routes6(t)[vip6.String()]; got != "::1" {
		t.Errorf("next hop %q, want the session's local address ::1", got)
	}
	if got := r.routes(t); len(got) != 0 {
		t.Errorf("IPv4 routes on the IPv6 session: %v", got)
	}
	up := r.uptime(t)
	cfg2 := cfg
	cfg2.NextHop6 = netip.MustParseAddr("2001:2:0:c8::2")
	if err := sp.Apply(&cfg2); err != nil {
		t.Fatal(err)
	}
	poll(t, "next_hop6", func() bool { return r.routes6(t)[vip6.String()] == "2001:2:0:c8::2" })
	if got := r.uptime(t); got != up {
		t.Errorf("session reset by a next_hop6 change (uptime %d -> %d)", up, got)
	}
	if _, err := sp.Announce([]netip.Prefix{vip4}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the /128 withdrawn", func() bool { return len(r.routes6(t)) == 0 })
}
