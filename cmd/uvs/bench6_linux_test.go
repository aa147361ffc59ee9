//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// TestIntegrationBenchIPv6 runs `uvs bench` with tests udp and udp6 on a dual-stack DR lab:
// both rows are measured for uvs, the IPv6 one at 66 bytes (the smallest IPv6 UDP frame) and
// saying so, with frames delivered to both real servers; the kernel baseline skips udp6.
func TestIntegrationBenchIPv6(t *testing.T) {
	testenv.RequireRoot(t)
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("uvt%d-b6-", os.Getpid()%100000)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bench6.toml")
	src := fmt.Sprintf(`[director]
interfaces = ["eth0"]
workers = 1
control_socket = "/run/uvs/%ssock"

[lab]
prefix = %q

[bench]
duration = "200ms"
packet_sizes = [64]
flows = 1000
rate_steps = [50]
tests = ["udp", "udp6"]
compare = ["kernel"]
workers = [1]
tx_modes = ["ring"]
backends = ["afpacket"]

[[service]]
vip = "198.18.1.100"
protocol = "udp"
port = 9000
scheduler = "rr"
  [[service.real]]
  address = "198.18.1.11"
  [[service.real]]
  address = "198.18.1.12"

[[service]]
vip = "2001:2:0:1::100"
protocol = "udp"
port = 9000
scheduler = "rr"
  [[service.real]]
  address = "2001:2:0:1::11"
  [[service.real]]
  address = "2001:2:0:1::12"
`, prefix, prefix)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = bench.LabDown(prefix)
		assertNoNamespaces(t, prefix)
	})
	outDir := filepath.Join(dir, "out")
	out, err := uvsCmd(t, bin, "bench", "-c", cfg, "--out", outDir)
	if err != nil {
		t.Fatalf("uvs bench: %v\n%s", err, out)
	}
	t.Logf("uvs bench:\n%s", out)
	b, err := os.ReadFile(filepath.Join(outDir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res bench.Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Profile.UDP6Service != "[2001:2:0:1::100]:9000/udp" {
		t.Errorf("profile udp6_service %q", res.Profile.UDP6Service)
	}
	u4, u6 := res.Find("uvs-ring-w1", "udp"), res.Find("uvs-ring-w1", "udp6")
	if u4 == nil || u4.Size != 64 || u4.DeliveredPPS <= 0 {
		t.Errorf("uvs udp row: %+v", u4)
	}
	if u6 == nil || u6.Size != bench.MinFrameUDP6 || u6.DeliveredPPS <= 0 || !strings.Contains(u6.Note, "66 bytes") {
		t.Fatalf("uvs udp6 row: %+v", u6)
	}
	if u6.PerReal["rs1"] == 0 || u6.PerReal["rs2"] == 0 {
		t.Errorf("udp6 frames reached %v, want both real servers", u6.PerReal)
	}
	if k := res.Find("kernel", "udp6"); k == nil || !strings.HasPrefix(k.Note, "skipped") {
		t.Errorf("kernel udp6 row: %+v", k)
	}
}
