package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// StopTimeout is how long Director.Stop waits after SIGTERM before SIGKILL.
const StopTimeout = 10 * time.Second

// ErrKilled reports a director that did not exit within StopTimeout of
// SIGTERM and was killed.
var ErrKilled = errors.New("bench: director ignored SIGTERM and was killed")

// Director is a director process running in a lab's director namespace.
type Director struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited; then err is set
	err  error

	stopTimeout time.Duration // StopTimeout; tests shorten it

	stopOnce sync.Once
	stopErr  error
}

// Exited is closed when the director process has exited.
func (d *Director) Exited() <-chan struct{} { return d.done }

// Wait waits for the director to exit and returns its exit error (nil for
// exit status 0).
func (d *Director) Wait() error {
	<-d.done
	return d.err
}

// Stop sends SIGTERM, waits up to StopTimeout, then sends SIGKILL and returns
// ErrKilled. Otherwise it returns the exit error, as Wait. It is idempotent.
func (d *Director) Stop() error {
	d.stopOnce.Do(func() {
		select {
		case <-d.done:
			d.stopErr = d.err
			return
		default:
		}
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			<-d.done // the process is gone already
			d.stopErr = d.err
			return
		}
		t := time.NewTimer(d.stopTimeout)
		defer t.Stop()
		select {
		case <-d.done:
			d.stopErr = d.err
		case <-t.C:
			_ = d.cmd.Process.Kill()
			<-d.done
			d.stopErr = fmt.Errorf("%w: %w", ErrKilled, d.err)
		}
	})
	return d.stopErr
}

// Signal sends sig to the director process (SIGHUP reloads its config).
func (d *Director) Signal(sig os.Signal) error {
	select {
	case <-d.done:
		return errors.New("bench: director has exited")
	default:
	}
	return d.cmd.Process.Signal(sig)
}
