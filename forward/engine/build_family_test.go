package engine

import (
	"testing"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
)

// TestBuildIPv6 builds an IPv6 service (once refused, engine.IPv4Only) beside an IPv4 one and
// checks that each classifier answers for its family only.
func TestBuildIPv6(t *testing.T) {
	cfg, err := config.Parse("t.toml", []byte(`[director]
interfaces = ["eth0"]
[[service]]
vip = "2001:db8::1"
port = 80
forward = "nat"
[[service.real]]
address = "2001:db8::2"
[[service]]
vip = "192.0.2.1"
port = 80
[[service.real]]
address = "192.0.2.2"
`))
	if err != nil {
		t.Fatal(err)
	}
	g := NewRegistry(1)
	s, err := g.Build(cfg, nil, func([16]byte) Egress { return NoEgress }, 1)
	if err != nil {
		t.Fatal(err)
	}
	v6 := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	r6 := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
	if svc := s.cls6.service(&v6, 6, 80); svc == nil || !svc.V6 || svc.PersistBits != 0 {
		t.Fatalf("IPv6 service: %+v", svc)
	}
	if !s.cls6.isVIP(&v6) || !s.cls6.isNATAddr(&r6) || !s.cls6.isNATReply(&r6, 80, 6) || !s.has6 {
		t.Fatal("IPv6 VIP or NAT real missing from classifier6")
	}
	if s.cls.service([4]byte{192, 0, 2, 1}, 6, 80) == nil || s.cls.isVIP([4]byte(v6[12:])) {
		t.Fatal("IPv4 classifier wrong")
	}
	if svc := s.lookupService(conntrack.Map4([4]byte{192, 0, 2, 1}), 6, 80); svc == nil || svc.V6 {
		t.Fatalf("IPv4 service: %+v", svc)
	}
	vips, nat := s.ShieldSets()
	if len(vips) != 2 || len(nat) != 1 || !nat[0].V6 || nat[0].Addr6 != r6 {
		t.Fatalf("shield sets %v %+v", vips, nat)
	}
}
