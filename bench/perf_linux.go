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

// startPerf starts `perf record -a -g` on the director's and the generator's CPUs (every CPU
// when the director is not pinned) for one measurement step of candidate step, writing DIR/step.perf.data. The
// returned function stops it (SIGINT, as perf expects) and writes DIR/step.perf.txt: the
// step's samples by symbol (kernel functions are [k]), self time, no call graphs, down to
// 0.5%. perf sees every process on that CPU, the generator's softirqs included where they
// land there; the report's comm column tells them apart. With own (uvs and floor candidates)
// it also writes DIR/step.uvs.perf.txt, the forwarder's own samples by symbol. A failure
// becomes a note.
func (r *runner) startPerf(step string, own bool) func() error {
	if err := os.MkdirAll(r.o.PerfDir, 0o755); err != nil {
		return func() error { return fmt.Errorf("perf: %w", err) }
	}
	data := filepath.Join(r.o.PerfDir, step+".perf.data")
	args := []string{"record", "-a", "-g", "-q", "-F", "1999", "-o", data}
	if r.dirCPU >= 0 {
		// The generator's CPU too: on a veth the director's receive path (the XDP program,
		// AF_XDP's copy into the UMEM, AF_PACKET's into its ring) runs in the softirq of the
		// CPU that sent the frame, the generator's; the director's CPU holds the rest.
		cpus := strconv.Itoa(r.dirCPU)
		if r.genCPU >= 0 && r.genCPU != r.dirCPU {
			cpus += "," + strconv.Itoa(r.genCPU)
		}
		args = append(args, "-C", cpus)
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
		if err := perfReport(data, filepath.Join(r.o.PerfDir, step+".perf.txt"), "--sort", "cpu,comm,dso,symbol"); err != nil {
			return fmt.Errorf("perf: %s: %w", step, err)
		}
		if own {
			// The forwarder's own samples (the director, or the floor's thread in this
			// process: both are "uvs"), kernel functions included, by symbol.
			if err := perfReport(data, filepath.Join(r.o.PerfDir, step+".uvs.perf.txt"), "--comm", "uvs", "--sort", "dso,symbol"); err != nil {
				return fmt.Errorf("perf: %s: %w", step, err)
			}
		}
		return nil
	}
}

// perfReport writes perf report's text for the recording data to out, sorted by sort.
func perfReport(data, out string, sort ...string) error {
	args := append([]string{"report", "-i", data, "--stdio", "--no-children", "-g", "none", "--percent-limit", "0.5"}, sort...)
	b, err := exec.Command(perfBinary, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return fmt.Errorf("perf report: %w", err)
	}
	return os.WriteFile(out, b, 0o644)
}
