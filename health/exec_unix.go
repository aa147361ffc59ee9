//go:build unix

package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// execWaitDelay bounds how long a timed-out command's output pipe may stay open after its
// process group was killed (a grandchild that left the group can hold it).
const execWaitDelay = 500 * time.Millisecond

// maxExecOutput bounds the output of an exec check kept for the failure reason.
const maxExecOutput = 256

// probeExec runs argv directly (never through a shell, so no value from the config is ever
// parsed as shell syntax) with env added to uvs's environment. Exit status 0 is up. The
// command runs in a process group of its own; when ctx ends, the whole group is killed with
// SIGKILL, so a check script's children die with it.
func probeExec(ctx context.Context, argv, env []string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = nil
	out := &capped{max: maxExecOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The child's pgid is its pid (Setpgid with Pgid 0).
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = execWaitDelay
	err := cmd.Run()
	if ctx.Err() != nil {
		// The group may have been killed before Run noticed; make sure of it.
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		return errors.New("exec: timeout (process group killed)")
	}
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(out.String())
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if msg != "" {
			return fmt.Errorf("exec: %s: %s", ee.ProcessState, msg)
		}
		return fmt.Errorf("exec: %s", ee.ProcessState)
	}
	return fmt.Errorf("exec: %w", err)
}

// capped keeps the first max bytes written to it.
type capped struct {
	max int
	b   []byte
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capped) String() string { return string(c.b) }
