//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// labTOML is the demo's configuration (bench.DemoConfig): a DR service (TCP and UDP), a NAT
// service with port mapping and, when withTUN, a TUN service behind the router.
func labTOML(prefix string, withTUN bool) string {
	return bench.DemoConfig("/run/uvs/"+prefix+"sock", prefix, withTUN)
}

// uvsCmd runs the uvs binary and returns its combined output.
func uvsCmd(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func assertNoNamespaces(t *testing.T, prefix string) {
	t.Helper()
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
}

func TestIntegrationLabUpDown(t *testing.T) {
	testenv.RequireRoot(t)
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	withTUN := bench.HasCommand(bin, "realserver")
	if !withTUN {
		t.Log("uvs realserver does not exist yet: the TUN service is left out")
	}
	prefix := fmt.Sprintf("uvt%d-l-", os.Getpid()%100000)
	cfg := filepath.Join(t.TempDir(), "lab.toml")
	if err := os.WriteFile(cfg, []byte(labTOML(prefix, withTUN)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = uvsCmd(t, bin, "lab", "down", "-c", cfg)
		assertNoNamespaces(t, prefix)
		if _, err := os.Stat(filepath.Join(bench.StateDir, prefix+".json")); err == nil {
			t.Errorf("lab state %s left behind", prefix)
		}
	})
	if out, err := uvsCmd(t, bin, "lab", "up", "-c", cfg); err != nil {
		t.Fatalf("lab up: %v\n%s", err, out)
	}
	status, err := uvsCmd(t, bin, "lab", "status", "-c", cfg)
	if err != nil || strings.Contains(status, "EXITED") || strings.Contains(status, "MISSING") {
		t.Fatalf("lab status: %v\n%s", err, status)
	}
	vips := map[string][]string{"198.18.1.100": {"rs1", "rs2"}, "198.18.1.101": {"rs3", "rs4"}}
	if withTUN {
		vips["198.18.1.102"] = []string{"rs5", "rs6"}
	}
	for vip, want := range vips {
		seen := map[string]bool{}
		for range 4 {
			out, err := uvsCmd(t, bin, "lab", "exec", "-c", cfg, "client", "--", "curl", "-sS", "--max-time", "5", "http://"+vip+"/")
			if err != nil {
				t.Fatalf("curl %s: %v\n%s\n%s", vip, err, out, status)
			}
			seen[strings.TrimSpace(out)] = true
		}
		for _, w := range want {
			if !seen[w] {
				t.Errorf("curl %s: answers %v, want each of %v", vip, seen, want)
			}
		}
	}
	if out, err := uvsCmd(t, bin, "lab", "down", "-c", cfg); err != nil {
		t.Fatalf("lab down: %v\n%s", err, out)
	}
	assertNoNamespaces(t, prefix)
	out, _ := exec.Command("pgrep", "-f", "lab serve --name rs1 ").Output()
	for _, pid := range strings.Fields(string(out)) {
		b, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		if strings.Contains(string(b), bin) {
			t.Errorf("lab serve %s still running after lab down", pid)
		}
	}
}

func TestIntegrationLabUpRejectsLayout(t *testing.T) {
	testenv.RequireRoot(t)
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("uvt%d-r-", os.Getpid()%100000)
	cfg := filepath.Join(t.TempDir(), "bad.toml")
	// A DR real off the clients' segment, and one interface for a NAT lab.
	bad := strings.Replace(labTOML(prefix, false), `interfaces = ["eth0", "eth1"]`, `interfaces = ["eth0"]`, 1)
	bad = strings.Replace(bad, `address = "198.18.1.12"`, `address = "198.18.7.12"`, 1)
	if err := os.WriteFile(cfg, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := uvsCmd(t, bin, "lab", "up", "-c", cfg)
	if err == nil {
		_, _ = uvsCmd(t, bin, "lab", "down", "-c", cfg)
		t.Fatalf("lab up accepted a bad layout:\n%s", out)
	}
	for _, want := range []string{"198.18.7.12 is not on the clients' segment", "director.interfaces has 1 names"} {
		if !strings.Contains(out, want) {
			t.Errorf("lab up output lacks %q:\n%s", want, out)
		}
	}
	assertNoNamespaces(t, prefix)
}

// TestIntegrationDemoInterrupt starts `uvs demo`, sends SIGINT once its lab
// exists and checks that nothing of it remains.
func TestIntegrationDemoInterrupt(t *testing.T) {
	testenv.RequireRoot(t)
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "demo")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("uvsdemo%d-", cmd.Process.Pid)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = bench.CleanupPrefix(prefix)
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ents, _ := os.ReadDir("/run/netns")
		up := 0
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) {
				up++
			}
		}
		if up >= 4 { // switch, client, director and a real server at least
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo lab never came up:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var waitErr error
	select {
	case waitErr = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("demo did not exit within 30s of SIGINT:\n%s", out.String())
	}
	// The interrupt is reported as such, once (not as the step it cut short), unless the
	// demo had finished.
	const want = "uvs: demo: interrupted: interrupt signal received\n"
	if got := out.String(); waitErr != nil && (strings.Count(got, "signal received") != 1 || !strings.Contains(got, want)) {
		t.Errorf("demo output after SIGINT (%v):\n%s", waitErr, got)
	}
	assertNoNamespaces(t, prefix)
}

// TestIntegrationBenchSmall runs `uvs bench` on a profile of a few seconds
// and checks results.json and report.svg.
func TestIntegrationBenchSmall(t *testing.T) {
	testenv.RequireRoot(t)
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("uvt%d-b-", os.Getpid()%100000)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bench.toml")
	src := fmt.Sprintf(`[director]
interfaces = ["eth0"]
workers = 1
control_socket = "/run/uvs/%ssock"

[conntrack]
max_connections = 65536

[lab]
prefix = %q

[bench]
duration = "200ms"
packet_sizes = [64, 1400]
flows = 1000
syn_flows = 10000
rate_steps = [50]
compare = ["kernel", "nftables", "floor-v2"]
workers = [1]
tx_modes = ["ring"]
cost_pps = 100000

[[service]]
vip = "198.18.1.100"
port = 80
scheduler = "rr"
  [[service.real]]
  address = "198.18.1.11"
  [[service.real]]
  address = "198.18.1.12"

[[service]]
vip = "198.18.1.100"
protocol = "udp"
port = 9000
scheduler = "rr"
  [[service.real]]
  address = "198.18.1.11"
  [[service.real]]
  address = "198.18.1.12"
`, prefix, prefix)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = bench.LabDown(prefix)
		assertNoNamespaces(t, prefix)
	})
	outDir := filepath.Join(dir, "out")
	start := time.Now()
	out, err := uvsCmd(t, bin, "bench", "-c", cfg, "--out", outDir)
	if err != nil {
		t.Fatalf("uvs bench: %v\n%s", err, out)
	}
	t.Logf("uvs bench took %v:\n%s", time.Since(start), out)
	b, err := os.ReadFile(filepath.Join(outDir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res bench.Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Meta.Kernel == "" || res.Meta.Cores == 0 || res.Meta.GoVersion == "" {
		t.Errorf("meta incomplete: %+v", res.Meta)
	}
	want := map[string]bool{}
	// bench.backends defaults to both: uvs-afxdp-w1 runs beside uvs-ring-w1.
	for _, c := range []string{"uvs-ring-w1", "uvs-afxdp-w1", "kernel", "nftables", "floor-v2"} {
		for _, test := range []string{"udp", "tcp", "syn", "connect", "latency", "latency-trickle", "overload-1x", "overload-2x", "overload-max"} {
			want[c+" "+test] = true
		}
	}
	for _, r := range res.Rows {
		delete(want, r.Candidate+" "+r.Test)
		if r.Test == "udp" && r.DeliveredPPS <= 0 {
			t.Errorf("%s udp %d: nothing delivered", r.Candidate, r.Size)
		}
	}
	if len(want) > 0 {
		t.Errorf("rows missing: %v", want)
	}
	// The cost step: uvs and the floor beside a busy loop, not the kernel baselines.
	for _, c := range []string{"uvs-ring-w1", "floor-v2"} {
		if r := res.Find(c, "udp-cost"); r == nil || r.DeliveredPPS <= 0 {
			t.Errorf("%s udp-cost row: %+v", c, r)
		}
	}
	if r := res.Find("kernel", "udp-cost"); r != nil {
		t.Errorf("kernel has a udp-cost row: %+v", r)
	}
	// Latency rows probe the real server in the same window.
	for _, test := range []string{"latency", "latency-trickle"} {
		if r := res.Find("kernel", test); r == nil || r.DirectProbes == 0 || r.DirectP50us <= 0 {
			t.Errorf("kernel %s: no direct probes in the window: %+v", test, r)
		}
	}
	if r := res.Find("uvs-ring-w1", "connect"); r == nil || r.ConnsPerSec <= 0 {
		t.Errorf("uvs connect row: %+v", r)
	}
	svg, err := os.ReadFile(filepath.Join(outDir, "report.svg"))
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		if _, err := dec.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("report.svg is not well-formed XML: %v", err)
			}
			break
		}
	}
	if !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("uvs-ring-w1")) {
		t.Error("report.svg lacks the chart")
	}
	if _, err := os.Stat(filepath.Join(bench.StateDir, prefix+".json")); err == nil {
		t.Error("bench left its lab up")
	}
}

// TestIntegrationDemo runs `uvs demo` to the end: every service answers,
// split by round robin, and nothing is left behind.
func TestIntegrationDemo(t *testing.T) {
	testenv.RequireRoot(t)
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "demo")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("uvs demo: %v\n%s", err, out.String())
	}
	t.Logf("demo output:\n%s", out.String())
	res := []string{
		`(?m)^DR   198\.18\.1\.100:80 +rr  rs1: (9|10|11)  rs2: (9|10|11)$`,
		`(?m)^DR   198\.18\.1\.100:9000/udp +rr  rs1: [1-4]  rs2: [1-4]$`,
		`(?m)^NAT  198\.18\.1\.101:80 +rr  rs3: (9|10|11)  rs4: (9|10|11)$`,
		`(?m)^NAT  198\.18\.1\.101:9000/udp +rr  rs3: [1-4]  rs4: [1-4]$`,
	}
	// The IPv6 services of the dual-stack lab, through the same real servers (curl-free: the
	// demo's own HTTP client, which dials [VIP]:80).
	res = append(res,
		`(?m)^DR   \[2001:2:0:1::100\]:80 +rr  rs1: (9|10|11)  rs2: (9|10|11)$`,
		`(?m)^NAT  \[2001:2:0:1::101\]:80 +rr  rs3: (9|10|11)  rs4: (9|10|11)$`)
	if bench.HasCommand(bin, "realserver") {
		res = append(res, `(?m)^TUN  198\.18\.1\.102:80 +rr  rs5: (9|10|11)  rs6: (9|10|11)$`,
			`(?m)^TUN  \[2001:2:0:1::102\]:80 +rr  rs5: (9|10|11)  rs6: (9|10|11)$`)
	}
	for _, re := range res {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("output does not match %s", re)
		}
	}
	assertNoNamespaces(t, fmt.Sprintf("uvsdemo%d-", cmd.Process.Pid))
}
