package bench

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/internal/testenv"
)

// TestIntegrationFloor forwards UDP echo through the floor forwarder with
// each receive ring and on AF_XDP (floor-afxdp), before and after a burst from the generator, and checks
// that it forwarded and dropped nothing.
func TestIntegrationFloor(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	l := newTestLab(t, LabSpec{Prefix: testPrefix(t, "fl"), Topology: TopologyDR, Reals: 1, DirectorTxOff: true})
	if _, err := l.StartServers(testHTTPPort, testUDPPort); err != nil {
		t.Fatal(err)
	}
	if err := l.PrepareReals("dr"); err != nil {
		t.Fatal(err)
	}
	rs1 := l.Reals[0]
	mac := func(n *Node) net.HardwareAddr {
		m, err := ifaceMAC(n, "eth0")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	dirMAC, realMAC, cliMAC := mac(l.Director), mac(rs1), mac(l.Client)
	output(t, l.Client, "ip", "neigh", "replace", l.VIP.String(), "lladdr", dirMAC.String(), "dev", "eth0", "nud", "permanent")
	for _, ring := range []FloorRing{FloorV3, FloorV2, FloorAFXDP} {
		t.Run(ring.String(), func(t *testing.T) {
			undo := func() error { return nil }
			if ring != FloorAFXDP { // AF_XDP takes the frames before the stack
				var err error
				if undo, err = dropIngress(l.Director, "eth0"); err != nil {
					t.Fatal(err)
				}
			}
			defer func() {
				if err := undo(); err != nil {
					t.Error(err)
				}
			}()
			f, err := StartFloor(l.Director, FloorConfig{Iface: "eth0", SrcMAC: dirMAC, DstMAC: realMAC, Ring: ring, CPU: -1})
			if err != nil {
				t.Fatal(err)
			}
			// A few tries: right after a burst, the request or its answer may be lost in a
			// full queue on the way (the real server's backlog), which is not the floor's.
			ask := func(what string) {
				t.Helper()
				var got string
				var err error
				for try := 0; try < 3; try++ {
					if got, err = udpAsk(l.Client, l.VIP, what); err == nil && strings.HasPrefix(got, "rs1:") {
						return
					}
				}
				t.Errorf("%s: udp echo through the floor = %q, %v", what, got, err)
			}
			ask("before")
			res, err := Generate(l.Client, GenConfig{Iface: "eth0", SrcMAC: cliMAC, DstMAC: dirMAC,
				Dst: netip.AddrPortFrom(l.VIP, 9), Proto: GenUDP, Size: 64, Flows: 100, Count: 20000, Duration: 5 * time.Second, CPU: -1})
			if err != nil {
				t.Fatal(err)
			}
			ask("after")
			c, err := f.Stop()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("sent %d, floor %+v", res.Sent, c)
			if c.Forwarded < 2 || c.Truncated != 0 || c.TxDropped != 0 {
				t.Errorf("floor counters %+v", c)
			}
		})
	}
}
