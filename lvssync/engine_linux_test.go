package lvssync

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// memTable is a trivial Installer and Snapshotter keyed by client and VIP.
type memTable struct {
	mu    sync.Mutex
	conns map[string]Conn
}

func newMemTable() *memTable { return &memTable{conns: map[string]Conn{}} }

func connKey(c *Conn) string {
	return fmt.Sprintf("%d %v:%d %v:%d %v", c.Protocol, c.Client, c.CPort, c.VIP, c.VPort, c.Template())
}

func (m *memTable) Install(c *Conn) Reason {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.conns[connKey(c)] = *c
	return ReasonNone
}

func (m *memTable) Snapshot(yield func(*Conn) bool) {
	m.mu.Lock()
	cs := make([]Conn, 0, len(m.conns))
	for _, c := range m.conns {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	for i := range cs {
		if !yield(&cs[i]) {
			return
		}
	}
}

func (m *memTable) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.conns)
}

func (m *memTable) get(c *Conn) (Conn, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.conns[connKey(c)]
	return x, ok
}

// node is one engine on loopback.
type node struct {
	e     *Engine
	tr    *UDPTransport
	table *memTable
	done  chan error
}

func listenLoopback(t *testing.T) *UDPTransport { return listenOn(t, "127.0.0.1") }

// listenOn listens on addr (any of 127.0.0.0/8) and a free port.
func listenOn(t *testing.T, addr string) *UDPTransport {
	t.Helper()
	tr, err := ListenUDP(UDPConfig{Listen: netip.MustParseAddr(addr), Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func startNode(t *testing.T, tr *UDPTransport, cfg Config, table *memTable) *node {
	t.Helper()
	n := &node{tr: tr, table: table, done: make(chan error, 1)}
	var err error
	n.e, err = New(cfg, tr, table, table)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { n.done <- n.e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-n.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return n
}

// waitFor polls cond; sync is asynchronous, so tests poll for states.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testConn(i int) Conn {
	return Conn{Protocol: ProtoTCP, Flags: FlagDRoute, State: TCPEstablished, Timeout: 900,
		Client: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), CPort: uint16(10000 + i),
		VIP: netip.MustParseAddr("198.18.100.1"), VPort: 80, Real: netip.MustParseAddr("198.18.200.2"), DPort: 80}
}

func pair(t *testing.T, key []byte, masterTable *memTable) (m, b *node) {
	mt, bt := listenLoopback(t), listenLoopback(t)
	m = startNode(t, mt, Config{SyncID: 5, Role: RoleMaster, Peers: []netip.AddrPort{bt.LocalAddr()}, Key: key, Flush: 5 * time.Millisecond}, masterTable)
	b = startNode(t, bt, Config{SyncID: 5, Role: RoleBackup, Peers: []netip.AddrPort{mt.LocalAddr()}, Key: key, Flush: 5 * time.Millisecond}, newMemTable())
	return m, b
}

func TestEngineUnicastMasterToBackup(t *testing.T) {
	for _, key := range [][]byte{nil, []byte("s3cret")} {
		t.Run(fmt.Sprintf("keyed=%v", key != nil), func(t *testing.T) {
			m, b := pair(t, key, newMemTable())
			ring := m.e.NewRing(1024)
			for i := range 300 {
				c := testConn(i)
				if !ring.Put(&c) {
					t.Fatal("ring full")
				}
			}
			waitFor(t, "300 installed", func() bool { return b.table.len() == 300 })
			c := testConn(7)
			got, _ := b.table.get(&c)
			if got.Real != c.Real || got.State != c.State || got.Timeout != 900 || got.Flags != FlagDRoute|FlagSync {
				t.Fatalf("installed %+v", got)
			}
			ms, bs := m.e.Stats(), b.e.Stats()
			if ms.RecordsSent != 300 || bs.Installed != 300 || bs.LastRx.IsZero() || bs.Received < 1 {
				t.Fatalf("master %+v backup %+v", ms, bs)
			}
			for r, n := range bs.Dropped {
				if n != 0 {
					t.Errorf("backup dropped %d: %v", n, Reason(r))
				}
			}
		})
	}
}

func TestEngineBulkCopyForNewBackup(t *testing.T) {
	mtable := newMemTable()
	for i := range 2000 {
		c := testConn(i)
		mtable.Install(&c)
	}
	// A starting backup asks for a bulk copy; the master answers with its table.
	m, b := pair(t, []byte("k"), mtable)
	waitFor(t, "bulk copy", func() bool { return b.table.len() == 2000 })
	// Live records after the copy pass the replay window: the bulk copy and the live
	// sender number their messages from one sequence (TestIntegrationMulticast found two).
	r := m.e.NewRing(16)
	c := testConn(5000)
	r.Put(&c)
	waitFor(t, "a live record after the bulk copy", func() bool { return b.table.len() == 2001 })
	if d := b.e.Stats().Dropped[ReasonReplay]; d != 0 {
		t.Fatalf("%d messages dropped as replays", d)
	}
}

// A director restarted soon after its first start asks again within bulkRequestPeriod
// (from the same address): the master answers once the period allows instead of
// refusing, so the restarted director still gets its copy (TestIntegrationBGPECMPSync
// found a restarted director with an empty table).
func TestEngineBulkCopyAnsweredAfterPeriod(t *testing.T) {
	mtable := newMemTable()
	for i := range 500 {
		c := testConn(i)
		mtable.Install(&c)
	}
	mt, bt, rt := listenLoopback(t), listenLoopback(t), listenLoopback(t)
	m := startNode(t, mt, Config{SyncID: 5, Role: RoleMaster, Peers: []netip.AddrPort{bt.LocalAddr(), rt.LocalAddr()}, Flush: 5 * time.Millisecond}, mtable)
	b := startNode(t, bt, Config{SyncID: 5, Role: RoleBackup, Peers: []netip.AddrPort{mt.LocalAddr()}, Flush: 5 * time.Millisecond}, newMemTable())
	waitFor(t, "the first bulk copy", func() bool { return b.table.len() == 500 })
	// The same address (127.0.0.1) asks again at once.
	r := startNode(t, rt, Config{SyncID: 5, Role: RoleBackup, Peers: []netip.AddrPort{mt.LocalAddr()}, Flush: 5 * time.Millisecond}, newMemTable())
	waitFor(t, "the second bulk copy, after the period", func() bool { return r.table.len() == 500 })
	if d := m.e.Stats().Dropped[ReasonBulkDenied]; d != 0 {
		t.Fatalf("%d bulk requests denied", d)
	}
}

func TestEngineRejects(t *testing.T) {
	// Peers are checked by address: the stranger uses another loopback address.
	mt, bt, xt := listenLoopback(t), listenLoopback(t), listenOn(t, "127.0.0.2")
	// The backup is keyed; one sender has no key, another the wrong one, a third is not a peer.
	b := startNode(t, bt, Config{SyncID: 5, Role: RoleBackup, Peers: []netip.AddrPort{mt.LocalAddr()}, Key: []byte("right")}, newMemTable())
	send := func(tr *UDPTransport, key []byte, syncID uint8) {
		bld := NewBuilder(1472, syncID, key != nil)
		c := testConn(1)
		bld.Add(&c)
		if key != nil {
			NewSigner(key, 1).Sign(bld.Bytes())
		}
		if err := tr.Send(bld.Bytes(), bt.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	send(mt, nil, 5)
	send(mt, []byte("wrong"), 5)
	send(mt, []byte("right"), 9)
	waitFor(t, "drops", func() bool {
		s := b.e.Stats()
		return s.Dropped[ReasonUnkeyed] == 1 && s.Dropped[ReasonAuth] == 1 && s.Dropped[ReasonSyncID] == 1
	})
	// An unkeyed backup takes messages from its peers only, and cannot check signed ones.
	ut := listenLoopback(t)
	u := startNode(t, ut, Config{SyncID: 5, Role: RoleBackup, Peers: []netip.AddrPort{mt.LocalAddr()}}, newMemTable())
	bld := NewBuilder(1472, 5, false)
	c := testConn(1)
	bld.Add(&c)
	_ = xt.Send(bld.Bytes(), ut.LocalAddr())
	_ = mt.Send(bld.Bytes(), ut.LocalAddr())
	waitFor(t, "peer check", func() bool {
		s := u.e.Stats()
		return s.Dropped[ReasonNotPeer] == 1 && s.Installed == 1
	})
	u.e.SetVRRPPeers([]netip.Addr{xt.LocalAddr().Addr()})
	_ = xt.Send(bld.Bytes(), ut.LocalAddr())
	waitFor(t, "VRRP peer accepted", func() bool { return u.e.Stats().Installed == 2 })
}

func TestEngineRoleFollowsVRRP(t *testing.T) {
	at, bt := listenLoopback(t), listenLoopback(t)
	a := startNode(t, at, Config{SyncID: 1, Role: RoleAuto, Peers: []netip.AddrPort{bt.LocalAddr()}, Flush: 5 * time.Millisecond}, newMemTable())
	b := startNode(t, bt, Config{SyncID: 1, Role: RoleAuto, Peers: []netip.AddrPort{at.LocalAddr()}, Flush: 5 * time.Millisecond}, newMemTable())
	if a.e.Role() != RoleBackup {
		t.Fatalf("auto starts as %v", a.e.Role())
	}
	a.e.SetVRRPMaster(true)
	ra := a.e.NewRing(64)
	c := testConn(1)
	ra.Put(&c)
	waitFor(t, "b installs from a", func() bool { return b.table.len() == 1 })
	// Failover: b becomes master, a backup; now b's records reach a.
	a.e.SetVRRPMaster(false)
	b.e.SetVRRPMaster(true)
	rb := b.e.NewRing(64)
	c2 := testConn(2)
	rb.Put(&c2)
	waitFor(t, "a installs from b", func() bool { _, ok := a.table.get(&c2); return ok })
	// A backup's own ring is drained without sending.
	ra.Put(&c)
	time.Sleep(30 * time.Millisecond)
	if s := a.e.Stats(); s.Role != RoleBackup {
		t.Fatalf("role %v", s.Role)
	}
}
