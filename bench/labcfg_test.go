package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/config"
)

const labHead = "[director]\ninterfaces = [\"eth0\", \"eth1\"]\n[lab]\nprefix = \"t-\"\n"

func svcTOML(vip, proto string, port int, fwd string, reals ...string) string {
	var b strings.Builder
	b.WriteString("[[service]]\nvip = \"" + vip + "\"\nprotocol = \"" + proto + "\"\nport = " + strconv.Itoa(port) + "\nforward = \"" + fwd + "\"\n")
	for _, r := range reals {
		b.WriteString("[[service.real]]\naddress = \"" + r + "\"\n")
	}
	return b.String()
}

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	c, err := config.Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, src)
	}
	return c
}

func TestLayoutConfig(t *testing.T) {
	src := labHead +
		svcTOML("198.18.1.100", "tcp", 80, "dr", "198.18.1.11", "198.18.1.12") +
		svcTOML("198.18.1.100", "udp", 9000, "dr", "198.18.1.11") +
		svcTOML("198.18.1.101", "tcp", 80, "nat", "198.18.3.11") +
		svcTOML("198.18.9.5", "tcp", 443, "tun", "198.18.5.11")
	lay, err := LayoutConfig(parse(t, src))
	if err != nil {
		t.Fatal(err)
	}
	l := lay.Lab
	got := map[string]string{}
	for _, n := range l.Nodes() {
		var s []string
		for _, i := range n.Ifaces {
			s = append(s, i.Name+" "+i.Prefix.String())
		}
		got[n.Name] = strings.Join(s, ", ")
	}
	want := map[string]string{
		"client":   "eth0 198.18.1.10/24",
		"director": "eth0 198.18.1.2/24, eth1 198.18.3.1/24",
		"router":   "eth0 198.18.1.1/24, eth1 198.18.5.1/24",
		"rs1":      "eth0 198.18.1.11/24",
		"rs2":      "eth0 198.18.1.12/24",
		"rs3":      "eth0 198.18.3.11/24",
		"rs4":      "eth0 198.18.5.11/24",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("nodes %v, want %v", got, want)
	}
	rs1 := lay.Reals[0]
	if rs1.Forward != config.DR || len(rs1.TCPPorts) != 1 || rs1.TCPPorts[0] != 80 || len(rs1.UDPPorts) != 1 || rs1.UDPPorts[0] != 9000 {
		t.Errorf("rs1 = %+v", rs1)
	}
	// The off-segment VIP is routed via the director from the clients.
	var found bool
	for _, pn := range l.plan.nodes {
		if pn.name == "client" {
			for _, r := range pn.routes {
				if r.dst == netip.MustParsePrefix("198.18.9.5/32") && r.via == netip.MustParseAddr("198.18.1.2") {
					found = true
				}
			}
		}
		if pn.name == "rs3" && (len(pn.routes) != 1 || pn.routes[0].via != netip.MustParseAddr("198.18.3.1")) {
			t.Errorf("nat real routes %+v", pn.routes)
		}
	}
	if !found {
		t.Error("client has no route to the off-segment VIP via the director")
	}
}

func TestLayoutConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"dr off segment", labHead + svcTOML("198.18.1.100", "tcp", 80, "dr", "198.18.1.11", "198.18.2.11") + svcTOML("198.18.1.101", "tcp", 80, "nat", "198.18.3.11"),
			[]string{"dr real server 198.18.2.11 is not on the clients' segment 198.18.1.0/24"}},
		{"nat on clients' segment", labHead + svcTOML("198.18.1.100", "tcp", 80, "dr", "198.18.1.11") + svcTOML("198.18.1.101", "tcp", 80, "nat", "198.18.1.12"),
			[]string{"nat real server 198.18.1.12 is on the clients' segment"}},
		{"two nat segments", labHead + svcTOML("198.18.1.101", "tcp", 80, "nat", "198.18.3.11", "198.18.4.11"),
			[]string{"in different /24s; the lab gives the director one nat segment"}},
		{"interfaces", "[director]\ninterfaces = [\"eth0\"]\n" + svcTOML("198.18.1.101", "tcp", 80, "nat", "198.18.3.11"),
			[]string{"director.interfaces has 1 names; the lab gives the director 2 links"}},
		{"method per real", labHead + svcTOML("198.18.1.100", "tcp", 80, "dr", "198.18.1.11") + svcTOML("198.18.1.100", "tcp", 81, "tun", "198.18.1.11") + svcTOML("198.18.1.101", "tcp", 80, "nat", "198.18.3.11"),
			[]string{"forwarded by tun here and by dr in another service"}},
		{"vip is real", labHead + svcTOML("198.18.1.100", "tcp", 80, "dr", "198.18.1.11") + svcTOML("198.18.1.11", "tcp", 80, "nat", "198.18.3.11"),
			[]string{"198.18.1.11 is both a VIP and a real server"}},
		{"tun without router", labHead + "router = false\n" + svcTOML("198.18.1.100", "tcp", 80, "tun", "198.18.5.11") + svcTOML("198.18.1.101", "tcp", 80, "nat", "198.18.3.11"),
			[]string{"need the router (lab.router = true)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LayoutConfig(parse(t, tt.src))
			if !errors.Is(err, ErrLayout) {
				t.Fatalf("err = %v, want ErrLayout", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestWithDirectorKeys(t *testing.T) {
	src := "# c\n[director]\ninterfaces = [\"eth0\"]\nworkers = 4\ntx_mode = \"ring\"\n[lab]\nworkers = 9\n"
	got, err := withDirectorKeys(src, 2, "mmsg", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse("t.toml", []byte(got)); err == nil {
		t.Fatalf("[lab] workers should still be there and rejected:\n%s", got)
	}
	got, _ = withDirectorKeys(strings.Replace(src, "[lab]\nworkers = 9\n", "", 1), 2, "mmsg", "")
	c, err := config.Parse("t.toml", []byte(got))
	if err != nil {
		t.Fatal(err)
	}
	if c.Director.Workers != 2 || c.Director.TXMode != config.TXMMsg {
		t.Errorf("director = %+v", c.Director)
	}
	got, _ = withDirectorKeys(strings.Replace(src, "[lab]\nworkers = 9\n", "rx_ring = \"v3\"\n", 1), 1, "ring", "v2")
	if c, err = config.Parse("t.toml", []byte(got)); err != nil {
		t.Fatal(err)
	}
	if c.Director.RXRing != config.RXRingV2 {
		t.Errorf("rx_ring = %v, want v2:\n%s", c.Director.RXRing, got)
	}
	if _, err := withDirectorKeys("director = { interfaces = [\"eth0\"] }\n", 1, "ring", ""); err == nil {
		t.Error("inline [director] accepted")
	}
}

func TestParseNetDev(t *testing.T) {
	in := "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		"    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n" +
		"  eth0: 1000      10    0    2    0     0          0         0     2000      20    0    3    0     0       0          0\n"
	m, err := parseNetDev([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := m["eth0"]; got != (NetDev{RxBytes: 1000, RxPackets: 10, RxDropped: 2, TxBytes: 2000, TxPackets: 20, TxDropped: 3}) {
		t.Errorf("eth0 = %+v", got)
	}
	if _, err := parseNetDev([]byte("garbage")); err == nil {
		t.Error("garbage accepted")
	}
}

func FuzzParseNetDev(f *testing.F) {
	f.Add([]byte("  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseNetDev(b) // must not panic
	})
}

func TestResultsSVGAndTable(t *testing.T) {
	r := &Results{Profile: Profile{PacketSizes: []int{64}, MaxLossPercent: 0.1},
		Candidates: []CandidateInfo{{Name: "uvs-ring-w1"}, {Name: "kernel & <x>"}},
		Rows: []Row{
			{Candidate: "uvs-ring-w1", Test: "udp", Size: 64, DeliveredPPS: 5e5, NsPerPkt: 900, PerReal: map[string]uint64{"rs1": 1, "rs2": 1}},
			{Candidate: "kernel & <x>", Test: "udp", Size: 64, DeliveredPPS: 6e5, NsPerPkt: 800},
			{Candidate: "uvs-ring-w1", Test: "latency", Probes: 10, P50us: 30, P99us: 90},
		}}
	svg := r.SVG()
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := dec.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed: %v\n%s", err, svg)
			}
			break
		}
	}
	var tab bytes.Buffer
	r.WriteTable(&tab)
	for _, w := range []string{"uvs-ring-w1", "0.500", "rs1 50% rs2 50%", "rtt p50 30us p99 90us"} {
		if !strings.Contains(tab.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, tab.String())
		}
	}
}

func TestLeastDisturbed(t *testing.T) {
	r1 := []Row{{Candidate: "a", Test: "udp", Size: 64, NsPerPkt: 900}, {Candidate: "a", Test: "connect", ConnsPerSec: 10},
		{Candidate: "a", Test: "latency", Probes: 5, P50us: 40}}
	r2 := []Row{{Candidate: "a", Test: "udp", Size: 64, NsPerPkt: 700}, {Candidate: "a", Test: "connect", ConnsPerSec: 5},
		{Candidate: "a", Test: "latency", Probes: 5, P50us: 30}}
	got := leastDisturbed([][]Row{r1, r2})
	if got[0].NsPerPkt != 700 || got[1].ConnsPerSec != 10 || got[2].P50us != 30 {
		t.Errorf("merged = %+v", got)
	}
	// With the real server probed in the same window, the quietest window wins,
	// not the lowest latency through the candidate.
	r1 = []Row{{Candidate: "a", Test: "latency-trickle", Probes: 5, P50us: 90, DirectProbes: 5, DirectP99us: 300}}
	r2 = []Row{{Candidate: "a", Test: "latency-trickle", Probes: 5, P50us: 60, DirectProbes: 5, DirectP99us: 5000}}
	if got := leastDisturbed([][]Row{r1, r2}); got[0].P50us != 90 {
		t.Errorf("latency-trickle merged = %+v, want the round with direct p99 300us", got[0])
	}
}

func TestBottleneck(t *testing.T) {
	tests := []struct {
		name     string
		pinned   bool
		dir, gen float64
		want     string
	}{
		{"director", true, 0.94, 0.89, "director"},
		{"generator", true, 0.30, 0.87, "generator"},
		{"neither", true, 0.40, 0.70, "neither"},
		{"unpinned", false, 1, 1, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bottleneck(tt.pinned, tt.dir, tt.gen); got != tt.want {
				t.Errorf("bottleneck = %q, want %q", got, tt.want)
			}
		})
	}
}
