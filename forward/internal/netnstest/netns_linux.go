package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netns"

	"github.com/uvs-project/uvs/internal/testenv"
)

// Helpers for the TestIntegration tests: namespaces, links and addresses are
// set up with ip(8), which is what an operator would type; the code under
// test uses netlink itself.

// RequireNetAdmin skips the test without root, or fails it when CI=true.
func RequireNetAdmin(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs ip(8)"
	}
	if why != "" {
		testenv.SkipOrFail(t, "integration test: %s", why)
	}
}

// NSPrefix returns a random prefix so parallel runs never share names.
func NSPrefix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random prefix: %v", err)
	}
	return "uvst" + hex.EncodeToString(b)
}

// Sh runs a command and fails the test if it fails.
func Sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		if len(args) > 2 && args[1] == "netns" && args[2] == "add" {
			testenv.SkipOrFail(t, "cannot create network namespace: %v: %s", err, out)
		}
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// NewNS creates a network namespace removed when the test ends, with lo up.
func NewNS(t *testing.T, name string) string {
	t.Helper()
	Sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	Sh(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// VethPair connects namespaces a and b with a veth pair named ifa in a and
// ifb in b, both up. The pair dies with either namespace.
func VethPair(t *testing.T, a, ifa, b, ifb string) {
	t.Helper()
	Sh(t, "ip", "link", "add", ifa, "netns", a, "type", "veth", "peer", "name", ifb, "netns", b)
	Sh(t, "ip", "-n", a, "link", "set", ifa, "up")
	Sh(t, "ip", "-n", b, "link", "set", ifb, "up")
	// The kernel activates a link's qdisc from linkwatch, up to a second after the carrier
	// comes up; until then it drops what is sent (noop qdisc). Wait until both ends are
	// operationally up, so a test's first frame is not lost.
	for _, end := range [][2]string{{a, ifa}, {b, ifb}} {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(Sh(t, "ip", "-n", end[0], "-o", "link", "show", end[1]), "state UP") {
			if time.Now().After(deadline) {
				t.Fatalf("%s in %s is not up after 5s", end[1], end[0])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Sysctl sets a sysctl inside namespace ns.
func Sysctl(t *testing.T, ns, kv string) {
	t.Helper()
	Sh(t, "ip", "netns", "exec", ns, "sysctl", "-qw", kv)
}

// inNS runs f on a fresh OS thread switched into namespace ns. The thread is
// never unlocked, so the runtime discards it when f returns rather than
// reusing a thread in the wrong namespace. Sockets and netlink handles f
// opens stay in ns after it returns.
func inNS(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("get netns %s: %w", ns, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("set netns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// MustInNS is inNS failing the test on error.
func MustInNS(t *testing.T, ns string, f func() error) {
	t.Helper()
	if err := inNS(ns, f); err != nil {
		t.Fatal(err)
	}
}

// Nstat returns the absolute value of a SNMP counter in namespace ns.
func Nstat(t *testing.T, ns, counter string) uint64 {
	t.Helper()
	out := Sh(t, "ip", "netns", "exec", ns, "nstat", "-asz", counter)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == counter {
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatalf("nstat %s: %q: %v", counter, line, err)
			}
			return v
		}
	}
	t.Fatalf("nstat %s: not found in %q", counter, out)
	return 0
}

// ListenAll opens an AF_PACKET socket for protocol proto on ifname in ns.
func ListenAll(t *testing.T, ns, ifname string, proto uint16) *packet.Conn {
	t.Helper()
	var c *packet.Conn
	MustInNS(t, ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, int(proto), nil)
		return err
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// AwaitFrame reads c until a frame satisfies match or timeout passes.
func AwaitFrame(c *packet.Conn, timeout time.Duration, match func([]byte) bool) bool {
	buf := make([]byte, 65536)
	deadline := time.Now().Add(timeout)
	for {
		if err := c.SetReadDeadline(deadline); err != nil {
			return false
		}
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return false
		}
		if match(buf[:n]) {
			return true
		}
	}
}

// IPv4Frame reports whether frame is IPv4 with protocol proto from src to
// dst; zero addresses match any.
func IPv4Frame(frame []byte, proto uint8, src, dst [4]byte) bool {
	if len(frame) < 14+20 || frame[12] != 0x08 || frame[13] != 0x00 {
		return false
	}
	ip := frame[14:]
	if ip[9] != proto {
		return false
	}
	if src != ([4]byte{}) && [4]byte(ip[12:16]) != src {
		return false
	}
	return dst == ([4]byte{}) || [4]byte(ip[16:20]) == dst
}

// SendUDP sends count datagrams from src (host:port, port may be 0) to dst
// inside namespace ns.
func SendUDP(t *testing.T, ns, src, dst string, count int) {
	t.Helper()
	MustInNS(t, ns, func() error {
		la, err := net.ResolveUDPAddr("udp", src)
		if err != nil {
			return err
		}
		ra, err := net.ResolveUDPAddr("udp", dst)
		if err != nil {
			return err
		}
		c, err := net.ListenUDP("udp", la)
		if err != nil {
			return err
		}
		defer c.Close()
		for i := 0; i < count; i++ {
			if _, err := c.WriteToUDP([]byte("uvs test"), ra); err != nil {
				return fmt.Errorf("send %s -> %s: %w", src, dst, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	})
}

// Addr4 parses a dotted quad for tests.
func Addr4(s string) [4]byte {
	ip := net.ParseIP(s).To4()
	if ip == nil {
		panic("bad IPv4 address " + s)
	}
	return [4]byte(ip)
}

// MACOf returns the MAC of ifname in ns.
func MACOf(t *testing.T, ns, ifname string) [6]byte {
	t.Helper()
	var mac [6]byte
	MustInNS(t, ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		mac = [6]byte(ifi.HardwareAddr)
		return nil
	})
	return mac
}
