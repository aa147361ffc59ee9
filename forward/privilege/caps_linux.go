//go:build linux

package privilege

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// The data plane always needs two capabilities: CAP_NET_RAW for its AF_PACKET and AF_XDP
// sockets, CAP_NET_ADMIN for the shield (nftables, or attaching the tcx program),
// SO_SNDBUFFORCE and neighbour resolution. What else it needs depends on the backend and the
// shield (forward.BackendCapabilities): CAP_BPF for the tcx shield's or the XDP program and
// maps (ShieldCaps), and for afxdp CAP_IPC_LOCK too (AFXDPCaps). Without CAP_BPF,
// director.shield = "auto" falls back to nftables. neededCaps is the first word of the
// capability sets (capabilities 0-31).
const neededCaps = 1<<unix.CAP_NET_RAW | 1<<unix.CAP_NET_ADMIN

// ShieldCaps is what the tcx shield needs beyond CAP_NET_RAW and CAP_NET_ADMIN: CAP_BPF, which
// DropCapabilitiesKeeping keeps where the process holds it (kernels since 5.8 have it) and
// does without otherwise (the shield then falls back to nftables).
const ShieldCaps = 1 << unix.CAP_BPF

// Secure bits (include/uapi/linux/securebits.h).
const (
	secbitNoRoot       = 1 << 0
	secbitNoRootLocked = 1 << 1
)

// capsEnv marks the process image that already dropped its capabilities.
const capsEnv = "UVS_CAPS_DROPPED"

// DropCapabilities makes the running program keep only CAP_NET_RAW, CAP_NET_ADMIN and
// CAP_BPF (where held) when it holds more (typically: started as root). Capabilities are per thread and a
// Go program with cgo cannot change them on all its threads, so it re-executes itself, same
// PID and arguments: on a locked thread it sets SECBIT_NOROOT (locked, so no later exec as
// root regains anything), makes the capabilities inheritable and ambient, and calls execve;
// the new image then holds exactly those. It returns nil without doing anything when
// there is nothing to drop, and an error (the process keeps running as it was) when the
// kernel refuses a step.
func DropCapabilities() error { return DropCapabilitiesKeeping(ShieldCaps) }

// AFXDPCaps are the capabilities the AF_XDP backend needs beyond CAP_NET_RAW and
// CAP_NET_ADMIN: CAP_BPF for its XDP program and maps, and CAP_IPC_LOCK because the kernel
// charges the UMEM to RLIMIT_MEMLOCK unless the process has it.
const AFXDPCaps = 1<<unix.CAP_BPF | 1<<unix.CAP_IPC_LOCK

// DropCapabilitiesKeeping makes the running program keep only CAP_NET_RAW, CAP_NET_ADMIN and
// the capabilities in extra (a mask of 1<<CAP_X: ShieldCaps, AFXDPCaps, or 0), which the
// process must hold; CAP_BPF alone in extra (ShieldCaps) is kept where held. A capability in
// none of them is dropped, so a director that needs no BPF program keeps no CAP_BPF.
func DropCapabilitiesKeeping(extra uint64) error {
	if os.Getenv(capsEnv) != "" {
		return nil
	}
	optional := uint64(0)
	if extra == ShieldCaps {
		optional, extra = ShieldCaps, 0
	}
	required := uint64(neededCaps) | extra
	lo, hi := uint32(required), uint32(required>>32)
	opt1 := uint32(optional >> 32)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("forward: capget: %w", err)
	}
	if data[0].Effective&^lo == 0 && data[1].Effective&^(hi|opt1) == 0 {
		return nil // nothing beyond what is needed (e.g. systemd gave us exactly these)
	}
	if data[0].Permitted&lo != lo || data[1].Permitted&hi != hi {
		return nil // we cannot keep them; the run fails later with its own clear error
	}
	// An optional CAP_BPF is kept where it is held (kernels since 5.8 have it).
	keep1 := hi | data[1].Permitted&opt1
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
	data[1].Inheritable = keep1
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("forward: capset: %w", err)
	}
	keep := uint64(lo) | uint64(keep1)<<32
	for c := uintptr(0); c < 64; c++ {
		if keep&(1<<c) == 0 {
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
