package migrate

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/uvs-project/uvs/config"
)

// svc and rs are what a round trip must preserve, written out by hand so
// that the expectation does not come from the code under test.
type svc struct {
	VIP       string
	Proto     string
	Port      uint16
	Ports     []uint16
	Sched     string
	Flags     []string
	Persist   time.Duration
	MaskBits  int
	OnePacket bool
	Check     *chk
	Reals     []rs
}

type rs struct {
	Addr         string
	Port         uint16
	Weight       int
	Forward      string
	Upper, Lower int
	Check        *chk
}

type chk struct {
	Type              string
	Interval, Timeout time.Duration
	Fall              int
	Path, Host        string
	Status            []int
	Port              int
	Command           []string
}

func summarizeCheck(c *config.Check) *chk {
	if c == nil {
		return nil
	}
	return &chk{Type: c.Type.String(), Interval: c.Interval, Timeout: c.Timeout, Fall: c.Fall, Path: c.Path,
		Host: c.Host, Status: c.ExpectStatus, Port: c.Port, Command: c.Command}
}

// summarize reduces a parsed Config to the fields compared.
func summarize(c *config.Config) []svc {
	var out []svc
	for _, s := range c.Services {
		v := svc{VIP: s.VIP.String(), Proto: s.Protocol.String(), Port: s.Port, Ports: s.Ports, Sched: s.Scheduler,
			Flags: s.SchedulerFlags, Persist: s.PersistenceTimeout, MaskBits: s.PersistenceBits, OnePacket: s.OnePacket,
			Check: summarizeCheck(s.Check)}
		for _, r := range s.Reals {
			v.Reals = append(v.Reals, rs{Addr: r.Address.String(), Port: r.Port, Weight: r.Weight, Forward: r.Forward.String(),
				Upper: r.UpperThreshold, Lower: r.LowerThreshold, Check: summarizeCheck(r.Check)})
		}
		out = append(out, v)
	}
	return out
}

// importFile runs the importer for the file's directory on it and parses
// the result with config.Parse.
func importFile(t *testing.T, path string, opt Options) (*Result, *config.Config) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var res *Result
	if filepath.Base(filepath.Dir(path)) == "ipvsadm" {
		res, err = Ipvsadm(path, data, opt)
	} else {
		res, err = Keepalived(path, data, opt)
	}
	if err != nil {
		t.Fatalf("import %s: %v", path, err)
	}
	c, err := config.Parse("out.toml", res.TOML)
	if err != nil {
		t.Fatalf("config.Parse rejects the output: %v\n%s", err, res.TOML)
	}
	return res, c
}

func TestRoundTripIpvsadmManPage(t *testing.T) {
	// EXAMPLE 1 of ipvsadm(8): five NAT reals behind 207.175.44.110:80, rr.
	_, c := importFile(t, "testdata/ipvsadm/manpage-example1.txt", Options{})
	want := []svc{{VIP: "207.175.44.110", Proto: "tcp", Port: 80, Sched: "rr", MaskBits: 32}}
	for i := 1; i <= 5; i++ {
		want[0].Reals = append(want[0].Reals, rs{Addr: "192.168.10." + string(rune('0'+i)), Port: 80, Weight: 1, Forward: "nat"})
	}
	if got := summarize(c); !reflect.DeepEqual(got, want) {
		t.Errorf("services:\n got %+v\nwant %+v", got, want)
	}
}

func TestRoundTripIpvsadmFwmark(t *testing.T) {
	// EXAMPLE 2 of ipvsadm(8): mark 1 covers 207.175.44.110 (http, https
	// by the iptables rule the operator knows).
	opt := Options{Fwmarks: map[uint32]Fwmark{1: {VIP: mustAddr("207.175.44.110"), Ports: []uint16{80, 443}}}}
	_, c := importFile(t, "testdata/ipvsadm/manpage-example2.txt", opt)
	want := []svc{{VIP: "207.175.44.110", Proto: "tcp", Ports: []uint16{80, 443}, Sched: "rr", MaskBits: 32}}
	for i := 1; i <= 5; i++ {
		want[0].Reals = append(want[0].Reals, rs{Addr: "192.168.10." + string(rune('0'+i)), Weight: 1, Forward: "nat"})
	}
	if got := summarize(c); !reflect.DeepEqual(got, want) {
		t.Errorf("services:\n got %+v\nwant %+v", got, want)
	}
	// Without --fwmark the service is a commented-out stub.
	res, c := importFile(t, "testdata/ipvsadm/manpage-example2.txt", Options{})
	if len(c.Services) != 0 {
		t.Errorf("stub became %d services", len(c.Services))
	}
	if !containsLine(res.TOML, "# [[service]]") || !containsLine(res.TOML, "# ports = [PORT, PORT]") {
		t.Errorf("no stub in\n%s", res.TOML)
	}
}

func TestRoundTripIpvsadmSave(t *testing.T) {
	_, c := importFile(t, "testdata/ipvsadm/save-n.txt", Options{})
	want := []svc{
		{VIP: "10.0.0.13", Proto: "tcp", Port: 80, Sched: "wrr", Persist: 20 * time.Second, MaskBits: 32, Reals: []rs{
			{Addr: "10.0.0.17", Port: 80, Weight: 1, Forward: "dr"},
			{Addr: "10.0.0.18", Port: 80, Weight: 1, Forward: "dr"},
		}},
		{VIP: "10.0.0.53", Proto: "udp", Port: 53, Sched: "sh", Flags: []string{"sh-fallback", "sh-port"}, MaskBits: 32, OnePacket: true, Reals: []rs{
			{Addr: "10.0.1.1", Port: 53, Weight: 5, Forward: "tun", Upper: 100, Lower: 50},
		}},
		{VIP: "10.0.0.14", Proto: "tcp", Port: 0, Sched: "mh", Flags: []string{"mh-port"}, Persist: 600 * time.Second, MaskBits: 24, Reals: []rs{
			{Addr: "10.0.2.1", Port: 8080, Weight: 0, Forward: "nat"},
		}},
	}
	if got := summarize(c); !reflect.DeepEqual(got, want) {
		t.Errorf("services:\n got %+v\nwant %+v", got, want)
	}
	if c.Timeouts != (config.Timeouts{TCP: config.DefaultTCPTimeout, TCPFin: config.DefaultTCPFinTimeout, UDP: config.DefaultUDPTimeout}) {
		t.Errorf("timeouts %+v, want the defaults", c.Timeouts)
	}
}

func TestRoundTripIpvsadmRestore(t *testing.T) {
	res, c := importFile(t, "testdata/ipvsadm/restore.txt", Options{})
	want := []svc{{VIP: "192.168.150.100", Proto: "tcp", Port: 80, Sched: "wlc", Persist: 300 * time.Second, MaskBits: 32, Reals: []rs{
		{Addr: "192.168.150.13", Port: 80, Weight: 4, Forward: "dr"},
	}}, {VIP: "2001:db8::80", Proto: "tcp", Port: 80, Sched: "rr", Persist: 300 * time.Second, MaskBits: 64, Reals: []rs{
		{Addr: "2001:db8::a0a0", Port: 80, Weight: 1, Forward: "nat"},
	}}}
	if got := summarize(c); !reflect.DeepEqual(got, want) {
		t.Errorf("services:\n got %+v\nwant %+v", got, want)
	}
	if c.Timeouts.TCP != 600*time.Second || c.Timeouts.TCPFin != 60*time.Second || c.Timeouts.UDP != 120*time.Second {
		t.Errorf("timeouts %+v, want 600s 60s 120s from --set", c.Timeouts)
	}
	if !containsLine(res.TOML, "persistence_netmask = 64") {
		t.Errorf("IPv6 prefix length not carried over:\n%s", res.TOML)
	}
}

func TestRoundTripKeepalived(t *testing.T) {
	res, c := importFile(t, "testdata/keepalived/two.conf", Options{})
	http := &chk{Type: "http", Interval: 6 * time.Second, Timeout: 3 * time.Second, Fall: 3, Path: "/healthz", Status: []int{200}}
	tcp := &chk{Type: "tcp", Interval: 10 * time.Second, Timeout: 10 * time.Second, Fall: config.DefaultCheckFall, Path: "/", Port: 443}
	want := []svc{
		{VIP: "10.0.0.80", Proto: "tcp", Port: 80, Sched: "wrr", MaskBits: 32, Check: http, Reals: []rs{
			{Addr: "192.168.0.1", Port: 8080, Weight: 3, Forward: "nat"},
			{Addr: "192.168.0.2", Port: 8080, Weight: 1, Forward: "nat"},
		}},
		{VIP: "10.0.0.81", Proto: "tcp", Port: 443, Sched: "rr", Persist: 9600 * time.Second, MaskBits: 24, Check: tcp, Reals: []rs{
			{Addr: "10.0.1.1", Port: 443, Weight: 1, Forward: "dr"},
			{Addr: "10.0.1.2", Port: 443, Weight: 2, Forward: "dr"},
		}},
	}
	if got := summarize(c); !reflect.DeepEqual(got, want) {
		t.Errorf("services:\n got %+v\nwant %+v", got, want)
	}
	for _, s := range []string{
		`testdata/keepalived/two.conf:27: sorry_server = "192.168.0.250:8080": uvs has no sorry_server key yet`,
		`testdata/keepalived/two.conf:23: on_failure = "remove": uvs has no on_failure key yet`,
		`testdata/keepalived/two.conf:38: delay_before_retry 3 in HTTP_GET: not carried over: uvs has no equivalent`,
		`testdata/keepalived/two.conf:12: authentication: auth_type PASS carried over for compatibility: a clear-text password is no security`,
	} {
		if !hasNoteOrSetting(res.TOML, s) {
			t.Errorf("output lacks %q:\n%s", s, res.TOML)
		}
	}
}

func TestRoundTripKeepalivedDefaultNAT(t *testing.T) {
	// No lb_kind: keepalived's default is NAT (ipvsadm's is DR).
	src := "virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n }\n}\n"
	res, err := Keepalived("k.conf", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("out.toml", res.TOML)
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Services[0].Reals[0].Forward; f != config.NAT {
		t.Errorf("forward %s, want nat", f)
	}
	// And ipvsadm's is DR.
	res, err = Ipvsadm("s", []byte("-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err = config.Parse("out.toml", res.TOML)
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Services[0].Reals[0].Forward; f != config.DR {
		t.Errorf("forward %s, want dr", f)
	}
	if s := c.Services[0].Scheduler; s != "wlc" {
		t.Errorf("scheduler %s, want wlc", s)
	}
}

func TestTestdataConverts(t *testing.T) {
	files, _ := filepath.Glob("testdata/ipvsadm/*")
	more, _ := filepath.Glob("testdata/keepalived/*")
	files = append(files, more...)
	for _, f := range files {
		if filepath.Base(f) == "names.txt" {
			continue // Host names are an error; see TestIpvsadmErrors.
		}
		t.Run(f, func(t *testing.T) { importFile(t, f, Options{}) })
	}
}
