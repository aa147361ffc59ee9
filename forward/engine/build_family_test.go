package engine

import (
	"strings"
	"testing"

	"github.com/uvs-project/uvs/config"
)

func TestBuildRefusesIPv6(t *testing.T) {
	cfg, err := config.Parse("t.toml", []byte("[director]\ninterfaces = [\"eth0\"]\n[[service]]\nvip = \"2001:db8::1\"\nport = 80\n[[service.real]]\naddress = \"2001:db8::2\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := NewRegistry(1)
	if _, err := g.Build(cfg, nil, func([4]byte) Egress { return NoEgress }, 1); err == nil || !strings.Contains(err.Error(), "does not forward IPv6 yet") {
		t.Fatalf("Build = %v", err)
	}
}
