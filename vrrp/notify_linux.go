//go:build linux

package vrrp

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// notifyQueue bounds the notify commands waiting to run; more are dropped and logged.
// Transitions come at most a few per advert interval, so 32 is never reached by a sane pair.
const notifyQueue = 32

// notifyJob is one notify command.
type notifyJob struct {
	argv    []string
	env     []string
	timeout time.Duration
}

// notifier runs notify commands one at a time, in order, on a goroutine of its own, so
// that a slow script never delays an advertisement. The commands run without uvs's
// capabilities: the goroutine's locked thread drops its inheritable (and so its ambient)
// capabilities before it forks; when uvs still holds CAP_SETUID (full root), the child
// also runs as the invoking user (SUDO_UID) or nobody.
type notifier struct {
	log  *slog.Logger
	jobs chan notifyJob
	done chan struct{}
}

func newNotifier(log *slog.Logger) *notifier {
	n := &notifier{log: log, jobs: make(chan notifyJob, notifyQueue), done: make(chan struct{})}
	go n.run()
	return n
}

func (n *notifier) enqueue(j notifyJob) {
	select {
	case n.jobs <- j:
	default:
		n.log.Warn("vrrp notify queue full: command dropped", "argv", j.argv)
	}
}

func (n *notifier) close() {
	close(n.jobs)
	<-n.done
}

func (n *notifier) run() {
	defer close(n.done)
	// This thread's capabilities change for good: it is never handed back (the goroutine
	// ends with the thread locked, so the runtime discards the thread).
	runtime.LockOSThread()
	cred := dropInheritable()
	for j := range n.jobs {
		if err := runNotify(j, cred); err != nil {
			n.log.Warn("vrrp notify", "argv", j.argv, "err", err)
		}
	}
}

// dropInheritable clears this thread's inheritable capabilities (which clears its ambient
// set) and returns the credential the child should take, or nil.
func dropInheritable() *syscall.Credential {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	_ = unix.Capset(&hdr, &data[0])
	_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	if os.Geteuid() != 0 || data[0].Effective&(1<<unix.CAP_SETUID) == 0 || data[0].Effective&(1<<unix.CAP_SETGID) == 0 {
		return nil
	}
	uid, gid := uint32(65534), uint32(65534) // nobody
	if s := os.Getenv("SUDO_UID"); s != "" {
		if u, err := strconv.ParseUint(s, 10, 32); err == nil && u != 0 {
			uid = uint32(u)
			if g, err := strconv.ParseUint(os.Getenv("SUDO_GID"), 10, 32); err == nil {
				gid = uint32(g)
			}
		}
	}
	return &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}
}

// runNotify runs argv directly (never a shell) in its own process group, killed with the
// group after the timeout.
func runNotify(j notifyJob, cred *syscall.Credential) error {
	ctx, cancel := context.WithTimeout(context.Background(), j.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, j.argv[0], j.argv[1:]...)
	cmd.Env = append(os.Environ(), j.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 500 * time.Millisecond
	return cmd.Run()
}
