package control

import (
	"net/netip"
	"testing"

	"github.com/uvs-project/uvs/conntrack"
)

// TestConnectionIPv6 lists an IPv6 connection as ipvsadm -Lnc does, [addr]:port, and an
// IPv4 one (stored IPv4-mapped) as addr:port.
func TestConnectionIPv6(t *testing.T) {
	e := conntrack.Entry{
		Key: conntrack.Key{Client: netip.MustParseAddr("2001:2:0:20::7").As16(), CPort: 40000,
			VIP: netip.MustParseAddr("2001:2:0:10::10").As16(), VPort: 80, Proto: conntrack.ProtoTCP},
		Real: netip.MustParseAddr("2001:2:0:10::3").As16(), RPort: 8080, State: conntrack.StateEstablished,
	}
	c := connection(&e, 0)
	if c.Client != "[2001:2:0:20::7]:40000" || c.VIP != "[2001:2:0:10::10]:80" || c.Real != "[2001:2:0:10::3]:8080" {
		t.Fatalf("IPv6 connection %+v", c)
	}
	e.Key.Client, e.Key.VIP, e.Real = conntrack.Map4([4]byte{198, 18, 0, 7}), conntrack.Map4([4]byte{198, 18, 0, 10}), conntrack.Map4([4]byte{198, 18, 1, 3})
	if c := connection(&e, 0); c.Client != "198.18.0.7:40000" || c.VIP != "198.18.0.10:80" || c.Real != "198.18.1.3:8080" {
		t.Fatalf("IPv4 connection %+v", c)
	}
}
