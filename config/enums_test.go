package config

import (
	"testing"
)

func TestEnums(t *testing.T) {
	tests := []struct {
		name  string
		parse func(string) (uint8, error)
		str   func(uint8) string
		names []string
	}{
		{"Protocol", wrap(ParseProtocol), func(v uint8) string { return Protocol(v).String() }, []string{"tcp", "udp"}},
		{"Forward", wrap(ParseForward), func(v uint8) string { return Forward(v).String() }, []string{"dr", "tun", "nat"}},
		{"TXMode", wrap(ParseTXMode), func(v uint8) string { return TXMode(v).String() }, []string{"ring", "mmsg"}},
		{"DeadRealPolicy", wrap(ParseDeadRealPolicy), func(v uint8) string { return DeadRealPolicy(v).String() }, []string{"keep", "expire", "reset"}},
		{"CheckType", wrap(ParseCheckType), func(v uint8) string { return CheckType(v).String() }, []string{"tcp", "http", "https", "udp", "exec", "none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range tt.names {
				v, err := tt.parse(n)
				if err != nil || v == 0 {
					t.Errorf("Parse(%q) = %d, %v", n, v, err)
				}
				if got := tt.str(v); got != n {
					t.Errorf("String(Parse(%q)) = %q", n, got)
				}
			}
			for _, bad := range []string{"", "TCP", "bogus"} {
				if v, err := tt.parse(bad); err == nil {
					t.Errorf("Parse(%q) = %d, want an error", bad, v)
				}
			}
			if got, want := tt.str(0), tt.name+"(0)"; got != want {
				t.Errorf("zero value String() = %q, want %q", got, want)
			}
			if got, want := tt.str(200), tt.name+"(200)"; got != want {
				t.Errorf("String(200) = %q, want %q", got, want)
			}
		})
	}
}

func wrap[T ~uint8](parse func(string) (T, error)) func(string) (uint8, error) {
	return func(s string) (uint8, error) {
		v, err := parse(s)
		return uint8(v), err
	}
}

func TestForwardIPVSName(t *testing.T) {
	tests := []struct {
		f    Forward
		want string
	}{
		{DR, "Route"},
		{TUN, "Tunnel"},
		{NAT, "Masq"},
		{0, "Forward(0)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.f.IPVSName(); got != tt.want {
				t.Errorf("IPVSName() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseProtocolError(t *testing.T) {
	_, err := ParseProtocol("sctp")
	if want := `config: unknown protocol "sctp" (want tcp or udp)`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}
