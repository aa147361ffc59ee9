//go:build linux

package main

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// The IPv6 end-to-end tests (issue 18) run in dual-stack labs (bench.LabSpec.IPv6): every
// node has its IPv4 address and its twin in 2001:2::/48 (2001:2:0:S::H for 198.18.S.H),
// added with nodad, and the director runs an IPv6 service beside each IPv4 one. A real curl
// (curl -6 -g 'http://[VIP6]:80/') goes through the IPv6 VIP; the IPv4 VIP keeps working in
// the same run. They run once per backend (the XDP program and the tcx shield both take
// IPv6).

// ipv6Backends runs f once per backend that forwards IPv6: every backend.
func ipv6Backends(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	eachBackend(t, f)
}

// startLab6 builds a dual-stack lab for method ("dr" or "nat"), starts its servers and a
// director with rr for ConfigDual's four services, and waits until both VIPs answer. The
// labRun it returns targets the IPv6 VIP; its v4 method gives the IPv4 one.
func startLab6(t *testing.T, topo bench.Topology, method string, realPort int, txOff bool) *labRun {
	t.Helper()
	lab := newLab(t, bench.LabSpec{Topology: topo, DirectorTxOff: txOff, IPv6: true})
	if err := lab.PrepareReals(method); err != nil {
		t.Fatal(err)
	}
	startServers(t, lab, realPort, bench.UDPPort)
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "uvs.toml")
	writeFile(t, cfgPath, lab.ConfigDual(method, "rr", 80, realPort, tmp))
	r := newRun(t, lab)
	r.vip = lab.VIP6
	r.runDirector(cfgPath)
	// afpacket needs a shield (auto: the tcx program, which covers IPv6); afxdp none.
	if testBackend(t) == "afpacket" && !waitLog(r, "shield installed") {
		t.Fatalf("the director does not say that a shield runs:\n%s", r.stderr.String())
	}
	r.v4().waitVIP()
	return r
}

// v4 returns a copy of r that targets the lab's IPv4 VIP.
func (r *labRun) v4() *labRun {
	c := *r
	c.vip = r.lab.VIP
	return &c
}

// checkIPv6Run is the body shared by the DR, NAT and TUN tests: 100 curls through the IPv6
// VIP spread evenly by rr, a 10 MB download with its checksum, UDP echo from the VIP, the
// IPv4 VIP beside it, and a director kernel that neither forwarded nor answered anything.
func checkIPv6Run(t *testing.T, r *labRun, what string) {
	t.Helper()
	checkEven(t, "100 curl -6 through the "+what+" IPv6 VIP", r.distribution(100), 100)
	r.download(10_000_000)
	checkEven(t, "UDP echo through the "+what+" IPv6 VIP", r.udpEcho(10), 10)
	checkEven(t, "curls through the "+what+" IPv4 VIP beside it", r.v4().distribution(10), 10)
	r.kernelQuiet()
}

func TestIntegrationIPv6DR(t *testing.T) {
	testenv.RequireRoot(t)
	ipv6Backends(t, func(t *testing.T) {
		for _, txOff := range []bool{false, true} {
			t.Run(fmt.Sprintf("txoff=%v", txOff), func(t *testing.T) {
				r := startLab6(t, bench.TopologyDR, "dr", 80, txOff)
				checkIPv6Run(t, r, "DR")
				r.stopAndCheckClean()
				t.Logf("counters %v", r.stoppedCounters())
			})
		}
	})
}

func TestIntegrationIPv6NAT(t *testing.T) {
	testenv.RequireRoot(t)
	ipv6Backends(t, func(t *testing.T) {
		for _, txOff := range []bool{false, true} {
			t.Run(fmt.Sprintf("txoff=%v", txOff), func(t *testing.T) {
				r := startLab6(t, bench.TopologyNAT, "nat", 8080, txOff)
				checkIPv6Run(t, r, "NAT")
				r.stopAndCheckClean()
				c := r.stoppedCounters()
				if c["nat_replies"] == 0 {
					t.Errorf("no NAT replies counted: %v", c)
				}
				if c["drop_truncated_frame"] != 0 || c["drop_scratch_full"] != 0 {
					t.Errorf("frames lost to the ring: %v", c)
				}
				t.Logf("counters %v", c)
			})
		}
	})
}

// startTUNLab6 builds a dual-stack TUN lab whose real servers run `uvs realserver --method
// tun --decap user` for both VIPs (this kernel has neither ip6_tunnel nor sit: 6in6, 6in4
// and 4in6 are decapsulated in user space), and starts a director with the config that
// configText returns for the lab.
func startTUNLab6(t *testing.T, txOff bool, configText func(l *bench.Lab, dir string) string) *labRun {
	t.Helper()
	lab := newLab(t, bench.LabSpec{Topology: bench.TopologyTUN, DirectorTxOff: txOff, IPv6: true})
	var procs []*realserverProc
	for _, n := range lab.Reals {
		procs = append(procs, startRealserverVIPs(t, n, lab.VIP.String()+","+lab.VIP6.String()))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range procs {
				t.Logf("realserver %s:\n%s", p.node.Name, p.out.String())
			}
		}
	})
	startServers(t, lab, 80, bench.UDPPort)
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "uvs.toml")
	writeFile(t, cfgPath, configText(lab, tmp))
	r := newRun(t, lab)
	r.vip = lab.VIP6
	r.runDirector(cfgPath)
	r.v4().waitVIP()
	return r
}

// TestIntegrationIPv6TUN tunnels IPv6 in IPv6 (RFC 2473) to real servers behind a router;
// their replies go to the client through the router, never through the director.
func TestIntegrationIPv6TUN(t *testing.T) {
	testenv.RequireRoot(t)
	ipv6Backends(t, func(t *testing.T) {
		for _, txOff := range []bool{false, true} {
			t.Run(fmt.Sprintf("txoff=%v", txOff), func(t *testing.T) {
				r := startTUNLab6(t, txOff, func(l *bench.Lab, dir string) string {
					return l.ConfigDual("tun", "rr", 80, 80, dir)
				})
				rx0 := counter(t, r.lab.Director, "eth0", "rx_bytes")
				checkIPv6Run(t, r, "TUN")
				if d := counter(t, r.lab.Director, "eth0", "rx_bytes") - rx0; d > 3_000_000 {
					t.Errorf("director received %d bytes during a 10 MB download: replies went through it", d)
				}
				r.stopAndCheckClean()
				if c := r.stoppedCounters(); c["nat_replies"] != 0 || c["forwarded"] < 100 {
					t.Errorf("director counters %v: want forwarded requests and no replies", c)
				} else {
					t.Logf("counters %v", c)
				}
			})
		}
	})
}

// mixedConfig is a TUN lab's configuration with the families crossed, as IPVS allows only
// through a tunnel: the IPv4 VIP's real servers are their IPv6 addresses (4in6) and the IPv6
// VIP's their IPv4 ones (6in4), TCP and UDP each.
func mixedConfig(l *bench.Lab, dir string) string {
	head, _, _ := strings.Cut(l.Config("tun", "rr", 80, 80, dir), "\n[[service]]")
	var b strings.Builder
	b.WriteString(head + "\n")
	bench.AppendService(&b, "4in6-tcp", l.VIP, "tcp", 80, "rr", "tun", l.RealAddrs6, 80)
	bench.AppendService(&b, "4in6-udp", l.VIP, "udp", bench.UDPPort, "rr", "tun", l.RealAddrs6, bench.UDPPort)
	bench.AppendService(&b, "6in4-tcp", l.VIP6, "tcp", 80, "rr", "tun", l.RealAddrs, 80)
	bench.AppendService(&b, "6in4-udp", l.VIP6, "udp", bench.UDPPort, "rr", "tun", l.RealAddrs, bench.UDPPort)
	return b.String()
}

// TestIntegrationIPv6TUNMixed crosses the families through the tunnel: IPv4 requests in
// IPv6 (4in6) and IPv6 requests in IPv4 (6in4), both decapsulated by `uvs realserver`.
func TestIntegrationIPv6TUNMixed(t *testing.T) {
	testenv.RequireRoot(t)
	ipv6Backends(t, func(t *testing.T) {
		for _, txOff := range []bool{false, true} {
			t.Run(fmt.Sprintf("txoff=%v", txOff), func(t *testing.T) {
				r := startTUNLab6(t, txOff, mixedConfig)
				for _, rr := range []*labRun{r, r.v4()} {
					what := map[bool]string{true: "6in4", false: "4in6"}[rr.vip.Is6()]
					checkEven(t, "100 curls through "+what, rr.distribution(100), 100)
					rr.download(10_000_000)
					checkEven(t, "UDP echo through "+what, rr.udpEcho(10), 10)
				}
				r.kernelQuiet()
				r.stopAndCheckClean()
				if c := r.stoppedCounters(); c["forwarded"] < 200 {
					t.Errorf("director counters %v: want 200 forwarded requests at least", c)
				} else {
					t.Logf("counters %v", c)
				}
			})
		}
	})
}

// TestIntegrationIPv6LabAddresses checks the dual-stack lab itself, with no director: every
// node reaches its segment's neighbours over IPv6 at once (nodad: nothing is tentative), and
// the real servers hold VIP6 on lo without advertising it.
func TestIntegrationIPv6LabAddresses(t *testing.T) {
	testenv.RequireRoot(t)
	lab := newLab(t, bench.LabSpec{Topology: bench.TopologyDR, IPv6: true})
	if err := lab.PrepareReals("dr"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range lab.Nodes() {
		out, err := n.Command(ctx, "ip", "-6", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v %s", n.Name, err, out)
		}
		if !strings.Contains(string(out), n.Addr6.String()+"/64") || strings.Contains(string(out), "tentative") {
			t.Errorf("%s eth0: %s", n.Name, out)
		}
	}
	startServers(t, lab, 80, bench.UDPPort)
	for i, a := range lab.RealAddrs6 {
		url := "http://" + netip.AddrPortFrom(a, 80).String() + "/"
		out, err := lab.Client.Command(ctx, "curl", "-6", "-g", "-sS", "--fail", "-m", "10", url).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != lab.Reals[i].Name {
			t.Errorf("curl %s: %v\n%s", url, err, out)
		}
	}
	out, _ := lab.Reals[0].Command(ctx, "ip", "-6", "-o", "addr", "show", "dev", "lo").CombinedOutput()
	if !strings.Contains(string(out), lab.VIP6.String()+"/128") {
		t.Errorf("rs1 lo: %s", out)
	}
	if lab.VIP6 != netip.MustParseAddr("2001:2:0:1::100") {
		t.Errorf("VIP6 %s", lab.VIP6)
	}
}
