//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/forward/packet"
	"github.com/uvs-project/uvs/internal/testenv"
)

// TestIntegrationRealserverDecapIPv6 sends 6in6, 6in4 and 4in6 tunnel packets, as the
// director's TUN method would, to a real server running `uvs realserver --method tun`,
// which decapsulates them in user space (this kernel has neither sit nor ip6_tunnel): a UDP
// echo service bound to the VIP on the real server answers each inner packet, straight back
// to the sender. First it shows that the IPv6 VIP on the real server's lo is not advertised.
// Lab IPv6 addresses go without duplicate address detection (nodad).
func TestIntegrationRealserverDecapIPv6(t *testing.T) {
	testenv.RequireRoot(t)
	lab := newLab(t, bench.LabSpec{Topology: bench.TopologyDR, Reals: 1})
	dir, rs := lab.Director, lab.Reals[0]
	sh := func(n *bench.Node, args ...string) {
		t.Helper()
		if out, err := n.Command(context.Background(), args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %v\n%s", n.Name, args, err, out)
		}
	}
	// The lab turns IPv6 off in its namespaces; this test turns it back on in two of them.
	for _, n := range []*bench.Node{dir, rs} {
		if err := n.Do(func() error {
			for _, dev := range []string{"all", "default", "lo", "eth0"} {
				if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+dev+"/disable_ipv6", []byte("0"), 0); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	sh(dir, "ip", "addr", "add", "fd00:1::1/64", "dev", "eth0", "nodad")
	sh(dir, "ip", "addr", "add", "fd00:2::7/128", "dev", "lo", "nodad") // the clients' side
	sh(rs, "ip", "addr", "add", "fd00:1::2/64", "dev", "eth0", "nodad")
	sh(rs, "ip", "route", "add", "fd00:2::/64", "via", "fd00:1::1")

	vip6 := netip.MustParseAddr("2001:db8:99::10")
	vip4 := lab.VIP
	p := startRealserverVIPs(t, rs, vip6.String()+","+vip4.String())
	if !strings.Contains(p.out.String(), "added VIP 2001:db8:99::10/128 to lo") {
		t.Fatalf("realserver output:\n%s", p.out.String())
	}

	// A UDP echo service on the real server, bound to each VIP.
	for _, a := range []string{"[" + vip6.String() + "]:7000", vip4.String() + ":7000"} {
		var pc net.PacketConn
		if err := rs.Do(func() error {
			var err error
			pc, err = net.ListenPacket("udp", a)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 1500)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo(buf[:n], from)
			}
		}()
	}

	// The VIP on the real server's lo is never advertised on its link (Linux answers a
	// solicitation only for an address on the receiving device): the director's kernel,
	// soliciting it on-link, gives up (FAILED after its three probes) instead of learning
	// the real server's MAC, which would steal the VIP's traffic.
	sh(dir, "ip", "-6", "route", "add", vip6.String()+"/128", "dev", "eth0")
	_ = dir.Do(func() error {
		c, err := net.Dial("udp6", "["+vip6.String()+"]:9")
		if err == nil {
			_, _ = c.Write([]byte("who has the VIP"))
			c.Close()
		}
		return nil
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, _ := dir.Command(context.Background(), "ip", "-6", "neigh", "show", vip6.String(), "dev", "eth0").CombinedOutput()
		st := string(out)
		if strings.Contains(st, "lladdr") {
			t.Fatalf("the real server advertised its lo VIP: %s", st)
		}
		if strings.Contains(st, "FAILED") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("neighbour entry of the VIP: %q, want FAILED", st)
		}
	}
	sh(dir, "ip", "-6", "route", "del", vip6.String()+"/128", "dev", "eth0")

	client6 := netip.MustParseAddr("fd00:2::7")
	client4 := dir.Addr
	tests := []struct {
		name           string
		family, proto  int
		outerDst       netip.Addr
		client, vip    netip.Addr
		listen, sendTo string
	}{
		{"6in6", unix.AF_INET6, unix.IPPROTO_IPV6, netip.MustParseAddr("fd00:1::2"), client6, vip6, "[fd00:2::7]:5601", ""},
		{"6in4", unix.AF_INET, unix.IPPROTO_IPV6, rs.Addr, client6, vip6, "[fd00:2::7]:5602", ""},
		{"4in6", unix.AF_INET6, unix.IPPROTO_IPIP, netip.MustParseAddr("fd00:1::2"), client4, vip4, client4.String() + ":5603", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reply net.PacketConn
			var raw int
			if err := dir.Do(func() error {
				var err error
				if reply, err = net.ListenPacket("udp", tt.listen); err != nil {
					return err
				}
				raw, err = unix.Socket(tt.family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, tt.proto)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer reply.Close()
			defer unix.Close(raw)
			sport := uint16(reply.LocalAddr().(*net.UDPAddr).Port)
			inner := udpPacket(tt.client, tt.vip, sport, 7000, []byte("uvs "+tt.name))
			var to unix.Sockaddr
			if tt.family == unix.AF_INET6 {
				to = &unix.SockaddrInet6{Addr: tt.outerDst.As16()}
			} else {
				to = &unix.SockaddrInet4{Addr: tt.outerDst.As4()}
			}
			buf := make([]byte, 1500)
			// The real server's neighbour entry may take a moment: send until answered.
			deadline := time.Now().Add(10 * time.Second)
			for {
				if err := unix.Sendto(raw, inner, 0, to); err != nil {
					t.Fatalf("send: %v", err)
				}
				_ = reply.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				n, from, err := reply.ReadFrom(buf)
				if err == nil {
					if got := string(buf[:n]); got != "uvs "+tt.name || from.(*net.UDPAddr).AddrPort().Addr().Unmap() != tt.vip {
						t.Fatalf("reply %q from %v", got, from)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("no reply: %v\nrealserver:\n%s", err, p.out.String())
				}
			}
		})
	}
}

// startRealserverVIPs is startRealserver with a --vip list.
func startRealserverVIPs(t *testing.T, n *bench.Node, vips string) *realserverProc {
	t.Helper()
	return startRealserverArgs(t, n, "--method", "tun", "--vip", vips, "--decap", "user")
}

// udpPacket builds an IPv4 or IPv6 UDP packet (no L2 header) with correct checksums.
func udpPacket(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	u := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	if src.Is6() {
		cs := ^packet.Checksum(u, packet.PseudoHeaderSum6(src.As16(), dst.As16(), packet.ProtoUDP, uint32(len(u))))
		binary.BigEndian.PutUint16(u[6:], cs)
		h := make([]byte, 40)
		h[0], h[6], h[7] = 0x60, packet.ProtoUDP, 64
		binary.BigEndian.PutUint16(h[4:], uint16(len(u)))
		copy(h[8:], src.AsSlice())
		copy(h[24:], dst.AsSlice())
		return append(h, u...)
	}
	cs := ^packet.Checksum(u, packet.PseudoHeaderSum(src.As4(), dst.As4(), packet.ProtoUDP, uint16(len(u))))
	binary.BigEndian.PutUint16(u[6:], cs)
	h := make([]byte, 20)
	h[0], h[8], h[9] = 0x45, 64, packet.ProtoUDP
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(u)))
	copy(h[12:], src.AsSlice())
	copy(h[16:], dst.AsSlice())
	binary.BigEndian.PutUint16(h[10:], ^packet.Checksum(h, 0))
	return append(h, u...)
}
