package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestTopologyString(t *testing.T) {
	for _, tt := range []struct {
		t    Topology
		want string
	}{{TopologyInvalid, "Topology(0)"}, {TopologyDR, "dr"}, {TopologyNAT, "nat"}, {TopologyTUN, "tun"}, {9, "Topology(9)"}} {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestLabSpecDefaults(t *testing.T) {
	tests := []struct {
		name string
		spec LabSpec
		ok   bool
	}{
		{"defaults", LabSpec{Prefix: "uvt1-", Topology: TopologyDR}, true},
		{"max", LabSpec{Prefix: strings.Repeat("a", maxPrefix), Topology: TopologyTUN, Reals: MaxReals, Clients: MaxClients, MTU: 65535}, true},
		{"no topology", LabSpec{Prefix: "uvt1-"}, false},
		{"bad topology", LabSpec{Prefix: "uvt1-", Topology: 99}, false},
		{"ecmp", LabSpec{Prefix: "uvt1-", Topology: TopologyECMP, Directors: MaxDirectors}, true},
		{"ecmp too many directors", LabSpec{Prefix: "uvt1-", Topology: TopologyECMP, Directors: MaxDirectors + 1}, false},
		{"dr with directors", LabSpec{Prefix: "uvt1-", Topology: TopologyDR, Directors: 2}, false},
		{"no prefix", LabSpec{Topology: TopologyDR}, false},
		{"long prefix", LabSpec{Prefix: strings.Repeat("a", maxPrefix+1), Topology: TopologyDR}, false},
		{"slash in prefix", LabSpec{Prefix: "a/b", Topology: TopologyDR}, false},
		{"dot-dot prefix", LabSpec{Prefix: "..", Topology: TopologyDR}, false},
		{"space in prefix", LabSpec{Prefix: "a b", Topology: TopologyDR}, false},
		{"too many reals", LabSpec{Prefix: "p", Topology: TopologyDR, Reals: MaxReals + 1}, false},
		{"negative reals", LabSpec{Prefix: "p", Topology: TopologyDR, Reals: -1}, false},
		{"too many clients", LabSpec{Prefix: "p", Topology: TopologyDR, Clients: MaxClients + 1}, false},
		{"tiny mtu", LabSpec{Prefix: "p", Topology: TopologyDR, MTU: 67}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.spec.withDefaults()
			if (err == nil) != tt.ok {
				t.Fatalf("withDefaults() error = %v, want ok %v", err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrSpec) {
					t.Errorf("error %v is not ErrSpec", err)
				}
				return
			}
			if s.Reals == 0 || s.Clients == 0 || s.MTU == 0 {
				t.Errorf("defaults not filled: %+v", s)
			}
		})
	}
	s, _ := LabSpec{Prefix: "p", Topology: TopologyDR}.withDefaults()
	if s.Reals != 2 || s.Clients != 1 || s.MTU != 1500 {
		t.Errorf("defaults = %+v", s)
	}
}

// TestLayout checks the addressing rules of every topology at its largest.
func TestLayout(t *testing.T) {
	bench := netip.MustParsePrefix("198.18.0.0/15")
	for _, topo := range []Topology{TopologyDR, TopologyNAT, TopologyTUN} {
		t.Run(topo.String(), func(t *testing.T) {
			l, err := layout(LabSpec{Prefix: "uvt1234567-", Topology: topo, Reals: MaxReals, Clients: MaxClients})
			if err != nil {
				t.Fatal(err)
			}
			if !bench.Contains(l.VIP) || !l.Client.Ifaces[0].Prefix.Contains(l.VIP) {
				t.Errorf("VIP %s not on the clients' segment in 198.18.0.0/15", l.VIP)
			}
			if (l.Router != nil) != (topo == TopologyTUN) {
				t.Errorf("router = %v", l.Router)
			}
			addrs := map[netip.Addr]string{}
			names := map[string]bool{}
			for _, pn := range l.plan.nodes {
				if names[pn.name] {
					t.Errorf("duplicate node %s", pn.name)
				}
				names[pn.name] = true
				for _, pl := range pn.links {
					a := pl.prefix.Addr()
					if !bench.Contains(a) || a == l.VIP || a.As4()[3] == 0 || a.As4()[3] == 255 {
						t.Errorf("%s %s: bad address %s", pn.name, pl.dev, pl.prefix)
					}
					if other, dup := addrs[a]; dup {
						t.Errorf("%s and %s share %s", other, pn.name, a)
					}
					addrs[a] = pn.name
					if len(pl.peer) > 15 || len(pl.dev) > 15 {
						t.Errorf("%s: interface name %q longer than IFNAMSIZ-1", pn.name, pl.peer)
					}
					if seg := l.plan.segments[pl.segment].prefix; !seg.Contains(a) {
						t.Errorf("%s: %s not in its segment %s", pn.name, a, seg)
					}
				}
				for _, r := range pn.routes {
					if !onLink(pn, l.plan, r.via) {
						t.Errorf("%s: route via %s is not on-link", pn.name, r.via)
					}
				}
			}
			if len(l.Reals) != MaxReals || len(l.RealAddrs) != MaxReals || len(l.Clients) != MaxClients {
				t.Errorf("%d reals, %d clients", len(l.Reals), len(l.Clients))
			}
			if l.Reals[0].Name != "rs1" || l.Clients[1].Name != "client2" || l.Director.Name != "director" {
				t.Errorf("names: %s %s %s", l.Reals[0].Name, l.Clients[1].Name, l.Director.Name)
			}
		})
	}
	l, _ := layout(LabSpec{Prefix: "p-", Topology: TopologyNAT})
	if got := fmt.Sprint(l.VIP, l.Client.Addr, l.Director.Addr, l.RealAddrs, l.DirectorIfaces); got != "198.18.2.100 198.18.2.10 198.18.2.2 [198.18.3.11 198.18.3.12] [eth0 eth1]" {
		t.Errorf("NAT layout = %s", got)
	}
	if gw, _ := l.Director.AddrOn(segNATB); gw.String() != "198.18.3.1" || l.Reals[1].NS != "p-rs2" {
		t.Errorf("NAT gateway %s, ns %s", gw, l.Reals[1].NS)
	}
}

func onLink(pn planNode, p plan, a netip.Addr) bool {
	for _, pl := range pn.links {
		if p.segments[pl.segment].prefix.Contains(a) {
			return true
		}
	}
	return false
}

func TestConfig(t *testing.T) {
	l, err := layout(LabSpec{Prefix: "p-", Topology: TopologyNAT, Reals: 3})
	if err != nil {
		t.Fatal(err)
	}
	dir := `/tmp/odd "dir"\x`
	text := l.Config("nat", "wlc", 80, 8080, dir)
	var cfg struct {
		Director struct {
			Interfaces    []string
			Workers       int
			ControlSocket string `toml:"control_socket"`
		}
		Service []struct {
			Name, VIP, Protocol, Scheduler, Forward string
			Port                                    int
			Real                                    []struct {
				Address string
				Port    int
			}
		}
	}
	md, err := toml.Decode(text, &cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Errorf("unexpected keys %v", u)
	}
	if fmt.Sprint(cfg.Director.Interfaces) != "[eth0 eth1]" || cfg.Director.Workers != 2 || cfg.Director.ControlSocket != dir+"/uvs.sock" {
		t.Errorf("director = %+v", cfg.Director)
	}
	if len(cfg.Service) != 2 {
		t.Fatalf("%d services", len(cfg.Service))
	}
	for i, want := range []struct {
		proto          string
		port, realPort int
	}{{"tcp", 80, 8080}, {"udp", UDPPort, UDPPort}} {
		s := cfg.Service[i]
		if s.VIP != "198.18.2.100" || s.Protocol != want.proto || s.Port != want.port || s.Scheduler != "wlc" || s.Forward != "nat" || len(s.Real) != 3 {
			t.Errorf("service %d = %+v", i, s)
			continue
		}
		for j, r := range s.Real {
			if r.Address != l.RealAddrs[j].String() || r.Port != want.realPort {
				t.Errorf("service %d real %d = %+v", i, j, r)
			}
		}
	}
}

func TestExpectedSHA256(t *testing.T) {
	if got := ExpectedSHA256(0); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("ExpectedSHA256(0) = %s", got)
	}
	// Reading the stream in odd chunk sizes gives the same bytes.
	const n = 100_003
	b := make([]byte, n)
	r := Payload()
	for off := 0; off < n; {
		m, _ := r.Read(b[off:min(n, off+777)])
		off += m
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != ExpectedSHA256(n) {
		t.Errorf("chunked payload sha %s != ExpectedSHA256 %s", got, ExpectedSHA256(n))
	}
	if ExpectedSHA256(n) == ExpectedSHA256(n-1) {
		t.Error("length does not change the digest")
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(handler("rs7"))
	defer srv.Close()
	tests := []struct {
		name, method, path string
		status             int
		body               func(string) bool
	}{
		{"name", "GET", "/", 200, func(b string) bool { return b == "rs7\n" }},
		{"bytes", "GET", "/bytes?n=65537", 200, func(b string) bool {
			s := sha256.Sum256([]byte(b))
			return hex.EncodeToString(s[:]) == ExpectedSHA256(65537)
		}},
		{"zero bytes", "GET", "/bytes?n=0", 200, func(b string) bool { return b == "" }},
		{"bad n", "GET", "/bytes?n=x", 400, nil},
		{"negative n", "GET", "/bytes?n=-1", 400, nil},
		{"huge n", "GET", "/bytes?n=99999999999999", 400, nil},
		{"other path", "GET", "/nope", 404, nil},
		{"post", "POST", "/", 405, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.body != nil && !tt.body(string(b)) {
				t.Errorf("wrong body (%d bytes)", len(b))
			}
			if tt.status == 200 && resp.Header.Get("X-Real") != "rs7" {
				t.Errorf("X-Real = %q", resp.Header.Get("X-Real"))
			}
		})
	}
}

const nstatSample = `#kernel
IpInReceives                    12                 0.0
IpForwDatagrams                 0                  0.0
TcpOutRsts                      3                  0.0
`

func TestParseNstat(t *testing.T) {
	m, err := parseNstat([]byte(nstatSample))
	if err != nil || m["IpInReceives"] != 12 || m["TcpOutRsts"] != 3 || len(m) != 3 {
		t.Fatalf("parseNstat = %v, %v", m, err)
	}
	for _, bad := range []string{"", "#kernel\n", "IpInReceives\n", "IpInReceives x 0.0\n", "A -1\n"} {
		if _, err := parseNstat([]byte(bad)); err == nil {
			t.Errorf("parseNstat(%q) succeeded", bad)
		}
	}
}

// FuzzParseNstat checks that parseNstat never panics and that what it
// accepts prints back to text it parses to the same counters.
func FuzzParseNstat(f *testing.F) {
	f.Add([]byte(nstatSample))
	f.Add([]byte("A 18446744073709551615\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseNstat(b)
		if err != nil {
			return
		}
		var sb strings.Builder
		for k, v := range m {
			fmt.Fprintf(&sb, "%s %d 0.0\n", k, v)
		}
		m2, err := parseNstat([]byte(sb.String()))
		if err != nil || fmt.Sprint(m) != fmt.Sprint(m2) {
			t.Fatalf("round trip: %v -> %v, %v", m, m2, err)
		}
	})
}

func TestTally(t *testing.T) {
	var tl tally
	for _, n := range []string{"rs1", "rs1", "rs2", "stranger"} {
		tl.add(n, nil)
	}
	tl.add("", errors.New("timeout"))
	if got, want := tl.String([]string{"rs1", "rs2"}), `rs1: 2  rs2: 1  "stranger": 1  failed: 1`; got != want {
		t.Errorf("tally = %q, want %q", got, want)
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 4}
	fmt.Fprint(b, "abc")
	fmt.Fprint(b, "def")
	if b.String() != "cdef" {
		t.Errorf("tail = %q", b.String())
	}
}
