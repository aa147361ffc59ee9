package lvssync_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
	"github.com/uvs-project/uvs/lvssync"
)

// sync6Group is the IPv6 group of TestIntegrationMulticast6 (link scope; IPVS has no default
// IPv6 group, ipvsadm takes one with --mcast-group).
var sync6Group = netip.MustParseAddr("ff02::8:81")

// TestIntegrationMulticast6 is TestIntegrationMulticast over IPv6: a master and a backup in
// two namespaces speak over an IPv6 group with hop limit 1 and a key; the backup's bulk
// request reaches the master through the group from its link-local address and the copy
// comes back unicast to that address; a live record reaches the backup through the group.
// The records are IPv6 connections.
func TestIntegrationMulticast6(t *testing.T) {
	testenv.RequireRoot(t)
	prefix := fmt.Sprintf("uvsm6%d-", os.Getpid()%100000)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	a, b := &bench.Node{Name: "a", NS: prefix + "a"}, &bench.Node{Name: "b", NS: prefix + "b"}
	for _, n := range []*bench.Node{a, b} {
		ip("netns", "add", n.NS)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.NS).Run() })
	}
	ip("-n", a.NS, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b.NS)
	ip("-n", a.NS, "addr", "add", "2001:2:0:c7::1/64", "dev", "va", "nodad")
	ip("-n", b.NS, "addr", "add", "2001:2:0:c7::2/64", "dev", "vb", "nodad")
	ip("-n", a.NS, "link", "set", "va", "up")
	ip("-n", b.NS, "link", "set", "vb", "up")
	// Multicast from a link-local source: wait until duplicate address detection is over.
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range []*bench.Node{a, b} {
		for {
			out, _ := exec.Command("ip", "-n", n.NS, "-6", "addr", "show", "scope", "link").CombinedOutput()
			if s := string(out); len(s) > 0 && !strings.Contains(s, "tentative") && strings.Contains(s, "fe80::") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: link-local address still tentative: %s", n.NS, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	key := []byte("multicast test key")
	listen := func(n *bench.Node, ifname string) *lvssync.UDPTransport {
		var tr *lvssync.UDPTransport
		if err := n.Do(func() error {
			var err error
			tr, err = lvssync.ListenUDP(lvssync.UDPConfig{Interface: ifname, Port: lvssync.DefaultPort, Group: sync6Group, TTL: 1})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	run := func(e *lvssync.Engine) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
	}
	mtable := &table{m: map[netip.AddrPort]lvssync.Conn{}}
	for i := range 500 {
		c := lvssync.Conn{Protocol: lvssync.ProtoTCP, Flags: lvssync.FlagDRoute, State: lvssync.TCPEstablished, Timeout: 900,
			Client: netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, 0, 0, 0xc7, 0, 0x60, 15: byte(i)}), CPort: uint16(2000 + i),
			VIP: netip.MustParseAddr("2001:2:0:c7:70::1"), VPort: 80, Real: netip.MustParseAddr("2001:2:0:c7:70::2"), DPort: 80}
		mtable.Install(&c)
	}
	m, err := lvssync.New(lvssync.Config{SyncID: 7, Role: lvssync.RoleMaster, Group: sync6Group, Key: key, MaxLen: 1452}, listen(a, "va"), nil, mtable)
	if err != nil {
		t.Fatal(err)
	}
	run(m)
	btable := &table{m: map[netip.AddrPort]lvssync.Conn{}}
	bk, err := lvssync.New(lvssync.Config{SyncID: 7, Role: lvssync.RoleBackup, Group: sync6Group, Key: key}, listen(b, "vb"), btable, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(bk)
	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: master %+v backup %+v", what, m.Stats(), bk.Stats())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	poll("the bulk copy", func() bool { return btable.len() == 500 })
	ring := m.NewRing(16)
	live := lvssync.Conn{Protocol: lvssync.ProtoUDP, Flags: lvssync.FlagMasq, State: lvssync.UDPNormal, Timeout: 300,
		Client: netip.MustParseAddr("2001:2:0:c7:61::1"), CPort: 53000, VIP: netip.MustParseAddr("2001:2:0:c7:70::1"), VPort: 53,
		Real: netip.MustParseAddr("2001:2:0:c7:70::3"), DPort: 53}
	ring.Put(&live)
	poll("the live record", func() bool { return btable.len() == 501 })
	if s := m.Stats(); s.BulkRequests != 1 || s.BulkRecords != 500 {
		t.Fatalf("master %+v", s)
	}
}
