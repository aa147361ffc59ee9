package config

import (
	"net/netip"
	"testing"
)

func TestIPv6Service(t *testing.T) {
	src := head + `[[service]]
vip = "2001:db8::10"
port = 80
persistence_timeout = 60
[[service.real]]
address = "2001:db8:1::2"
[[service.real]]
address = "2001:db8:1::3"
forward = "nat"
[[service.real]]
address = "198.18.0.5"
forward = "tun"
[[service]]
vip = "198.18.0.10"
port = 80
forward = "tun"
[[service.real]]
address = "2001:db8:1::4"
`
	c := mustParse(t, src)
	s := c.Services[0]
	if s.VIP != netip.MustParseAddr("2001:db8::10") || s.PersistenceBits != 128 || len(s.Reals) != 3 || s.Reals[2].Forward != TUN {
		t.Fatalf("service %+v", s)
	}
	if c.Services[1].PersistenceBits != 32 || !c.Services[1].Reals[0].Address.Is6() {
		t.Fatalf("4-in-6 service %+v", c.Services[1])
	}
}

func TestIPv6PersistenceNetmask(t *testing.T) {
	tests := []struct {
		value   string
		want    int
		problem string
	}{
		{`64`, 64, ""},
		{`128`, 128, ""},
		{`0`, 0, ""},
		{`129`, 0, `t.toml:7: service[0].persistence_netmask: prefix length 129 is out of range 0..32 (IPv4) or 0..128 (IPv6)`},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			src := head + "[[service]]\nvip = \"2001:db8::1\"\nport = 80\npersistence_timeout = 60\npersistence_netmask = " + tt.value + "\n"
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
	// An IPv4 service still stops at 32; a /64 without persistence is refused.
	for src, want := range map[string]string{
		head + "[[service]]\nvip = \"10.0.0.1\"\nport = 80\npersistence_timeout = 60\npersistence_netmask = 64\n": `t.toml:7: service[0].persistence_netmask: prefix length 64 is out of range 0..32`,
		head + "[[service]]\nvip = \"2001:db8::1\"\nport = 80\npersistence_netmask = 64\n":                        `t.toml:6: service[0].persistence_netmask: needs persistence_timeout`,
	} {
		if got := problems(t, src); len(got) != 1 || got[0] != want {
			t.Errorf("problems = %q, want %q", got, want)
		}
	}
}

func TestMixedFamilies(t *testing.T) {
	for _, fwd := range []string{"dr", "nat"} {
		src := head + "[[service]]\nvip = \"2001:db8::1\"\nport = 80\nforward = \"" + fwd + "\"\n[[service.real]]\naddress = \"198.18.0.2\"\n"
		want := `t.toml:8: service[0].real[0].address: 198.18.0.2 and the VIP 2001:db8::1 are of different families: only forward = "tun" carries one in the other (6-in-4)`
		if got := problems(t, src); len(got) != 1 || got[0] != want {
			t.Errorf("%s: problems = %q, want %q", fwd, got, want)
		}
	}
}
