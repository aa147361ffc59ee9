package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
)

// StartDirector runs `uvsBinary run --config configPath [extra...]` in the director's
// namespace, with stdout and stderr going to stderr (nil discards them). When
// ctx ends, the director gets SIGTERM and, StopTimeout later, SIGKILL; Lab.Close
// stops it too. It gets SIGKILL if this process dies first (PR_SET_PDEATHSIG).
func (l *Lab) StartDirector(ctx context.Context, uvsBinary, configPath string, stderr io.Writer, extra ...string) (*Director, error) {
	return l.StartDirectorIn(ctx, l.Director, uvsBinary, configPath, stderr, extra...)
}

// StartDirectorIn is StartDirector in node n, one of l.Directors.
func (l *Lab) StartDirectorIn(ctx context.Context, n *Node, uvsBinary, configPath string, stderr io.Writer, extra ...string) (*Director, error) {
	cmd := n.Command(ctx, uvsBinary, append([]string{"run", "--config", configPath}, extra...)...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = StopTimeout
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("bench: start director: lab closed")
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start director: %w", err)
	}
	d := &Director{cmd: cmd, done: make(chan struct{}), stopTimeout: StopTimeout}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	l.directors = append(l.directors, d)
	return d, nil
}
