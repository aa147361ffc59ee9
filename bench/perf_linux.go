package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// perfBinary is the profiler `uvs bench --perf DIR` runs.
const perfBinary = "perf"

// perfStopWait bounds how long perf may take to write its recording after SIGINT.
const perfStopWait = 30 * time.Second

// startPerf starts `perf record -a -g` on the director's CPU (every CPU when the director is
// not pinned) for one measurement step of candidate step, writing DIR/step.perf.data. The
// returned function stops it (SIGINT, as perf expects) and writes DIR/step.perf.txt: the
// step's samples by symbol (kernel functions are [k]), self time, no call graphs, down to
// 0.5%. perf sees every process on that CPU, the generator's softirqs included where they
// land there; the report's comm column tells them apart. A failure becomes a note.
func (r *runner) startPerf(step string) func() error {
	if err := os.MkdirAll(r.o.PerfDir, 0o755); err != nil {
		return func() error { return fmt.Errorf("perf: %w", err) }
	}
	data := filepath.Join(r.o.PerfDir, step+".perf.data")
	args := []string{"record", "-a", "-g", "-q", "-F", "1999", "-o", data}
	if r.dirCPU >= 0 {
		args = append(args, "-C", strconv.Itoa(r.dirCPU))
	}
	cmd := exec.Command(perfBinary, args...)
	if err := cmd.Start(); err != nil {
		return func() error { return fmt.Errorf("perf: %s skipped: %w", step, err) }
	}
	time.Sleep(200 * time.Millisecond) // perf opens its events before the step starts
	return func() error {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(perfStopWait):
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("perf: %s: perf record did not stop", step)
		}
		out, err := exec.Command(perfBinary, "report", "-i", data, "--stdio", "--no-children", "--sort", "comm,dso,symbol",
			"-g", "none", "--percent-limit", "0.5").Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = fmt.Errorf("%w: %s", err, ee.Stderr)
			}
			return fmt.Errorf("perf: %s: perf report: %w", step, err)
		}
		return os.WriteFile(filepath.Join(r.o.PerfDir, step+".perf.txt"), out, 0o644)
	}
}
