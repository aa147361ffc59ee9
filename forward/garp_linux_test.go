package forward

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/forward/internal/netnstest"
	"github.com/uvs-project/uvs/forward/packet"
)

func TestBuildGratuitousARPBytes(t *testing.T) {
	mac := [6]byte{0x02, 0x00, 0x5e, 0x10, 0x20, 0x30}
	want := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // broadcast
		0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, // source MAC
		0x08, 0x06, // ETH_P_ARP
		0x00, 0x01, 0x08, 0x00, 6, 4, // ether, IPv4, hlen, plen
		0x00, 0x01, // request
		0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, // sender MAC
		198, 18, 1, 10, // sender IP
		0, 0, 0, 0, 0, 0, // target MAC
		198, 18, 1, 10, // target IP
	}
	b := bytes.Repeat([]byte{0xaa}, packet.MinFrameLen)
	if n := packet.BuildGratuitousARP(b, mac, [4]byte{198, 18, 1, 10}); n != packet.MinFrameLen {
		t.Fatalf("length %d, want %d", n, packet.MinFrameLen)
	}
	if !bytes.Equal(b[:len(want)], want) {
		t.Errorf("frame\n got %x\nwant %x", b[:len(want)], want)
	}
	if !bytes.Equal(b[len(want):], make([]byte, packet.MinFrameLen-len(want))) {
		t.Errorf("padding not zero: %x", b[len(want):])
	}
}

func TestSendGratuitousARPBadArgs(t *testing.T) {
	tests := []struct {
		name     string
		ifname   string
		count    int
		interval time.Duration
	}{
		{"zero count", "lo", 0, 0},
		{"negative interval", "lo", 1, -time.Second},
		{"no such interface", "uvs-no-such", 1, 0},
		{"not ethernet", "lo", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := sendGratuitousARP(tt.ifname, [4]byte{198, 18, 0, 1}, tt.count, tt.interval); err == nil {
				t.Error("sendGratuitousARP succeeded")
			}
		})
	}
}

func TestIntegrationGratuitousARP(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	p := netnstest.NSPrefix(t)
	a, b := netnstest.NewNS(t, p+"-a"), netnstest.NewNS(t, p+"-b")
	netnstest.VethPair(t, a, "a0", b, "b0")
	netnstest.Sh(t, "ip", "-n", b, "addr", "add", "198.18.0.2/24", "dev", "b0")
	// Let B's kernel create an entry from the gratuitous ARP, so the test
	// also shows a real stack accepts the frame.
	netnstest.Sysctl(t, b, "net.ipv4.conf.b0.arp_accept=1")
	mac := netnstest.MACOf(t, a, "a0")
	vip := netnstest.Addr4("198.18.0.10")
	tap := netnstest.ListenAll(t, b, "b0", unix.ETH_P_ARP)

	const count, interval = 3, 50 * time.Millisecond
	start := time.Now()
	netnstest.MustInNS(t, a, func() error { return sendGratuitousARP("a0", vip, count, interval) })
	t.Logf("sent %d, %v apart, in %v", count, interval, time.Since(start)) // a duration to read, not to assert

	want := make([]byte, packet.MinFrameLen)
	packet.BuildGratuitousARP(want, mac, vip)
	seen := 0
	for seen < count && netnstest.AwaitFrame(tap, time.Second, func(f []byte) bool { return bytes.Equal(f, want) }) {
		seen++
	}
	if seen != count {
		t.Errorf("peer saw %d gratuitous ARPs, want %d", seen, count)
	}
	out := netnstest.Sh(t, "ip", "-n", b, "neigh", "show", "198.18.0.10", "dev", "b0")
	if !strings.Contains(out, net.HardwareAddr(mac[:]).String()) {
		t.Errorf("peer neighbour table: %q, want %v", out, net.HardwareAddr(mac[:]))
	}
}
