//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/control"
	"github.com/uvs-project/uvs/internal/testenv"
)

// The failover lab: a client behind a router; two directors, DR real servers and the
// router on segment B; NAT real servers on segment C behind both directors. The router
// sends the VIP to the active director (a static route: the "VIP move" is replacing it),
// and the NAT real servers route through the active director (the gateway move). No VRRP:
// the directors run with explicit sync roles, master and backup.
const (
	sfVIP       = "198.18.40.100"
	sfClient    = "198.18.10.2"
	sfRouterA   = "198.18.10.1"
	sfRouterB   = "198.18.20.1"
	sfDir1      = "198.18.20.11"
	sfDir2      = "198.18.20.12"
	sfDir1C     = "198.18.30.11"
	sfDir2C     = "198.18.30.12"
	sfGateway   = "198.18.30.1"    // the NAT real servers' gateway, a VRRP address, in mode vrrp
	sfDownloads = 20               // per service
	sfBody      = 1 << 20          // bytes per download
	sfRate      = 160 << 10        // bytes per second per download
	sfStall     = 20 * time.Second // a download that gets nothing this long has failed
)

var sfDR = []string{"198.18.20.21", "198.18.20.22"}
var sfNAT = []string{"198.18.30.21", "198.18.30.22"}

type syncFailoverLab struct {
	vrrp   bool // VRRP moves the VIP and the NAT gateway, not the test
	t      *testing.T
	prefix string
	nodes  map[string]*bench.Node
	dir    string
}

func (l *syncFailoverLab) ns(name string) string { return l.prefix + name }

// ip runs `ip args...` (use -n NS for a namespace).
func (l *syncFailoverLab) ip(args ...string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// exec runs a command in a node's namespace.
func (l *syncFailoverLab) exec(node string, args ...string) {
	l.t.Helper()
	l.ip(append([]string{"netns", "exec", l.ns(node)}, args...)...)
}

func newSyncFailoverLab(t *testing.T, tag string, withVRRP bool) *syncFailoverLab {
	t.Helper()
	l := &syncFailoverLab{vrrp: withVRRP, t: t, prefix: fmt.Sprintf("uvsy%d%s-", os.Getpid()%100000, tag), nodes: map[string]*bench.Node{}, dir: t.TempDir()}
	names := []string{"sw", "cl", "rt", "d1", "d2", "r1", "r2", "n1", "n2"}
	t.Cleanup(func() {
		for _, n := range names {
			_ = exec.Command("ip", "netns", "del", l.ns(n)).Run()
		}
	})
	for _, n := range names {
		l.ip("netns", "add", l.ns(n))
		l.ip("-n", l.ns(n), "link", "set", "lo", "up")
		l.nodes[n] = &bench.Node{Name: n, NS: l.ns(n)}
	}
	for _, br := range []string{"bra", "brb", "brc"} {
		l.ip("-n", l.ns("sw"), "link", "add", br, "type", "bridge")
		l.ip("-n", l.ns("sw"), "link", "set", br, "up")
	}
	link := func(node, ifname, br, addr string) {
		peer := node + ifname
		l.ip("-n", l.ns(node), "link", "add", ifname, "type", "veth", "peer", "name", peer, "netns", l.ns("sw"))
		l.ip("-n", l.ns("sw"), "link", "set", peer, "master", br, "up")
		l.ip("-n", l.ns(node), "addr", "add", addr+"/24", "dev", ifname)
		l.ip("-n", l.ns(node), "link", "set", ifname, "up")
	}
	link("cl", "eth0", "bra", sfClient)
	link("rt", "eth0", "bra", sfRouterA)
	link("rt", "eth1", "brb", sfRouterB)
	link("d1", "eth0", "brb", sfDir1)
	link("d2", "eth0", "brb", sfDir2)
	link("d1", "eth1", "brc", sfDir1C)
	link("d2", "eth1", "brc", sfDir2C)
	for i, a := range sfDR {
		n := fmt.Sprintf("r%d", i+1)
		link(n, "eth0", "brb", a)
		l.ip("-n", l.ns(n), "route", "add", "default", "via", sfRouterB)
		// A DR real server: the VIP on lo, and no ARP for it (uvs realserver does the same).
		l.ip("-n", l.ns(n), "addr", "add", sfVIP+"/32", "dev", "lo")
		l.exec(n, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")
	}
	for i, a := range sfNAT {
		n := fmt.Sprintf("n%d", i+1)
		link(n, "eth0", "brc", a)
		gw := sfDir1C
		if withVRRP {
			gw = sfGateway // VI_2's address on segment C
		}
		l.ip("-n", l.ns(n), "route", "add", "default", "via", gw)
	}
	l.ip("-n", l.ns("cl"), "route", "add", "default", "via", sfRouterA)
	for _, d := range []string{"d1", "d2"} {
		l.ip("-n", l.ns(d), "route", "add", "default", "via", sfRouterB)
	}
	l.exec("rt", "sysctl", "-qw", "net.ipv4.ip_forward=1")
	if withVRRP {
		l.ip("-n", l.ns("rt"), "route", "add", sfVIP+"/32", "dev", "eth1") // the VRRP master answers ARP for it
	} else {
		l.ip("-n", l.ns("rt"), "route", "add", sfVIP+"/32", "via", sfDir1)
	}
	// A small receive buffer keeps each download's data in flight, not in the client.
	l.exec("cl", "sysctl", "-qw", "net.ipv4.tcp_rmem=4096 8192 16384")
	l.nodes["cl"].Addr = netip.MustParseAddr(sfClient)
	for i, n := range []string{"r1", "r2", "n1", "n2"} {
		addrs := append(append([]string{}, sfDR...), sfNAT...)
		l.nodes[n].Addr = netip.MustParseAddr(addrs[i])
		l.serveBlobs(l.nodes[n])
	}
	return l
}

// blob is the deterministic body of download id: SHA-256 of (id, block) for each 32-byte block.
func blob(id uint32) []byte {
	b := make([]byte, 0, sfBody)
	var in [8]byte
	for i := uint32(0); len(b) < sfBody; i++ {
		binary.BigEndian.PutUint32(in[0:], id)
		binary.BigEndian.PutUint32(in[4:], i)
		s := sha256.Sum256(in[:])
		b = append(b, s[:]...)
	}
	return b[:sfBody]
}

// serveBlobs serves "GET /ID" on port 80 of node with the body of blob(ID), paced to sfRate.
func (l *syncFailoverLab) serveBlobs(n *bench.Node) {
	var ln net.Listener
	if err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", ":80")
		return err
	}); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				f := strings.Fields(line)
				if err != nil || len(f) < 2 {
					return
				}
				id, err := strconv.ParseUint(strings.TrimPrefix(f[1], "/"), 10, 32)
				if err != nil {
					return
				}
				body := blob(uint32(id))
				fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
				const chunk = 16 << 10
				start := time.Now()
				for off := 0; off < len(body); off += chunk {
					if _, err := c.Write(body[off:min(off+chunk, len(body))]); err != nil {
						return
					}
					ahead := time.Duration(float64(off+chunk)/sfRate*float64(time.Second)) - time.Since(start)
					time.Sleep(max(ahead, 0))
				}
			}()
		}
	}()
}

// startDirector runs uvs in node d with the config text, returning the process.
func (l *syncFailoverLab) startDirector(d, cfg string, stderr io.Writer) *bench.Director {
	l.t.Helper()
	bin, err := uvsBinary()
	if err != nil {
		l.t.Fatal(err)
	}
	path := filepath.Join(l.dir, d+".toml")
	writeFile(l.t, path, cfg)
	lab := &bench.Lab{Director: l.nodes[d]}
	dir, err := lab.StartDirector(context.Background(), bin, path, stderr)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { _ = dir.Stop() })
	return dir
}

func (l *syncFailoverLab) directorConfig(d, syncTable string) string {
	return fmt.Sprintf(`[director]
interfaces = ["eth0", "eth1"]
workers = 2
control_socket = %q

[conntrack]
sloppy_tcp = false

[[service]]
vip = %q
port = 80
scheduler = "wlc"
forward = "dr"
  [[service.real]]
  address = %q
  [[service.real]]
  address = %q

[[service]]
vip = %q
port = 8080
scheduler = "wlc"
forward = "nat"
  [[service.real]]
  address = %q
  port = 80
  [[service.real]]
  address = %q
  port = 80
%s`, filepath.Join(l.dir, d+".sock"), sfVIP, sfDR[0], sfDR[1], sfVIP, sfNAT[0], sfNAT[1], syncTable)
}

// status reads uvs list --json from director d.
func (l *syncFailoverLab) status(d string) (*control.Status, error) {
	bin, err := uvsBinary()
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(bin, "list", "--json", "--socket", filepath.Join(l.dir, d+".sock")).Output()
	if err != nil {
		return nil, err
	}
	var st control.Status
	return &st, json.Unmarshal(out, &st)
}

// download fetches blob id from VIP:port and checks its SHA-256; it fails when nothing
// arrives for sfStall.
func (l *syncFailoverLab) download(ctx context.Context, port, id int, progress *int64, mu *sync.Mutex) error {
	c, err := l.nodes["cl"].Dial(ctx, "tcp4", net.JoinHostPort(sfVIP, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "GET /%d HTTP/1.0\r\n\r\n", id); err != nil {
		return err
	}
	var got bytes.Buffer
	buf := make([]byte, 32<<10)
	for {
		_ = c.SetReadDeadline(time.Now().Add(sfStall))
		n, err := c.Read(buf)
		got.Write(buf[:n])
		mu.Lock()
		*progress += int64(n)
		mu.Unlock()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", got.Len(), err)
		}
	}
	_, body, ok := bytes.Cut(got.Bytes(), []byte("\r\n\r\n"))
	if !ok {
		return fmt.Errorf("no HTTP header in %d bytes", got.Len())
	}
	if sha256.Sum256(body) != sha256.Sum256(blob(uint32(id))) {
		return fmt.Errorf("body of %d bytes differs (want %d)", len(body), sfBody)
	}
	return nil
}

// failover runs 20 DR and 20 NAT downloads through d1; once they carry data it calls
// going (a late backup starts there), then waits for ready (with sync: the backup has every
// connection), SIGKILLs d1, moves the VIP and the NAT gateway to d2, and returns the
// downloads' errors.
func (l *syncFailoverLab) failover(going func(), ready func() bool, d1 *bench.Director) []error {
	t := l.t
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	errs := make([]error, 2*sfDownloads)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var progress int64
	for i := range 2 * sfDownloads {
		port := 80
		if i >= sfDownloads {
			port = 8080
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.download(ctx, port, i, &progress, &mu)
		}()
	}
	// Let every connection carry data first.
	for {
		mu.Lock()
		p := progress
		mu.Unlock()
		if p > 2*sfDownloads*64<<10 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("downloads never got going")
		}
		time.Sleep(100 * time.Millisecond)
	}
	going()
	for !ready() {
		if ctx.Err() != nil {
			t.Fatal("the backup never had every connection")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := d1.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d1.Exited()
	if !l.vrrp {
		l.ip("-n", l.ns("rt"), "route", "replace", sfVIP+"/32", "via", sfDir2)
		for _, n := range []string{"n1", "n2"} {
			l.ip("-n", l.ns(n), "route", "replace", "default", "via", sfDir2C)
		}
	}
	wg.Wait()
	return errs
}

// waitVRRP waits until both VRRP instances of director d are in state.
func (l *syncFailoverLab) waitVRRP(d, state string) {
	l.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := l.status(d)
		if err == nil && len(st.VRRP) == 2 && st.VRRP[0].State == state && st.VRRP[1].State == state &&
			(st.Sync == nil || st.Sync.Role == map[string]string{"master": "master", "backup": "backup"}[state]) {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s never became VRRP %s", d, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitControl waits until director d answers on its control socket.
func (l *syncFailoverLab) waitControl(d string) {
	l.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := l.status(d); err == nil {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s never answered on its control socket", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestIntegrationSyncFailover is issue 16's end-to-end test, with explicit roles (master on
// d1, backup on d2) and a manual VIP and gateway move instead of VRRP: 20 long rate-limited
// downloads through a DR service and 20 through a NAT service on the master; the master is
// SIGKILLed; the backup takes over, and all 40 complete with intact content.
//
//   - sync: keyed unicast sync, both directors up before the downloads start.
//   - returning: the backup starts only once the downloads run, and the master sends no
//     periodic records (sync_period = 0): the backup has the connections from its bulk copy.
//   - nosync: the same run without [sync] (sloppy_tcp off, wlc) breaks them, so the test
//     can fail.
func TestIntegrationSyncFailover(t *testing.T) {
	testenv.RequireRoot(t)
	for _, mode := range []string{"vrrp", "sync", "returning", "nosync"} {
		t.Run(mode, func(t *testing.T) {
			syncOn := mode != "nosync"
			l := newSyncFailoverLab(t, mode[:2], mode == "vrrp")
			syncTable := func(role, peer string, prio int) string {
				if mode == "vrrp" {
					// A VRRP pair: VI_1 owns the VIP on eth0, VI_2 the NAT gateway on eth1,
					// moving together (a sync group); sync follows VI_1 (role auto).
					return fmt.Sprintf(`
[[vrrp_sync_group]]
name = "G1"
instances = ["VI_1", "VI_2"]
[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = %d
[[vrrp]]
name = "VI_2"
interface = "eth1"
virtual_router_id = 52
priority = %d
vips = [%q]
[sync]
interface = "eth0"
vrrp_instance = "VI_1"
peers = [%q]
key = "failover-test-key"
`, prio, prio, sfGateway, peer)
				}
				if !syncOn {
					return ""
				}
				tbl := fmt.Sprintf("\n[sync]\ninterface = \"eth0\"\nrole = %q\npeers = [%q]\nkey = \"failover-test-key\"\n", role, peer)
				if mode == "returning" {
					tbl += "sync_period = 0\n"
				}
				return tbl
			}
			var e1, e2 syncBuffer
			d1 := l.startDirector("d1", l.directorConfig("d1", syncTable("master", sfDir2, 150)), &e1)
			if mode == "vrrp" {
				l.waitVRRP("d1", "master")
			}
			startBackup := func() {
				l.startDirector("d2", l.directorConfig("d2", syncTable("backup", sfDir1, 100)), &e2)
				l.waitControl("d2")
				if mode == "vrrp" {
					l.waitVRRP("d2", "backup")
				}
			}
			defer func() {
				if t.Failed() {
					t.Logf("d1 stderr:\n%s\nd2 stderr:\n%s", e1.String(), e2.String())
				}
			}()
			l.waitControl("d1")
			going := func() {}
			if mode == "returning" {
				going = startBackup
			} else {
				startBackup()
			}
			ready := func() bool {
				if !syncOn {
					return true
				}
				// Every download is an active connection in the backup's table.
				st, err := l.status("d2")
				if err != nil {
					return false
				}
				var active int64
				for _, s := range st.Services {
					for _, r := range s.Reals {
						active += r.ActiveConns
					}
				}
				return active >= 2*sfDownloads
			}
			errs := l.failover(going, ready, d1)
			failed := 0
			for i, err := range errs {
				if err != nil {
					failed++
					if syncOn {
						t.Errorf("download %d (port %d): %v", i, map[bool]int{true: 80, false: 8080}[i < sfDownloads], err)
					}
				}
			}
			if syncOn {
				st, err := l.status("d2")
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("backup's sync: %+v", *st.Sync)
				if len(st.Sync.Dropped) != 0 {
					t.Errorf("the backup dropped sync messages or records: %v", st.Sync.Dropped)
				}
				return
			}
			if failed == 0 {
				t.Fatal("without sync every download survived the failover: the test cannot tell sync from luck")
			}
			t.Logf("without sync %d of %d downloads broke", failed, len(errs))
		})
	}
}
