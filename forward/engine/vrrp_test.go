package engine

import (
	"net/netip"
	"testing"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/internal/frametest"
	"github.com/uvs-project/uvs/forward/packet"
)

// vrrpConfig is engineConfig with a VRRP instance that owns the service VIP and a
// non-service gateway address.
func vrrpConfig(t *testing.T) *config.Config {
	t.Helper()
	src := `
[director]
interfaces = ["eth0"]
workers = 1
[[service]]
vip = "203.0.113.10"
port = 80
forward = "dr"
  [[service.real]]
  address = "10.1.2.3"
[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 1
vips = ["203.0.113.10", "203.0.113.1"]
`
	c, err := config.Parse("vrrp.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEngineVRRPOwnership checks that a VIP held by a VRRP backup gets no ARP reply and no
// forwarding (counted as vrrp_backup), that ownership moves with SetVRRPActive and a new
// snapshot, and that a non-service address in vips is answered for ARP as master.
func TestEngineVRRPOwnership(t *testing.T) {
	cfg := vrrpConfig(t)
	reg := NewRegistry(1)
	ifaces := []Iface{{Name: "eth0", Index: 2, MAC: ifaceMAC, MTU: 1500}}
	ct, err := conntrack.New(conntrack.Config{Capacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(0, ct, 4096, 64<<10, 1)
	gw := [4]byte{203, 0, 113, 1}
	arp := func(target [4]byte) int {
		req := make([]byte, 64)
		n := packet.BuildARP(req, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, &packet.ARP{Op: packet.ARPRequest, SenderMAC: frametest.MACA, SenderIP: frametest.Client, TargetIP: target})
		e.Reset()
		e.Handle(withVnet(req[:n], false), 0)
		return len(e.out)
	}
	syn := func() int {
		e.Reset()
		e.Handle(tcpFrame(t, 40000, 0x02, false), 0)
		return len(e.out)
	}
	build := func(active ...string) {
		var as []netip.Addr
		for _, a := range active {
			as = append(as, netip.MustParseAddr(a))
		}
		reg.SetVRRPActive(as)
		s, err := reg.Build(cfg, ifaces, testEgress, 1)
		if err != nil {
			t.Fatal(err)
		}
		e.Begin(s, 1e9)
	}

	// Backup: nothing answered, nothing forwarded.
	build()
	if arp(frametest.VIP) != 0 || arp(gw) != 0 {
		t.Fatal("a backup answered ARP")
	}
	if syn() != 0 || e.dropSummary()["vrrp_backup"] != 1 {
		t.Fatalf("a backup forwarded, drops %v", e.dropSummary())
	}
	// Master: ARP for the VIP and the gateway, and forwarding.
	build("203.0.113.10", "203.0.113.1")
	if arp(frametest.VIP) != 1 || arp(gw) != 1 {
		t.Fatal("a master did not answer ARP")
	}
	if syn() != 1 {
		t.Fatalf("a master did not forward, drops %v", e.dropSummary())
	}
	// Without [[vrrp]] SetVRRPActive changes nothing.
	reg2 := NewRegistry(1)
	reg2.SetVRRPActive(nil)
	s, err := reg2.Build(engineConfig(t, "dr", 80), ifaces, testEgress, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Standby()) != 0 {
		t.Fatalf("standby without vrrp: %v", s.Standby())
	}
}

// twoVRRPInstances has two DR services whose VIPs belong to two VRRP instances.
const twoVRRPInstances = `
[director]
interfaces = ["eth0"]
workers = 1
[[service]]
vip = "203.0.113.10"
port = 80
forward = "dr"
  [[service.real]]
  address = "10.1.2.3"
[[service]]
vip = "203.0.113.20"
port = 80
forward = "dr"
  [[service.real]]
  address = "10.1.2.4"
[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 1
vips = ["203.0.113.10"]
[[vrrp]]
name = "VI_2"
interface = "eth0"
virtual_router_id = 2
vips = ["203.0.113.20"]
`

// TestEngineVRRPTransitionKeepsConnections: a connection to a VIP whose instance stays
// master keeps forwarding when another instance's VIP moves to standby (a new snapshot).
func TestEngineVRRPTransitionKeepsConnections(t *testing.T) {
	cfg, err := config.Parse("vrrp.toml", []byte(twoVRRPInstances))
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(1)
	ifaces := []Iface{{Name: "eth0", Index: 2, MAC: ifaceMAC, MTU: 1500}}
	ct, err := conntrack.New(conntrack.Config{Capacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(0, ct, 4096, 64<<10, 1)
	build := func(active ...string) {
		var as []netip.Addr
		for _, a := range active {
			as = append(as, netip.MustParseAddr(a))
		}
		reg.SetVRRPActive(as)
		s, err := reg.Build(cfg, ifaces, testEgress, 1)
		if err != nil {
			t.Fatal(err)
		}
		e.Begin(s, 1e9)
	}
	build("203.0.113.10", "203.0.113.20")
	// vip (203.0.113.10) is the default spec's destination.
	if got := len(e.one(t, tcpFrame(t, 40000, 0x02, false))); got == 0 {
		t.Fatal("SYN not forwarded")
	}
	// VI_2 becomes backup: the established connection to VI_1's VIP keeps forwarding
	// (an ACK without SYN needs the connection entry: tcp_no_conn otherwise).
	build("203.0.113.10")
	e.Reset()
	e.Handle(tcpFrame(t, 40000, 0x10, false), 0)
	if len(e.out) != 1 {
		t.Fatalf("established connection dropped after another instance's transition: %v", e.dropSummary())
	}
}
