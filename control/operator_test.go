package control

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/forward"
)

const testConfig = `
[director]
interfaces = ["eth0"]
workers = 2

[[service]]
name = "web"
vip = "198.18.0.100"
port = 80
scheduler = "rr"
forward = "dr"
  [[service.real]]
  address = "198.18.1.11"
  [[service.real]]
  address = "198.18.1.12"
  port = 8080
  forward = "nat"
  upper_threshold = 100
  lower_threshold = 50
  [[service.real]]
  address = "198.18.1.13"
  forward = "tun"

[[service]]
vip = "198.18.0.101"
protocol = "udp"
port = 53
scheduler = "sh"
persistence_timeout = "300s"
persistence_netmask = "255.255.255.0"
  [[service.real]]
  address = "198.18.1.11"
  weight = 3
`

// fakeDirector stands in for forward.Director: real snapshots built by forward, counters
// set by the test, no sockets.
type fakeDirector struct {
	mu    sync.Mutex
	cfg   *config.Config
	snap  *forward.Snapshot
	stats []*forward.EngineStats
	conns []conntrack.Entry
	tick  uint32
}

func newFake(t *testing.T, text string) *fakeDirector {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDirector{stats: []*forward.EngineStats{new(forward.EngineStats), new(forward.EngineStats)}, tick: 1_000_000}
	if err := f.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeDirector) Snapshot() *forward.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fakeDirector) Config() *config.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}

func (f *fakeDirector) Reload(cfg *config.Config) error {
	s, err := forward.BuildSnapshot(cfg, 2)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg, f.snap = cfg, s
	return nil
}

func (f *fakeDirector) Connections(ctx context.Context) ([]conntrack.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]conntrack.Entry(nil), f.conns...), nil
}

func (f *fakeDirector) Stats() []*forward.EngineStats { return f.stats }
func (f *fakeDirector) Tick() uint32                  { return f.tick }

func (f *fakeDirector) service(t *testing.T, port uint16) *forward.Service {
	t.Helper()
	for _, s := range f.Snapshot().Services() {
		if s.Port == port {
			return s
		}
	}
	t.Fatalf("no service on port %d", port)
	return nil
}

func TestStatusCountersAndLoads(t *testing.T) {
	f := newFake(t, testConfig)
	s := f.service(t, 80)
	s.Stats[0].Conns.Store(5)
	s.Stats[1].Conns.Store(7)
	s.Stats[1].InBytes.Store(1000)
	s.Reals[0].Stats[1].Conns.Store(4)
	s.Loads[0].Add(2, 3, nil)
	s.Loads[1].Add(-1, 0, nil) // a transient negative count is shown as 0
	f.stats[0].Faults[1].Store(9)
	op := NewOperator(f, "", nil)
	st, err := op.Status(context.Background(), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Services) != 2 || st.Services[0].Protocol != "tcp" || st.Services[1].Protocol != "udp" {
		t.Fatalf("services %+v", st.Services)
	}
	web := st.Services[0]
	if web.Stats.Conns != 12 || web.Stats.InBytes != 1000 || web.Name != "web" || web.Scheduler != "rr" {
		t.Errorf("web %+v", web)
	}
	r0 := web.Reals[0]
	if r0.Address != "198.18.1.11" || r0.Forward != "dr" || r0.ActiveConns != 2 || r0.InactiveConns != 3 || r0.Stats.Conns != 4 || !r0.Healthy {
		t.Errorf("real 0 %+v", r0)
	}
	if r1 := web.Reals[1]; r1.Port != 8080 || r1.Forward != "nat" || r1.ActiveConns != 0 || r1.UpperThreshold != 100 || r1.LowerThreshold != 50 {
		t.Errorf("real 1 %+v", r1)
	}
	if dns := st.Services[1]; dns.PersistenceTimeoutS != 300 || dns.PersistenceNetmask != "255.255.255.0" || dns.Reals[0].Weight != 3 {
		t.Errorf("dns %+v", dns)
	}
	var total uint64
	for _, n := range st.Drops {
		total += n
	}
	if total != 9 {
		t.Errorf("drops %v", st.Drops)
	}

	// -Z zeroes what list shows, and only that.
	if _, _, err := op.Edit(&Edit{Command: EditZero}); err != nil {
		t.Fatal(err)
	}
	s.Stats[0].Conns.Store(6)
	st, _ = op.Status(context.Background(), nil, false)
	if st.Services[0].Stats.Conns != 1 || st.Services[0].Reals[0].Stats.Conns != 0 {
		t.Errorf("after -Z: %+v", st.Services[0].Stats)
	}
	if got := sumCounters(s.Stats).Conns; got != 13 {
		t.Errorf("raw counters changed by -Z: %d", got)
	}
}

func TestEditRuntime(t *testing.T) {
	tests := []struct {
		name  string
		edit  Edit
		check func(t *testing.T, cfg *config.Config)
		fail  string
	}{
		{"drain", Edit{Command: EditEditReal, Service: ServiceRef{"tcp", "198.18.0.100", 80}, Real: "198.18.1.11", Weight: ptr(0)},
			func(t *testing.T, c *config.Config) {
				if w := c.Services[0].Reals[0].Weight; w != 0 {
					t.Errorf("weight %d", w)
				}
			}, ""},
		{"add real", Edit{Command: EditAddReal, Service: ServiceRef{"tcp", "198.18.0.100", 80}, Real: "198.18.1.14:80", Weight: ptr(5), UpperThreshold: ptr(10)},
			func(t *testing.T, c *config.Config) {
				r := c.Services[0].Reals[3]
				if r.Address.String() != "198.18.1.14" || r.Weight != 5 || r.UpperThreshold != 10 || r.Forward != config.DR {
					t.Errorf("real %+v", r)
				}
			}, ""},
		{"add service", Edit{Command: EditAddService, Service: ServiceRef{"tcp", "198.18.0.102", 25}, Scheduler: ptr("wrr"), PersistenceTimeout: ptr(int64(60)), PersistenceNetmask: ptr("255.255.0.0")},
			func(t *testing.T, c *config.Config) {
				s := c.Services[2]
				if s.Scheduler != "wrr" || s.PersistenceTimeout != time.Minute || s.PersistenceBits != 16 {
					t.Errorf("service %+v", s)
				}
			}, ""},
		{"edit service", Edit{Command: EditEditService, Service: ServiceRef{"udp", "198.18.0.101", 53}, Scheduler: ptr("mh")},
			func(t *testing.T, c *config.Config) {
				if c.Services[1].Scheduler != "mh" {
					t.Errorf("scheduler %s", c.Services[1].Scheduler)
				}
			}, ""},
		{"delete real", Edit{Command: EditDeleteReal, Service: ServiceRef{"tcp", "198.18.0.100", 80}, Real: "198.18.1.12:8080"},
			func(t *testing.T, c *config.Config) {
				if len(c.Services[0].Reals) != 2 {
					t.Errorf("reals %v", c.Services[0].Reals)
				}
			}, ""},
		{"delete service", Edit{Command: EditDeleteService, Service: ServiceRef{"udp", "198.18.0.101", 53}},
			func(t *testing.T, c *config.Config) {
				if len(c.Services) != 1 {
					t.Errorf("services %d", len(c.Services))
				}
			}, ""},
		{"bad scheduler", Edit{Command: EditEditService, Service: ServiceRef{"tcp", "198.18.0.100", 80}, Scheduler: ptr("fastest")}, nil, "edit rejected"},
		{"bad weight", Edit{Command: EditEditReal, Service: ServiceRef{"tcp", "198.18.0.100", 80}, Real: "198.18.1.11", Weight: ptr(70000)}, nil, "edit rejected"},
		{"no service", Edit{Command: EditAddReal, Service: ServiceRef{"tcp", "198.18.0.100", 81}, Real: "198.18.1.11"}, nil, "no such service"},
		{"duplicate real", Edit{Command: EditAddReal, Service: ServiceRef{"tcp", "198.18.0.100", 80}, Real: "198.18.1.11:80"}, nil, "already exists"},
		{"duplicate service", Edit{Command: EditAddService, Service: ServiceRef{"tcp", "198.18.0.100", 80}}, nil, "already exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, testConfig)
			before := f.Config()
			op := NewOperator(f, "", nil)
			msg, problems, err := op.Edit(&tt.edit)
			if tt.fail != "" {
				if err == nil || !strings.Contains(err.Error(), tt.fail) {
					t.Fatalf("err %v, want %q", err, tt.fail)
				}
				if f.Config() != before {
					t.Error("a rejected edit changed the running config")
				}
				if tt.fail == "edit rejected" && len(problems) == 0 {
					t.Error("no problems reported")
				}
				return
			}
			if err != nil {
				t.Fatalf("%v %v", err, problems)
			}
			if msg != MsgRuntimeOnly {
				t.Errorf("message %q", msg)
			}
			tt.check(t, f.Config())
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestSaveRoundTrip checks that uvs save prints TOML that config accepts and that parses
// back to the same config, for the interface example and every key config knows.
func TestSaveRoundTrip(t *testing.T) {
	for _, file := range []string{"../config/testdata/full.toml", "../config/testdata/interface.toml"} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(file, data)
			if err != nil {
				t.Fatal(err)
			}
			text := ConfigTOML(cfg)
			back, err := config.Parse("saved", []byte(text))
			if err != nil {
				t.Fatalf("saved config rejected: %v\n%s", err, text)
			}
			if d := Diff(cfg, back); len(d) != 0 {
				t.Errorf("round trip changed: %v", d)
			}
			if again := ConfigTOML(back); again != text {
				t.Errorf("second save differs:\n%s\n---\n%s", text, again)
			}
		})
	}
}

func TestIPVSRules(t *testing.T) {
	cfg, err := config.Parse("t", []byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	want := `-A -t 198.18.0.100:80 -s rr
-a -t 198.18.0.100:80 -r 198.18.1.11:80 -g -w 1
-a -t 198.18.0.100:80 -r 198.18.1.12:8080 -m -w 1 -x 100 -y 50
-a -t 198.18.0.100:80 -r 198.18.1.13:80 -i -w 1
-A -u 198.18.0.101:53 -s sh -p 300 -M 255.255.255.0
-a -u 198.18.0.101:53 -r 198.18.1.11:53 -g -w 3
`
	if got := IPVSRules(cfg); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestDiff(t *testing.T) {
	cur, _ := config.Parse("a", []byte(testConfig))
	text := strings.Replace(testConfig, `scheduler = "rr"`, `scheduler = "wlc"`, 1)
	text = strings.Replace(text, "  weight = 3\n", "  weight = 4\n  [[service.real]]\n  address = \"198.18.1.20\"\n", 1)
	text = strings.Replace(text, "  [[service.real]]\n  address = \"198.18.1.13\"\n  forward = \"tun\"\n", "", 1)
	next, err := config.Parse("b", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Diff(cur, next), "\n")
	for _, want := range []string{
		"~ service tcp 198.18.0.100:80: scheduler rr -> wlc",
		"- service tcp 198.18.0.100:80 real 198.18.1.13:80",
		"~ service udp 198.18.0.101:53 real 198.18.1.11:53: weight 3 -> 4",
		"+ service udp 198.18.0.101:53 real 198.18.1.20:53 (dr, weight 1)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("diff lacks %q:\n%s", want, got)
		}
	}
	if d := Diff(cur, cur); len(d) != 0 {
		t.Errorf("self diff %v", d)
	}
}

func TestRateEstimator(t *testing.T) {
	es := newEstimator()
	k := counterKey{port: 80}
	var s Stats
	es.update(map[counterKey]Stats{k: s})
	// 100 connections and 1 MB per second, sampled every 2 s: the EWMA converges.
	for i := 0; i < 100; i++ {
		s.Conns += 200
		s.InPackets += 2000
		s.InBytes += 2_000_000
		es.update(map[counterKey]Stats{k: s})
	}
	r := es.rates(k)
	if r.CPS != 100 || r.InPPS != 1000 || r.InBPS != 1_000_000 || r.OutPPS != 0 {
		t.Errorf("rates %+v", r)
	}
	// After one quiet sample the rate falls by a quarter, as the kernel's.
	es.update(map[counterKey]Stats{k: s})
	if r := es.rates(k); r.CPS != 75 {
		t.Errorf("after a quiet sample cps %d, want 75", r.CPS)
	}
	es.update(map[counterKey]Stats{})
	if r := es.rates(k); r != (Rates{}) {
		t.Errorf("forgotten key has rates %+v", r)
	}
}

func TestTracePeeksWithoutMoving(t *testing.T) {
	f := newFake(t, testConfig)
	op := NewOperator(f, "", nil)
	q := &TraceQuery{Protocol: "tcp", Client: "198.19.0.10:40000", VIP: "198.18.0.100:80"}
	a, err := op.Trace(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := op.Trace(context.Background(), q)
	if a.Chosen == "" || a.Chosen != b.Chosen || !a.Exact || a.Scheduler != "rr" {
		t.Fatalf("traces %+v then %+v", a, b)
	}
	// A connection entry wins over the scheduler.
	s := f.service(t, 80)
	f.conns = []conntrack.Entry{{
		Key:  conntrack.Key{Client: conntrack.Map4([4]byte{198, 19, 0, 10}), VIP: conntrack.Map4([4]byte{198, 18, 0, 100}), CPort: 40000, VPort: 80, Proto: 6},
		Real: conntrack.Map4([4]byte{198, 18, 1, 13}), RPort: 80, Service: s.ID, State: conntrack.StateEstablished, Expires: f.tick + 5000,
	}}
	c, _ := op.Trace(context.Background(), q)
	if c.Connection == nil || c.Chosen != "198.18.1.13:80" || c.Connection.ExpiresS != 5 {
		t.Fatalf("with a connection: %+v", c)
	}
	n, _ := op.Trace(context.Background(), &TraceQuery{Protocol: "udp", Client: "198.19.0.10:1", VIP: "198.18.0.100:80"})
	if n.Service != nil || n.Chosen != "" {
		t.Fatalf("no service: %+v", n)
	}
}

func TestServerRoundTrip(t *testing.T) {
	f := newFake(t, testConfig)
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "uvs.sock")
	srv, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v", fi.Mode(), err)
	}
	if _, err := Listen(path, nil); err == nil || !strings.Contains(err.Error(), "another director") {
		t.Fatalf("second listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, NewOperator(f, "", nil)) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	resp, err := Call(context.Background(), path, &Request{Op: OpList})
	if err != nil || resp.Status == nil || len(resp.Status.Services) != 2 {
		t.Fatalf("list: %+v %v", resp, err)
	}
	_, err = Call(context.Background(), path, &Request{Op: OpEdit, Edit: &Edit{Command: EditEditReal, Service: ServiceRef{"tcp", "198.18.0.100", 80}, Real: "198.18.1.11", Weight: ptr(-1)}})
	var re *RequestError
	if !errors.As(err, &re) || len(re.Problems) == 0 {
		t.Fatalf("bad edit: %v", err)
	}
	// A raw client speaking another version gets a clear error.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte(`{"version":99,"op":"list"}` + "\n"))
	buf := make([]byte, 4096)
	n, _ := c.Read(buf)
	_ = c.Close()
	if !strings.Contains(string(buf[:n]), "protocol version 99") {
		t.Errorf("version mismatch answer %q", buf[:n])
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	var nd *NoDirectorError
	if _, err := Call(context.Background(), path, &Request{Op: OpList}); !errors.As(err, &nd) {
		t.Errorf("no director: %v", err)
	}
}

func TestStaleSocketRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "uvs.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	_ = ln.Close() // leaves the socket file with nobody listening, as a killed director
	srv, err := Listen(path, nil)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	_ = srv.Close()
}

func TestMetricsSeries(t *testing.T) {
	f := newFake(t, testConfig)
	s := f.service(t, 80)
	s.Stats[0].Conns.Store(3)
	s.Stats[1].InPkts.Store(11)
	s.Loads[0].Add(2, 1, nil)
	f.stats[1].RxFrames.Store(42)
	h, err := MetricsHandler(f)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		"uvs_connections_total 3",
		"uvs_incoming_packets_total 11",
		"uvs_outgoing_packets_total 0",
		"uvs_incoming_bytes_total 0",
		"uvs_outgoing_bytes_total 0",
		`uvs_backend_connections_active{local_address="198.18.0.100",local_port="80",proto="TCP",remote_address="198.18.1.11",remote_port="80"} 2`,
		`uvs_backend_connections_inactive{local_address="198.18.0.100",local_port="80",proto="TCP",remote_address="198.18.1.11",remote_port="80"} 1`,
		`uvs_backend_weight{local_address="198.18.0.101",local_port="53",proto="UDP",remote_address="198.18.1.11",remote_port="53"} 3`,
		`uvs_backend_up{local_address="198.18.0.100",local_port="80",proto="TCP",remote_address="198.18.1.12",remote_port="8080"} 1`,
		`uvs_dropped_packets_total{reason="no_service"} 0`,
		`uvs_worker_rx_frames_total{worker="1"} 42`,
		`uvs_conntrack_entries{worker="0"} 0`,
		`uvs_worker_ring_drops_total{worker="1"} 0`,
		`uvs_worker_forwarded_frames_total{worker="0"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}
