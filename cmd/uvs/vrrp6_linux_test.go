//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/vrrp"
)

// The IPv6 VRRP tests' /64 (inside the benchmarking prefix 2001:2::/48) and VIP.
const (
	vrrp6Prefix = "2001:2:0:c6::"
	vrrp6VIP    = vrrp6Prefix + "100"
)

// newVRRPNet6 is newVRRPNet with IPv6 too: each host gets 2001:2:0:c6::N/64 (nodad) beside its
// IPv4 address, and the test waits until every e0's link-local address (the source of VRRPv3
// adverts over IPv6) has passed duplicate address detection.
func newVRRPNet6(t *testing.T, hosts ...string) *vrrpNet {
	v := newVRRPNet(t, hosts...)
	for i, h := range hosts {
		v.must("ip", "-n", v.ns(h), "addr", "add", fmt.Sprintf("%s%d/64", vrrp6Prefix, i+1), "dev", "e0", "nodad")
	}
	for _, h := range hosts {
		waitFor(t, 10*time.Second, h+" link-local address usable", func() bool {
			out, _ := v.in(h, "ip", "-6", "-o", "addr", "show", "dev", "e0", "scope", "link")
			return strings.Contains(out, "fe80::") && !strings.Contains(out, "tentative")
		})
	}
	return v
}

// reach6 reports whether client reaches addr: a TCP connection to port 9 (discard) that the
// VIP's owner accepts or refuses with a RST (no ping binary is needed; 1 s bound).
func (v *vrrpNet) reach6(client, addr string) bool {
	err := (&bench.Node{NS: v.ns(client)}).Do(func() error {
		c, err := net.DialTimeout("tcp6", net.JoinHostPort(addr, "9"), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	return err == nil || errors.Is(err, syscall.ECONNREFUSED)
}

// TestIntegrationVRRP6Keepalived pairs uvs with a real keepalived over IPv6 (VRRPv3 to
// ff02::12 from the link-local addresses) and has each take over from the other both ways:
// judged by VRRP state (uvs list, keepalived's VIP on its interface) and by a client in a
// third namespace, whose neighbour entry for the IPv6 VIP moves to uvs's MAC when uvs's
// unsolicited neighbour advertisements arrive, and back to keepalived's (where the client
// then reaches the VIP) when keepalived takes over again.
func TestIntegrationVRRP6Keepalived(t *testing.T) {
	// VRRPv3 multicast to ff02::12 from the link-local addresses, VRRPv3 unicast between the
	// global addresses (unicast_src_ip, unicast_peer), and keepalived's VRRPv2 over IPv6 (its
	// default version).
	for _, tt := range []struct {
		name    string
		ver     int
		ka, uvs string
	}{
		{"multicast", 3, "", ""},
		{"unicast", 3, "  unicast_src_ip " + vrrp6Prefix + "2\n  unicast_peer {\n    " + vrrp6Prefix + "1\n  }\n",
			fmt.Sprintf("unicast_src_ip = %q\nunicast_peer = [%q]\n", vrrp6Prefix+"1", vrrp6Prefix+"2")},
		{"v2", 2, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) { vrrp6Keepalived(t, tt.ver, tt.ka, tt.uvs) })
	}
}

// vrrp6Keepalived runs TestIntegrationVRRP6Keepalived with a version and extra keepalived
// and uvs lines.
func vrrp6Keepalived(t *testing.T, ver int, kaExtra, uvsExtra string) {
	n := newVRRPNet6(t, "uvs", "ka", "client")
	n.keepalived("ka", "  state BACKUP\n  virtual_router_id 61\n  priority 100\n  advert_int 1\n  version "+strconv.Itoa(ver)+"\n"+kaExtra+"  virtual_ipaddress {\n    "+vrrp6VIP+"/128\n  }\n")
	inst := func(prio int) string {
		return fmt.Sprintf("[[vrrp]]\nname = \"VI_6\"\ninterface = \"e0\"\nvirtual_router_id = 61\npriority = %d\nversion = %d\nvips = [%q]\n", prio, ver, vrrp6VIP) + uvsExtra
	}
	kaMAC, uvsMAC := n.mac("ka"), n.mac("uvs")
	// keepalived alone becomes master; the client reaches the VIP (keepalived's kernel
	// answers) and so learns keepalived's MAC for it.
	waitFor(t, masterDown(time.Second, 100)+time.Second, "keepalived master", func() bool { return n.hasAddr("ka", vrrp6VIP) })
	waitFor(t, 5*time.Second, "client reaches the VIP at keepalived", func() bool { return n.reach6("client", vrrp6VIP) })
	if got := n.neighMAC("client", vrrp6VIP); got != kaMAC {
		t.Fatalf("client's neighbour entry for the VIP is %q, want keepalived's %s", got, kaMAC)
	}
	// uvs with a higher priority preempts keepalived and announces the VIP: the client's
	// entry moves to uvs's MAC (an unsolicited NA with the override flag, RFC 4861 §7.2.6).
	u, path := n.uvs("uvs", inst(150))
	waitFor(t, masterDown(time.Second, 150)+2*time.Second, "uvs preempts keepalived", func() bool {
		return n.vrrpState("uvs") == "master" && !n.hasAddr("ka", vrrp6VIP)
	})
	waitFor(t, 2*time.Second, "client's neighbour entry moves to uvs", func() bool { return n.neighMAC("client", vrrp6VIP) == uvsMAC })
	// uvs lowers its priority (SIGHUP): keepalived preempts the running uvs.
	writeFile(t, path, strings.Replace(mustRead(t, path), "priority = 150", "priority = 50", 1))
	_ = u.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, masterDown(time.Second, 100)+2*time.Second, "keepalived preempts uvs", func() bool {
		return n.vrrpState("uvs") == "backup" && n.hasAddr("ka", vrrp6VIP)
	})
	waitFor(t, 2*time.Second, "client's neighbour entry back to keepalived", func() bool { return n.neighMAC("client", vrrp6VIP) == kaMAC })
	waitFor(t, 5*time.Second, "client reaches the VIP at keepalived again", func() bool { return n.reach6("client", vrrp6VIP) })
	// Back to 150: uvs preempts again; then SIGKILL uvs: keepalived takes over within the
	// master-down interval, and the client reaches the VIP there.
	writeFile(t, path, strings.Replace(mustRead(t, path), "priority = 50", "priority = 150", 1))
	_ = u.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, masterDown(time.Second, 150)+2*time.Second, "uvs preempts keepalived again", func() bool {
		return n.vrrpState("uvs") == "master" && !n.hasAddr("ka", vrrp6VIP)
	})
	waitFor(t, 2*time.Second, "client's neighbour entry moves to uvs again", func() bool { return n.neighMAC("client", vrrp6VIP) == uvsMAC })
	u.stop(t, syscall.SIGKILL)
	waitFor(t, masterDown(time.Second, 100), "keepalived takes over from a killed uvs", func() bool { return n.hasAddr("ka", vrrp6VIP) })
	waitFor(t, 2*time.Second, "client's neighbour entry back to keepalived after SIGKILL", func() bool { return n.neighMAC("client", vrrp6VIP) == kaMAC })
	waitFor(t, 5*time.Second, "client reaches the VIP after SIGKILL", func() bool { return n.reach6("client", vrrp6VIP) })
}

// linkLocal is host's link-local address on e0.
func (v *vrrpNet) linkLocal(host string) netip.Addr {
	v.t.Helper()
	out := v.must("ip", "-n", v.ns(host), "-6", "-o", "addr", "show", "dev", "e0", "scope", "link")
	m := regexp.MustCompile(`inet6 (fe80::[0-9a-f:]+)/`).FindStringSubmatch(out)
	if m == nil {
		v.t.Fatalf("no link-local address in %q", out)
	}
	return netip.MustParseAddr(m[1])
}

// sendRaw6 sends VRRP messages from host's link-local address out of e0 to ff02::12 with the
// given hop limit (a raw IPv6 socket: the kernel adds the header).
func (v *vrrpNet) sendRaw6(host string, hops int, msgs ...[]byte) {
	v.t.Helper()
	src := v.linkLocal(host)
	err := (&bench.Node{NS: v.ns(host)}).Do(func() error {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, vrrp.Protocol)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifi, err := net.InterfaceByName("e0")
		if err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, hops); err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: src.As16(), ZoneId: uint32(ifi.Index)}); err != nil {
			return err
		}
		for _, m := range msgs {
			if err := unix.Sendto(fd, m, 0, &unix.SockaddrInet6{Addr: vrrp.Group6.As16(), ZoneId: uint32(ifi.Index)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		v.t.Fatal(err)
	}
}

// TestIntegrationVRRP6Hostile: IPv6 adverts with a hop limit other than 255 (read from the
// socket's ancillary data), a bad checksum, the other version (a valid VRRPv2 over IPv6 to a
// v3 instance) or another VRID are counted by reason and ignored; a valid one with a higher
// priority is obeyed.
func TestIntegrationVRRP6Hostile(t *testing.T) {
	n := newVRRPNet6(t, "d1", "evil")
	n.uvs("d1", fmt.Sprintf("[[vrrp]]\nname = \"VI_6\"\ninterface = \"e0\"\nvirtual_router_id = 61\npriority = 100\nversion = 3\nvips = [%q]\n", vrrp6VIP))
	waitFor(t, masterDown(time.Second, 100)+2*time.Second, "d1 master", func() bool { return n.vrrpState("d1") == "master" })
	src := n.linkLocal("evil")
	advert := func(mod func(a *vrrp.Advert)) []byte {
		a := vrrp.Advert{Version: 3, VRID: 61, Priority: 254, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr(vrrp6VIP)}}
		mod(&a)
		return vrrp.AppendMessage(nil, &a, src, vrrp.Group6)
	}
	good := advert(func(*vrrp.Advert) {})
	sum := advert(func(*vrrp.Advert) {})
	sum[len(sum)-1] ^= 0xff
	v2 := advert(func(a *vrrp.Advert) { a.Version = 2 }) // keepalived's VRRPv2 over IPv6, to a v3 instance
	vrid := advert(func(a *vrrp.Advert) { a.VRID = 62 })
	for range 3 {
		n.sendRaw6("evil", 64, good)
		n.sendRaw6("evil", 255, sum, v2, vrid)
		time.Sleep(300 * time.Millisecond)
	}
	want := []string{"ttl", "checksum", "version", "vrid"}
	defer func() {
		if t.Failed() {
			st, _ := n.vrrpStatus("d1")
			t.Logf("status: %+v", st)
		}
	}()
	waitFor(t, 3*time.Second, "every hostile advert counted", func() bool {
		st, ok := n.vrrpStatus("d1")
		if !ok {
			return false
		}
		for _, r := range want {
			if st.Drops[r] < 3 {
				return false
			}
		}
		return true
	})
	st, _ := n.vrrpStatus("d1")
	if st.State != "master" || st.Transitions != 2 {
		t.Fatalf("hostile adverts moved the instance: %+v", st)
	}
	t.Logf("dropped: %v", st.Drops)
	n.sendRaw6("evil", 255, good)
	waitFor(t, 3*time.Second, "a valid higher-priority advert is obeyed", func() bool { return n.vrrpState("d1") == "backup" })
	if st, _ := n.vrrpStatus("d1"); st.Master != src.String() {
		t.Fatalf("master %q, want the sender's link-local %s", st.Master, src)
	}
}

// TestIntegrationVRRP6Pair: two uvs directors with an IPv6 instance; the higher priority
// becomes master, and after its SIGKILL the other takes over within the master-down
// interval. The client, a router (forwarding and accept_untracked_na = 1, so that
// unsolicited advertisements create entries, whoever answers its solicitations), follows
// each master's neighbour advertisements.
func TestIntegrationVRRP6Pair(t *testing.T) {
	n := newVRRPNet6(t, "d1", "d2", "client")
	// Linux creates an entry from an untracked advertisement only on a forwarding interface
	// (ndisc_recv_na): the client is the router in front of the directors.
	n.must("ip", "netns", "exec", n.ns("client"), "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/e0/forwarding; echo 1 > /proc/sys/net/ipv6/conf/e0/accept_untracked_na")
	inst := func(prio int) string {
		return fmt.Sprintf("[[vrrp]]\nname = \"VI_6\"\ninterface = \"e0\"\nvirtual_router_id = 61\npriority = %d\nversion = 3\nadvert_int = \"0.5s\"\nvips = [%q]\n", prio, vrrp6VIP)
	}
	d1, _ := n.uvs("d1", inst(150))
	n.uvs("d2", inst(100))
	waitFor(t, masterDown(500*time.Millisecond, 100)+3*time.Second, "d1 master, d2 backup", func() bool {
		return n.vrrpState("d1") == "master" && n.vrrpState("d2") == "backup"
	})
	d1MAC, d2MAC := n.mac("d1"), n.mac("d2")
	waitFor(t, 2*time.Second, "client's entry for the VIP at d1", func() bool { return n.neighMAC("client", vrrp6VIP) == d1MAC })
	if st, _ := n.vrrpStatus("d2"); st.Master != n.linkLocal("d1").String() {
		t.Fatalf("d2 sees master %q, want d1's link-local %s", st.Master, n.linkLocal("d1"))
	}
	d1.stop(t, syscall.SIGKILL)
	// v3 master-down: 3 × 0.5 s + skew ((256-100)/256 × 0.5 s) after d1's last advert;
	// masterDown's bound is looser (a whole second of skew, and one more).
	took := waitFor(t, masterDown(500*time.Millisecond, 100), "d2 takes over from a killed d1", func() bool { return n.vrrpState("d2") == "master" })
	t.Logf("d2 master %v after d1's SIGKILL (polled every 100 ms through uvs list)", took.Round(10*time.Millisecond))
	waitFor(t, 2*time.Second, "client's entry for the VIP moves to d2", func() bool { return n.neighMAC("client", vrrp6VIP) == d2MAC })
}
