//go:build linux

package privilege

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// The data plane needs two capabilities: CAP_NET_RAW for its AF_PACKET sockets, and
// CAP_NET_ADMIN for the nftables shield, SO_SNDBUFFORCE and neighbour resolution.
const neededCaps = 1<<unix.CAP_NET_RAW | 1<<unix.CAP_NET_ADMIN

// Secure bits (include/uapi/linux/securebits.h).
const (
	secbitNoRoot       = 1 << 0
	secbitNoRootLocked = 1 << 1
)

// capsEnv marks the process image that already dropped its capabilities.
const capsEnv = "UVS_CAPS_DROPPED"

// DropCapabilities makes the running program keep only CAP_NET_RAW and CAP_NET_ADMIN when it
// holds more (typically: started as root). Capabilities are per thread and a Go program with
// cgo cannot change them on all its threads, so it re-executes itself, same PID and
// arguments: on a locked thread it sets SECBIT_NOROOT (locked, so no later exec as root
// regains anything), makes the two capabilities inheritable and ambient, and calls execve;
// the new image then holds exactly those two. It returns nil without doing anything when
// there is nothing to drop, and an error (the process keeps running as it was) when the
// kernel refuses a step.
func DropCapabilities() error { return DropCapabilitiesKeeping(neededCaps) }

// AFXDPCaps are the capabilities the AF_XDP backend needs beyond neededCaps: CAP_BPF for its
// XDP program and maps, and CAP_IPC_LOCK because the kernel charges the UMEM to
// RLIMIT_MEMLOCK unless the process has it.
const AFXDPCaps = 1<<unix.CAP_BPF | 1<<unix.CAP_IPC_LOCK

// DropCapabilitiesKeeping is DropCapabilities keeping CAP_NET_RAW, CAP_NET_ADMIN and the
// capabilities in extra (a mask of 1<<CAP_X, such as AFXDPCaps).
func DropCapabilitiesKeeping(extra uint64) error {
	needed := uint64(neededCaps) | extra
	lo, hi := uint32(needed), uint32(needed>>32)
	if os.Getenv(capsEnv) != "" {
		return nil
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("forward: capget: %w", err)
	}
	if data[0].Effective&^lo == 0 && data[1].Effective&^hi == 0 {
		return nil // nothing beyond what is needed (e.g. systemd gave us exactly these)
	}
	if data[0].Permitted&lo != lo || data[1].Permitted&hi != hi {
		return nil // we cannot keep them; the run fails later with its own clear error
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("forward: drop capabilities: %w", err)
	}
	// From here on this thread's credentials change: it must be the thread that calls
	// execve, and it is never handed back to other goroutines.
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, secbitNoRoot|secbitNoRootLocked, 0, 0, 0); err != nil {
		return fmt.Errorf("forward: prctl PR_SET_SECUREBITS: %w", err)
	}
	data[0].Inheritable = lo
	data[1].Inheritable = hi
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("forward: capset: %w", err)
	}
	for c := uintptr(0); c < 64; c++ {
		if needed&(1<<c) == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, c, 0, 0); err != nil {
			return fmt.Errorf("forward: prctl PR_CAP_AMBIENT_RAISE: %w", err)
		}
	}
	env := append(os.Environ(), capsEnv+"=1")
	if err := syscall.Exec(exe, os.Args, env); err != nil {
		return fmt.Errorf("forward: execve %s: %w", exe, err)
	}
	return nil // not reached
}
