package engine

import (
	"bytes"
	"testing"

	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward/internal/frametest"
	"github.com/uvs-project/uvs/forward/packet"
	"github.com/uvs-project/uvs/forward/statefile"
)

func TestStateRoundTripRestoresConnections(t *testing.T) {
	src := `
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
	a := newTestPlane(t, src)
	first := a.send(tcpFrom(t, frametest.Client, 1000, 80, 0x02))
	a.send(tcpFrom(t, frametest.Client, 1000, 80, 0x10))
	var entries []conntrack.Entry
	a.e.ct.Range(func(e *conntrack.Entry) bool { entries = append(entries, *e); return true })
	if len(entries) != 2 {
		t.Fatalf("%d entries, want a connection and its template", len(entries))
	}
	var buf bytes.Buffer
	if err := statefile.WriteState(&buf, []string{"eth0"}, SaveConns(a.e.snap, entries, a.e.nowMs)); err != nil {
		t.Fatal(err)
	}
	names, conns, err := statefile.ReadState(bytes.NewReader(buf.Bytes()))
	if err != nil || len(conns) != 2 || names[0] != "eth0" {
		t.Fatalf("read back: %v %d %v", names, len(conns), err)
	}

	// A new process: a new registry (the service gets its ID afresh) and empty tables.
	b := newTestPlane(t, src)
	if n := Restore(b.e.snap, []*Engine{b.e}, names, conns, b.e.nowMs); n != 2 {
		t.Fatalf("restored %d, want 2", n)
	}
	if got := b.send(tcpFrom(t, frametest.Client, 1000, 80, 0x10)); got != first {
		t.Fatalf("restored connection went to .%d, want .%d", got, first)
	}
	// The template holds the client on its real for new connections too.
	if got := b.send(tcpFrom(t, frametest.Client, 1001, 80, 0x02)); got != first {
		t.Fatalf("new connection under the restored template went to .%d, want .%d", got, first)
	}
	svc := b.e.snap.lookupService(conntrack.Map4(frametest.VIP), packet.ProtoTCP, 80)
	slot := 0
	if first == 4 {
		slot = 1
	}
	if l := &svc.Loads[slot]; l.Active()+l.Inactive() != 2 {
		t.Fatalf("real's load counts %d connections, want 2", l.Active()+l.Inactive())
	}
}
