package health

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/uvs-project/uvs/config"
)

// TestProbeIPv6 runs the TCP, HTTP and UDP probes against IPv6 loopback servers: probes go
// out of the real's family, and the HTTP URL brackets the address.
func TestProbeIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "hello "+r.Host+"\n")
		}))
	}()
	dst := addrOf(t, ln.Addr())
	if !dst.Addr().Is6() {
		t.Fatalf("listener on %v", dst)
	}
	checkErr(t, runProbe(t, newCheck(config.CheckTCP), dst), "")
	c := newCheck(config.CheckHTTP)
	c.Expect = `^hello \[::1\]:`
	checkErr(t, runProbe(t, c, dst), "")

	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], a)
		}
	}()
	u := newCheck(config.CheckUDP)
	u.Payload, u.Expect = "ping6", "^ping6$"
	checkErr(t, runProbe(t, u, addrOf(t, pc.LocalAddr())), "")
}
