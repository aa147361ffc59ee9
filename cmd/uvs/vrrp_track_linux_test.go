//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/vrrp"
)

// vrrpStatus returns the first instance of uvs list --json on host.
func (v *vrrpNet) vrrpStatus(host string) (vrrp.Status, bool) {
	bin, _ := uvsBinary()
	out, err := v.in(host, bin, "list", "--json", "--socket", filepath.Join(v.dir, host+".sock"))
	if err != nil {
		return vrrp.Status{}, false
	}
	var st struct {
		VRRP []vrrp.Status `json:"vrrp"`
	}
	if json.Unmarshal([]byte(out), &st) != nil || len(st.VRRP) == 0 {
		return vrrp.Status{}, false
	}
	return st.VRRP[0], true
}

// sendRaw sends IPv4 packets (IP_HDRINCL) from host's namespace out of e0 to dst.
func (v *vrrpNet) sendRaw(host string, dst netip.Addr, pkts ...[]byte) {
	v.t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		errc <- func() error {
			f, err := os.Open("/var/run/netns/" + v.ns(host))
			if err != nil {
				return err
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				return err
			}
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, vrrp.Protocol)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
				return err
			}
			if err := unix.BindToDevice(fd, "e0"); err != nil {
				return err
			}
			for _, p := range pkts {
				if err := unix.Sendto(fd, p, 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
					return err
				}
			}
			return nil
		}()
	}()
	if err := <-errc; err != nil {
		v.t.Fatalf("send from %s: %v", host, err)
	}
}

// TestIntegrationVRRPHostile sends hostile adverts with a higher priority from a third host:
// TTL 254, a bad checksum, the wrong version, a different v2 interval, another VRID, and a
// wrong PASS password. None may move the master; each is counted under its reason.
func TestIntegrationVRRPHostile(t *testing.T) {
	n := newVRRPNet(t, "d1", "evil", "real")
	n.uvs("d1", n.pairConfig(100, "auth_type = \"pass\"\nauth_pass = \"secret\"\n"))
	waitFor(t, masterDown(time.Second, 100)+2*time.Second, "d1 master", func() bool { return n.vrrpState("d1") == "master" })
	src := netip.MustParseAddr(n.addr("evil"))
	vip := netip.MustParseAddr(vrrpVIP)
	var pass [8]byte
	copy(pass[:], "secret")
	advert := func(mod func(a *vrrp.Advert)) []byte {
		a := vrrp.Advert{Version: 2, VRID: 51, Priority: 254, Interval: time.Second, AuthType: vrrp.AuthPass, Auth: pass, Addrs: []netip.Addr{vip}}
		mod(&a)
		return vrrp.AppendPacket(nil, &a, src, vrrp.Group, 1)
	}
	ttl := advert(func(*vrrp.Advert) {})
	ttl[8] = 254
	ttl[10], ttl[11] = 0, 0 // the kernel fills in the header checksum (IP_HDRINCL)
	sum := advert(func(*vrrp.Advert) {})
	sum[len(sum)-1] ^= 0xff // corrupt the auth data: the VRRP checksum fails
	ver := advert(func(a *vrrp.Advert) { a.Version = 3 })
	iv := advert(func(a *vrrp.Advert) { a.Interval = 2 * time.Second })
	vrid := advert(func(a *vrrp.Advert) { a.VRID = 52 })
	pw := advert(func(a *vrrp.Advert) { copy(a.Auth[:], "guess\x00\x00\x00") })
	for range 3 {
		n.sendRaw("evil", vrrp.Group, ttl, sum, ver, iv, vrid, pw)
		time.Sleep(300 * time.Millisecond)
	}
	want := []string{"ttl", "checksum", "version", "interval", "vrid", "auth"}
	waitFor(t, 3*time.Second, "every hostile advert counted", func() bool {
		st, ok := n.vrrpStatus("d1")
		if !ok {
			return false
		}
		for _, r := range want {
			if st.Drops[r] < 3 {
				return false
			}
		}
		return true
	})
	st, _ := n.vrrpStatus("d1")
	if st.State != "master" || st.Transitions != 2 {
		t.Fatalf("hostile adverts moved the instance: %+v", st)
	}
	t.Logf("dropped: %v", st.Drops)
	// The same drops in the metrics? uvs_vrrp_dropped_adverts_total is read from the same
	// counters (control's collector); a valid advert with a higher priority still wins.
	n.sendRaw("evil", vrrp.Group, advert(func(*vrrp.Advert) {}))
	waitFor(t, 3*time.Second, "a valid higher-priority advert is obeyed", func() bool { return n.vrrpState("d1") == "backup" })
}

// TestIntegrationVRRPTrackAndNotify: a tracked interface going down puts the instance in
// fault (it stops answering ARP for the VIP) and back; notify commands run, as argv, without
// the director's capabilities.
func TestIntegrationVRRPTrackAndNotify(t *testing.T) {
	n := newVRRPNet(t, "d1", "client", "real")
	n.must("ip", "-n", n.ns("d1"), "link", "add", "e1", "type", "veth", "peer", "name", "e1p")
	n.must("ip", "-n", n.ns("d1"), "link", "set", "e1", "up")
	n.must("ip", "-n", n.ns("d1"), "link", "set", "e1p", "up")
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	hook := func(name string) string {
		// The test's own hook names a shell explicitly: uvs itself never adds one.
		return fmt.Sprintf("[\"/bin/sh\", \"-c\", \"grep CapEff /proc/self/status > %s/%s; echo $UVS_VRRP_STATE >> %s/%s\"]", dir, name, dir, name)
	}
	n.uvs("d1", n.pairConfig(100, "track_interface = [\"e1\"]\nnotify_master = "+hook("master")+"\nnotify_fault = "+hook("fault")+"\n"))
	waitFor(t, masterDown(time.Second, 100)+2*time.Second, "d1 master", func() bool { return n.vrrpState("d1") == "master" })
	d1MAC := n.mac("d1")
	n.wantARP("master", "client", vrrpVIP, d1MAC)
	readHook := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return string(b)
	}
	waitFor(t, 5*time.Second, "notify_master ran", func() bool { return strings.Contains(readHook("master"), "master") })
	if got := readHook("master"); !strings.Contains(got, "CapEff:\t0000000000000000") {
		t.Errorf("notify_master ran with capabilities: %q", got)
	}

	n.must("ip", "-n", n.ns("d1"), "link", "set", "e1p", "down")
	waitFor(t, 3*time.Second, "fault when e1 loses its carrier", func() bool { return n.vrrpState("d1") == "fault" })
	if got := n.arpRepliers("client", vrrpVIP); len(got) != 0 {
		t.Errorf("in fault, ARP for the VIP answered by %v", got)
	}
	waitFor(t, 5*time.Second, "notify_fault ran", func() bool { return strings.Contains(readHook("fault"), "fault") })
	n.must("ip", "-n", n.ns("d1"), "link", "set", "e1p", "up")
	waitFor(t, masterDown(time.Second, 100)+3*time.Second, "master again when e1 is back", func() bool { return n.vrrpState("d1") == "master" })
	n.wantARP("master again", "client", vrrpVIP, d1MAC)
}

// TestIntegrationVRRPReload: a reload that changes a key needing a restart is rejected with
// the key named and the old configuration keeps running; a priority change applies without a
// state change.
func TestIntegrationVRRPReload(t *testing.T) {
	n := newVRRPNet(t, "d1", "client", "real")
	_, path := n.uvs("d1", n.pairConfig(100, ""))
	waitFor(t, masterDown(time.Second, 100)+2*time.Second, "d1 master", func() bool { return n.vrrpState("d1") == "master" })
	bin, _ := uvsBinary()
	sock := filepath.Join(n.dir, "d1.sock")
	orig := mustRead(t, path)

	writeFile(t, path, strings.Replace(orig, "virtual_router_id = 51", "virtual_router_id = 52", 1))
	out, err := n.in("d1", bin, "reload", "--socket", sock)
	if err == nil || !strings.Contains(out, "virtual_router_id") {
		t.Fatalf("reload with a new virtual_router_id: err %v, output %q; want a rejection naming the key", err, out)
	}
	st, _ := n.vrrpStatus("d1")
	if st.State != "master" || st.VRID != 51 || st.Transitions != 2 {
		t.Fatalf("after the rejected reload: %+v", st)
	}

	writeFile(t, path, strings.Replace(orig, "priority = 100", "priority = 120", 1))
	if out, err := n.in("d1", bin, "reload", "--socket", sock); err != nil {
		t.Fatalf("reload with a new priority: %v\n%s", err, out)
	}
	waitFor(t, 2*time.Second, "priority 120 in effect", func() bool {
		st, _ := n.vrrpStatus("d1")
		return st.Priority == 120
	})
	if st, _ := n.vrrpStatus("d1"); st.State != "master" || st.Transitions != 2 {
		t.Fatalf("the priority reload flapped the state: %+v", st)
	}
	n.wantARP("after reload", "client", vrrpVIP, n.mac("d1"))
}

// TestIntegrationVRRPTrackService: track_service puts the instance in fault while the
// service has no healthy real server (uvs's own health check), and back when it has one.
func TestIntegrationVRRPTrackService(t *testing.T) {
	n := newVRRPNet(t, "d1", "client", "real")
	body := fmt.Sprintf("[[service]]\nname = \"web\"\nvip = %q\nport = 80\nforward = \"dr\"\n"+
		"  [service.check]\n  type = \"tcp\"\n  interval = \"1s\"\n  timeout = \"500ms\"\n  rise = 1\n  fall = 1\n"+
		"  [[service.real]]\n  address = %q\n"+
		"[[vrrp]]\nname = \"VI_1\"\ninterface = \"e0\"\nvirtual_router_id = 51\ntrack_service = [\"web\"]\n", vrrpVIP, n.addr("real"))
	n.uvs("d1", body)
	// No server on the real yet: the check fails, the instance goes to fault.
	waitFor(t, 10*time.Second, "fault while web has no healthy real", func() bool { return n.vrrpState("d1") == "fault" })
	n.startReal("real")
	waitFor(t, masterDown(time.Second, 100)+5*time.Second, "master once web is healthy", func() bool { return n.vrrpState("d1") == "master" })
	n.wantARP("master", "client", vrrpVIP, n.mac("d1"))
}
