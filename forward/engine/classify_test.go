package engine

import (
	"math/rand/v2"
	"testing"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
)

// TestClassifierAgreesWithMaps checks the one-probe classifier against the snapshot's maps
// (the obviously-right model) on addresses, protocols and ports around the configured ones.
func TestClassifierAgreesWithMaps(t *testing.T) {
	src := `
[director]
interfaces = ["eth0"]
workers = 1
[[service]]
vip = "203.0.113.10"
protocol = "tcp"
port = 80
forward = "nat"
  [[service.real]]
  address = "10.1.2.3"
  port = 8080
  [[service.real]]
  address = "10.1.2.4"
[[service]]
vip = "203.0.113.10"
protocol = "udp"
ports = [53, 54]
forward = "dr"
  [[service.real]]
  address = "10.1.2.5"
[[service]]
vip = "203.0.113.11"
protocol = "tcp"
port = 0
persistence_timeout = "30s"
forward = "nat"
  [[service.real]]
  address = "10.1.2.6"
`
	cfg, err := config.Parse("c.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewRegistry(1).Build(cfg, []Iface{{Name: "eth0", Index: 2, MTU: 1500}}, testEgress, 1)
	if err != nil {
		t.Fatal(err)
	}
	addrs := [][4]byte{{203, 0, 113, 10}, {203, 0, 113, 11}, {203, 0, 113, 12}, {10, 1, 2, 3}, {10, 1, 2, 4}, {10, 1, 2, 5}, {10, 1, 2, 6}, {10, 1, 2, 7}}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 20000; n++ {
		a := addrs[rng.IntN(len(addrs))]
		m := conntrack.Map4(a)
		proto := []uint8{6, 17, 1, 132}[rng.IntN(4)]
		port := []uint16{0, 53, 54, 80, 8080, uint16(rng.IntN(65536))}[rng.IntN(6)]
		if got, want := s.cls.service(a, proto, port), s.lookupService(m, proto, port); got != want {
			t.Fatalf("service(%v, %d, %d) = %v, maps say %v", a, proto, port, got, want)
		}
		_, vip := s.vips[m]
		_, nat := s.natAddr[m]
		if s.cls.isVIP(a) != vip || s.cls.isNATAddr(a) != nat {
			t.Fatalf("%v: vip %v nat %v, maps %v %v", a, s.cls.isVIP(a), s.cls.isNATAddr(a), vip, nat)
		}
		if got, want := s.cls.isNATReply(a, port, proto), s.isNATReply(m, port, proto); got != want {
			t.Fatalf("isNATReply(%v, %d, %d) = %v, maps say %v", a, port, proto, got, want)
		}
	}
	if !s.cls.port0 {
		t.Fatal("port-0 service not noticed")
	}
}
