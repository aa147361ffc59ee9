//go:build linux

package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// TestIntegrationIPv6ListTraceMetrics reads a running dual-stack DR director after curl -6
// went through it: `uvs list` in ipvsadm's IPv6 layout, `--conns` with [addr]:port, `--json`,
// `uvs list -t [VIP]:80`, `uvs trace` of an IPv6 flow, and the Prometheus series with
// node_exporter's labels (a plain IPv6 address, as its ipvs collector reads /proc/net/ip_vs).
func TestIntegrationIPv6ListTraceMetrics(t *testing.T) {
	testenv.RequireRoot(t)
	ipv6Backends(t, testIPv6ListTraceMetrics)
}

func testIPv6ListTraceMetrics(t *testing.T) {
	lab := newLab(t, bench.LabSpec{Topology: bench.TopologyDR, IPv6: true})
	if err := lab.PrepareReals("dr"); err != nil {
		t.Fatal(err)
	}
	startServers(t, lab, 80, bench.UDPPort)
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "uvs.toml")
	text := lab.ConfigDual("dr", "rr", 80, 80, tmp)
	text = strings.Replace(text, "[director]\n", "[director]\nmetrics_listen = \"127.0.0.1:9750\"\n", 1)
	writeFile(t, cfgPath, text)
	r := newRun(t, lab)
	r.vip = lab.VIP6
	r.runDirector(cfgPath)
	checkEven(t, "curl -6", r.distribution(10), 10)

	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(tmp, "uvs.sock")
	uvs := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append(args, "--socket", socket)...).CombinedOutput()
		if err != nil {
			t.Fatalf("uvs %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	list := uvs("list", "-n")
	for _, want := range []string{
		"\nTCP  [2001:2:0:1::100]:80 rr\n",
		"\n  -> [2001:2:0:1::11]:80          Route   1      ",
		"\n  -> [2001:2:0:1::12]:80          Route   1      ",
		"\nUDP  [2001:2:0:1::100]:9000 rr\n",
		"\nTCP  198.18.1.100:80 rr\n",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("uvs list lacks %q:\n%s", want, list)
		}
	}
	if one := uvs("list", "-t", "[2001:2:0:1::100]:80"); !strings.HasPrefix(one, "Prot LocalAddress:Port") || strings.Contains(one, "198.18.1.100") || !strings.Contains(one, "[2001:2:0:1::11]:80") {
		t.Errorf("uvs list -t [VIP]:80:\n%s", one)
	}
	conns := uvs("list", "--conns")
	if !strings.Contains(conns, "[2001:2:0:1::10]:") || !strings.Contains(conns, "[2001:2:0:1::100]:80") {
		t.Errorf("uvs list --conns has no IPv6 connection:\n%s", conns)
	}
	var js struct {
		Services []struct {
			VIP   string `json:"vip"`
			Port  int    `json:"port"`
			Reals []struct {
				Address string `json:"address"`
			} `json:"reals"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(uvs("list", "--json")), &js); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range js.Services {
		if s.VIP == "2001:2:0:1::100" && s.Port == 80 && len(s.Reals) == 2 && s.Reals[0].Address == "2001:2:0:1::11" {
			found = true
		}
	}
	if !found {
		t.Errorf("uvs list --json has no IPv6 service with plain addresses: %+v", js.Services)
	}
	trace := uvs("trace", "--client", "[2001:2:0:1::10]:40000", "-t", "[2001:2:0:1::100]:80")
	if !strings.Contains(trace, "2001:2:0:1::11") && !strings.Contains(trace, "2001:2:0:1::12") {
		t.Errorf("uvs trace of an IPv6 flow names no IPv6 real:\n%s", trace)
	}
	t.Logf("uvs trace:\n%s", trace)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	metrics, err := lab.Director.Command(ctx, "curl", "-sS", "--fail", "http://127.0.0.1:9750/metrics").Output()
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	want := `uvs_backend_weight{local_address="2001:2:0:1::100",local_port="80",proto="TCP",remote_address="2001:2:0:1::11",remote_port="80"} 1`
	if !strings.Contains(string(metrics), want) {
		var lines []string
		for _, l := range strings.Split(string(metrics), "\n") {
			if strings.HasPrefix(l, "uvs_backend_weight") {
				lines = append(lines, l)
			}
		}
		t.Errorf("metrics lack %s:\n%s", want, strings.Join(lines, "\n"))
	}
	r.stopAndCheckClean()
}
