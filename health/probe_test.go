package health

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/config"
)

func newCheck(typ config.CheckType) *config.Check {
	return &config.Check{Type: typ, Interval: 5 * time.Second, Timeout: 3 * time.Second,
		Rise: 1, Fall: 1, Path: "/", Via: config.ViaReal}
}

// runProbe runs c against dst with c's timeout.
func runProbe(t *testing.T, c *config.Check, dst netip.AddrPort) error {
	t.Helper()
	p := newProbe(c, target{real: dst, vip: netip.MustParseAddrPort("198.18.0.100:80"), proto: config.TCP})
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	return p(ctx)
}

func addrOf(t testing.TB, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// closedPort returns a loopback port nobody listens on.
func closedPort(t *testing.T) netip.AddrPort {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := addrOf(t, ln.Addr())
	ln.Close()
	return ap
}

// tcpServer answers every connection with reply (after reading len(want) bytes, if any).
func tcpServer(t *testing.T, reply string, readFirst int) netip.AddrPort {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if readFirst > 0 {
					buf := make([]byte, readFirst)
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
				}
				_, _ = io.WriteString(c, reply)
			}()
		}
	}()
	return addrOf(t, ln.Addr())
}

func TestProbeTCP(t *testing.T) {
	banner := tcpServer(t, "+PONG\r\n", 6)
	silent := tcpServer(t, "", 0)
	tests := []struct {
		name    string
		dst     netip.AddrPort
		payload string
		expect  string
		wantErr string
	}{
		{"connect", silent, "", "", ""},
		{"refused", closedPort(t), "", "", "connect: connection refused"},
		{"payload and expect", banner, "PING\r\n", `^\+PONG`, ""},
		{"expect mismatch", banner, "PING\r\n", `^-ERR`, `reply "+PONG\r\n" does not match`},
		{"expect but silent", silent, "", "x", "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCheck(config.CheckTCP)
			c.Payload, c.Expect = tt.payload, tt.expect
			checkErr(t, runProbe(t, c, tt.dst), tt.wantErr)
		})
	}
}

func TestProbeTCPTimeout(t *testing.T) {
	// A server that accepts and never answers: the expect read runs into the timeout.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := newCheck(config.CheckTCP)
	c.Expect, c.Timeout = "ok", 200*time.Millisecond
	start := time.Now()
	// The server never answers, so only the deadline can end the read: the error proves it did.
	checkErr(t, runProbe(t, c, addrOf(t, ln.Addr())), "read: timeout")
	t.Logf("probe returned after %v with a %v timeout", time.Since(start), c.Timeout)
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("err = %v, want nil", err)
	case want != "" && err == nil:
		t.Errorf("err = nil, want %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("err = %q, want %q in it", err, want)
	}
}

func TestProbeHTTP(t *testing.T) {
	var mu sync.Mutex
	var gotHost, gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotHost, gotPath = r.Host, r.URL.Path
		mu.Unlock()
		switch r.URL.Path {
		case "/status500":
			http.Error(w, "broken", http.StatusInternalServerError)
		case "/moved":
			http.Redirect(w, r, "/", http.StatusFound)
		case "/slow":
			// Never answers: only the probe's deadline ends the request (the probe
			// then closes the connection, which ends this context).
			<-r.Context().Done()
		default:
			_, _ = io.WriteString(w, "hello uvs\n")
		}
	}))
	defer srv.Close()
	dst := addrOf(t, srv.Listener.Addr())
	sum := md5.Sum([]byte("hello uvs\n"))
	digest := hex.EncodeToString(sum[:])
	tests := []struct {
		name    string
		mod     func(c *config.Check)
		wantErr string
	}{
		{"200", func(c *config.Check) {}, ""},
		{"500", func(c *config.Check) { c.Path = "/status500" }, "GET /status500: status 500"},
		{"500 expected", func(c *config.Check) { c.Path, c.ExpectStatus = "/status500", []int{500, 503} }, ""},
		{"200 not in list", func(c *config.Check) { c.ExpectStatus = []int{204} }, "status 200"},
		{"redirect is judged, not followed", func(c *config.Check) { c.Path = "/moved" }, "status 302"},
		{"redirect expected", func(c *config.Check) { c.Path, c.ExpectStatus = "/moved", []int{302} }, ""},
		{"body regex", func(c *config.Check) { c.Expect = `^hello` }, ""},
		{"body regex mismatch", func(c *config.Check) { c.Expect = `^bye` }, `body does not match "^bye"`},
		{"digest", func(c *config.Check) { c.Digest = digest }, ""},
		{"digest mismatch", func(c *config.Check) { c.Digest = strings.Repeat("0", 32) }, "digest " + digest},
		{"timeout", func(c *config.Check) { c.Path, c.Timeout = "/slow", 200*time.Millisecond }, "GET /slow: timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCheck(config.CheckHTTP)
			tt.mod(c)
			checkErr(t, runProbe(t, c, dst), tt.wantErr)
		})
	}
	c := newCheck(config.CheckHTTP)
	c.Host, c.Path = "www.example.com", "/healthz"
	checkErr(t, runProbe(t, c, dst), "")
	mu.Lock()
	defer mu.Unlock()
	if gotHost != "www.example.com" || gotPath != "/healthz" {
		t.Errorf("server saw Host %q path %q", gotHost, gotPath)
	}
	checkErr(t, runProbe(t, newCheck(config.CheckHTTP), closedPort(t)), "connection refused")
}

func TestProbeHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "secure\n")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes are the point
	srv.StartTLS()
	defer srv.Close()
	dst := addrOf(t, srv.Listener.Addr())
	c := newCheck(config.CheckHTTPS)
	c.Timeout = 5 * time.Second          // handshakes are slow under the race detector
	checkErr(t, runProbe(t, c, dst), "") // self-signed: fine without tls_verify
	c.TLSVerify = true
	checkErr(t, runProbe(t, c, dst), "certificate")
	// Plain HTTP to a TLS port fails.
	checkErr(t, runProbe(t, newCheck(config.CheckHTTP), dst), "status 400")
}

func TestProbeUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) == "quiet" {
				continue
			}
			_, _ = pc.WriteTo(append([]byte("echo:"), buf[:n]...), a)
		}
	}()
	dst := addrOf(t, pc.LocalAddr())
	closed := func() netip.AddrPort {
		p, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ap := addrOf(t, p.LocalAddr())
		p.Close()
		return ap
	}()
	tests := []struct {
		name    string
		dst     netip.AddrPort
		payload string
		expect  string
		timeout time.Duration
		wantErr string
	}{
		{"reply", dst, "ping", "", 0, ""},
		{"reply matches", dst, "ping", "^echo:ping$", 0, ""},
		{"reply mismatch", dst, "ping", "^pong", 0, `reply "echo:ping" does not match`},
		{"no reply", dst, "quiet", "", 200 * time.Millisecond, "read: timeout"},
		{"port unreachable", closed, "ping", "", 0, "read: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCheck(config.CheckUDP)
			c.Payload, c.Expect = tt.payload, tt.expect
			if tt.timeout > 0 {
				c.Timeout = tt.timeout
			}
			checkErr(t, runProbe(t, c, tt.dst), tt.wantErr)
		})
	}
}

func TestProbeExec(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	tests := []struct {
		name    string
		argv    []string
		wantErr string
	}{
		{"exit 0", []string{"/bin/sh", "-c", "exit 0"}, ""},
		{"exit 1", []string{"/bin/sh", "-c", "echo 'no backend' >&2; exit 1"}, "exec: exit status 1: no backend"},
		{"missing program", []string{filepath.Join(dir, "nope")}, "no such file"},
		// The argv is passed as is: shell syntax in an argument is just text.
		{"no shell", []string{"/bin/echo", "$(touch " + filepath.Join(dir, "pwned") + ")", ";", "exit", "1"}, ""},
		{"environment", []string{"/bin/sh", "-c", `echo "$UVS_REAL_ADDR $UVS_REAL_PORT $UVS_VIP $UVS_VPORT $UVS_PROTOCOL" > ` + envFile}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCheck(config.CheckExec)
			c.Command = tt.argv
			checkErr(t, runProbe(t, c, netip.MustParseAddrPort("198.18.1.11:8080")), tt.wantErr)
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("an argument was run through a shell")
	}
	if b, err := os.ReadFile(envFile); err != nil || string(b) != "198.18.1.11 8080 198.18.0.100 80 tcp\n" {
		t.Errorf("environment seen by the command: %q, %v", b, err)
	}
}

// TestProbeExecTimeoutKillsGroup runs a check script that starts a child and hangs; at the
// timeout both must be gone.
func TestProbeExecTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	c := newCheck(config.CheckExec)
	c.Timeout = 300 * time.Millisecond
	c.Command = []string{"/bin/sh", "-c", "sleep 30 & echo $! > " + pidFile + "; echo $$ >> " + pidFile + "; wait"}
	start := time.Now()
	// The script waits for a 30 s sleep: only the timeout can end it, and the error says so.
	checkErr(t, runProbe(t, c, netip.MustParseAddrPort("127.0.0.1:1")), "exec: timeout (process group killed)")
	t.Logf("probe returned after %v with a %v timeout", time.Since(start), c.Timeout)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		if !gone(pid) {
			t.Errorf("process %d of the check is still alive", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// gone reports whether pid has exited (reaped, or a zombie waiting for init). It polls:
// SIGKILL is delivered at once, but the exit itself waits for the scheduler, so the bound
// (10 s) only stops a test that would otherwise hang.
func gone(pid int) bool {
	for range 1000 {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return true
		}
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
				return true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}
