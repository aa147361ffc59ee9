package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/packet"
)

// synFrom is a SYN to the TCP service from client port sport and client address low byte c.
func synFrom(t testing.TB, c byte, sport uint16) []byte {
	s := defaultSpec(0x06, 8)
	s.src = [4]byte{198, 51, 100, c}
	s.sport, s.flags = sport, 0x02
	return withVnet(build(t, s), false)
}

// TestEngineFloodedTableAdmitsAtOnce is issue 13 bug 2 through the engine: a table full of
// expired SYN_RECV entries (a flood that stopped) forwards new SYNs at once, and every
// reclaimed entry gives its real's load count back.
func TestEngineFloodedTableAdmitsAtOnce(t *testing.T) {
	const capacity = 1024
	e := newTestEngine(t, engineConfig(t, "dr", 80), capacity)
	svc := e.snap.cls.service(vip, packet.ProtoTCP, 80)
	for i := 0; i < capacity; i++ {
		e.Reset()
		e.Handle(synFrom(t, byte(i>>8), uint16(1000+i)), 0)
	}
	e.Publish()
	if e.ct.Len() != capacity || e.stats.Forwarded.Load() != capacity {
		t.Fatalf("flood: %d entries, %d forwarded", e.ct.Len(), e.stats.Forwarded.Load())
	}
	// Past SYN_RECV's 60 s: every entry has expired, none was swept.
	e.Begin(e.snap, 1e9+61e9)
	for i := 0; i < 500; i++ {
		e.Reset()
		e.Handle(synFrom(t, 200, uint16(20000+i)), 0)
	}
	e.Expire()
	if got := e.stats.Forwarded.Load() - capacity; got != 500 {
		t.Fatalf("after the flood, %d of 500 new SYNs forwarded (drops %v)", got, e.dropSummary())
	}
	var load int32
	for i := range svc.Loads {
		load += svc.Loads[i].Active() + svc.Loads[i].Inactive()
	}
	if int(load) != e.ct.Len() {
		t.Fatalf("loads count %d connections, the table holds %d", load, e.ct.Len())
	}
}

// TestEngineLoadsSurviveGrowingRebuild is issue 13 bug 3: a rebuild that grows a service's
// load array while a worker still forwards on the previous snapshot loses no count.
func TestEngineLoadsSurviveGrowingRebuild(t *testing.T) {
	conf := func(reals int) *config.Config {
		var b strings.Builder
		fmt.Fprintf(&b, "[director]\ninterfaces = [\"eth0\"]\nworkers = 1\n[[service]]\nvip = \"203.0.113.10\"\nprotocol = \"tcp\"\nport = 80\nscheduler = \"rr\"\nforward = \"dr\"\n")
		for i := 0; i < reals; i++ {
			fmt.Fprintf(&b, "  [[service.real]]\n  address = \"10.1.2.%d\"\n  port = 80\n", 3+i)
		}
		cfg, err := config.Parse("grow.toml", []byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ifs := []Iface{{Name: "eth0", Index: 2, MAC: ifaceMAC, MTU: 1500}}
	reg := NewRegistry(1)
	s1, err := reg.Build(conf(2), ifs, testEgress, 1)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := conntrack.New(conntrack.Config{Capacity: 1024})
	e := NewEngine(0, ct, 4096, 64<<10, 1)
	e.Begin(s1, 1e9)
	for i := 0; i < 10; i++ {
		e.Reset()
		e.Handle(synFrom(t, 1, uint16(1000+i)), 0)
	}
	// 20 reals: the load array (capacity 8) grows. The worker has not loaded s2 yet.
	s2, err := reg.Build(conf(20), ifs, testEgress, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		e.Reset()
		e.Handle(synFrom(t, 2, uint16(1000+i)), 0)
	}
	// Connections expire on the old snapshot too: their counts are given back where they went.
	e.Begin(s1, 1e9+61e9)
	for i := 0; i < 100 && e.ct.Len() > 10; i++ {
		e.Reset()
		e.Handle(synFrom(t, 3, uint16(1000+i)), 0)
		e.Expire()
	}
	svc := s2.cls.service(vip, packet.ProtoTCP, 80)
	var total int32
	for i := range svc.Loads {
		total += svc.Loads[i].Active() + svc.Loads[i].Inactive()
	}
	if int(total) != e.ct.Len() {
		t.Fatalf("the grown load array counts %d connections, the table holds %d", total, e.ct.Len())
	}
}
