package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// writeScript writes an executable shell script standing in for the uvs
// binary, which another package provides.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "uvs")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIntegrationDemoDirectorFails(t *testing.T) {
	RequireRoot(t)
	t.Parallel()
	prefix := testPrefix(t, "df")
	// The fake checks its arguments and that it runs in the director's
	// namespace with the config it was given, then fails as a director
	// with a bad config would.
	uvs := writeScript(t, `
[ "$1 $2" = "run --config" ] || { echo "bad args: $*" >&2; exit 2; }
grep -q '^interfaces = \["eth0"' "$3" || { echo "bad config" >&2; exit 2; }
ip -br link show eth0 >/dev/null || exit 2
echo "uvs: not implemented yet" >&2
exit 1
`)
	var out bytes.Buffer
	err := runDemo(t.Context(), demoConfig{uvs: uvs, out: &out, prefix: prefix, readyTimeout: 10 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "director exited") || !strings.Contains(err.Error(), "not implemented yet") {
		t.Fatalf("runDemo = %v, want the director's exit and output", err)
	}
	assertNoNamespaces(t, prefix)
}

func TestIntegrationDemoCancel(t *testing.T) {
	RequireRoot(t)
	t.Parallel()
	prefix := testPrefix(t, "dc")
	// A director that never serves; Ctrl-C arrives while the demo waits.
	uvs := writeScript(t, "exec sleep 60\n")
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	err := runDemo(ctx, demoConfig{uvs: uvs, out: new(bytes.Buffer), prefix: prefix, readyTimeout: time.Minute})
	if err == nil {
		t.Fatal("runDemo succeeded after cancel")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("runDemo took %v to stop after cancel", d)
	}
	assertNoNamespaces(t, prefix)
}

// TestIntegrationDemoKernelDirector runs the whole demo with a stand-in
// director made of the kernel's NAT (nftables DNAT to the reals by round
// robin, plus masquerade, with the VIP on eth0), so that the traffic and
// report parts are tested before the real director exists.
func TestIntegrationDemoKernelDirector(t *testing.T) {
	RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("no nft")
	}
	t.Parallel()
	prefix := testPrefix(t, "dk")
	uvs := writeScript(t, `
set -e
if ip link show eth1 >/dev/null 2>&1; then
	vip=198.18.2.100 rs1=198.18.3.11 rs2=198.18.3.12
else
	vip=198.18.1.100 rs1=198.18.1.11 rs2=198.18.1.12
fi
ip addr add $vip/32 dev eth0
echo 1 > /proc/sys/net/ipv4/ip_forward
nft -f - <<END
table ip fake {
	chain pre { type nat hook prerouting priority dstnat; ip daddr $vip dnat to numgen inc mod 2 map { 0 : $rs1, 1 : $rs2 }; }
	chain post { type nat hook postrouting priority srcnat; ip daddr { $rs1, $rs2 } masquerade; }
}
END
trap 'exit 0' TERM
while :; do sleep 1; done
`)
	var out bytes.Buffer
	if err := runDemo(t.Context(), demoConfig{uvs: uvs, out: &out, prefix: prefix, readyTimeout: 10 * time.Second}); err != nil {
		t.Fatalf("runDemo: %v\n%s", err, out.String())
	}
	t.Logf("demo output:\n%s", out.String())
	// The probe request that found the director ready also took a turn, so
	// the split is 10/10 or 11/9 and sums to the number sent.
	for _, re := range []string{
		`(?m)^DR   198\.18\.1\.100:80 +rr  rs1: (9|10|11)  rs2: (9|10|11)$`,
		`(?m)^DR   198\.18\.1\.100:9000/udp +rr  rs1: [1-4]  rs2: [1-4]$`,
		`(?m)^NAT  198\.18\.2\.100:80 +rr  rs1: (9|10|11)  rs2: (9|10|11)$`,
		`(?m)^NAT  198\.18\.2\.100:9000/udp +rr  rs1: [1-4]  rs2: [1-4]$`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("output does not match %s", re)
		}
	}
	assertNoNamespaces(t, prefix)
}
