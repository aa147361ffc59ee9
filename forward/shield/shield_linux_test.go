package shield

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/forward/internal/netnstest"
)

func TestNATRealKey(t *testing.T) {
	tests := []struct {
		name string
		in   NATReal
		want []byte
	}{
		{"tcp 80", NATReal{Addr: [4]byte{198, 18, 0, 1}, Proto: unix.IPPROTO_TCP, Port: 80},
			[]byte{198, 18, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0}},
		{"udp 65535", NATReal{Addr: [4]byte{198, 19, 255, 255}, Proto: unix.IPPROTO_UDP, Port: 65535},
			[]byte{198, 19, 255, 255, 17, 0, 0, 0, 0xff, 0xff, 0, 0}},
		{"ipv6 tcp 443", NATReal{V6: true, Addr6: [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}, Proto: unix.IPPROTO_TCP, Port: 443},
			[]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 6, 0, 0, 0, 0x01, 0xbb, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := natRealKey(tt.in); !bytes.Equal(got, tt.want) {
				t.Errorf("natRealKey(%+v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestNewShieldBadConfig(t *testing.T) {
	tests := []struct {
		name   string
		ifaces []string
	}{
		{"none", nil},
		{"empty name", []string{""}},
		{"too long", []string{"abcdefghijklmnop"}},
		{"duplicate", []string{"eth0", "eth0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := NewShield(ShieldConfig{Interfaces: tt.ifaces}); err == nil {
				_ = s.Close()
				t.Fatalf("NewShield(%q) succeeded", tt.ifaces)
			}
		})
	}
}

// shieldLab is client namespace A (a0 198.18.0.1/24) wired to director
// namespace B (b0 198.18.0.2/24). B forwards, routes the VIP network
// 198.18.1.0/24 via sink namespace C (b1 198.18.3.1/24 - c0 198.18.3.2/24),
// and has 198.18.1.99 on lo.
type shieldLab struct {
	a, b, c string
}

func newShieldLab(t *testing.T) shieldLab {
	t.Helper()
	p := netnstest.NSPrefix(t)
	l := shieldLab{a: netnstest.NewNS(t, p+"-a"), b: netnstest.NewNS(t, p+"-b"), c: netnstest.NewNS(t, p+"-c")}
	netnstest.VethPair(t, l.a, "a0", l.b, "b0")
	netnstest.Sh(t, "ip", "-n", l.a, "addr", "add", "198.18.0.1/24", "dev", "a0")
	netnstest.Sh(t, "ip", "-n", l.a, "route", "add", "198.18.1.0/24", "via", "198.18.0.2")
	netnstest.Sh(t, "ip", "-n", l.b, "addr", "add", "198.18.0.2/24", "dev", "b0")
	netnstest.VethPair(t, l.b, "b1", l.c, "c0")
	netnstest.Sh(t, "ip", "-n", l.b, "addr", "add", "198.18.3.1/24", "dev", "b1")
	netnstest.Sh(t, "ip", "-n", l.c, "addr", "add", "198.18.3.2/24", "dev", "c0")
	netnstest.Sh(t, "ip", "-n", l.b, "route", "add", "198.18.1.0/24", "via", "198.18.3.2")
	netnstest.Sh(t, "ip", "-n", l.b, "addr", "add", "198.18.1.99/32", "dev", "lo")
	netnstest.Sysctl(t, l.b, "net.ipv4.ip_forward=1")
	netnstest.Sysctl(t, l.b, "net.ipv4.conf.all.rp_filter=0")
	netnstest.Sysctl(t, l.b, "net.ipv4.conf.b0.rp_filter=0")
	return l
}

// forwarded sends 5 datagrams from A (src) to dst and returns by how much
// B's IpForwDatagrams grew.
func (l shieldLab) forwarded(t *testing.T, src, dst string) uint64 {
	t.Helper()
	before := netnstest.Nstat(t, l.b, "IpForwDatagrams")
	netnstest.SendUDP(t, l.a, src, dst, 5)
	time.Sleep(50 * time.Millisecond)
	return netnstest.Nstat(t, l.b, "IpForwDatagrams") - before
}

// dialRefused reports whether a TCP connect from A to addr was refused
// (B's kernel sent a RST) rather than timing out.
func (l shieldLab) dialRefused(t *testing.T, addr string) bool {
	t.Helper()
	var refused bool
	netnstest.MustInNS(t, l.a, func() error {
		c, err := net.DialTimeout("tcp4", addr, 700*time.Millisecond)
		if err == nil {
			c.Close()
			return errors.New("dial " + addr + ": unexpectedly connected")
		}
		refused = errors.Is(err, unix.ECONNREFUSED)
		if !refused && !os.IsTimeout(err) {
			return err
		}
		return nil
	})
	return refused
}

// newShieldIn creates a shield of the given mode inside namespace ns.
func newShieldIn(t *testing.T, ns string, mode config.ShieldMode, ifaces ...string) *Shield {
	t.Helper()
	var s *Shield
	netnstest.MustInNS(t, ns, func() error {
		var err error
		s, err = NewShield(ShieldConfig{Interfaces: ifaces, Mode: mode})
		return err
	})
	t.Cleanup(func() { _ = s.Close() })
	want := map[config.ShieldMode]string{config.ShieldTCX: KindTCX, config.ShieldNftables: KindNftables}[mode]
	if want != "" && s.Kind() != want {
		t.Fatalf("shield %v runs as %s", mode, s.Kind())
	}
	return s
}

// shieldModes are the mechanisms every behavioural test runs with.
var shieldModes = []config.ShieldMode{config.ShieldTCX, config.ShieldNftables}

func nftTables(t *testing.T, ns string) string {
	t.Helper()
	return strings.TrimSpace(netnstest.Sh(t, "ip", "netns", "exec", ns, "nft", "list", "tables", "netdev"))
}

func TestIntegrationShieldVIP(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	for _, mode := range shieldModes {
		t.Run(mode.String(), func(t *testing.T) { testShieldVIP(t, mode) })
	}
}

func testShieldVIP(t *testing.T, mode config.ShieldMode) {
	l := newShieldLab(t)

	// Without the shield B's kernel forwards VIP traffic and resets
	// connections to a local VIP.
	if n := l.forwarded(t, "198.18.0.1:0", "198.18.1.10:9"); n < 5 {
		t.Fatalf("without shield: IpForwDatagrams grew by %d, want >= 5", n)
	}
	if !l.dialRefused(t, "198.18.1.99:81") {
		t.Fatal("without shield: connect to local VIP was not refused")
	}

	s := newShieldIn(t, l.b, mode, "b0")
	if err := s.Update([][4]byte{netnstest.Addr4("198.18.1.10"), netnstest.Addr4("198.18.1.99"), netnstest.Addr4("198.18.1.10")}, nil); err != nil {
		t.Fatal(err)
	}
	tap := netnstest.ListenAll(t, l.b, "b0", unix.ETH_P_ALL)

	rsts := netnstest.Nstat(t, l.b, "TcpOutRsts")
	if n := l.forwarded(t, "198.18.0.1:0", "198.18.1.10:9"); n != 0 {
		t.Errorf("with shield: IpForwDatagrams grew by %d, want 0", n)
	}
	if !netnstest.AwaitFrame(tap, time.Second, func(f []byte) bool {
		return netnstest.IPv4Frame(f, unix.IPPROTO_UDP, netnstest.Addr4("198.18.0.1"), netnstest.Addr4("198.18.1.10"))
	}) {
		t.Error("with shield: AF_PACKET ETH_P_ALL socket saw no VIP datagram")
	}
	if l.dialRefused(t, "198.18.1.99:81") {
		t.Error("with shield: connect to local VIP was refused by B's kernel")
	}
	if n := netnstest.Nstat(t, l.b, "TcpOutRsts") - rsts; n != 0 {
		t.Errorf("with shield: B sent %d RSTs", n)
	}
	if !netnstest.AwaitFrame(tap, time.Second, func(f []byte) bool {
		return netnstest.IPv4Frame(f, unix.IPPROTO_TCP, netnstest.Addr4("198.18.0.1"), netnstest.Addr4("198.18.1.99"))
	}) {
		t.Error("with shield: AF_PACKET ETH_P_ALL socket saw no SYN to the local VIP")
	}
	// Addresses outside the set are untouched.
	if n := l.forwarded(t, "198.18.0.1:0", "198.18.1.11:9"); n < 5 {
		t.Errorf("with shield: non-VIP IpForwDatagrams grew by %d, want >= 5", n)
	}
	// The director's own control traffic passes even to a VIP: IPVS sync (UDP 8848) is
	// forwarded, a BGP connection (TCP 179) to a local VIP reaches B's stack (and is refused).
	if n := l.forwarded(t, "198.18.0.1:0", "198.18.1.10:8848"); n < 5 {
		t.Errorf("with shield: IPVS sync to a VIP: IpForwDatagrams grew by %d, want >= 5", n)
	}
	if !l.dialRefused(t, "198.18.1.99:179") {
		t.Error("with shield: BGP connect to a local VIP did not reach B's kernel")
	}

	// Update replaces: 198.18.1.10 is no longer shielded.
	if err := s.Update([][4]byte{netnstest.Addr4("198.18.1.99")}, nil); err != nil {
		t.Fatal(err)
	}
	if n := l.forwarded(t, "198.18.0.1:0", "198.18.1.10:9"); n < 5 {
		t.Errorf("after update: IpForwDatagrams grew by %d, want >= 5", n)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Update(nil, nil); err == nil {
		t.Error("Update after Close succeeded")
	}
	if out := nftTables(t, l.b); out != "" {
		t.Errorf("after Close: nft list tables netdev = %q, want empty", out)
	}
	if !l.dialRefused(t, "198.18.1.99:81") {
		t.Error("after Close: connect to local VIP was not refused")
	}
}

func TestIntegrationShieldNATReplies(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	for _, mode := range shieldModes {
		t.Run(mode.String(), func(t *testing.T) { testShieldNATReplies(t, mode) })
	}
}

func testShieldNATReplies(t *testing.T, mode config.ShieldMode) {
	l := newShieldLab(t)
	s := newShieldIn(t, l.b, mode, "b0")
	nr := NATReal{Addr: netnstest.Addr4("198.18.0.1"), Proto: unix.IPPROTO_UDP, Port: 8080}
	if err := s.Update(nil, []NATReal{nr}); err != nil {
		t.Fatal(err)
	}
	tap := netnstest.ListenAll(t, l.b, "b0", unix.ETH_P_ALL)

	// A reply from the real's service port to a client is not forwarded
	// by B's kernel, but reaches AF_PACKET.
	if n := l.forwarded(t, "198.18.0.1:8080", "198.18.1.50:40000"); n != 0 {
		t.Errorf("NAT reply: IpForwDatagrams grew by %d, want 0", n)
	}
	if !netnstest.AwaitFrame(tap, time.Second, func(f []byte) bool {
		return netnstest.IPv4Frame(f, unix.IPPROTO_UDP, netnstest.Addr4("198.18.0.1"), netnstest.Addr4("198.18.1.50")) &&
			binary.BigEndian.Uint16(f[14+20:]) == 8080
	}) {
		t.Error("NAT reply: AF_PACKET ETH_P_ALL socket saw nothing")
	}
	// Another port or protocol of the same host is ordinary traffic.
	if n := l.forwarded(t, "198.18.0.1:8081", "198.18.1.50:40000"); n < 5 {
		t.Errorf("other port: IpForwDatagrams grew by %d, want >= 5", n)
	}

	// Replies addressed to the director itself (health checks) pass:
	// fib daddr type local.
	var got chan string
	var pc net.PacketConn
	netnstest.MustInNS(t, l.b, func() error {
		var err error
		pc, err = net.ListenPacket("udp4", "198.18.0.2:7777")
		return err
	})
	t.Cleanup(func() { _ = pc.Close() })
	got = make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		_ = pc.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- from.String() + " " + string(buf[:n])
	}()
	netnstest.SendUDP(t, l.a, "198.18.0.1:8080", "198.18.0.2:7777", 1)
	if r := <-got; r != "198.18.0.1:8080 uvs test" {
		t.Errorf("health check reply to the director: got %q", r)
	}
}

func TestIntegrationShieldLeftover(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	p := netnstest.NSPrefix(t)
	ns := netnstest.NewNS(t, p+"-l")
	netnstest.Sh(t, "ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")

	netnstest.MustInNS(t, ns, func() error { return removeLeftoverShield() })
	first := newShieldIn(t, ns, config.ShieldNftables, "d0")
	if err := first.Update([][4]byte{netnstest.Addr4("198.18.9.9")}, nil); err != nil {
		t.Fatal(err)
	}
	// A new run after a crash replaces the old table rather than failing.
	second := newShieldIn(t, ns, config.ShieldNftables, "d0", "d1")
	if out := nftTables(t, ns); out != "table netdev uvs" {
		t.Fatalf("nft list tables netdev = %q", out)
	}
	rules := netnstest.Sh(t, "ip", "netns", "exec", ns, "nft", "list", "table", "netdev", "uvs")
	for _, want := range []string{"ingress-d0", "ingress-d1", "priority -500", "ip daddr @vips drop", "179 accept", "8848 accept", "vrrp accept",
		"ip saddr . meta l4proto . th sport @nat_reals fib daddr type != local drop"} {
		if !strings.Contains(rules, want) {
			t.Errorf("table lacks %q:\n%s", want, rules)
		}
	}
	if strings.Contains(rules, "198.18.9.9") {
		t.Errorf("old set contents survived:\n%s", rules)
	}
	if err := second.Update([][4]byte{netnstest.Addr4("198.18.9.8")}, []NATReal{{Addr: netnstest.Addr4("198.18.9.7"), Proto: unix.IPPROTO_TCP, Port: 443}}); err != nil {
		t.Fatal(err)
	}
	rules = netnstest.Sh(t, "ip", "netns", "exec", ns, "nft", "list", "table", "netdev", "uvs")
	for _, want := range []string{"198.18.9.8", "198.18.9.7 . tcp . 443"} {
		if !strings.Contains(rules, want) {
			t.Errorf("set lacks %q:\n%s", want, rules)
		}
	}
	netnstest.MustInNS(t, ns, func() error { return removeLeftoverShield() })
	if out := nftTables(t, ns); out != "" {
		t.Errorf("after removeLeftoverShield: %q", out)
	}
	// A device that does not exist yet: newer kernels (6.18 here) accept
	// the chain and attach it by name when the device appears; older ones
	// fail the whole transaction, leaving nothing.
	var absent *Shield
	var absentErr error
	netnstest.MustInNS(t, ns, func() error {
		absent, absentErr = NewShield(ShieldConfig{Interfaces: []string{"d0", "nope0"}, Mode: config.ShieldNftables})
		return nil
	})
	if absentErr == nil {
		t.Log("kernel accepts a shield chain for an absent device")
		if err := absent.Close(); err != nil {
			t.Error(err)
		}
	} else {
		t.Logf("kernel rejects a shield chain for an absent device: %v", absentErr)
	}
	if out := nftTables(t, ns); out != "" {
		t.Errorf("after shield on absent device: %q", out)
	}
	// Updating a shield whose table someone removed fails, twice (the
	// connection is reopened after the first failure, not wedged).
	for i := 0; i < 2; i++ {
		if err := second.Update([][4]byte{netnstest.Addr4("198.18.9.8")}, nil); err == nil || !isNotExist(err) {
			t.Errorf("Update %d of a removed table: %v, want ENOENT", i, err)
		}
	}
	// Closing a shield whose table is already gone is fine.
	if err := second.Close(); err != nil {
		t.Errorf("Close after removal: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Errorf("Close of replaced shield: %v", err)
	}
	// A tcx shield removes a table a killed nftables run left behind.
	third := newShieldIn(t, ns, config.ShieldNftables, "d0")
	_ = third
	newShieldIn(t, ns, config.ShieldTCX, "d0")
	if out := nftTables(t, ns); out != "" {
		t.Errorf("after a tcx shield started: nft list tables netdev = %q", out)
	}
}

// TestIntegrationShieldLargeUpdate needs several NEWSETELEM messages per set
// and a batch larger than the default netlink send buffer: before both were
// handled, 10,000 elements failed with EMSGSIZE and larger sets with ENOBUFS.
func TestIntegrationShieldLargeUpdate(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	ns := netnstest.NewNS(t, netnstest.NSPrefix(t)+"-l")
	netnstest.Sh(t, "ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	s := newShieldIn(t, ns, config.ShieldNftables, "d0")
	const n = 10000
	vips := make([][4]byte, n)
	nat := make([]NATReal, n)
	for i := range vips {
		vips[i] = [4]byte{198, 18, byte(i >> 8), byte(i)}
		nat[i] = NATReal{Addr: [4]byte{198, 19, byte(i >> 8), byte(i)}, Proto: unix.IPPROTO_TCP, Port: uint16(i)}
	}
	for _, size := range []int{n, 3} {
		if err := s.Update(vips[:size], nat[:size]); err != nil {
			t.Fatalf("Update with %d elements: %v", size, err)
		}
		for set, prefix := range map[string]string{"vips": `"198.18.`, "nat_reals": `"198.19.`} {
			out := netnstest.Sh(t, "ip", "netns", "exec", ns, "nft", "-j", "list", "set", "netdev", "uvs", set)
			if got := strings.Count(out, prefix); got != size {
				t.Errorf("set %s holds %d elements, want %d", set, got, size)
			}
		}
	}
}
