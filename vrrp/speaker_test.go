package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/config"
)

// TestAccept covers the per-instance checks of hostile or foreign adverts.
func TestAccept(t *testing.T) {
	peer := netip.MustParseAddr("198.18.5.2")
	p := Params{VRID: 51, Version: 2, AdvertInt: time.Second, Primary: self}
	var pass [8]byte
	copy(pass[:], "secret")
	good := func() (Advert, IPv4) {
		return Advert{Version: 2, VRID: 51, Priority: 100, Interval: time.Second}, IPv4{Src: peer, Dst: Group, TTL: 255}
	}
	tests := []struct {
		name  string
		mod   func(a *Advert, h *IPv4)
		auth  uint8
		peers []netip.Addr
		want  Drop
	}{
		{"good", func(a *Advert, h *IPv4) {}, AuthNone, nil, DropNone},
		{"ttl 254 multicast", func(a *Advert, h *IPv4) { h.TTL = 254 }, AuthNone, nil, DropTTL},
		{"ttl 64 unicast is keepalived's unicast_ttl", func(a *Advert, h *IPv4) { h.TTL, h.Dst = 64, self }, AuthNone, []netip.Addr{peer}, DropNone},
		{"other vrid", func(a *Advert, h *IPv4) { a.VRID = 52 }, AuthNone, nil, DropVRID},
		{"v3 to a v2 instance", func(a *Advert, h *IPv4) { a.Version = 3 }, AuthNone, nil, DropVersion},
		{"v2 interval differs", func(a *Advert, h *IPv4) { a.Interval = 2 * time.Second }, AuthNone, nil, DropInterval},
		{"our own advert", func(a *Advert, h *IPv4) { h.Src = self }, AuthNone, nil, DropOwn},
		{"unicast source not a peer", func(a *Advert, h *IPv4) { h.Dst = self }, AuthNone, []netip.Addr{netip.MustParseAddr("198.18.5.3")}, DropUnicastPeer},
		{"pass expected, none sent", func(a *Advert, h *IPv4) {}, AuthPass, nil, DropAuth},
		{"wrong password", func(a *Advert, h *IPv4) { a.AuthType = AuthPass; copy(a.Auth[:], "guess") }, AuthPass, nil, DropAuth},
		{"right password", func(a *Advert, h *IPv4) { a.AuthType = AuthPass; a.Auth = pass }, AuthPass, nil, DropNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, h := good()
			tt.mod(&a, &h)
			if got := accept(&a, &h, &p, tt.auth, pass, tt.peers); got != tt.want {
				t.Fatalf("accept = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTrackedPriority(t *testing.T) {
	tests := []struct {
		base, failed, w int
		alive           bool
		prio            uint8
		fault           bool
	}{
		{100, 0, 0, true, 100, false},
		{100, 1, 0, true, 100, true},
		{100, 0, 0, false, 100, true},
		{150, 1, -60, true, 90, false},
		{150, 3, -60, true, 1, false},
		{255, 1, -10, true, 245, false},
		{255, 0, -10, true, 255, false},
	}
	for _, tt := range tests {
		p, f := trackedPriority(tt.base, tt.failed, tt.w, tt.alive)
		if p != tt.prio || f != tt.fault {
			t.Errorf("trackedPriority(%d, %d, %d, %v) = %d, %v; want %d, %v", tt.base, tt.failed, tt.w, tt.alive, p, f, tt.prio, tt.fault)
		}
	}
	got := groupFaults([]bool{false, true, false, false}, []int{0, 0, -1, 1})
	if want := []bool{true, true, false, false}; !equalBools(got, want) {
		t.Errorf("groupFaults = %v, want %v", got, want)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCheckReload(t *testing.T) {
	base := `[director]
interfaces = ["eth0", "eth1"]
[[service]]
vip = "198.18.1.100"
port = 80
  [[service.real]]
  address = "198.18.1.11"
[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 100
`
	parse := func(s string) *config.Config {
		c, err := config.Parse("t.toml", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := parse(base)
	tests := []struct {
		name, from, to string
		want           string // "" = accepted
	}{
		{"priority", "priority = 100", "priority = 50", ""},
		{"advert_int and preemption", "priority = 100", "advert_int = 2\nnopreempt = true\npreempt_delay = \"5s\"", ""},
		{"interface", "interface = \"eth0\"", "interface = \"eth1\"", "vrrp VI_1: interface"},
		{"vrid", "virtual_router_id = 51", "virtual_router_id = 52", "vrrp VI_1: virtual_router_id"},
		{"version", "priority = 100", "version = 3", "vrrp VI_1: version"},
		{"to unicast", "priority = 100", "unicast_peer = [\"198.18.1.2\"]", "unicast_peer"},
		{"renamed", "name = \"VI_1\"", "name = \"VI_9\"", "the set of [[vrrp]] instances"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckReload(old, parse(strings.Replace(base, tt.from, tt.to, 1)))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want one naming %q", err, tt.want)
			}
		})
	}
}
