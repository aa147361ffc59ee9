package bench

import (
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// competitor is costCompetitors busy loops pinned to the director's CPU
// during the cost step (bench.cost_pps): processes of their own sessions (so
// of their own scheduler autogroups, as uvs and the bench process each are)
// that never sleep, so that the fair scheduler leaves the forwarder about a
// share 1/(costCompetitors+1) of that CPU whatever the forwarder does when
// idle. The forwarder is then saturated at
// a rate the generator can exceed on the other CPU, and never idles: V2's
// spin and the wakeups from poll(), which below saturation are thread time
// proportional to idleness rather than to work, do not occur, so the rates
// two forwarders deliver under the same competitor compare their costs per
// packet (receive softirq included) like with like.
type competitor struct {
	cmds []*exec.Cmd
}

// costCompetitors is how many busy loops share the director's CPU with the forwarder in
// the cost step. On this lab a forwarder with a whole CPU carries more than the generator
// sends (0.17-0.37 Mpps of 64-byte frames, quiet machine); with half a CPU uvs on V2 still
// carried 0.185 Mpps against the generator's 0.198 in a trial run, too close to be
// saturated. With two loops it keeps about a third: on 2026-12-06, once the floor had a
// scheduling group of its own (floor_cgroup_linux.go), neither uvs nor the floors were
// saturated at the 0.085-0.15 Mpps a loaded machine's generator sent (load 3.5). With three
// it keeps about a quarter.
const costCompetitors = 3

// costMaxCompetitors bounds the busy loops of a cost step that is repeated because the
// forwarder was not saturated (costStep): with six it keeps about a seventh of the CPU.
const costMaxCompetitors = 6

// startCompetitor starts n busy loops on cpu.
func startCompetitor(cpu, n int) (*competitor, error) {
	c := &competitor{}
	for range n {
		cmd := exec.Command("taskset", "-c", strconv.Itoa(cpu), "sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			c.stop()
			return nil, fmt.Errorf("bench: competing busy loop: %w", err)
		}
		c.cmds = append(c.cmds, cmd)
	}
	return c, nil
}

// cpu returns the busy loops' CPU time so far.
func (c *competitor) cpu() time.Duration {
	var d time.Duration
	for _, cmd := range c.cmds {
		d += procCPU(cmd.Process.Pid)
	}
	return d
}

// stop ends the busy loops.
func (c *competitor) stop() {
	for _, cmd := range c.cmds {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}
