package config

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestRealCheckOverridesService(t *testing.T) {
	c := mustParse(t, svc+`
[service.check]
type = "tcp"
[[service.real]]
address = "10.0.0.2"
[[service.real]]
address = "10.0.0.3"
  [service.real.check]
  type = "http"
  path = "/up"
  expect_status = 204
`)
	s := c.Services[0]
	if s.Check == nil || s.Check.Type != CheckTCP {
		t.Fatalf("service check = %+v, want tcp", s.Check)
	}
	if s.Reals[0].Check != nil {
		t.Errorf("real[0] check = %+v, want nil (the service's)", s.Reals[0].Check)
	}
	rc := s.Reals[1].Check
	if rc == nil || rc.Type != CheckHTTP || rc.Path != "/up" || !slices.Equal(rc.ExpectStatus, []int{204}) {
		t.Errorf("real[1] check = %+v, want http /up 204", rc)
	}
}

func TestInlineArraysOfTables(t *testing.T) {
	src := `service = [
  { vip = "10.0.0.1", port = 80, real = [{ address = "10.0.0.2" }] },
  { vip = "10.0.0.1", port = 443, real = [{ address = "10.0.0.2", weight = -1 }] },
]
` + head
	got := problems(t, src)
	want := []string{"t.toml:3: service[1].real[0].weight: -1 is out of range 0..65535"}
	if !slices.Equal(got, want) {
		t.Fatalf("problems = %q, want %q", got, want)
	}
	c := mustParse(t, "service = [{ vip = \"10.0.0.1\", port = 80, real = [{ address = \"10.0.0.2\" }] }]\n"+head)
	if len(c.Services) != 1 || c.Services[0].Reals[0].Address != netip.MustParseAddr("10.0.0.2") || c.Services[0].Line != 1 {
		t.Errorf("services = %+v", c.Services)
	}
}

func TestQuotedUnknownKey(t *testing.T) {
	got := problems(t, head+"\"control socket\" = \"/x\"\n")
	want := []string{`t.toml:3: director."control socket": unknown key (did you mean "control_socket"?)`}
	if !slices.Equal(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

// TestAllProblemsAtOnce checks that problems from decoding and from
// validation, in several tables, come back together and in line order.
func TestAllProblemsAtOnce(t *testing.T) {
	src := `[[service]]
vip = "10.0.0.1"
port = 80
weight = 3
[[service.real]]
address = "10.0.0.2"
weight = 99999
[timeouts]
udp = "never"
[director]
workers = 0
`
	got := problems(t, src)
	want := []string{
		`t.toml:4: service[0].weight: unknown key`,
		`t.toml:7: service[0].real[0].weight: 99999 is out of range 0..65535`,
		`t.toml:9: timeouts.udp: invalid duration "never": want a number with a unit (ms, s, m, h), as in "900s" or "5m", or an integer number of seconds`,
		`t.toml:10: director.interfaces: required: at least one interface, as in ["eth0"]`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", quoteLines(got), quoteLines(want))
	}
}

func TestCheckTimeoutFitsShortInterval(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want time.Duration
	}{
		{"default", "", time.Second},
		{"short interval", "interval = \"500ms\"\n", 500 * time.Millisecond},
		{"long interval", "interval = 10\n", time.Second},
		{"explicit", "interval = 10\ntimeout = 3\n", 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, svc+"[service.check]\ntype = \"tcp\"\n"+tt.keys)
			if got := c.Services[0].Check.Timeout; got != tt.want {
				t.Errorf("timeout = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCRLF(t *testing.T) {
	src := "[director]\r\ninterfaces = [\"eth0\"]\r\n[[service]]\r\nvip = \"10.0.0.1\"\r\nport = 80\r\nweight = 1\r\n"
	got := problems(t, src)
	want := []string{`t.toml:6: service[0].weight: unknown key`}
	if !slices.Equal(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}
