package bench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// opTimeout bounds one ip, ethtool or nstat invocation. Each is a handful of
// netlink round trips; seconds mean the machine is stuck.
const opTimeout = 15 * time.Second

// run runs name with args, feeding it stdin, within opTimeout of ctx. The
// error names the command and carries its output.
func run(ctx context.Context, stdin string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if stdin != "" {
			msg += " (batch: " + strings.ReplaceAll(strings.TrimSpace(stdin), "\n", "; ") + ")"
		}
		return nil, fmt.Errorf("bench: %s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// ipBatch runs the ip commands in lines (without the leading "ip") inside
// namespace ns with one ip process, stopping at the first failure.
func ipBatch(ctx context.Context, ns string, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	_, err := run(ctx, strings.Join(lines, "\n")+"\n", "ip", "-n", ns, "-batch", "-")
	return err
}

// Command returns a command that runs name inside the node's namespace
// through `ip netns exec`, which also mounts the namespace's /sys. The
// command is killed when ctx is done.
func (n *Node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.NS, name}, args...)...)
}
