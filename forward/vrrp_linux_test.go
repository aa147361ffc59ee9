package forward

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/uvs-project/uvs/config"
)

// TestVIPAddrsIncludeVRRP: the solicited-node groups cover the IPv6 addresses of [[vrrp]]
// instances that are not service VIPs.
func TestVIPAddrsIncludeVRRP(t *testing.T) {
	c, err := config.Parse("t.toml", []byte("[director]\ninterfaces = [\"eth0\"]\n[[service]]\nvip = \"198.18.0.1\"\nport = 80\n"+
		"[[vrrp]]\nname = \"v4\"\ninterface = \"eth0\"\nvirtual_router_id = 1\nvips = [\"198.18.0.1\", \"198.18.0.254\"]\n"+
		"[[vrrp]]\nname = \"v6\"\ninterface = \"eth0\"\nvirtual_router_id = 2\nversion = 3\nvips = [\"2001:2:0:c6::100\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.254"), netip.MustParseAddr("2001:2:0:c6::100")}
	if got := vipAddrs(c); !slices.Equal(got, want) {
		t.Fatalf("vipAddrs = %v, want %v", got, want)
	}
}
