//go:build linux

package health

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/config"
)

// TestCheckerOverhead measures the checker's CPU and memory with many reals, each an HTTP
// server on its own loopback port in a child process (so that the servers' CPU is not
// counted). It runs only when asked:
//
//	UVS_HEALTH_OVERHEAD=1 go test -run TestCheckerOverhead -v ./health
//
// UVS_HEALTH_REALS (default 1000), UVS_HEALTH_TYPE (http or tcp, default http) and
// UVS_HEALTH_SECONDS (default 30) change the run.
func TestCheckerOverhead(t *testing.T) {
	if os.Getenv("UVS_HEALTH_OVERHEAD") == "" {
		t.Skip("set UVS_HEALTH_OVERHEAD=1 to measure")
	}
	n := envInt("UVS_HEALTH_REALS", 1000)
	secs := envInt("UVS_HEALTH_SECONDS", 30)
	typ, err := config.ParseCheckType(envStr("UVS_HEALTH_TYPE", "http"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperListeners$")
	cmd.Env = append(os.Environ(), "UVS_HEALTH_HELPER="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var ports []uint16
	sc := bufio.NewScanner(out)
	for len(ports) < n && sc.Scan() {
		p, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			continue
		}
		ports = append(ports, uint16(p))
	}
	if len(ports) != n {
		t.Fatalf("helper opened %d listeners, want %d", len(ports), n)
	}
	c := &config.Check{Type: typ, Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2, Path: "/", Via: config.ViaReal}
	s := config.Service{VIP: netip.MustParseAddr("198.18.0.100"), Protocol: config.TCP, Port: 80,
		OnFailure: config.FailQuiesce, Quorum: 1, Check: c}
	for _, p := range ports {
		s.Reals = append(s.Reals, config.Real{Address: netip.MustParseAddr("127.0.0.1"), Port: p, Weight: 1, Forward: config.NAT})
	}
	var downs int
	reasons := map[string]int{}
	mu := make(chan struct{}, 1)
	hc := New(Config{Update: func(_ Ref, st Status) {
		mu <- struct{}{}
		if !st.Up {
			downs++
			reasons[st.Reason]++
		}
		<-mu
	}})
	defer hc.Close()
	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	if err := hc.Apply(&config.Config{Services: []config.Service{s}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // every check has run at least once
	cpu0, wall0 := cpuTime(t), time.Now()
	p0, f0 := hc.Probes()
	time.Sleep(time.Duration(secs) * time.Second)
	cpu, wall := cpuTime(t)-cpu0, time.Since(wall0)
	p1, f1 := hc.Probes()
	probes, failed := p1-p0, f1-f0
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mu <- struct{}{}
	d := downs
	<-mu
	t.Logf("%d %s checks at 1s interval for %v: %d probes (%.0f/s, %d failed), CPU %.1f%% of one core (%.0f µs per probe), "+
		"heap in use %.1f MiB (+%.1f MiB), RSS %.1f MiB, %d goroutines, %d down transitions, GOMAXPROCS %d",
		n, typ, wall.Round(time.Second), probes, float64(probes)/wall.Seconds(), failed, 100*cpu.Seconds()/wall.Seconds(),
		float64(cpu.Microseconds())/float64(max(probes, 1)),
		float64(ms.HeapInuse)/(1<<20), (float64(ms.HeapInuse)-float64(ms0.HeapInuse))/(1<<20),
		float64(rssKiB(t))/1024, runtime.NumGoroutine(), d, runtime.GOMAXPROCS(0))
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("load average %s; down reasons %v", strings.Join(strings.Fields(string(load))[:3], " "), reasons)
}

// TestHelperListeners is the child of TestCheckerOverhead: it opens the listeners, prints
// their ports and serves until killed.
func TestHelperListeners(t *testing.T) {
	n := envInt("UVS_HEALTH_HELPER", 0)
	if n == 0 {
		t.Skip("helper process only")
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	srv := &http.Server{Handler: h}
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(ln) }()
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	}
	select {}
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssKiB(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return n
	}
	return def
}

func envStr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
