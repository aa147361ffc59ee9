//go:build linux

package main

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
	"github.com/uvs-project/uvs/lvssync"
)

// syncConfig is a one-service DR director with [sync] as a backup that takes messages
// from the lab's client (standing in for a master), plus extra [sync] lines.
func syncConfig(extra string) func(l *bench.Lab, dir string) string {
	return func(l *bench.Lab, dir string) string {
		return fmt.Sprintf(`[director]
interfaces = ["eth0"]
workers = 1
control_socket = %q
metrics_listen = "127.0.0.1:%d"

[[service]]
vip = "%s"
port = 80
forward = "dr"
  [[service.real]]
  address = "%s"

[sync]
interface = "eth0"
syncid = 9
peers = ["%s"]
%s`, filepath.Join(dir, "uvs.sock"), metricsPort, l.VIP, l.RealAddrs[0], l.Client.Addr, extra)
	}
}

// TestIntegrationSyncListMetricsReload runs a director with [sync] and checks that sync
// messages from a peer are received and counted (uvs list --json and text, metrics), that
// a message with another syncid and one from a stranger are dropped by reason, that a
// SIGHUP changing [sync] applies without a restart, and that the key is never shown.
func TestIntegrationSyncListMetricsReload(t *testing.T) {
	testenv.RequireRoot(t)
	c := startCtlLab(t, 1, syncConfig("role = \"backup\"\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dst := netip.AddrPortFrom(c.lab.Director.Addr, lvssync.DefaultPort).String()
	send := func(from *bench.Node, syncID uint8, key []byte) {
		t.Helper()
		conn, err := from.Dial(ctx, "udp", dst)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		b := lvssync.NewBuilder(1472, syncID, key != nil)
		rec := lvssync.Conn{Protocol: lvssync.ProtoTCP, Flags: lvssync.FlagDRoute, State: lvssync.TCPEstablished,
			Client: c.lab.Client.Addr, CPort: 40000, VIP: c.lab.VIP, VPort: 80, Real: c.lab.RealAddrs[0], DPort: 80, Timeout: 900}
		b.Add(&rec)
		if key != nil {
			lvssync.NewSigner(key, uint64(time.Now().UnixNano())).Sign(b.Bytes())
		}
		if _, err := conn.Write(b.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	poll := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s; director stderr:\n%s", what, c.stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Sync attaches to the data plane once the director forwards by a snapshot; a record
	// that comes before is dropped (no_table), so the peer sends again until it is installed.
	poll("the record installed by the worker", func() bool {
		send(c.lab.Client, 9, nil)
		time.Sleep(200 * time.Millisecond)
		s := c.status().Sync
		return s != nil && s.Installed >= 1
	})
	send(c.lab.Client, 10, nil)
	poll("a message dropped for its syncid", func() bool { return c.status().Sync.Dropped["syncid"] == 1 })
	st := c.status().Sync
	if st.Role != "backup" || st.SyncID != 9 || st.LastRxS < 0 || st.RecordsReceived != st.Received || st.Received < 1 {
		t.Fatalf("sync status %+v", st)
	}
	conns := strings.Join(strings.Fields(c.mustUVS("list", "--conns", "--json", "--socket", c.socket)), "")
	if !strings.Contains(conns, `"client":"`+c.lab.Client.Addr.String()+`:40000"`) || !strings.Contains(conns, `"synced":true`) {
		t.Fatalf("uvs list --conns --json does not show the synced entry:\n%s", conns)
	}
	if out := c.mustUVS("list", "-n", "--socket", c.socket); !strings.Contains(out, "Sync: role backup syncid 9 sent 0 received ") {
		t.Fatalf("uvs list:\n%s", out)
	}
	body := c.scrape()
	if v := metricValue(t, body, `uvs_sync_messages_total{direction="in"}`); v != float64(st.Received) {
		t.Fatalf("uvs_sync_messages_total in = %v", v)
	}
	if v := metricValue(t, body, `uvs_sync_dropped_total{reason="syncid"}`); v != 1 {
		t.Fatalf("uvs_sync_dropped_total syncid = %v", v)
	}

	// A keyed [sync] by SIGHUP: unkeyed messages are now refused, signed ones taken.
	c.writeConfig(syncConfig("role = \"both\"\nkey = \"correct-horse-sync\"\n")(c.lab, c.dir))
	if err := c.labRun.dir.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll("role both after SIGHUP", func() bool { s := c.status().Sync; return s != nil && s.Role == "both" })
	send(c.lab.Client, 9, nil)
	send(c.lab.Client, 9, []byte("correct-horse-sync"))
	poll("unkeyed refused, keyed received", func() bool {
		s := c.status().Sync
		return s.Dropped["unkeyed"] == 1 && s.Received == 1 // counters restart with the new socket
	})
	for _, args := range [][]string{{"save", "--socket", c.socket}, {"list", "--json", "--socket", c.socket}} {
		if out := c.mustUVS(args...); strings.Contains(out, "correct-horse") {
			t.Fatalf("uvs %s shows the key:\n%s", args[0], out)
		}
	}
	if strings.Contains(c.stderr.String(), "correct-horse") {
		t.Fatal("the log shows the key")
	}
	// The data plane kept forwarding through the reload.
	if _, err := c.curl(ctx, "/"); err != nil {
		t.Fatal(err)
	}
}
