//go:build linux

package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
	"github.com/uvs-project/uvs/lvssync"
)

// TestIntegrationSyncIPv6Transport runs a director whose [sync] peer is an IPv6 address: the
// runner opens an IPv6 sync socket, and a record sent by the peer over IPv6 (an IPv4
// connection, since the data plane has no IPv6 services yet) is installed by the worker.
func TestIntegrationSyncIPv6Transport(t *testing.T) {
	testenv.RequireRoot(t)
	const dirAddr, cliAddr = "2001:2:0:c9::1", "2001:2:0:c9::2"
	c := startCtlLab(t, 1, func(l *bench.Lab, dir string) string {
		// The lab turns IPv6 off in its namespaces; this test turns it back on in two.
		for _, n := range []struct {
			node *bench.Node
			addr string
		}{{l.Director, dirAddr}, {l.Client, cliAddr}} {
			if err := n.node.Do(func() error {
				for _, dev := range []string{"all", "default", "lo", "eth0"} {
					if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+dev+"/disable_ipv6", []byte("0"), 0); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if out, err := n.node.Command(context.Background(), "ip", "addr", "add", n.addr+"/64", "dev", "eth0", "nodad").CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", n.node.Name, err, out)
			}
		}
		cfg := syncConfig("role = \"backup\"\n")(l, dir)
		return strings.Replace(cfg, fmt.Sprintf("peers = [%q]", l.Client.Addr.String()), fmt.Sprintf("peers = [%q]", cliAddr), 1)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dst := netip.AddrPortFrom(netip.MustParseAddr(dirAddr), lvssync.DefaultPort).String()
	send := func() {
		t.Helper()
		conn, err := c.lab.Client.Dial(ctx, "udp6", dst)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		b := lvssync.NewBuilder(1472, 9, false)
		rec := lvssync.Conn{Protocol: lvssync.ProtoTCP, Flags: lvssync.FlagDRoute, State: lvssync.TCPEstablished,
			Client: c.lab.Client.Addr, CPort: 40000, VIP: c.lab.VIP, VPort: 80, Real: c.lab.RealAddrs[0], DPort: 80, Timeout: 900}
		b.Add(&rec)
		if _, err := conn.Write(b.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	// As TestIntegrationSyncListMetricsReload: resend until the data plane is attached.
	for {
		send()
		time.Sleep(200 * time.Millisecond)
		if s := c.status().Sync; s != nil && s.Installed >= 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no record installed over IPv6; sync %+v; director stderr:\n%s", c.status().Sync, c.stderr.String())
		}
	}
	if s := c.status().Sync; s.Dropped["not_peer"] != 0 {
		t.Fatalf("messages from the IPv6 peer dropped as not_peer: %+v", s)
	}
}
