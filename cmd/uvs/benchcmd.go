package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/uvs-project/uvs/bench"
)

func cmdBench(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench", stderr)
	path := configFlag(fs)
	out := fs.String("out", "bench-results", "`DIR` for results.json and report.svg")
	if err := fs.Parse(args); err != nil {
		return 1
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
	res, err := bench.RunBench(ctx, bench.BenchOptions{Config: cfg, ConfigPath: *path, UVS: self, Out: stdout, Progress: progress})
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
