package control

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/lvssync"
)

const syncSrc = `[director]
interfaces = ["eth0"]
[sync]
interface = "eth0"
role = "master"
peers = ["198.18.0.2"]
key = "hunter2-sync-secret"
`

func TestSyncSaveHidesKey(t *testing.T) {
	cfg, err := config.Parse("t.toml", []byte(syncSrc))
	if err != nil {
		t.Fatal(err)
	}
	saved := ConfigTOML(cfg)
	if strings.Contains(saved, "hunter2") {
		t.Fatalf("uvs save shows the key:\n%s", saved)
	}
	if !strings.Contains(saved, "# key is set and not shown") {
		t.Fatalf("no note where the key was:\n%s", saved)
	}
	// A runtime edit renders with secrets and keeps the key.
	back, err := config.Parse("edit", []byte(configTOML(cfg, true)))
	if err != nil || back.Sync.Key != cfg.Sync.Key {
		t.Fatalf("edit round trip lost the key: %v", err)
	}
	// Diff says the key changed, never what it is.
	next, _ := config.Parse("t.toml", []byte(strings.Replace(syncSrc, "hunter2-sync-secret", "other-secret", 1)))
	d := strings.Join(Diff(cfg, next), "\n")
	if !strings.Contains(d, "sync key changed") || strings.Contains(d, "hunter2") || strings.Contains(d, "other-secret") {
		t.Fatalf("diff: %q", d)
	}
	next2, _ := config.Parse("t.toml", []byte(strings.Replace(syncSrc, `role = "master"`, `role = "both"`, 1)))
	if d := Diff(cfg, next2); len(d) != 1 || d[0] != `~ sync role = "master" -> role = "both"` {
		t.Fatalf("diff: %q", d)
	}
	if d := Diff(cfg, cfg); len(d) != 0 {
		t.Fatalf("no change, diff %q", d)
	}
}

type fakeSync struct{ s lvssync.Stats }

func (f fakeSync) SyncStats() (lvssync.Stats, bool) { return f.s, true }

func TestSyncStatusAndMetrics(t *testing.T) {
	now := time.Unix(1000, 0)
	var s lvssync.Stats
	s.Role, s.SyncID, s.Sent, s.Received = lvssync.RoleBackup, 51, 3, 7
	s.Dropped[lvssync.ReasonReplay] = 2
	s.LastRx = now.Add(-1500 * time.Millisecond)
	st := syncStatus(fakeSync{s}, now)
	b, _ := json.Marshal(st)
	for _, want := range []string{`"role":"backup"`, `"syncid":51`, `"sent":3`, `"received":7`, `"dropped":{"replay":2}`, `"last_rx_s":1.5`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	if syncStatus(struct{}{}, now) != nil {
		t.Fatal("status without sync")
	}
	var sb strings.Builder
	formatSync(&sb, st)
	if sb.String() != "Sync: role backup syncid 51 sent 3 received 7 last_rx 1.5s dropped 2\n" {
		t.Fatalf("%q", sb.String())
	}

	ch := make(chan prometheus.Metric, 64)
	collectSync(fakeSync{s}, ch)
	close(ch)
	got := map[string]float64{}
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		name := m.Desc().String()
		for _, l := range pb.Label {
			name += " " + l.GetValue()
		}
		v := pb.GetCounter().GetValue() + pb.GetGauge().GetValue()
		got[name[strings.Index(name, `fqName: "`)+9:strings.Index(name, `", help`)]+name[strings.LastIndex(name, "}")+1:]] = v
	}
	for k, v := range map[string]float64{
		"uvs_sync_messages_total out": 3, "uvs_sync_messages_total in": 7,
		"uvs_sync_dropped_total replay": 2, "uvs_sync_dropped_total auth": 0, "uvs_sync_role": 2,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
