//go:build linux

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// Sizes of TestIntegrationPMTUUpload.
const (
	uploadBytes = 1 << 20 // what the client sends
	uploadPort  = 5001    // the upload service's VIP port and the sink's port
	narrowMTU   = 1400    // the director-to-real link; the client's is the lab's 1500
)

// TestIntegrationPMTUUpload uploads 1 MiB from a client with MTU 1500 through a DR and through
// a NAT service whose path toward the real server has MTU 1400. The real server's interface
// keeps MTU 1500, so its advertised MSS (1460) does not shrink the client's segments: only the
// director knows that they do not fit, and it must answer each too-big DF packet with ICMP
// fragmentation needed (type 3 code 4, next-hop MTU 1400) from the VIP, as IPVS does
// (ensure_mtu_is_adequate). Without that reply the upload never completes: the frames are
// dropped silently on the narrow hop.
//
// The narrow hop is a veth pair of MTU 1400 between the real server's bridge port and the rest
// of its segment, with segmentation offloads off so that a GSO super-frame is cut into
// wire-size frames before the MTU check (a veth or bridge lets a GSO skb of any segment size
// through, as a NIC's TSO would not). The director learns the narrow path from a route MTU to
// the real server (DR) or from its own eth1's MTU (NAT). The client's segmentation offloads
// are off (every segment a frame of its own, complete checksums) in one run and on (GSO
// super-frames whose segments exceed 1400 bytes, partial checksums) in the other.
func TestIntegrationPMTUUpload(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tc := range []struct {
		method   string
		topo     bench.Topology
		offloads bool
	}{
		{"dr", bench.TopologyDR, false},
		{"dr", bench.TopologyDR, true},
		{"nat", bench.TopologyNAT, false},
		{"nat", bench.TopologyNAT, true},
	} {
		name := tc.method + "/offloads-off"
		if tc.offloads {
			name = tc.method + "/offloads-on"
		}
		t.Run(name, func(t *testing.T) {
			r := startNarrowLab(t, tc.topo, tc.method)
			if !tc.offloads {
				// Each TCP segment a frame of its own, with a complete checksum.
				nsRun(t, r.lab.Client, "ethtool", "-K", "eth0", "tso", "off", "gso", "off", "gro", "off", "tx", "off")
			}
			s := startSink(t, r.lab.Reals[0], uploadPort)
			// Small segments pass the narrow hop: only the path MTU is in the way.
			if got, err := upload(r.lab.Client, netip.AddrPortFrom(r.vip, uploadPort), 1000); err != nil || got != expectedUploadSum(1000) {
				t.Fatalf("upload of 1000 bytes: %q, %v", got, err)
			}
			s.received.Store(0)
			got, err := upload(r.lab.Client, netip.AddrPortFrom(r.vip, uploadPort), uploadBytes)
			if err != nil {
				t.Fatalf("upload of %d bytes through %s with MTU %d toward the real: %v (%d bytes arrived)",
					uploadBytes, tc.method, narrowMTU, err, s.received.Load())
			}
			if want := expectedUploadSum(uploadBytes); got != want {
				t.Fatalf("upload: the sink saw %q, want %q", got, want)
			}
			r.stopAndCheckClean()
			c := r.stoppedCounters()
			t.Logf("director counters: %v", c)
			// The upload completed because the director told the client, not by luck.
			if c["frag_needed"] == 0 || c["drop_too_big"] == 0 {
				t.Errorf("frag_needed %d, drop_too_big %d: want both > 0", c["frag_needed"], c["drop_too_big"])
			}
		})
	}
}

// startNarrowLab builds a lab with one real server for method, narrows the link from the
// director toward it to narrowMTU, and starts servers and the director (the lab's services
// plus a TCP service on uploadPort).
func startNarrowLab(t *testing.T, topo bench.Topology, method string) *labRun {
	t.Helper()
	lab := newLab(t, bench.LabSpec{Topology: topo, Reals: 1})
	if err := lab.PrepareReals(method); err != nil {
		t.Fatal(err)
	}
	narrowHop(t, lab, method)
	startServers(t, lab, 80, bench.UDPPort)
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "uvs.toml")
	cfg := lab.Config(method, "rr", 80, 80, tmp)
	cfg += fmt.Sprintf("\n[[service]]\nname = \"upload\"\nvip = %q\nport = %d\nscheduler = \"rr\"\nforward = %q\n"+
		"\n  [[service.real]]\n  address = %q\n  port = %d\n", lab.VIP, uploadPort, method, lab.RealAddrs[0], uploadPort)
	writeFile(t, cfgPath, cfg)
	r := newRun(t, lab)
	r.runDirector(cfgPath)
	return r
}

// narrowHop puts a link of MTU narrowMTU between the real server's bridge port and the rest of
// its segment, and tells the director: a route MTU to the real (DR) or its eth1 MTU (NAT).
//
//	segment bridge --- nw0 ==MTU 1400== nw1 --- br-nw --- rs1-eth0 ~ rs1 eth0 (MTU 1500)
func narrowHop(t *testing.T, lab *bench.Lab, method string) {
	t.Helper()
	mtu := strconv.Itoa(narrowMTU)
	sw := &bench.Node{Name: "switch", NS: lab.Spec.Prefix + "switch"}
	seg := "br-a" // bench's bridge of the real servers' segment: br-a (DR), br-b (NAT)
	if method == "nat" {
		seg = "br-b"
		nsRun(t, lab.Director, "ip", "link", "set", "eth1", "mtu", mtu)
		nsRun(t, sw, "ip", "link", "set", "director-eth1", "mtu", mtu)
	} else {
		nsRun(t, lab.Director, "ip", "route", "add", lab.RealAddrs[0].String()+"/32", "dev", "eth0", "mtu", mtu)
	}
	nsRun(t, sw, "ip", "link", "add", "br-nw", "type", "bridge", "stp_state", "0", "mcast_snooping", "0")
	nsRun(t, sw, "ip", "link", "add", "nw0", "mtu", mtu, "type", "veth", "peer", "name", "nw1", "mtu", mtu)
	for _, dev := range []string{"nw0", "nw1"} {
		nsRun(t, sw, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off")
	}
	nsRun(t, sw, "ip", "link", "set", "nw0", "master", seg, "up")
	nsRun(t, sw, "ip", "link", "set", "nw1", "master", "br-nw", "up")
	nsRun(t, sw, "ip", "link", "set", "rs1-eth0", "master", "br-nw")
	nsRun(t, sw, "ip", "link", "set", "br-nw", "up")
}

// nsRun runs a command in n's namespace, failing the test on error.
func nsRun(t *testing.T, n *bench.Node, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := n.Command(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %s %s: %v: %s", n.Name, name, strings.Join(args, " "), err, out)
	}
}

// uploadSink counts and hashes what TCP clients send; at EOF it answers "<bytes> <sha256>\n".
type uploadSink struct {
	received atomic.Int64 // bytes received over all connections so far

	mu    sync.Mutex // guards conns
	conns map[net.Conn]bool
}

// startSink listens on port in n's namespace until the test ends.
func startSink(t *testing.T, n *bench.Node, port int) *uploadSink {
	t.Helper()
	var ln net.Listener
	if err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", ":"+strconv.Itoa(port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s := &uploadSink{conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close() // an upload stuck in a black hole would wait for its deadline
		}
		s.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(time.Minute))
				h := sha256.New()
				n, _ := io.Copy(io.MultiWriter(h, countWriter{&s.received}), c)
				_, _ = fmt.Fprintf(c, "%d %s\n", n, hex.EncodeToString(h.Sum(nil)))
			})
		}
	})
	return s
}

type countWriter struct{ n *atomic.Int64 }

func (w countWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// uploadTimeout bounds one upload: 1 MiB takes milliseconds on a lab link, and a client that
// never learns the path MTU is still retransmitting full-size segments after it.
const uploadTimeout = 20 * time.Second

// upload sends n bytes of bench.Payload from node to dst and returns the sink's answer.
func upload(node *bench.Node, dst netip.AddrPort, n int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), uploadTimeout)
	defer cancel()
	c, err := node.Dial(ctx, "tcp4", dst.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(uploadTimeout))
	if _, err := io.CopyN(c, bench.Payload(), int64(n)); err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return "", errors.New("not a TCP connection")
	}
	if err := tc.CloseWrite(); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return "", fmt.Errorf("read the sink's answer: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// expectedUploadSum is the sink's answer to an upload of the first n bytes of bench.Payload.
func expectedUploadSum(n int) string {
	return strconv.Itoa(n) + " " + bench.ExpectedSHA256(n)
}
