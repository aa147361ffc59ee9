package vrrp

import (
	"strings"
	"testing"

	"github.com/uvs-project/uvs/config"
)

// TestCheckReloadFamily: an instance cannot change address family on reload (its socket is
// of one family); its IPv6 VIPs can change.
func TestCheckReloadFamily(t *testing.T) {
	base := "[director]\ninterfaces = [\"eth0\"]\n[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\nversion = 3\nvips = [\"198.18.1.100\"]\n"
	parse := func(s string) *config.Config {
		c, err := config.Parse("t.toml", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	v4 := parse(base)
	v6 := parse(strings.Replace(base, "198.18.1.100", "2001:2:0:5::100", 1))
	if err := CheckReload(v4, v6); err == nil || !strings.Contains(err.Error(), "vrrp VI_1: the address family of its vips") {
		t.Fatalf("IPv4 to IPv6: err = %v", err)
	}
	if err := CheckReload(v6, v4); err == nil {
		t.Fatal("IPv6 to IPv4 accepted")
	}
	if err := CheckReload(v6, parse(strings.Replace(base, "198.18.1.100", "2001:2:0:5::101", 1))); err != nil {
		t.Fatalf("other IPv6 VIP: %v", err)
	}
}
