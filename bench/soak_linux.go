//go:build linux

package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// RunSoak builds a DR lab, starts the director (uvsBinary) with an HTTP and a UDP service,
// and for cfg.Duration drives HTTP requests (a new connection each) and UDP echoes through
// the VIP while reloading the config every ReloadEvery (a weight changes) and flipping one
// real's health check every FlapEvery (an exec check that the soak makes fail and pass; the
// real keeps serving, so connections must never fail). It samples the director's RSS,
// goroutines and open descriptors from its own /metrics. Everything is removed at the end.
func RunSoak(ctx context.Context, uvsBinary string, cfg SoakConfig) (rep *SoakReport, err error) {
	if cfg.Duration == 0 {
		cfg.Duration = 60 * time.Second
	}
	if cfg.Sample == 0 {
		cfg.Sample = 5 * time.Second
	}
	if cfg.ReloadEvery == 0 {
		cfg.ReloadEvery = 3 * time.Second
	}
	if cfg.FlapEvery == 0 {
		cfg.FlapEvery = 7 * time.Second
	}
	if cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("uvsoak%d-", os.Getpid())
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	lab, err := NewLab(ctx, LabSpec{Prefix: cfg.Prefix, Topology: TopologyDR})
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := lab.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := lab.PrepareReals("dr"); err != nil {
		return nil, err
	}
	// A new connection per request at a few thousand a second: with the default port range
	// and no reuse of TIME_WAIT ports, the client's connect() runs out of ports after
	// about 30 s and the soak's load falls to a tenth. Keep the load for the whole run.
	if err := writeSysctls(lab.Client.NS, map[string]string{
		"ipv4/ip_local_port_range": "1024 65535",
		"ipv4/tcp_tw_reuse":        "1",
	}); err != nil {
		return nil, err
	}
	srv, err := lab.StartServers(80, UDPPort)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	dir, err := os.MkdirTemp("", "uvs-soak-")
	if err != nil {
		return nil, fmt.Errorf("bench: soak: %w", err)
	}
	defer os.RemoveAll(dir)
	downFile := filepath.Join(dir, "rs2.down")
	cfgPath := filepath.Join(dir, "uvs.toml")
	const metricsPort = 9750
	write := func(w1 int) error {
		text := soakConfig(lab, dir, downFile, metricsPort, w1)
		if cfg.Backend != "" {
			text = strings.Replace(text, "[director]\n", fmt.Sprintf("[director]\nbackend = %q\n", cfg.Backend), 1)
		}
		return os.WriteFile(cfgPath, []byte(text), 0o644)
	}
	if err := write(1); err != nil {
		return nil, fmt.Errorf("bench: soak: %w", err)
	}
	logs := &tailBuffer{max: 1 << 20}
	d, err := lab.StartDirector(ctx, uvsBinary, cfgPath, logs)
	if err != nil {
		return nil, err
	}
	defer d.Stop()
	web := lab.Client.HTTPClient()
	url := "http://" + netip.AddrPortFrom(lab.VIP, 80).String() + "/"
	if err := waitReady(ctx, 15*time.Second, d, func(ctx context.Context) error {
		_, err := Get(ctx, web, url)
		return err
	}); err != nil {
		return nil, fmt.Errorf("bench: soak: director not ready: %w\n%s", err, logs.String())
	}
	if cfg.Ready != nil {
		if err := cfg.Ready(filepath.Join(dir, "uvs.sock")); err != nil {
			return nil, fmt.Errorf("bench: soak: %w", err)
		}
	}
	metrics := lab.Director.HTTPClient()
	scrape := func() (map[string]float64, error) {
		return scrapeMetrics(ctx, metrics, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	}

	var httpOK, httpFailed, udpOK, udpFailed, udpRetried, reloads, flaps atomic.Int64
	rep = &SoakReport{}
	var errMu sync.Mutex
	start := time.Now()
	noteErr := func(kind string, err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(rep.Errors) < maxSoakErrors {
			rep.Errors = append(rep.Errors, SoakError{Seconds: time.Since(start).Seconds(), Kind: kind, Err: fmt.Sprint(err)})
		}
	}
	rctx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { // HTTP: a new connection per request
		defer wg.Done()
		for rctx.Err() == nil {
			rq, cancel := context.WithTimeout(rctx, 5*time.Second)
			body, err := Get(rq, web, url)
			cancel()
			switch {
			case rctx.Err() != nil:
			case err != nil:
				httpFailed.Add(1)
				noteErr("http", err)
			case string(body) != "rs1\n" && string(body) != "rs2\n":
				httpFailed.Add(1)
				noteErr("http", fmt.Errorf("answer %q", body))
			default:
				httpOK.Add(1)
			}
		}
	}()
	go func() { // UDP echo
		defer wg.Done()
		for i := 0; rctx.Err() == nil; i++ {
			// UDP may lose a datagram; like any UDP client the soak asks again once, and
			// counts a failure only when the second answer is missing too.
			var err error
			for try := 0; try < 2 && rctx.Err() == nil; try++ {
				if try > 0 {
					udpRetried.Add(1)
					noteErr("udp-retry", err)
				}
				_, err = udpEcho(rctx, lab.Client, netip.AddrPortFrom(lab.VIP, UDPPort), "soak-"+strconv.Itoa(i))
				if err == nil {
					break
				}
			}
			switch {
			case rctx.Err() != nil:
			case err != nil:
				udpFailed.Add(1)
				noteErr("udp", err)
			default:
				udpOK.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() { // reloads
		defer wg.Done()
		t := time.NewTicker(cfg.ReloadEvery)
		defer t.Stop()
		for w := 2; ; w = 3 - w {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
			}
			if write(w) == nil && d.Signal(syscall.SIGHUP) == nil {
				reloads.Add(1)
			}
		}
	}()
	go func() { // health flaps
		defer wg.Done()
		t := time.NewTicker(cfg.FlapEvery)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				_ = os.Remove(downFile)
				return
			case <-t.C:
			}
			if _, err := os.Stat(downFile); err == nil {
				_ = os.Remove(downFile)
			} else {
				_ = os.WriteFile(downFile, nil, 0o644)
			}
			flaps.Add(1)
		}
	}()

	fmt.Fprintf(out, "%6s %10s %10s %10s %8s %9s %8s %9s %8s %8s\n", "t(s)", "rss(MiB)", "heap(MiB)", "goroutines", "fds", "http ok", "failed", "udp ok", "failed", "reloads")
	sample := func() {
		m, err := scrape()
		if err != nil {
			fmt.Fprintf(out, "metrics: %v\n", err)
			return
		}
		s := SoakSample{
			Seconds: time.Since(start).Seconds(), RSSBytes: m["process_resident_memory_bytes"],
			Goroutines: m["go_goroutines"], OpenFDs: m["process_open_fds"], HeapBytes: m["go_memstats_heap_inuse_bytes"],
			HTTPOK: httpOK.Load(), HTTPFailed: httpFailed.Load(), UDPOK: udpOK.Load(), UDPFailed: udpFailed.Load(), UDPRetried: udpRetried.Load(),
			Reloads: reloads.Load(), Flaps: flaps.Load(),
		}
		rep.Samples = append(rep.Samples, s)
		fmt.Fprintf(out, "%6.0f %10.1f %10.1f %10.0f %8.0f %9d %8d %9d %8d %8d\n", s.Seconds, s.RSSBytes/(1<<20),
			s.HeapBytes/(1<<20), s.Goroutines, s.OpenFDs, s.HTTPOK, s.HTTPFailed, s.UDPOK, s.UDPFailed, s.Reloads)
	}
	sample()
	tick := time.NewTicker(cfg.Sample)
	defer tick.Stop()
loop:
	for {
		select {
		case <-rctx.Done():
			break loop
		case <-d.Exited():
			stop()
			wg.Wait()
			return nil, fmt.Errorf("bench: soak: director exited:\n%s", logs.String())
		case <-tick.C:
			sample()
		}
	}
	wg.Wait()
	sample()
	rep.Failures = httpFailed.Load() + udpFailed.Load()
	rep.UDPRetried = udpRetried.Load()
	rep.UDPRetryLimit = max(1, (udpOK.Load()+udpFailed.Load())*MaxUDPRetryPercent/100)
	if n := len(rep.Samples); n >= 2 {
		rep.RSSGrowth = rep.Samples[n-1].RSSBytes - rep.Samples[0].RSSBytes
	}
	if drops, err := scrapeDrops(ctx, metrics, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)); err != nil {
		fmt.Fprintf(out, "metrics: %v\n", err)
	} else if len(drops) > 0 {
		rep.Drops = drops
		fmt.Fprintf(out, "director drops: %v\n", drops)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(out, "%6.1fs %-9s %s\n", e.Seconds, e.Kind, e.Err)
	}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	if err := d.Stop(); err != nil {
		return rep, fmt.Errorf("bench: soak: director exit: %w\n%s", err, logs.String())
	}
	// Its warnings and errors (an egress that went unresolved, a rejected reload) say what a
	// failed request met; the last line says what it forwarded and dropped.
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "msg=stopped") || strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			fmt.Fprintf(out, "director: %s\n", line)
		}
	}
	return rep, nil
}

// soakConfig is the soak's director config: the reals' weights change with w1, and rs2 has
// an exec check that fails while downFile exists.
func soakConfig(l *Lab, dir, downFile string, metricsPort, w1 int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[director]\ninterfaces = [%q]\nworkers = 2\ncontrol_socket = %q\nmetrics_listen = \"127.0.0.1:%d\"\n\n",
		l.DirectorIfaces[0], filepath.Join(dir, "uvs.sock"), metricsPort)
	for _, svc := range []struct {
		proto string
		port  int
	}{{"tcp", 80}, {"udp", UDPPort}} {
		fmt.Fprintf(&b, "[[service]]\nvip = %q\nprotocol = %q\nport = %d\nscheduler = \"wlc\"\nforward = \"dr\"\n",
			l.VIP, svc.proto, svc.port)
		for i, a := range l.RealAddrs {
			w := 1
			if i == 0 {
				w = w1
			}
			fmt.Fprintf(&b, "  [[service.real]]\n  address = %q\n  weight = %d\n", a, w)
			if i == 1 {
				fmt.Fprintf(&b, "  [service.real.check]\n  type = \"exec\"\n  interval = \"1s\"\n  timeout = \"1s\"\n  rise = 1\n  fall = 1\n  command = [\"/usr/bin/test\", \"!\", \"-e\", %q]\n", downFile)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// scrapeMetrics reads the un-labelled series of a Prometheus text page.
func scrapeMetrics(ctx context.Context, c *http.Client, url string) (map[string]float64, error) {
	return scrape(ctx, c, url, func(line string) (string, bool) {
		name, _, ok := strings.Cut(line, " ")
		return name, ok && !strings.ContainsRune(name, '{')
	})
}

// scrapeDrops reads the director's non-zero drop counters: uvs_dropped_packets_total by
// reason, and the RX rings' drops summed over workers as "ring".
func scrapeDrops(ctx context.Context, c *http.Client, url string) (map[string]float64, error) {
	const dropped, ring = `uvs_dropped_packets_total{reason="`, "uvs_worker_ring_drops_total{"
	m, err := scrape(ctx, c, url, func(line string) (string, bool) {
		if rest, ok := strings.CutPrefix(line, dropped); ok {
			reason, _, ok := strings.Cut(rest, `"`)
			return reason, ok
		}
		return "ring", strings.HasPrefix(line, ring)
	})
	for k, v := range m {
		if v == 0 {
			delete(m, k)
		}
	}
	return m, err
}

// scrape sums the series of a Prometheus text page that key names, under the name it gives.
func scrape(ctx context.Context, c *http.Client, url string, key func(line string) (string, bool)) (map[string]float64, error) {
	rq, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(rq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, ok := key(line)
		if !ok {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[name] += v
		}
	}
	return m, sc.Err()
}
