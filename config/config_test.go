package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// head is a minimal valid [director]; it takes lines 1 and 2.
const head = "[director]\ninterfaces = [\"eth0\"]\n"

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// problems returns the lines of Parse's error, or nil.
func problems(t *testing.T, src string) []string {
	t.Helper()
	_, err := Parse("t.toml", []byte(src))
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse error %T is not *Error: %v", err, err)
	}
	return strings.Split(e.Error(), "\n")
}

func TestLoadInterfaceExample(t *testing.T) {
	c, err := Load("testdata/interface.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Source: "testdata/interface.toml",
		Director: Director{
			Interfaces:    []string{"eth0"},
			Workers:       2,
			ControlSocket: "/run/uvs/uvs.sock",
			MetricsListen: "127.0.0.1:9750",
			TXMode:        TXRing,
			RXRing:        DefaultRXRing,
			Shield:        ShieldAuto,
			AnswerPing:    true,
			Backend:       BackendAuto,
		},
		Conntrack: Conntrack{MaxConnections: 1048576},
		Timeouts:  Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second},
		Services: []Service{{
			Name:               "web",
			VIP:                netip.MustParseAddr("10.0.0.13"),
			Protocol:           TCP,
			Port:               80,
			Scheduler:          "wlc",
			MHTableSize:        65537,
			PersistenceTimeout: 300 * time.Second,
			PersistenceBits:    24,
			Forward:            DR,
			DeadReal:           DeadRealKeep,
			OnFailure:          FailQuiesce,
			Quorum:             1,
			Check: &Check{
				Type:         CheckHTTP,
				Interval:     2 * time.Second,
				Timeout:      time.Second,
				Rise:         2,
				Fall:         2,
				Path:         "/",
				ExpectStatus: []int{200},
				Via:          ViaReal,
			},
			Reals: []Real{{
				Address: netip.MustParseAddr("10.0.0.17"),
				Port:    80,
				Weight:  1,
				Forward: DR,
				Line:    34,
			}},
			Line: 15,
		}},
		Lab: Lab{Prefix: DefaultLabPrefix, Clients: 1, Router: true, MTU: 1500, TXOffload: true, Directors: 1},
		Bench: Bench{
			Duration: DefaultBenchDuration, PacketSizes: []int{64, 1400}, Flows: DefaultBenchFlows,
			SYNFlows: DefaultBenchSYNFlows, RateSteps: []int{50, 80, 90, 95, 100}, MaxLossPercent: DefaultBenchMaxLoss,
			LatencyLoad: DefaultLatencyLoad, ConnectParallel: DefaultConnParallel, Compare: []string{"kernel", "nftables", "floor-v2"},
			Workers: []int{1, 2}, TXModes: []TXMode{TXRing, TXMMsg}, RXRings: []RXRing{DefaultRXRing}, Backends: []Backend{BackendAFPacket, BackendAFXDP}, Tests: BenchTests, Rounds: 1, DirectorCPU: 1,
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load(interface.toml) =\n%+v\nwant\n%+v", c, want)
		if !reflect.DeepEqual(c.Services, want.Services) {
			t.Errorf("service: %+v\nwant:    %+v", c.Services[0], want.Services[0])
		}
	}
}

func TestLoadFull(t *testing.T) {
	c, err := Load("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	dns, web := c.Services[0], c.Services[1]
	tests := []struct {
		name      string
		got, want any
	}{
		{"workers", c.Director.Workers, 4},
		{"tx_mode", c.Director.TXMode, TXMMsg},
		{"answer_ping", c.Director.AnswerPing, false},
		{"sloppy_tcp", c.Conntrack.SloppyTCP, true},
		{"tcp seconds", c.Timeouts.TCP, 600 * time.Second},
		{"tcp_fin", c.Timeouts.TCPFin, time.Minute},
		{"dns protocol", dns.Protocol, UDP},
		{"dns flags", dns.SchedulerFlags, []string{"mh-port", "mh-fallback"}},
		{"dns mh_table_size", dns.MHTableSize, 251},
		{"dns dead_real", dns.DeadReal, DeadRealKeep},
		{"dns check interval", dns.Check.Interval, 5 * time.Second},
		{"dns check port", dns.Check.Port, 5353},
		{"dns real port", dns.Reals[0].Port, uint16(53)},
		{"dns real1 check", dns.Reals[1].Check.Command, []string{"/usr/local/bin/check-dns", "10.0.1.2"}},
		{"dns real1 thresholds", [2]int{dns.Reals[1].LowerThreshold, dns.Reals[1].UpperThreshold}, [2]int{50, 100}},
		{"web ports", web.Ports, []uint16{80, 443}},
		{"web persistence bits", web.PersistenceBits, 24},
		{"web tunnel_source", web.TunnelSource, netip.MustParseAddr("192.0.2.1")},
		{"web real0 forward", web.Reals[0].Forward, TUN},
		{"web real0 port", web.Reals[0].Port, uint16(0)},
		{"web real1 forward", web.Reals[1].Forward, NAT},
		{"web expect_status", web.Check.ExpectStatus, []int{200, 204}},
		{"web line", web.Line, 54},
		{"web on_failure", web.OnFailure, FailRemove},
		{"web slow_start", web.SlowStart, 30 * time.Second},
		{"web sorry_server", web.SorryServer, netip.MustParseAddrPort("10.0.9.9:0")},
		{"web quorum", [2]int{web.Quorum, web.Hysteresis}, [2]int{3, 1}},
		{"web check digest", web.Check.Digest, "9e107d9d372bb6826bd81d3542a419d6"},
		{"web check tls_verify", web.Check.TLSVerify, true},
		{"web check warmup", web.Check.Warmup, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, head+`
[[service]]
vip = "10.0.0.1"
port = 80
  [service.check]
  type = "http"
  [[service.real]]
  address = "10.0.0.2"
[[service]]
vip = "10.0.0.1"
protocol = "udp"
port = 53
`)
	tcp, udp := c.Services[0], c.Services[1]
	tests := []struct {
		name      string
		got, want any
	}{
		{"workers", c.Director.Workers, min(runtime.NumCPU(), MaxWorkers)},
		{"control_socket", c.Director.ControlSocket, "/run/uvs/uvs.sock"},
		{"metrics_listen", c.Director.MetricsListen, ""},
		{"tx_mode", c.Director.TXMode, TXRing},
		{"answer_ping", c.Director.AnswerPing, true},
		{"max_connections", c.Conntrack.MaxConnections, 1048576},
		{"timeouts", c.Timeouts, Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}},
		{"protocol", tcp.Protocol, TCP},
		{"scheduler", tcp.Scheduler, "wlc"},
		{"mh_table_size", tcp.MHTableSize, 65537},
		{"persistence bits", tcp.PersistenceBits, 32},
		{"forward", tcp.Forward, DR},
		{"dead_real tcp", tcp.DeadReal, DeadRealKeep},
		{"dead_real udp", udp.DeadReal, DeadRealExpire},
		{"check", *tcp.Check, Check{Type: CheckHTTP, Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 2, Path: "/", Via: ViaReal}},
		{"no check", udp.Check, (*Check)(nil)},
		{"real", tcp.Reals[0], Real{Address: netip.MustParseAddr("10.0.0.2"), Port: 80, Weight: 1, Forward: DR, Line: 9}},
		{"service line", udp.Line, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %+v, want %+v", tt.got, tt.want)
			}
		})
	}
}

func TestWorkersZeroMeansNumCPU(t *testing.T) {
	c := mustParse(t, head+"workers = 0\n")
	if want := min(runtime.NumCPU(), MaxWorkers); c.Director.Workers != want {
		t.Errorf("workers = %d, want %d", c.Director.Workers, want)
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    time.Duration
		problem string // Exact problem, "" for none.
	}{
		{"seconds string", `"900s"`, 900 * time.Second, ""},
		{"minutes string", `"5m"`, 5 * time.Minute, ""},
		{"mixed string", `"1h30m"`, 90 * time.Minute, ""},
		{"milliseconds", `"1500ms"`, 1500 * time.Millisecond, ""},
		{"integer seconds", `900`, 900 * time.Second, ""},
		{"string without unit", `"900"`, 0, `t.toml:4: timeouts.tcp: invalid duration "900": a string needs a unit, as in "900s"; or write an integer number of seconds`},
		{"garbage", `"soon"`, 0, `t.toml:4: timeouts.tcp: invalid duration "soon": want a number with a unit (ms, s, m, h), as in "900s" or "5m", or an integer number of seconds`},
		{"float", `1.5`, 0, `t.toml:4: timeouts.tcp: must be a duration ("900s", "5m") or an integer number of seconds, not a float`},
		{"zero", `0`, 0, `t.toml:4: timeouts.tcp: must be positive, not 0s`},
		{"negative integer", `-5`, 0, `t.toml:4: timeouts.tcp: must be positive, not -5s`},
		{"negative string", `"-1m"`, 0, `t.toml:4: timeouts.tcp: must be positive, not -1m0s`},
		{"overflow", `9223372036854775807`, 0, `t.toml:4: timeouts.tcp: 9223372036854775807 seconds is too long`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := head + "[timeouts]\ntcp = " + tt.value + "\n"
			got := problems(t, src)
			if tt.problem != "" {
				if len(got) != 1 || got[0] != tt.problem {
					t.Errorf("problems = %q, want %q", got, tt.problem)
				}
				return
			}
			if got != nil {
				t.Fatalf("unexpected problems: %q", got)
			}
			if c := mustParse(t, src); c.Timeouts.TCP != tt.want {
				t.Errorf("tcp = %v, want %v", c.Timeouts.TCP, tt.want)
			}
		})
	}
}

func TestPersistenceNetmask(t *testing.T) {
	tests := []struct {
		value   string
		want    int
		problem string
	}{
		{`"255.255.255.0"`, 24, ""},
		{`"255.255.255.255"`, 32, ""},
		{`"0.0.0.0"`, 0, ""},
		{`"255.255.128.0"`, 17, ""},
		{`16`, 16, ""},
		{`"255.0.255.0"`, 0, `t.toml:7: service[0].persistence_netmask: netmask "255.0.255.0" is not contiguous`},
		{`"ffff::"`, 0, `t.toml:7: service[0].persistence_netmask: invalid netmask "ffff::": want a dotted IPv4 mask, as in "255.255.255.0", or a prefix length`},
		{`33`, 0, `t.toml:7: service[0].persistence_netmask: prefix length 33 is out of range 0..32`},
		{`true`, 0, `t.toml:7: service[0].persistence_netmask: must be a netmask ("255.255.255.0") or a prefix length, not a boolean`},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			src := head + "[[service]]\nvip = \"10.0.0.1\"\nport = 80\npersistence_timeout = 60\npersistence_netmask = " + tt.value + "\n"
			got := problems(t, src)
			if tt.problem != "" {
				if len(got) != 1 || got[0] != tt.problem {
					t.Errorf("problems = %q, want %q", got, tt.problem)
				}
				return
			}
			if got != nil {
				t.Fatalf("unexpected problems: %q", got)
			}
			if c := mustParse(t, src); c.Services[0].PersistenceBits != tt.want {
				t.Errorf("bits = %d, want %d", c.Services[0].PersistenceBits, tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load("testdata/does-not-exist.toml")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Load of a missing file: %T %v, want *Error", err, err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v does not wrap fs.ErrNotExist", err)
	}
	if want := "testdata/does-not-exist.toml: read: no such file or directory"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

// TestLoadBad checks the full `uvs check` output for testdata/bad.toml.
func TestLoadBad(t *testing.T) {
	_, err := Load("testdata/bad.toml")
	if err == nil {
		t.Fatal("Load(bad.toml) succeeded")
	}
	want, rerr := os.ReadFile("testdata/bad.golden")
	if rerr != nil {
		t.Fatal(rerr)
	}
	if got := err.Error() + "\n"; got != string(want) {
		t.Errorf("Load(bad.toml) error:\n%s\nwant:\n%s", got, want)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "a.toml", Line: 3, Key: "service[1].real[0].weight", Msg: "bad"}, "a.toml:3: service[1].real[0].weight: bad"},
		{Problem{File: "a.toml", Key: "director.interfaces", Msg: "required"}, "a.toml: director.interfaces: required"},
		{Problem{File: "a.toml", Line: 7, Msg: "syntax"}, "a.toml:7: syntax"},
		{Problem{Msg: "bare"}, "bare"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.p.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
