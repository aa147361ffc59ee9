//go:build linux

package health

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// markControl returns a dialer Control that sets SO_MARK, so that the probe's route is the
// one the mark's policy rule selects (via = "vip"); nil for mark 0.
func markControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	if mark == 0 {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		})
		if err != nil {
			return err
		}
		return serr
	}
}
