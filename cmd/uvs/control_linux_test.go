//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/control"
	"github.com/uvs-project/uvs/internal/testenv"
)

// ctlLab is a DR lab with a director whose config the test writes, driven through the
// control socket by the uvs binary itself.
type ctlLab struct {
	*labRun
	dir     string // temporary directory: config file and control socket
	cfgPath string
	socket  string
}

// metricsPort is the director's metrics port inside its own namespace.
const metricsPort = 9750

// startCtlLab builds a DR lab with n real servers, starts their servers and a director
// with the config cfg(dir) returns, and waits until VIP:80 answers.
func startCtlLab(t *testing.T, n int, cfg func(l *bench.Lab, dir string) string) *ctlLab {
	t.Helper()
	return startCtlLabAs(t, n, cfg, nil)
}

// startCtlLabAs is startCtlLab with the director started by wrap(dir, uvsBinary), which
// returns the program to run instead of uvsBinary (it gets the same arguments).
func startCtlLabAs(t *testing.T, n int, cfg func(l *bench.Lab, dir string) string, wrap func(dir, bin string) string) *ctlLab {
	t.Helper()
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lab := newLab(t, bench.LabSpec{Topology: bench.TopologyDR, Reals: n})
	if err := lab.PrepareReals("dr"); err != nil {
		t.Fatal(err)
	}
	startServers(t, lab, 80, bench.UDPPort)
	c := &ctlLab{labRun: &labRun{t: t, lab: lab, stderr: &syncBuffer{}, vip: lab.VIP, port: 80}, dir: t.TempDir()}
	c.cfgPath = filepath.Join(c.dir, "uvs.toml")
	c.socket = filepath.Join(c.dir, "uvs.sock")
	c.writeConfig(cfg(lab, c.dir))
	if wrap != nil {
		bin = wrap(c.dir, bin)
	}
	c.startDirector(ctx, bin)
	return c
}

// startDirector starts the director and waits until VIP:80 answers.
func (c *ctlLab) startDirector(ctx context.Context, bin string) {
	t := c.t
	var err error
	c.labRun.dir, err = c.lab.StartDirector(context.Background(), bin, c.cfgPath, c.stderr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.labRun.dir.Stop()
		if t.Failed() {
			t.Logf("director stderr:\n%s", c.stderr.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := c.curl(ctx, "/"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("VIP %s:80 never answered; director stderr:\n%s", c.vip, c.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	checkBackend(t, c.cfgPath)
}

func (c *ctlLab) writeConfig(text string) {
	c.t.Helper()
	if err := os.WriteFile(c.cfgPath, []byte(withBackend(c.t, text)), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// uvs runs the uvs binary with args (in the test's own namespace: the control socket is a
// file) and returns stdout, stderr and the exit status.
func (c *ctlLab) uvs(args ...string) (string, string, int) {
	c.t.Helper()
	bin, err := uvsBinary()
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			c.t.Fatalf("uvs %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// mustUVS runs uvs and fails the test unless it exits 0.
func (c *ctlLab) mustUVS(args ...string) string {
	c.t.Helper()
	out, errs, code := c.uvs(args...)
	if code != 0 {
		c.t.Fatalf("uvs %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (c *ctlLab) status(args ...string) *control.Status {
	c.t.Helper()
	out := c.mustUVS(append([]string{"list", "--json", "--socket", c.socket}, args...)...)
	var st control.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		c.t.Fatalf("list --json: %v\n%s", err, out)
	}
	return &st
}

func findSvc(t *testing.T, st *control.Status, proto string, port uint16) *control.Service {
	t.Helper()
	for i := range st.Services {
		if s := &st.Services[i]; s.Protocol == proto && s.Port == port {
			return s
		}
	}
	t.Fatalf("no service %s/%d in %+v", proto, port, st.Services)
	return nil
}

func findReal(t *testing.T, s *control.Service, addr string) *control.Real {
	t.Helper()
	for i := range s.Reals {
		if s.Reals[i].Address == addr {
			return &s.Reals[i]
		}
	}
	t.Fatalf("no real %s in %+v", addr, s.Reals)
	return nil
}

// keepConn is one long-lived HTTP/1.1 connection from the client through the VIP.
type keepConn struct {
	c  net.Conn
	br *bufio.Reader
}

func (c *ctlLab) dialKeep() *keepConn {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.lab.Client.Dial(ctx, "tcp4", netip.AddrPortFrom(c.vip, 80).String())
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = conn.Close() })
	return &keepConn{c: conn, br: bufio.NewReader(conn)}
}

// get sends GET / on the connection and returns the answering real server's name.
func (k *keepConn) get(t *testing.T) string {
	t.Helper()
	_ = k.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: uvs\r\n\r\n"); err != nil {
		t.Fatalf("long-lived connection: write: %v", err)
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		t.Fatalf("long-lived connection: read: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("long-lived connection: %s %q %v", resp.Status, body, err)
	}
	return strings.TrimSpace(string(body))
}

// listConfig has DR, NAT and TUN reals, a persistent service with a netmask and a UDP
// service. Only the DR services carry traffic; the persistent one sees SYNs only.
func listConfig(l *bench.Lab, dir string) string {
	rs1, rs2 := l.RealAddrs[0], l.RealAddrs[1]
	return fmt.Sprintf(`[director]
interfaces = ["eth0"]
workers = 2
control_socket = %q
metrics_listen = "127.0.0.1:%d"

[[service]]
name = "web"
vip = "%s"
port = 80
scheduler = "rr"
forward = "dr"
  [[service.real]]
  address = "%s"
  [[service.real]]
  address = "%s"

[[service]]
name = "echo"
vip = "%s"
protocol = "udp"
port = %d
scheduler = "rr"
  [[service.real]]
  address = "%s"
  [[service.real]]
  address = "%s"

[[service]]
name = "sticky"
vip = "%s"
port = 443
scheduler = "wlc"
persistence_timeout = "300s"
persistence_netmask = "255.255.255.0"
  [[service.real]]
  address = "%s"
  port = 8443
  forward = "nat"
  upper_threshold = 100
  lower_threshold = 10
  [[service.real]]
  address = "%s"
  forward = "tun"
`, filepath.Join(dir, "uvs.sock"), metricsPort, l.VIP, rs1, rs2, l.VIP, bench.UDPPort, rs1, rs2, l.VIP, rs1, rs2)
}

// ipvsadmReal is a real server row cut at the column positions of ipvsadm's
// "  -> %-28s %-7s %-6d %-10u %-10u" (print_service_entry).
type ipvsadmReal struct {
	addr, forward            string
	weight, active, inactive int
}

func parseListColumns(t *testing.T, out string) map[string][]ipvsadmReal {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "IP Virtual Server version ") ||
		lines[1] != "Prot LocalAddress:Port Scheduler Flags" ||
		lines[2] != "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn" {
		t.Fatalf("not ipvsadm -Ln headers:\n%s", out)
	}
	num := func(s string) int {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("column %q is not a number in:\n%s", s, out)
		}
		return n
	}
	svcs := map[string][]ipvsadmReal{}
	cur := ""
	for _, l := range lines[3:] {
		if !strings.HasPrefix(l, "  -> ") {
			cur = l
			svcs[cur] = nil
			continue
		}
		if len(l) < 61 {
			t.Fatalf("short real row %q", l)
		}
		svcs[cur] = append(svcs[cur], ipvsadmReal{
			addr: strings.TrimSpace(l[5:33]), forward: strings.TrimSpace(l[34:41]),
			weight: num(l[42:48]), active: num(l[49:59]), inactive: num(l[60:]),
		})
	}
	return svcs
}

// statsColumns cuts a --stats or --rate row at ipvsadm's "%-33s" and five 9-wide
// print_largenum columns.
func statsColumns(t *testing.T, out, prefix string) []uint64 {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		var vs []uint64
		for i := 33; i+9 <= len(l); i += 9 {
			v, err := strconv.ParseUint(strings.TrimSpace(l[i:i+9]), 10, 64)
			if err != nil {
				t.Fatalf("column %q of %q: %v", l[i:i+9], l, err)
			}
			vs = append(vs, v)
		}
		if len(vs) != 5 {
			t.Fatalf("row %q has %d columns", l, len(vs))
		}
		return vs
	}
	t.Fatalf("no row %q in:\n%s", prefix, out)
	return nil
}

// scrape fetches /metrics from inside the director's namespace.
func (c *ctlLab) scrape() string {
	c.t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: c.lab.Director.Dial}, Timeout: 10 * time.Second}
	body, err := bench.Get(context.Background(), hc, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if err != nil {
		c.t.Fatalf("scrape: %v", err)
	}
	return string(body)
}

// metricValue returns the value of the series written exactly as series.
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in:\n%s", series, body)
	return 0
}

func TestIntegrationControlList(t *testing.T) {
	testenv.RequireRoot(t)
	c := startCtlLab(t, 2, listConfig)
	rs1 := c.lab.RealAddrs[0].String()
	vip := c.vip.String()
	before := c.status("--stats")
	m0 := c.scrape()

	checkEven(t, "10 curls", c.distribution(10), 10)
	checkEven(t, "UDP echo", c.udpEcho(4), 4)
	// One SYN to the persistent service creates a connection entry and a template.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if conn, err := c.lab.Client.Dial(ctx, "tcp4", vip+":443"); err == nil {
		_ = conn.Close()
	}
	cancel()

	// ipvsadm -Ln columns.
	listOut := c.mustUVS("list", "-n", "--socket", c.socket)
	t.Logf("uvs list -n:\n%s", listOut)
	svcs := parseListColumns(t, listOut)
	web := svcs["TCP  "+vip+":80 rr"]
	if len(web) != 2 || web[0].addr != rs1+":80" || web[0].forward != "Route" || web[0].weight != 1 {
		t.Errorf("web rows %+v (services %v)", web, svcs)
	}
	echo := svcs["UDP  "+vip+":9000 rr"]
	if len(echo) != 2 || echo[0].forward != "Route" || echo[0].inactive+echo[1].inactive != 4 {
		t.Errorf("echo rows %+v (UDP connections are inactive, one per echo)", echo)
	}
	sticky := svcs["TCP  "+vip+":443 wlc persistent 300 mask 255.255.255.0"]
	if len(sticky) != 2 || sticky[0].addr != rs1+":8443" || sticky[0].forward != "Masq" || sticky[1].forward != "Tunnel" {
		t.Errorf("sticky rows %+v (services %v)", sticky, svcs)
	}

	// --stats --exact: counters moved by exactly the traffic sent.
	statsOut := c.mustUVS("list", "--stats", "--exact", "--socket", c.socket)
	t.Logf("uvs list --stats --exact:\n%s", statsOut)
	row := statsColumns(t, statsOut, "TCP  "+vip+":80")
	b := findSvc(t, before, "tcp", 80)
	if row[0]-b.Stats.Conns != 10 || row[1] <= b.Stats.InPackets || row[2] != 0 || row[3] <= b.Stats.InBytes {
		t.Errorf("web stats %v, before %+v (DR: no outgoing packets)", row, b.Stats)
	}
	if r := statsColumns(t, statsOut, "  -> "+rs1+":80 "); r[0]-findReal(t, b, rs1).Stats.Conns != 5 {
		t.Errorf("rs1 stats %v", r)
	}
	if r := statsColumns(t, statsOut, "UDP  "+vip+":9000"); r[0] < 4 {
		t.Errorf("echo stats %v", r)
	}

	// --json: the pinned fields, and drops with --stats.
	raw := c.mustUVS("list", "--json", "--stats", "--socket", c.socket)
	var generic map[string]any
	if err := json.Unmarshal([]byte(raw), &generic); err != nil {
		t.Fatal(err)
	}
	svc0 := generic["services"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "protocol", "vip", "port", "scheduler", "persistence_timeout_s", "stats", "reals"} {
		if _, ok := svc0[k]; !ok {
			t.Errorf("service JSON lacks %q: %v", k, svc0)
		}
	}
	real0 := svc0["reals"].([]any)[0].(map[string]any)
	for _, k := range []string{"address", "port", "forward", "weight", "healthy", "active_conns", "inactive_conns", "stats"} {
		if _, ok := real0[k]; !ok {
			t.Errorf("real JSON lacks %q: %v", k, real0)
		}
	}
	for _, k := range []string{"conns", "in_packets", "in_bytes", "out_packets", "out_bytes"} {
		if _, ok := real0["stats"].(map[string]any)[k]; !ok {
			t.Errorf("stats JSON lacks %q", k)
		}
	}
	if _, ok := generic["drops"]; !ok {
		t.Error("--stats --json has no drops")
	}

	// -Lnc and --conns --json: the template of the persistent service is there.
	conns := c.mustUVS("list", "--conns", "--socket", c.socket)
	t.Logf("uvs list --conns:\n%s", conns)
	if !strings.HasPrefix(conns, "IPVS connection entries\npro expire state       source             virtual            destination\n") {
		t.Errorf("-Lnc header:\n%s", conns)
	}
	var cj struct{ Connections []control.Connection }
	if err := json.Unmarshal([]byte(c.mustUVS("list", "--conns", "--json", "--socket", c.socket)), &cj); err != nil {
		t.Fatal(err)
	}
	tmpl, udp := false, 0
	for _, e := range cj.Connections {
		if e.Template && e.VIP == vip+":443" && strings.HasSuffix(e.Client, ".0:0") && e.ExpiresS > 200 {
			tmpl = true
		}
		if e.Protocol == "udp" && e.State == "UDP" && e.VIP == vip+":9000" {
			udp++
		}
	}
	if !tmpl || udp != 4 {
		t.Errorf("connections: template %v, udp %d:\n%+v", tmpl, udp, cj.Connections)
	}
	if out := c.mustUVS("list", "--persistent-conn", "-t", vip+":443", "--socket", c.socket); !strings.Contains(out, "PersistConn") {
		t.Errorf("--persistent-conn:\n%s", out)
	}
	if out := c.mustUVS("list", "--timeout", "--socket", c.socket); out != "Timeout (tcp tcpfin udp): 900 120 300\n" {
		t.Errorf("--timeout: %q", out)
	}
	if out := c.mustUVS("list", "-u", vip+":9000", "--socket", c.socket); strings.Contains(out, ":80 ") || !strings.HasPrefix(out, "Prot LocalAddress:Port") {
		t.Errorf("-u filter:\n%s", out)
	}

	// --rate: the estimator samples every 2 s; keep traffic up across two samples.
	end := time.Now().Add(5 * time.Second)
	for time.Now().Before(end) {
		if _, err := c.curl(context.Background(), "/"); err != nil {
			t.Fatal(err)
		}
	}
	rateOut := c.mustUVS("list", "--rate", "--socket", c.socket)
	t.Logf("uvs list --rate:\n%s", rateOut)
	rate := statsColumns(t, rateOut, "TCP  "+vip+":80")
	if rate[1] == 0 {
		t.Errorf("web InPPS 0 after 5 s of traffic: %v", rate)
	}

	// Metrics: node_exporter's names and labels, values that moved.
	m1 := c.scrape()
	if got, was := metricValue(t, m1, "uvs_connections_total"), metricValue(t, m0, "uvs_connections_total"); got < was+10 {
		t.Errorf("uvs_connections_total %v, before %v", got, was)
	}
	if metricValue(t, m1, "uvs_incoming_packets_total") <= metricValue(t, m0, "uvs_incoming_packets_total") {
		t.Error("uvs_incoming_packets_total did not move")
	}
	lbl := fmt.Sprintf(`{local_address="%s",local_port="80",proto="TCP",remote_address="%s",remote_port="80"}`, vip, rs1)
	if w := metricValue(t, m1, "uvs_backend_weight"+lbl); w != 1 {
		t.Errorf("weight %v", w)
	}
	metricValue(t, m1, "uvs_backend_connections_active"+lbl)
	metricValue(t, m1, "uvs_backend_connections_inactive"+lbl)
	metricValue(t, m1, "uvs_backend_up"+lbl)
	metricValue(t, m1, "uvs_outgoing_bytes_total")
	metricValue(t, m1, "uvs_outgoing_packets_total")
	metricValue(t, m1, "uvs_incoming_bytes_total")
	metricValue(t, m1, `uvs_dropped_packets_total{reason="no_service"}`)
	if metricValue(t, m1, `uvs_worker_rx_frames_total{worker="0"}`)+metricValue(t, m1, `uvs_worker_rx_frames_total{worker="1"}`) == 0 {
		t.Error("no RX frames counted")
	}
	metricValue(t, m1, `uvs_conntrack_entries{worker="0"}`)
	c.stopAndCheckClean()
	if _, err := os.Stat(c.socket); !os.IsNotExist(err) {
		t.Errorf("control socket left after exit: %v", err)
	}
}

// twoReals is a config of one TCP service VIP:80 with the first n real servers at weight 1.
func twoReals(n int, weights map[int]int) func(l *bench.Lab, dir string) string {
	return func(l *bench.Lab, dir string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "[director]\ninterfaces = [\"eth0\"]\nworkers = 2\ncontrol_socket = %q\n\n[[service]]\nvip = \"%s\"\nport = 80\nscheduler = \"rr\"\n",
			filepath.Join(dir, "uvs.sock"), l.VIP)
		for i := 0; i < n; i++ {
			w := 1
			if v, ok := weights[i]; ok {
				w = v
			}
			fmt.Fprintf(&b, "  [[service.real]]\n  address = \"%s\"\n  weight = %d\n", l.RealAddrs[i], w)
		}
		return b.String()
	}
}

// TestIntegrationControlReload: a reload that changes a weight and adds a real keeps a
// long-lived connection and the counters; a broken file changes nothing.
func TestIntegrationControlReload(t *testing.T) {
	testenv.RequireRoot(t)
	eachBackend(t, testControlReload)
}

func testControlReload(t *testing.T) {
	c := startCtlLab(t, 3, twoReals(2, nil))
	keep := c.dialKeep()
	first := keep.get(t)
	checkEven(t, "before reload", c.distribution(10), 10)
	before := findSvc(t, c.status("--stats"), "tcp", 80)

	next := twoReals(3, map[int]int{0: 2})(c.lab, c.dir)
	nextPath := filepath.Join(c.dir, "next.toml")
	if err := os.WriteFile(nextPath, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	diff := c.mustUVS("diff", "--config", nextPath, "--socket", c.socket)
	t.Logf("uvs diff:\n%s", diff)
	rs1, rs3 := c.lab.RealAddrs[0].String(), c.lab.RealAddrs[2].String()
	for _, want := range []string{"real " + rs1 + ":80: weight 1 -> 2", "+ service tcp " + c.vip.String() + ":80 real " + rs3 + ":80"} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	if st := findSvc(t, c.status(), "tcp", 80); len(st.Reals) != 2 {
		t.Fatal("uvs diff changed the director")
	}

	c.writeConfig(next)
	if out := c.mustUVS("reload", "--socket", c.socket); !strings.Contains(out, "reloaded") {
		t.Errorf("reload said %q", out)
	}
	after := findSvc(t, c.status("--stats"), "tcp", 80)
	if len(after.Reals) != 3 || findReal(t, after, rs1).Weight != 2 {
		t.Fatalf("after reload: %+v", after.Reals)
	}
	if after.Stats.Conns < before.Stats.Conns || findReal(t, after, rs1).Stats.Conns < findReal(t, before, rs1).Stats.Conns {
		t.Errorf("counters lost: before %+v, after %+v", before.Stats, after.Stats)
	}
	if got := keep.get(t); got != first {
		t.Errorf("long-lived connection moved from %s to %s", first, got)
	}
	got := c.distribution(8)
	if got["rs3"] == 0 || got["rs1"] < got["rs2"] {
		t.Errorf("after reload (wrr-like weights 2,1,1 under rr: every real): %v", got)
	}

	// A broken file is rejected whole, with its problems, and nothing changes.
	c.writeConfig(strings.Replace(next, "weight = 2", "weight = -5", 1) + "\nbogus_key = 1\n")
	out, errs, code := c.uvs("reload", "--socket", c.socket)
	t.Logf("broken reload:\n%s", errs)
	if code != 1 || !strings.Contains(errs, "weight") || !strings.Contains(errs, "reload rejected") {
		t.Errorf("broken reload: exit %d\n%s%s", code, out, errs)
	}
	// SIGHUP with the same broken file: logged and rejected the same way.
	if err := c.labRun.dir.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(c.stderr.String(), "reload rejected"); {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP with a broken file was not rejected:\n%s", c.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	still := findSvc(t, c.status("--stats"), "tcp", 80)
	if len(still.Reals) != 3 || findReal(t, still, rs1).Weight != 2 || still.Stats.Conns < after.Stats.Conns {
		t.Errorf("a rejected reload changed the director: %+v", still)
	}
	if got := keep.get(t); got != first {
		t.Errorf("long-lived connection moved from %s to %s after a rejected reload", first, got)
	}
	c.stopAndCheckClean()
}

// TestIntegrationControlDrain: draining a real with uvs edit sends new connections
// elsewhere at once while its existing connection continues; the file stays as it was.
func TestIntegrationControlDrain(t *testing.T) {
	testenv.RequireRoot(t)
	c := startCtlLab(t, 2, twoReals(2, nil))
	fileBefore, _ := os.ReadFile(c.cfgPath)
	keep := c.dialKeep()
	name := keep.get(t)
	var drained string
	for i, n := range c.lab.Reals {
		if n.Name == name {
			drained = c.lab.RealAddrs[i].String()
		}
	}
	if drained == "" {
		t.Fatalf("long-lived connection answered by %q", name)
	}
	vip := c.vip.String()
	// The connection is in the table; trace finds it.
	client := keep.c.LocalAddr().(*net.TCPAddr)
	tr := c.mustUVS("trace", "--client", netip.AddrPortFrom(c.lab.Client.Addr, uint16(client.Port)).String(), "-t", vip+":80", "--socket", c.socket)
	if !strings.Contains(tr, "connection exists") || !strings.Contains(tr, "=> "+drained+":80") {
		t.Errorf("trace of the live connection:\n%s", tr)
	}

	out := c.mustUVS("edit", "-e", "-t", vip+":80", "-r", drained, "-w", "0", "--socket", c.socket)
	if !strings.Contains(out, control.MsgRuntimeOnly) {
		t.Errorf("edit said %q", out)
	}
	got := c.distribution(10)
	if got[name] != 0 || len(got) != 1 {
		t.Errorf("after draining %s (%s): %v", name, drained, got)
	}
	if again := keep.get(t); again != name {
		t.Errorf("existing connection moved from %s to %s", name, again)
	}
	// A fresh flow is traced to the other real, and tracing does not move rr.
	tr = c.mustUVS("trace", "--client", c.lab.Client.Addr.String()+":1", "-t", vip+":80", "--socket", c.socket)
	t.Logf("uvs trace after drain:\n%s", tr)
	if strings.Contains(tr, "=> "+drained) || !strings.Contains(tr, "weight 0") {
		t.Errorf("trace after drain:\n%s", tr)
	}
	if r := findReal(t, findSvc(t, c.status(), "tcp", 80), drained); r.Weight != 0 || r.ActiveConns != 1 {
		t.Errorf("drained real %+v: want weight 0 and its one active connection", r)
	}
	if fileAfter, _ := os.ReadFile(c.cfgPath); !bytes.Equal(fileBefore, fileAfter) {
		t.Error("uvs edit changed the config file")
	}

	// uvs save prints what uvs check accepts; --ipvsadm keeps the weight.
	saved := filepath.Join(c.dir, "saved.toml")
	if err := os.WriteFile(saved, []byte(c.mustUVS("save", "--socket", c.socket)), 0o600); err != nil {
		t.Fatal(err)
	}
	c.mustUVS("check", "--config", saved)
	if rules := c.mustUVS("save", "--ipvsadm", "--socket", c.socket); !strings.Contains(rules, "-a -t "+vip+":80 -r "+drained+":80 -g -w 0\n") {
		t.Errorf("ipvsadm-save:\n%s", rules)
	}
	// Zeroing counters.
	c.mustUVS("edit", "-Z", "--socket", c.socket)
	if s := findSvc(t, c.status("--stats"), "tcp", 80); s.Stats.Conns != 0 {
		t.Errorf("after -Z: %+v", s.Stats)
	}
	c.stopAndCheckClean()
}

// TestIntegrationControlUnprivileged runs the director as an unprivileged user with
// no_new_privs and only ambient capabilities, per backend: afpacket with CAP_NET_RAW and
// CAP_NET_ADMIN alone (docs/uvs.service less CAP_BPF: it must forward with the nftables
// shield, the fallback of director.shield = "auto"), and afxdp with exactly the unit's
// CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF and CAP_IPC_LOCK. It checks that the director
// forwards, serves the control socket and cleans up.
func TestIntegrationControlUnprivileged(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		testenv.SkipOrFail(t, "no setpriv(1) (util-linux): %v", err)
	}
	eachBackend(t, testControlUnprivileged)
}

func testControlUnprivileged(t *testing.T) {
	const uid = 65534 // nobody
	caps := "+net_raw,+net_admin"
	if testBackend(t) == "afxdp" {
		// CAP_IPC_LOCK rather than the unit's alternative, LimitMEMLOCK: raising the limit
		// needs CAP_SYS_RESOURCE, which a test runner in a container may not have.
		caps += ",+bpf,+ipc_lock"
	}
	wrap := func(dir, bin string) string {
		// The binary, config and socket directory must be reachable by the user.
		for _, d := range []string{filepath.Dir(bin), dir, filepath.Dir(dir)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(dir, uid, uid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, "uvs.toml"), 0o644); err != nil {
			t.Fatal(err)
		}
		script := filepath.Join(dir, "uvs-as-nobody")
		text := fmt.Sprintf("#!/bin/sh\nexec setpriv --reuid=%d --regid=%d --clear-groups --no-new-privs "+
			"--inh-caps=-all,%s --ambient-caps=-all,%s --bounding-set=-all,%s %s \"$@\"\n", uid, uid, caps, caps, caps, bin)
		if err := os.WriteFile(script, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
		return script
	}
	c := startCtlLabAs(t, 2, twoReals(2, nil), wrap)
	checkEven(t, "unprivileged director", c.distribution(10), 10)
	fi, err := os.Stat(c.socket)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != uid || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket %v owned by %v", fi.Mode(), fi.Sys())
	}
	st := c.status("--stats")
	if s := findSvc(t, st, "tcp", 80); s.Stats.Conns < 10 {
		t.Errorf("stats %+v", s.Stats)
	}
	// Without CAP_BPF, director.shield = "auto" falls back to the nftables table, and says so.
	if d := st.Director; testBackend(t) == "afpacket" && (d == nil || d.Backend != "afpacket" || d.Shield != "nftables" || d.RXRing == "") {
		t.Errorf("list --json director = %+v, want afpacket with the nftables shield", d)
	}
	c.stopAndCheckClean()
}
