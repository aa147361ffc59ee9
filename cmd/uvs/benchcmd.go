package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/uvs-project/uvs/bench"
)

func cmdBench(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench", stderr)
	path := configFlag(fs)
	out := fs.String("out", "bench-results", "`DIR` for results.json and report.svg")
	soak := fs.Duration("soak", 0, "instead of the profile, soak a DR lab for `DURATION`: mixed traffic, reloads, health flips")
	perfDir := fs.String("perf", "", "profile each candidate's first udp peak step with perf (record -a -g on the director's CPU) and write the recordings and reports by kernel function to `DIR`")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if *soak > 0 {
		return cmdSoak(*soak, *out, stdout, stderr)
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "uvs: %v\n", err)
		return 1
	}
	var progress io.Writer
	if f, ok := stdout.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			progress = f
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := bench.RunBench(ctx, bench.BenchOptions{Config: cfg, ConfigPath: *path, UVS: self, Out: stdout, Progress: progress, PerfDir: *perfDir})
	if err != nil {
		printLines(stderr, "uvs: bench: ", err)
		return 1
	}
	res.WriteTable(stdout)
	if err := res.WriteFiles(*out); err != nil {
		fmt.Fprintf(stderr, "uvs: bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nwrote %s/results.json and %s/report.svg\n", *out, *out)
	return 0
}

// cmdSoak runs bench.RunSoak and writes DIR/soak.json; it fails if any request failed.
func cmdSoak(d time.Duration, out string, stdout, stderr io.Writer) int {
	self, ctx, stop, ok := selfAndSignals(stderr)
	if !ok {
		return 1
	}
	defer stop()
	rep, err := bench.RunSoak(ctx, self, bench.SoakConfig{Duration: d, Sample: max(5*time.Second, d/30), Out: stdout})
	if err != nil {
		fmt.Fprintf(stderr, "uvs: bench --soak: %v\n", err)
		return 1
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		fmt.Fprintf(stderr, "uvs: bench --soak: %v\n", err)
		return 1
	}
	f, err := os.Create(filepath.Join(out, "soak.json"))
	if err != nil {
		fmt.Fprintf(stderr, "uvs: bench --soak: %v\n", err)
		return 1
	}
	werr := bench.WriteSoakJSON(f, rep)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		fmt.Fprintf(stderr, "uvs: bench --soak: %v\n", werr)
		return 1
	}
	fmt.Fprintf(stdout, "\n%d failed requests (%d UDP datagrams asked again, at most %d allowed), RSS %+.1f MiB over the run; wrote %s\n",
		rep.Failures, rep.UDPRetried, rep.UDPRetryLimit, rep.RSSGrowth/(1<<20), filepath.Join(out, "soak.json"))
	if !rep.OK() {
		return 1
	}
	return 0
}
