package engine

import (
	"github.com/uvs-project/uvs/conntrack"
	"net/netip"
	"strconv"
	"testing"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/forward/packet"
)

func TestQuorumState(t *testing.T) {
	tests := []struct {
		name                 string
		known, up            bool
		live, quorum, hyster int
		want                 bool
	}{
		{"first build, enough", false, false, 3, 3, 1, true},
		{"first build, short", false, true, 2, 3, 1, false},
		{"first build, nothing live", false, false, 0, 1, 0, false},
		{"up stays up within hysteresis", true, true, 2, 3, 1, true},
		{"up goes down below quorum-hysteresis", true, true, 1, 3, 1, false},
		{"up goes down at 0 whatever the hysteresis", true, true, 0, 1, 0, false},
		{"down stays down below quorum+hysteresis", true, false, 3, 3, 1, false},
		{"down goes up at quorum+hysteresis", true, false, 4, 3, 1, true},
		{"default quorum: one live weight is up", true, false, 1, 1, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quorumState(tt.known, tt.up, tt.live, tt.quorum, tt.hyster); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// sorryConfig is a DR service with two reals of weight 2 and a sorry server.
func sorryConfig(t *testing.T, sorry string, quorum, hysteresis int) *config.Config {
	t.Helper()
	src := `
[director]
interfaces = ["eth0"]
workers = 1

[[service]]
vip = "203.0.113.10"
port = 80
scheduler = "rr"
sorry_server = "` + sorry + `"
quorum = ` + strconv.Itoa(quorum) + `
hysteresis = ` + strconv.Itoa(hysteresis) + `
  [[service.real]]
  address = "10.1.2.3"
  weight = 2
  [[service.real]]
  address = "10.1.2.4"
  weight = 2
`
	cfg, err := config.Parse("test.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// reals returns the weights of the snapshot's first service by "addr:port/method[/sorry]".
func reals(t *testing.T, s *Snapshot) (map[string]int32, *Service) {
	t.Helper()
	svc := s.byID[0]
	out := map[string]int32{}
	for i, r := range svc.Reals {
		if r == nil {
			continue
		}
		k := netip.AddrPortFrom(conntrack.Addr(r.Addr), r.Port).String() + "/" + r.Method.String()
		if r.Sorry {
			k += "/sorry"
		}
		if svc.Specs[i].Weight != r.Weight {
			t.Errorf("%s: spec weight %d, real weight %d", k, svc.Specs[i].Weight, r.Weight)
		}
		out[k] = r.Weight
	}
	return out, svc
}

func TestSorryServerAndQuorum(t *testing.T) {
	ref := func(addr string) healthRef {
		return healthKey(RealRef{VIP: netip.MustParseAddr("203.0.113.10"), Protocol: config.TCP, Port: 80,
			Addr: netip.MustParseAddr(addr), RPort: 80})
	}
	steps := []struct {
		name   string
		health map[string]Health
		want   map[string]int32
		down   bool
	}{
		{"all up", nil, map[string]int32{"10.1.2.3:80/dr": 2, "10.1.2.4:80/dr": 2}, false},
		// live 2: below quorum 4 but not below quorum-hysteresis 3? 2 < 3: down.
		{"one down: live 2 < 4-1", map[string]Health{"10.1.2.3": {Up: false}},
			map[string]int32{"10.1.2.3:80/dr": 0, "10.1.2.4:80/dr": 0, "10.9.9.9:8080/nat/sorry": 1}, true},
		{"back: live 4 < 4+1 stays down", nil,
			map[string]int32{"10.1.2.3:80/dr": 0, "10.1.2.4:80/dr": 0, "10.9.9.9:8080/nat/sorry": 1}, true},
	}
	cfg := sorryConfig(t, "10.9.9.9:8080", 4, 1)
	reg := NewRegistry(1)
	for _, st := range steps {
		reg.health = map[healthRef]Health{}
		for a, h := range st.health {
			reg.health[ref(a)] = h
		}
		s, err := reg.Build(cfg, nil, testEgress, 1)
		if err != nil {
			t.Fatal(err)
		}
		reg.Commit(s)
		got, svc := reals(t, s)
		if !equalWeights(got, st.want) || svc.Down != st.down {
			t.Errorf("%s: reals %v down %v, want %v down %v", st.name, got, svc.Down, st.want, st.down)
		}
		if _, nat := s.natReal[svcKey{addr: conntrack.Map4([4]byte{10, 9, 9, 9}), port: 8080, proto: packet.ProtoTCP}]; nat != st.down {
			t.Errorf("%s: sorry server in the NAT reply set: %v", st.name, nat)
		}
	}
	// Quorum 3 with hysteresis 0: live 4 brings it up, the sorry server leaves.
	cfg = sorryConfig(t, "10.9.9.9:8080", 3, 0)
	reg.health = map[healthRef]Health{}
	s, err := reg.Build(cfg, nil, testEgress, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, svc := reals(t, s); !equalWeights(got, map[string]int32{"10.1.2.3:80/dr": 2, "10.1.2.4:80/dr": 2}) || svc.Down {
		t.Errorf("recovered: %v down %v", got, svc.Down)
	}
}

func TestSorryServerSamePortAndDefaultQuorum(t *testing.T) {
	cfg := sorryConfig(t, "10.1.2.9", 1, 0) // the service's port: same method (DR)
	reg := NewRegistry(1)
	for _, a := range []string{"10.1.2.3", "10.1.2.4"} {
		reg.health[healthKey(RealRef{VIP: netip.MustParseAddr("203.0.113.10"), Protocol: config.TCP, Port: 80,
			Addr: netip.MustParseAddr(a), RPort: 80})] = Health{Up: false, Remove: true, Reason: "connect: connection refused"}
	}
	s, err := reg.Build(cfg, nil, testEgress, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, svc := reals(t, s)
	if want := map[string]int32{"10.1.2.9:80/dr/sorry": 1}; !equalWeights(got, want) || !svc.Down {
		t.Errorf("both removed: %v down %v, want %v down", got, svc.Down, want)
	}
	// One comes back (weight 2 >= quorum 1): the sorry server goes.
	delete(reg.health, healthKey(RealRef{VIP: netip.MustParseAddr("203.0.113.10"), Protocol: config.TCP, Port: 80,
		Addr: netip.MustParseAddr("10.1.2.3"), RPort: 80}))
	if s, err = reg.Build(cfg, nil, testEgress, 2); err != nil {
		t.Fatal(err)
	}
	if got, svc := reals(t, s); !equalWeights(got, map[string]int32{"10.1.2.3:80/dr": 2}) || svc.Down {
		t.Errorf("one back: %v down %v", got, svc.Down)
	}
}

func equalWeights(a, b map[string]int32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
