//go:build linux

package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// pmtu6LabMTU is the MTU of every link of TestIntegrationIPv6PMTU's lab: between IPv6's
// 1280-byte minimum (RFC 8200 section 5) and the usual 1500, so that the tunnel's room,
// 1400 less the 40-byte outer IPv6 header, is 1360.
const pmtu6LabMTU = 1400

// TestIntegrationIPv6PMTU: IPv6 routers never fragment and IPv6 has no DF bit to clear, so
// every IPv6 packet too big for the 6in6 tunnel must be answered by uvs with ICMPv6 Packet
// Too Big (RFC 4443 section 3.2) from the VIP, or the client retransmits into a black hole.
// A UDP datagram that fits the client's 1400-byte link but not the tunnel gets a PTB with
// MTU 1360. Then an upload (a request far larger than one segment) is shown to stall while
// the client drops PTBs (nftables), and to complete once it accepts them.
func TestIntegrationIPv6PMTU(t *testing.T) {
	testenv.RequireRoot(t)
	ipv6Backends(t, testIPv6PMTU)
}

func testIPv6PMTU(t *testing.T) {
	lab := newLab(t, bench.LabSpec{Topology: bench.TopologyTUN, MTU: pmtu6LabMTU, IPv6: true})
	for _, n := range lab.Reals {
		startRealserverVIPs(t, n, lab.VIP.String()+","+lab.VIP6.String())
	}
	startServers(t, lab, 80, bench.UDPPort)
	tmp := t.TempDir()
	cfgPath := tmp + "/uvs.toml"
	writeFile(t, cfgPath, lab.ConfigDual("tun", "rr", 80, 80, tmp))
	r := newRun(t, lab)
	r.vip = lab.VIP6
	r.runDirector(cfgPath)
	cl := lab.Client
	const room = pmtu6LabMTU - 40
	// The client sends single segments (no TSO/GSO), so that only Packet Too Big decides
	// whether the upload gets through; large IPv6 uploads with GSO through a tunnel are
	// TestIntegrationIPv6TUNUpload's.
	if out, err := cl.Command(context.Background(), "ethtool", "-K", "eth0", "tso", "off", "gso", "off").CombinedOutput(); err != nil {
		t.Fatalf("ethtool: %v %s", err, out)
	}

	var ic *icmp.PacketConn
	if err := cl.Do(func() error {
		var err error
		ic, err = icmp.ListenPacket("ip6:ipv6-icmp", "::")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	conn, err := cl.Dial(context.Background(), "udp6", netip.AddrPortFrom(r.vip, bench.UDPPort).String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_MTU_DISCOVER, syscall.IPV6_PMTUDISC_DO)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if _, err := conn.Write(make([]byte, pmtu6LabMTU-48)); err != nil { // a 1400-byte IPv6 packet
		t.Fatal(err)
	}
	_ = ic.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	for {
		n, from, err := ic.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no ICMPv6 packet too big: %v", err)
		}
		m, err := icmp.ParseMessage(58, buf[:n])
		if err != nil || m.Type != ipv6.ICMPTypePacketTooBig {
			continue
		}
		mtu := binary.BigEndian.Uint32(buf[4:8])
		t.Logf("ICMPv6 packet too big from %v, MTU %d", from, mtu)
		if a, _ := netip.ParseAddr(strings.Split(from.String(), "%")[0]); a != r.vip {
			t.Errorf("packet too big from %v, want the VIP %s", from, r.vip)
		}
		if mtu != room {
			t.Fatalf("MTU %d, want %d", mtu, room)
		}
		break
	}
	out, err := cl.Command(context.Background(), "ip", "-6", "route", "get", r.vip.String()).Output()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("mtu %d", room)) {
		t.Errorf("client route to the VIP does not carry PMTU %d: %v %s", room, err, out)
	}

	upload := func(timeout time.Duration) error {
		// Forget the learned PMTU so that the connection discovers it itself.
		_ = cl.Command(context.Background(), "ip", "-6", "route", "flush", "cache").Run()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		const n = 1_000_000
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+netip.AddrPortFrom(r.vip, 80).String()+fmt.Sprintf("/bytes?n=%d", n), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Pad", strings.Repeat("p", 200_000)) // ~150 full segments toward the VIP
		hc := cl.HTTPClient()
		hc.Timeout = timeout
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		h := sha256.New()
		got, err := io.Copy(h, resp.Body)
		if err != nil || resp.StatusCode != 200 || got != n || hex.EncodeToString(h.Sum(nil)) != bench.ExpectedSHA256(n) {
			return fmt.Errorf("status %d, %d bytes, err %v", resp.StatusCode, got, err)
		}
		return nil
	}

	// Without Packet Too Big the upload cannot complete: the client drops them.
	nft := func(args ...string) {
		t.Helper()
		if out, err := cl.Command(context.Background(), "nft", args...).CombinedOutput(); err != nil {
			t.Fatalf("nft %v: %v %s", args, err, out)
		}
	}
	nft("add table ip6 uvsptb")
	nft("add chain ip6 uvsptb in { type filter hook input priority 0 ; }")
	nft("add rule ip6 uvsptb in icmpv6 type packet-too-big counter drop")
	if err := upload(8 * time.Second); err == nil {
		t.Errorf("the upload completed while the client dropped every packet too big")
	} else {
		t.Logf("without packet too big: %v", err)
	}
	out, _ = cl.Command(context.Background(), "nft", "list", "table", "ip6", "uvsptb").CombinedOutput()
	if !strings.Contains(string(out), "counter packets") || strings.Contains(string(out), "counter packets 0 ") {
		t.Errorf("the client dropped no packet too big:\n%s", out)
	}
	nft("delete table ip6 uvsptb")
	if err := upload(60 * time.Second); err != nil {
		t.Fatalf("upload with packet too big: %v", err)
	}
	r.stopAndCheckClean()
	c := r.stoppedCounters()
	ptb := c["frag_needed"] + c["packet_too_big"] + c["ptb_sent"]
	if ptb < 2 {
		t.Errorf("director counted %d packet too big sent: %v", ptb, c)
	} else {
		t.Logf("director counters: %v", c)
	}
}

// TestIntegrationIPv6TUNUpload sends requests far larger than a segment (a 200 kB header)
// through the 6in6 TUN service with the client's offloads on, so that they reach the director
// as TCPv6 GSO super-frames that the tunnel must cut to size (the IPv4 VIP beside it is the
// control: uvs segments TCPv4 GSO frames for TUN).
func TestIntegrationIPv6TUNUpload(t *testing.T) {
	testenv.RequireRoot(t)
	ipv6Backends(t, func(t *testing.T) {
		r := startTUNLab6(t, false, func(l *bench.Lab, dir string) string {
			return l.ConfigDual("tun", "rr", 80, 80, dir)
		})
		for _, rr := range []*labRun{r.v4(), r} {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+netip.AddrPortFrom(rr.vip, 80).String()+"/bytes?n=100000", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Pad", strings.Repeat("p", 200_000))
			hc := r.lab.Client.HTTPClient()
			hc.Timeout = 30 * time.Second
			resp, err := hc.Do(req)
			if err != nil {
				t.Errorf("upload through %s: %v", rr.vip, err)
			} else {
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || n != 100000 {
					t.Errorf("upload through %s: status %d, %d bytes", rr.vip, resp.StatusCode, n)
				}
			}
			cancel()
		}
		r.stopAndCheckClean()
		c := r.stoppedCounters()
		if c["tun_gso_unsupported"] != 0 {
			t.Errorf("GSO super-frames the tunnel could not segment: %v", c)
		} else {
			t.Logf("counters %v", c)
		}
	})
}

// TestIntegrationIPv6PMTURelay is TestIntegrationPMTUThroughDR in IPv6: a far client reaches
// a DR service through two routers joined by a 1280-byte link (IPv6's minimum MTU). The real
// servers' 1500-byte replies make the first router send Packet Too Big to the VIP, their
// source; only if the director relays it to the real server (by the connection the quoted
// packet belongs to) does the real lower its path MTU and the download complete.
//
//	far --1500-- mid --1280-- client(router B) --DR segment-- director, rs1, rs2
func TestIntegrationIPv6PMTURelay(t *testing.T) {
	testenv.RequireRoot(t)
	ipv6Backends(t, testIPv6PMTURelay)
}

func testIPv6PMTURelay(t *testing.T) {
	r := startLab6(t, bench.TopologyDR, "dr", 80, false)
	pfx := r.lab.Spec.Prefix
	mid, far := pfx+"mid", pfx+"far"
	for _, ns := range []string{mid, far} {
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
		ipCmd(t, "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	b := r.lab.Client.NS
	ipCmd(t, "link", "add", "pm0", "netns", b, "mtu", "1280", "type", "veth", "peer", "name", "pm1", "netns", mid, "mtu", "1280")
	ipCmd(t, "link", "add", "pf0", "netns", mid, "type", "veth", "peer", "name", "pf1", "netns", far)
	for _, c := range [][]string{
		{"-n", b, "addr", "add", "2001:2:0:7::1/64", "dev", "pm0", "nodad"},
		{"-n", b, "link", "set", "pm0", "up"},
		{"-n", b, "-6", "route", "add", "2001:2:0:8::/64", "via", "2001:2:0:7::2"},
		{"-n", mid, "addr", "add", "2001:2:0:7::2/64", "dev", "pm1", "nodad"},
		{"-n", mid, "link", "set", "pm1", "up"},
		{"-n", mid, "addr", "add", "2001:2:0:8::1/64", "dev", "pf0", "nodad"},
		{"-n", mid, "link", "set", "pf0", "up"},
		{"-n", mid, "-6", "route", "add", "default", "via", "2001:2:0:7::1"},
		{"-n", far, "addr", "add", "2001:2:0:8::2/64", "dev", "pf1", "nodad"},
		{"-n", far, "link", "set", "pf1", "up"},
		{"-n", far, "-6", "route", "add", "default", "via", "2001:2:0:8::1"},
	} {
		ipCmd(t, c...)
	}
	for _, ns := range []string{b, mid} {
		ipCmd(t, "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	}
	for _, rs := range r.lab.Reals {
		for _, net := range []string{"2001:2:0:7::/64", "2001:2:0:8::/64"} {
			ipCmd(t, "-n", rs.NS, "-6", "route", "add", net, "via", r.lab.Client.Addr6.String())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 3_000_000
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", far, "curl", "-6", "-g", "-sS", "--fail", "-m", "40",
		"http://"+netip.AddrPortFrom(r.vip, 80).String()+fmt.Sprintf("/bytes?n=%d", n)).Output()
	if err != nil {
		t.Fatalf("download through the 1280-byte link: %v (%d bytes)\n%s", err, len(out), r.stderr.String())
	}
	sum := sha256.Sum256(out)
	if len(out) != n || hex.EncodeToString(sum[:]) != bench.ExpectedSHA256(n) {
		t.Fatalf("download corrupt: %d bytes", len(out))
	}
	r.stopAndCheckClean()
	if c := r.stoppedCounters(); c["icmp_relayed"] == 0 {
		t.Errorf("no Packet Too Big relayed: %v", c)
	} else {
		t.Logf("counters %v", c)
	}
}
