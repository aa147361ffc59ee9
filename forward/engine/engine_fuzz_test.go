package engine

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/internal/frametest"
	"github.com/uvs-project/uvs/forward/packet"
	"github.com/uvs-project/uvs/sched"
)

const fuzzEngineConfig = `
[director]
interfaces = ["eth0"]
workers = 1
[[service]]
vip = "203.0.113.10"
protocol = "tcp"
port = 80
scheduler = "wlc"
forward = "nat"
  [[service.real]]
  address = "10.1.2.3"
  port = 8080
[[service]]
vip = "203.0.113.10"
protocol = "udp"
ports = [53, 54]
scheduler = "sh"
persistence_timeout = "30s"
  [[service.real]]
  address = "10.1.2.4"
  forward = "dr"
  [[service.real]]
  address = "10.1.2.5"
  forward = "nat"
[[service]]
vip = "2001:2:0:10::10"
protocol = "tcp"
port = 80
forward = "nat"
  [[service.real]]
  address = "2001:2:0:10::3"
  port = 8080
[[service]]
vip = "2001:2:0:10::10"
protocol = "udp"
port = 53
persistence_timeout = "30s"
persistence_netmask = 64
forward = "dr"
  [[service.real]]
  address = "2001:2:0:10::4"
[[service]]
vip = "2001:2:0:10::10"
protocol = "tcp"
port = 443
forward = "tun"
  [[service.real]]
  address = "10.1.2.6"
[[service]]
vip = "2001:2:0:10::10"
protocol = "tcp"
port = 444
forward = "tun"
  [[service.real]]
  address = "2001:2:0:10::6"
`

// FuzzEngine feeds arbitrary frames (with an arbitrary virtio_net_hdr) through the whole
// per-packet path. Invariants: no panic; every frame out is inside the buffer it came from or
// the scratch arena, starts with a virtio_net_hdr and an Ethernet header, and if it is IPv4
// its header checksum verifies and its total length fits the frame; if IPv6, its version is 6
// and its payload length fits the frame.
func FuzzEngine(f *testing.F) {
	for _, s := range []struct {
		proto layers.IPProtocol
		dport uint16
		flags uint8
	}{{layers.IPProtocolTCP, 80, 0x02}, {layers.IPProtocolTCP, 80, 0x10}, {layers.IPProtocolUDP, 53, 0}, {layers.IPProtocolICMPv4, 0, 0}} {
		sp := frametest.DefaultSpec(s.proto, 40)
		sp.DPort, sp.Flags = s.dport, s.flags
		f.Add(withVnet(frametest.Build(f, sp), false))
		sp.Partial = s.proto != layers.IPProtocolICMPv4
		f.Add(withVnet(frametest.Build(f, sp), sp.Partial))
	}
	req := make([]byte, 64)
	n := packet.BuildARP(req, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, &packet.ARP{Op: packet.ARPRequest, SenderMAC: frametest.MACA, SenderIP: frametest.Client, TargetIP: frametest.VIP})
	f.Add(withVnet(req[:n], false))
	// IPv6 seeds: TCP to the NAT, TUN (6in4, 6in6) services, UDP to the persistent DR one, a
	// destination options header, a neighbour solicitation, a Packet Too Big about a reply.
	for _, s := range []spec6{
		tcp6(client6, vip6, 40000, 80, 0x02), tcp6(client6, vip6, 40000, 80, 0x10),
		tcp6(client6, vip6, 40000, 443, 0x02), tcp6(client6, vip6, 40000, 444, 0x02),
		{src: client6, dst: vip6, sport: 5353, dport: 53, udp: true, hop: 64, payload: 20},
		{src: client6, dst: vip6, sport: 40000, dport: 80, flags: 0x02, hop: 1, payload: 8, dstOpts: true},
	} {
		f.Add(withVnet(frame6(f, s), false))
	}
	f.Add(withVnet(nsFrame(f, vip6), false))
	f.Add(withVnet(ptbFrame(f, frame6(f, tcp6(vip6, client6, 80, 40000, 0x10)), client6, vip6), false))

	// A fresh engine, table and snapshot per input (so fresh loads, counters, ICMP bucket
	// and scratch): state left by earlier inputs would make a minimized crasher depend on
	// what ran before it, and it might not reproduce on its own. The config is parsed once
	// and the scheduler's 5 MiB of caches reset, not reallocated: about 15 us per input.
	cfg, err := config.Parse("fuzz.toml", []byte(fuzzEngineConfig))
	if err != nil {
		f.Fatal(err)
	}
	ifaces := []Iface{{Name: "eth0", Index: 2, MAC: ifaceMAC, MTU: 1500}}
	ws, ws2 := sched.NewWorkerState(1), sched.NewWorkerState(1)
	// fresh builds an engine as described above, around ws.
	fresh := func(t *testing.T, ws *sched.WorkerState) *Engine {
		s, err := NewRegistry(1).Build(cfg, ifaces, testEgress, 1)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := conntrack.New(conntrack.Config{Capacity: 64, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		ws.Reset(1)
		e := newEngine(0, ct, 64, 16<<10, ws)
		e.Begin(s, 1e9)
		return e
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The input, then a second packet of the same flow, reply direction for NAT:
		// addresses swapped.
		frames := [][]byte{data}
		switch {
		case len(data) >= packet.VnetHdrLen+54 && binary.BigEndian.Uint16(data[packet.VnetHdrLen+12:]) == packet.EtherTypeIPv6:
			r := append([]byte(nil), data...)
			ip := r[packet.VnetHdrLen+14:]
			var a [16]byte
			copy(a[:], ip[8:24])
			copy(ip[8:24], ip[24:40])
			copy(ip[24:40], a[:])
			frames = append(frames, r)
		case len(data) >= packet.VnetHdrLen+34:
			r := append([]byte(nil), data...)
			ip := r[packet.VnetHdrLen+14:]
			var a [4]byte
			copy(a[:], ip[12:16])
			copy(ip[12:16], ip[16:20])
			copy(ip[16:20], a[:])
			frames = append(frames, r)
		}
		e, es := fresh(t, ws), fresh(t, ws2)
		for _, fr := range frames {
			e.Handle(append([]byte(nil), fr...), 0)
			es.Stage(append([]byte(nil), fr...), 0) // the worker's way: staged, then run
		}
		for es.Run() {
		}
		// Staged or one by one, the same frames out and the same drops.
		if len(e.out) != len(es.out) {
			t.Fatalf("%d frames out one by one, %d staged", len(e.out), len(es.out))
		}
		for i := range e.out {
			if string(e.out[i].Frame) != string(es.out[i].Frame) {
				t.Fatalf("frame %d differs staged:\n% x\n% x", i, e.out[i].Frame, es.out[i].Frame)
			}
		}
		e.Publish()
		es.Publish()
		if d1, d2 := fmt.Sprint(e.dropSummary()), fmt.Sprint(es.dropSummary()); d1 != d2 {
			t.Fatalf("drops differ staged: %s / %s", d1, d2)
		}
		e.Expire()
		for _, o := range e.out {
			if len(o.Frame) < packet.VnetHdrLen+packet.EthHdrLen {
				t.Fatalf("short frame out: %d bytes", len(o.Frame))
			}
			fr := o.Frame[packet.VnetHdrLen:]
			if binary.BigEndian.Uint16(fr[12:]) == packet.EtherTypeIPv6 {
				h := fr[packet.EthHdrLen:]
				if len(h) < packet.IPv6HdrLen || packet.IPv6HdrLen+int(binary.BigEndian.Uint16(h[4:])) > len(h) || h[0]>>4 != 6 {
					t.Fatalf("bad IPv6 frame out: % x", h[:min(len(h), 40)])
				}
				continue
			}
			if binary.BigEndian.Uint16(fr[12:]) != packet.EtherTypeIPv4 || len(fr) < packet.EthHdrLen+packet.IPv4HdrLen {
				continue
			}
			h := fr[packet.EthHdrLen:]
			ihl := int(h[0]&0xf) * 4
			if ihl < packet.IPv4HdrLen || ihl > len(h) {
				t.Fatalf("bad IHL out: %d", ihl)
			}
			if packet.Checksum(h[:ihl], 0) != 0xffff {
				t.Fatalf("IPv4 header checksum does not verify: % x", h[:ihl])
			}
			if tot := int(binary.BigEndian.Uint16(h[2:])); tot > len(h) {
				t.Fatalf("total length %d past the frame (%d)", tot, len(h))
			}
		}
	})
}
