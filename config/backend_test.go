package config

import (
	"errors"
	"strings"
	"testing"
)

func TestBackend(t *testing.T) {
	const head = "[director]\ninterfaces = [\"eth0\"]\n"
	tests := []struct {
		name    string
		extra   string
		want    Backend
		problem string // substring of the error, "" for none
	}{
		{"default", "", BackendAuto, ""},
		{"auto", "backend = \"auto\"\n", BackendAuto, ""},
		{"afpacket", "backend = \"afpacket\"\n", BackendAFPacket, ""},
		{"afxdp", "backend = \"afxdp\"\n", BackendAFXDP, ""},
		{"afpacket mmsg", "backend = \"afpacket\"\ntx_mode = \"mmsg\"\n", BackendAFPacket, ""},
		{"afxdp mmsg", "backend = \"afxdp\"\ntx_mode = \"mmsg\"\n", 0, "director.tx_mode: applies to backend \"afpacket\" only"},
		{"unknown", "backend = \"dpdk\"\n", 0, "director.backend"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("x.toml", []byte(head+tt.extra))
			if tt.problem != "" {
				var e *Error
				if !errors.As(err, &e) || !strings.Contains(err.Error(), tt.problem) {
					t.Fatalf("err = %v, want a problem containing %q", err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Director.Backend != tt.want || c.Director.Backend.String() != tt.want.String() {
				t.Errorf("backend = %v, want %v", c.Director.Backend, tt.want)
			}
		})
	}
}

func TestBenchBackends(t *testing.T) {
	head := "[director]\ninterfaces = [\"eth0\"]\n[bench]\n"
	c, err := Parse("x.toml", []byte(head+"backends = [\"afxdp\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Bench.Backends) != 1 || c.Bench.Backends[0] != BackendAFXDP {
		t.Errorf("backends = %v", c.Bench.Backends)
	}
	for _, bad := range []string{`["auto"]`, `["dpdk"]`, `[]`} {
		if _, err := Parse("x.toml", []byte(head+"backends = "+bad+"\n")); err == nil || !strings.Contains(err.Error(), "bench.backends") {
			t.Errorf("backends = %s: err %v", bad, err)
		}
	}
}
