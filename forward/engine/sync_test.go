package engine

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/internal/frametest"
	"github.com/uvs-project/uvs/forward/packet"
	"github.com/uvs-project/uvs/lvssync"
)

const syncSrc = `
[director]
interfaces = ["eth0"]
workers = 1
[[service]]
vip = "203.0.113.10"
protocol = "tcp"
port = 80
scheduler = "rr"
forward = "nat"
persistence_timeout = "300s"
  [[service.real]]
  address = "10.1.2.3"
  port = 8080
  [[service.real]]
  address = "10.1.2.4"
  port = 8080
`

func drainAll(r *lvssync.Ring) []lvssync.Conn {
	var out []lvssync.Conn
	r.Drain(func(c *lvssync.Conn) { out = append(out, *c) })
	return out
}

// TestSyncMasterToBackup: the master's worker emits the template and the connection when it
// reaches ESTABLISHED; a backup's worker installs them, and then sends the client's packets
// to the same real with the NAT translation, keeps the state, and expires the entry one
// state timeout after the record.
func TestSyncMasterToBackup(t *testing.T) {
	a := newTestPlane(t, syncSrc)
	out := lvssync.NewRing(64)
	a.e.SetSync(out, nil, 3, 50)
	first := a.send(tcpFrom(t, frametest.Client, 1000, 80, packet.TCPSYN))
	if recs := drainAll(out); len(recs) != 0 {
		t.Fatalf("SYN_RECV synced: %+v", recs)
	}
	a.send(tcpFrom(t, frametest.Client, 1000, 80, packet.TCPACK))
	recs := drainAll(out)
	if len(recs) != 2 || !recs[0].Template() || recs[1].Template() {
		t.Fatalf("want template then connection, got %+v", recs)
	}
	c := recs[1]
	if c.State != lvssync.TCPEstablished || c.Timeout != 900 || c.Flags != lvssync.FlagMasq ||
		c.Client != netip.AddrFrom4(frametest.Client) || c.CPort != 1000 || c.VPort != 80 || c.DPort != 8080 ||
		c.Real != netip.AddrFrom4([4]byte{10, 1, 2, first}) {
		t.Fatalf("connection record %+v", c)
	}
	if tp := recs[0]; tp.Timeout != 300 || tp.CPort != 0 || tp.Real != c.Real {
		t.Fatalf("template record %+v", tp)
	}

	b := newTestPlane(t, syncSrc)
	in := lvssync.NewRing(64)
	b.e.SetSync(nil, in, 3, 50)
	// The backup's scheduler would pick .3 first (rr); sync must win for .4 too.
	for i := range recs {
		in.Put(&recs[i])
	}
	if !b.e.SyncPending() {
		t.Fatal("nothing pending")
	}
	b.e.DrainSync()
	if st := b.e.SyncStats(); st.Installed.Load() != 2 {
		t.Fatalf("installed %d", st.Installed.Load())
	}
	key := conntrack.Key{Client: conntrack.Map4(frametest.Client), VIP: conntrack.Map4(frametest.VIP), CPort: 1000, VPort: 80, Proto: packet.ProtoTCP}
	ent := b.e.ct.Lookup(&key)
	if ent == nil || ent.Flags&conntrack.FlagSynced == 0 || ent.Flags&conntrack.FlagNAT == 0 || ent.State != conntrack.StateEstablished {
		t.Fatalf("installed entry %+v", ent)
	}
	if left := ent.Expires - b.e.nowMs; left != 900_000 {
		t.Fatalf("expires in %d ms, want the ESTABLISHED timeout", left)
	}
	if got := b.send(tcpFrom(t, frametest.Client, 1000, 80, packet.TCPACK)); got != first {
		t.Fatalf("synced connection went to .%d, want .%d", got, first)
	}
	// The client's next hop was learnt from that packet, for NAT replies.
	if ent.HopMAC == [6]byte{} {
		t.Fatal("no hop learnt")
	}
	// The template travelled: a new connection of the client sticks to the same real.
	if got := b.send(tcpFrom(t, frametest.Client, 1001, 80, packet.TCPSYN)); got != first {
		t.Fatalf("new connection under the synced template went to .%d, want .%d", got, first)
	}
}

func TestSyncInstallRules(t *testing.T) {
	b := newTestPlane(t, syncSrc)
	in := lvssync.NewRing(64)
	b.e.SetSync(nil, in, 3, 50)
	// A local connection, established here.
	local := b.send(tcpFrom(t, frametest.Client, 2000, 80, packet.TCPSYN))
	b.send(tcpFrom(t, frametest.Client, 2000, 80, packet.TCPACK))
	other := byte(3)
	if local == 3 {
		other = 4
	}
	rec := lvssync.Conn{Protocol: lvssync.ProtoTCP, Flags: lvssync.FlagMasq, State: lvssync.TCPEstablished, Timeout: 900,
		Client: netip.AddrFrom4(frametest.Client), CPort: 2000, VIP: netip.AddrFrom4(frametest.VIP), VPort: 80,
		Real: netip.AddrFrom4([4]byte{10, 1, 2, other}), DPort: 8080}
	put := func(c lvssync.Conn) { in.Put(&c); b.e.DrainSync() }
	put(rec) // a local active entry wins
	unknownSvc := rec
	unknownSvc.VIP = netip.MustParseAddr("203.0.113.99")
	put(unknownSvc)
	unknownReal := rec
	unknownReal.CPort, unknownReal.Real = 2001, netip.MustParseAddr("10.1.2.9")
	put(unknownReal)
	// A record refreshes an entry from an earlier record: state and expiry follow.
	fresh := rec
	fresh.CPort = 2002
	put(fresh)
	b.at(10_000)
	fin := fresh
	fin.State, fin.Timeout = lvssync.TCPFinWait, 120
	put(fin)
	st := b.e.SyncStats()
	if st.LocalActive.Load() != 1 || st.NoService.Load() != 1 || st.NoReal.Load() != 1 || st.Installed.Load() != 1 || st.Updated.Load() != 1 {
		t.Fatalf("local %d nosvc %d noreal %d installed %d updated %d", st.LocalActive.Load(), st.NoService.Load(),
			st.NoReal.Load(), st.Installed.Load(), st.Updated.Load())
	}
	ent := b.e.ct.Lookup(&conntrack.Key{Client: conntrack.Map4(frametest.Client), VIP: conntrack.Map4(frametest.VIP), CPort: 2002, VPort: 80, Proto: packet.ProtoTCP})
	if ent == nil || ent.State != conntrack.StateFinWait || ent.Expires-b.e.nowMs != 120_000 {
		t.Fatalf("refreshed entry %+v", ent)
	}
}

func TestSyncTableCap(t *testing.T) {
	b := newTestPlane(t, syncSrc)
	in := lvssync.NewRing(8192)
	b.e.SetSync(nil, in, 3, 50)
	capacity := b.e.ct.Capacity()
	for i := 0; i < capacity+10; i++ {
		c := lvssync.Conn{Protocol: lvssync.ProtoTCP, Flags: lvssync.FlagMasq, State: lvssync.TCPEstablished, Timeout: 900,
			Client: netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), CPort: 3000, VIP: netip.AddrFrom4(frametest.VIP), VPort: 80,
			Real: netip.MustParseAddr("10.1.2.3"), DPort: 8080}
		in.Put(&c)
	}
	b.e.DrainSync()
	st := b.e.SyncStats()
	if b.e.ct.Len() > capacity || st.TableFull.Load() == 0 || st.Installed.Load()+st.TableFull.Load() != uint64(capacity+10) {
		t.Fatalf("len %d cap %d installed %d full %d", b.e.ct.Len(), capacity, st.Installed.Load(), st.TableFull.Load())
	}
}

func TestSyncPacketAllocs(t *testing.T) {
	a := newTestPlane(t, syncSrc)
	out := lvssync.NewRing(1 << 16)
	a.e.SetSync(out, nil, 3, 50)
	a.send(tcpFrom(t, frametest.Client, 1000, 80, packet.TCPSYN))
	ack := tcpFrom(t, frametest.Client, 1000, 80, packet.TCPACK)
	a.send(append([]byte(nil), ack...)) // NAT rewrites the frame in place
	frame := make([]byte, len(ack))
	allocs := testing.AllocsPerRun(200, func() {
		copy(frame, ack)
		a.e.Reset()
		a.e.Handle(frame, 0)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per established packet with sync on", allocs)
	}
	if n := len(drainAll(out)); n < 4+2 { // ESTABLISHED (2) + every 50th of 200 packets (template and connection)
		t.Fatalf("%d records", n)
	}
}

// BenchmarkSyncConnection runs whole client connections (SYN, ACK, FIN, ACK: the states a
// DR director sees) to a DR service without persistence through a worker with sync off and on, and reports the records each
// connection produces and the worker's time per connection.
func BenchmarkSyncConnection(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			ct, err := conntrack.New(conntrack.Config{Capacity: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			a := &testPlane{t: b, reg: NewRegistry(1), e: NewEngine(0, ct, 4096, 64<<10, 1)}
			dr := strings.Replace(syncSrc, "forward = \"nat\"\npersistence_timeout = \"300s\"", "forward = \"dr\"", 1)
			a.load(strings.ReplaceAll(dr, "  port = 8080\n", ""))
			a.e.Begin(a.e.snap, 1e9)
			out := lvssync.NewRing(1 << 12)
			if on {
				a.e.SetSync(out, nil, 3, 50)
			}
			var frames [4][]byte
			flags := []uint8{packet.TCPSYN, packet.TCPACK, packet.TCPFIN | packet.TCPACK, packet.TCPACK}
			buf := make([]byte, 256)
			records := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				src := [4]byte{198, 51, byte(i >> 8), byte(i)}
				port := uint16(1024 + i>>16)
				for j, f := range flags {
					b.StopTimer()
					frames[j] = tcpFrom(b, src, port, 80, f)
					n := copy(buf, frames[j])
					b.StartTimer()
					a.e.Reset()
					a.e.Handle(buf[:n], 0)
				}
				if out.Len() > 1<<11 {
					b.StopTimer()
					records += len(drainAll(out))
					b.StartTimer()
				}
			}
			b.StopTimer()
			records += len(drainAll(out))
			b.ReportMetric(float64(records)/float64(b.N), "records/conn")
		})
	}
}

// TestSyncRefreshesSlowConnections: a connection sends a record on its threshold-th of every
// period packets (3 of 50, as the kernel) and, beyond the kernel, on a packet more than half
// its state timeout after its last record, so a slow connection's copy does not expire on
// the backup while it lives on the master.
func TestSyncRefreshesSlowConnections(t *testing.T) {
	a := newTestPlane(t, syncSrc)
	out := lvssync.NewRing(1024)
	a.e.SetSync(out, nil, 3, 50)
	ack := tcpFrom(t, frametest.Client, 1000, 80, packet.TCPACK)
	send := func() { a.send(append([]byte(nil), ack...)) }
	a.send(tcpFrom(t, frametest.Client, 1000, 80, packet.TCPSYN))
	send()
	if n := len(drainAll(out)); n != 2 {
		t.Fatalf("ESTABLISHED: %d records", n)
	}
	conns := func() int {
		n := 0
		for _, c := range drainAll(out) {
			if !c.Template() {
				n++
			}
		}
		return n
	}
	for range 100 {
		send()
	}
	if n := conns(); n != 2 { // packets 3 and 53 after ESTABLISHED
		t.Fatalf("100 packets: %d connection records, want 2", n)
	}
	a.at(400_000) // 400 s on: less than half of the 900 s ESTABLISHED timeout since the last record
	send()
	if n := conns(); n != 0 {
		t.Fatalf("%d records before half the timeout", n)
	}
	a.at(460_000)
	send()
	if n := conns(); n != 1 {
		t.Fatalf("a slow connection was not refreshed: %d records", n)
	}
}
