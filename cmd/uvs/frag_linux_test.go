//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// TestIntegrationFragmentedUDP sends UDP datagrams larger than the MTU (so they travel as IP
// fragments) through DR and NAT services: the director reassembles (through the kernel's
// bounded defragmentation), schedules each datagram whole, and fragments it again on the way
// to the real server, whose echo must come back complete.
func TestIntegrationFragmentedUDP(t *testing.T) {
	testenv.RequireRoot(t)
	eachBackend(t, testFragmentedUDP)
}

// testFragmentedUDP: with afxdp the worker reassembles (forward/afxdp/defrag.go), bounded as
// the kernel is.
func testFragmentedUDP(t *testing.T) {
	// One worker joins its fanout group in PACKET_FANOUT_LB mode (no steering program), for
	// PACKET_FANOUT_FLAG_DEFRAG: reassembly must work there too.
	for _, tc := range []struct {
		topo    bench.Topology
		method  string
		port    int
		workers int
	}{{bench.TopologyDR, "dr", 80, 0}, {bench.TopologyNAT, "nat", 8080, 0}, {bench.TopologyDR, "dr", 80, 1}} {
		t.Run(fmt.Sprintf("%s/workers=%d", tc.method, tc.workers), func(t *testing.T) {
			r := startLabWorkers(t, tc.topo, tc.method, tc.port, false, "", tc.workers)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, size := range []int{1400, 3000, 8000, 30000} {
				c, err := r.lab.Client.Dial(ctx, "udp4", netip.AddrPortFrom(r.vip, bench.UDPPort).String())
				if err != nil {
					t.Fatal(err)
				}
				payload := bytes.Repeat([]byte{byte(size)}, size)
				_ = c.SetDeadline(time.Now().Add(3 * time.Second))
				if _, err := c.Write(payload); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 65536)
				n, err := c.Read(buf)
				_ = c.Close()
				if err != nil {
					t.Fatalf("%d-byte datagram: %v", size, err)
				}
				_, rest, ok := bytes.Cut(buf[:n], []byte(":"))
				if !ok || !bytes.Equal(rest, payload) {
					t.Fatalf("%d-byte datagram: echo of %d bytes", size, n)
				}
			}
			r.stopAndCheckClean()
			// Every reason a datagram too large for the egress could be dropped under: by the
			// engine (not fragmentable, no room to fragment) or by the kernel (EMSGSIZE).
			c := r.stoppedCounters()
			for _, k := range []string{"drop_fragment", "drop_too_big", "drop_too_big_icmp_limited",
				"drop_scratch_full", "drop_tx_batch_full", "drop_tx_oversize"} {
				if c[k] != 0 {
					t.Errorf("%s = %d: %v", k, c[k], fmt.Sprint(c))
				}
			}
		})
	}
}
