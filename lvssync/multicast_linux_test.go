package lvssync_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
	"github.com/uvs-project/uvs/lvssync"
)

type table struct {
	mu sync.Mutex
	m  map[netip.AddrPort]lvssync.Conn
}

func (t *table) Install(c *lvssync.Conn) lvssync.Reason {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[netip.AddrPortFrom(c.Client, c.CPort)] = *c
	return lvssync.ReasonNone
}

func (t *table) Snapshot(yield func(*lvssync.Conn) bool) {
	t.mu.Lock()
	cs := make([]lvssync.Conn, 0, len(t.m))
	for _, c := range t.m {
		cs = append(cs, c)
	}
	t.mu.Unlock()
	for i := range cs {
		if !yield(&cs[i]) {
			return
		}
	}
}

func (t *table) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// TestIntegrationMulticast runs a master and a backup in two namespaces joined by a veth
// pair, speaking over the IPVS group 224.0.0.81:8848 with TTL 1 and a key: the backup's
// bulk request reaches the master through the group and the copy comes back unicast; a
// live record reaches the backup through the group.
func TestIntegrationMulticast(t *testing.T) {
	testenv.RequireRoot(t)
	prefix := fmt.Sprintf("uvsm%d-", os.Getpid()%100000)
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
	ip("-n", a.NS, "addr", "add", "198.18.50.1/24", "dev", "va")
	ip("-n", b.NS, "addr", "add", "198.18.50.2/24", "dev", "vb")
	ip("-n", a.NS, "link", "set", "va", "up")
	ip("-n", b.NS, "link", "set", "vb", "up")

	key := []byte("multicast test key")
	listen := func(n *bench.Node, ifname string) *lvssync.UDPTransport {
		var tr *lvssync.UDPTransport
		if err := n.Do(func() error {
			var err error
			tr, err = lvssync.ListenUDP(lvssync.UDPConfig{Interface: ifname, Port: lvssync.DefaultPort, Group: lvssync.DefaultGroup, TTL: 1})
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
			Client: netip.AddrFrom4([4]byte{198, 18, 60, byte(i)}), CPort: uint16(2000 + i),
			VIP: netip.MustParseAddr("198.18.70.1"), VPort: 80, Real: netip.MustParseAddr("198.18.70.2"), DPort: 80}
		mtable.Install(&c)
	}
	m, err := lvssync.New(lvssync.Config{SyncID: 7, Role: lvssync.RoleMaster, Key: key, MaxLen: 1472}, listen(a, "va"), nil, mtable)
	if err != nil {
		t.Fatal(err)
	}
	run(m)
	btable := &table{m: map[netip.AddrPort]lvssync.Conn{}}
	bk, err := lvssync.New(lvssync.Config{SyncID: 7, Role: lvssync.RoleBackup, Key: key}, listen(b, "vb"), btable, nil)
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
		Client: netip.MustParseAddr("198.18.61.1"), CPort: 53000, VIP: netip.MustParseAddr("198.18.70.1"), VPort: 53,
		Real: netip.MustParseAddr("198.18.70.3"), DPort: 53}
	ring.Put(&live)
	poll("the live record", func() bool { return btable.len() == 501 })
	if s := m.Stats(); s.BulkRequests != 1 || s.BulkRecords != 500 {
		t.Fatalf("master %+v", s)
	}
}
