package bench

import (
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// competitor is a busy loop pinned to the director's CPU during the cost step
// (bench.cost_pps): a process of its own session (so of its own scheduler
// autogroup, as uvs and the bench process each are) that never sleeps, so
// that the fair scheduler leaves the forwarder about half of that CPU
// whatever the forwarder does when idle. The forwarder is then saturated at
// a rate the generator can exceed on the other CPU, and never idles: V2's
// spin and the wakeups from poll(), which below saturation are thread time
// proportional to idleness rather than to work, do not occur, so the rates
// two forwarders deliver under the same competitor compare their costs per
// packet (receive softirq included) like with like.
type competitor struct {
	cmd *exec.Cmd
}

// startCompetitor starts the busy loop on cpu.
func startCompetitor(cpu int) (*competitor, error) {
	cmd := exec.Command("taskset", "-c", strconv.Itoa(cpu), "sh", "-c", "while :; do :; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: competing busy loop: %w", err)
	}
	return &competitor{cmd: cmd}, nil
}

// cpu returns the busy loop's CPU time so far.
func (c *competitor) cpu() time.Duration { return procCPU(c.cmd.Process.Pid) }

// stop ends the busy loop.
func (c *competitor) stop() {
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}
