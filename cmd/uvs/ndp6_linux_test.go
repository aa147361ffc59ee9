//go:build linux

package main

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// TestIntegrationIPv6NeighbourDiscovery checks what a DR director owes the IPv6 VIP's link
// (issue 18): unsolicited neighbour advertisements for the VIP at start (RFC 4861 section
// 7.2.6), the VIP's solicited-node multicast group joined on the interface (a real switch
// delivers solicitations only there), and an answer to the client kernel's solicitation, so
// that the client's neighbour entry for the VIP holds the director's MAC. Lab addresses are
// added with nodad; the real servers hold the VIP on lo and never advertise it.
func TestIntegrationIPv6NeighbourDiscovery(t *testing.T) {
	testenv.RequireRoot(t)
	ipv6Backends(t, testIPv6NeighbourDiscovery)
}

func testIPv6NeighbourDiscovery(t *testing.T) {
	lab := newLab(t, bench.LabSpec{Topology: bench.TopologyDR, IPv6: true})
	if err := lab.PrepareReals("dr"); err != nil {
		t.Fatal(err)
	}
	startServers(t, lab, 80, bench.UDPPort)
	ctx := context.Background()
	mac, err := lab.Director.Command(ctx, "cat", "/sys/class/net/eth0/address").Output()
	if err != nil {
		t.Fatal(err)
	}
	dirMAC := strings.TrimSpace(string(mac))

	// Listen for advertisements on the client before the director starts.
	var c *icmp.PacketConn
	if err := lab.Client.Do(func() error {
		var err error
		c, err = icmp.ListenPacket("ip6:ipv6-icmp", "::")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeNeighborAdvertisement)
	if err := c.IPv6PacketConn().SetICMPFilter(&f); err != nil {
		t.Fatal(err)
	}
	if err := c.IPv6PacketConn().JoinGroup(nil, &net.IPAddr{IP: net.ParseIP("ff02::1")}); err != nil {
		t.Logf("join ff02::1: %v (all-nodes is joined anyway)", err)
	}

	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "uvs.toml")
	writeFile(t, cfgPath, lab.ConfigDual("dr", "rr", 80, 80, tmp))
	r := newRun(t, lab)
	r.vip = lab.VIP6
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	applyBackend(t, cfgPath)
	if r.dir, err = lab.StartDirector(ctx, bin, cfgPath, r.stderr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.dir.Stop()
		if t.Failed() {
			t.Logf("director stderr:\n%s", r.stderr.String())
		}
	})

	// Unsolicited advertisements: target the VIP, override set, the director's MAC as the
	// target link-layer address option (type 2).
	// The director sends three; all are read (for at most 5 s after the first), so that the
	// client's solicitation below is answered by the director, not by a late advertisement.
	unsolicited := 0
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for unsolicited < 3 {
		n, from, err := c.ReadFrom(buf)
		if err != nil && unsolicited > 0 {
			t.Logf("%d unsolicited advertisements (RFC 4861 section 7.2.6 allows up to 3): %v", unsolicited, err)
			break
		}
		if err != nil {
			t.Fatalf("no unsolicited neighbour advertisement for %s: %v", lab.VIP6, err)
		}
		if n < 24 || buf[0] != 136 {
			continue
		}
		target, _ := netip.AddrFromSlice(buf[8:24])
		if target != lab.VIP6 {
			continue
		}
		flags := buf[4]
		var lladdr string
		for o := buf[24:n]; len(o) >= 8 && o[1] > 0 && int(o[1])*8 <= len(o); o = o[int(o[1])*8:] {
			if o[0] == 2 {
				lladdr = net.HardwareAddr(o[2:8]).String()
			}
		}
		t.Logf("advertisement from %v for %s: flags %#x, lladdr %s", from, target, flags, lladdr)
		if flags&0x20 == 0 || flags&0x40 != 0 || lladdr != dirMAC {
			t.Errorf("advertisement flags %#x (want override, not solicited), lladdr %s (want %s)", flags, lladdr, dirMAC)
		}
		if unsolicited == 0 {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		}
		unsolicited++
	}

	// Forget what the advertisement taught, so that the client solicits the VIP and the
	// director must answer.
	if out, err := lab.Client.Command(ctx, "ip", "-6", "neigh", "flush", "dev", "eth0").CombinedOutput(); err != nil {
		t.Fatalf("neigh flush: %v %s", err, out)
	}
	r.waitVIP()
	// The solicited-node group of the VIP (ff02::1:ffXX:XXXX, its low 24 bits) is joined.
	v := lab.VIP6.As16()
	group := netip.AddrFrom16([16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: v[13], 14: v[14], 15: v[15]})
	out, err := lab.Director.Command(ctx, "ip", "-6", "maddr", "show", "dev", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), group.String()) {
		t.Errorf("solicited-node group %s not joined on the director's eth0: %v\n%s", group, err, out)
	}
	out, err = lab.Client.Command(ctx, "ip", "-6", "neigh", "show", lab.VIP6.String(), "dev", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lladdr "+dirMAC) {
		t.Errorf("client's neighbour entry for the VIP: %v %q, want lladdr %s", err, out, dirMAC)
	}
	// The real servers, which hold the VIP on lo, never advertised it.
	for _, n := range lab.Reals {
		m, _ := n.Command(ctx, "cat", "/sys/class/net/eth0/address").Output()
		if strings.Contains(string(out), strings.TrimSpace(string(m))) {
			t.Errorf("the client learned %s's MAC for the VIP", n.Name)
		}
	}
	r.stopAndCheckClean()
	// Neighbour advertisements answering solicitations are counted with ARP replies.
	if c := r.stoppedCounters(); c["arp_replies"] == 0 {
		t.Errorf("no solicitation answered: %v", c)
	} else {
		t.Logf("counters %v", c)
	}
}
