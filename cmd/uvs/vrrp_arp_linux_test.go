//go:build linux

package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// arpRepliers sends one ARP request for target from host's e0 and returns the MAC of every
// reply that arrives within 500 ms, in order, so a test sees when two hosts answer.
func (v *vrrpNet) arpRepliers(host, target string) []string {
	v.t.Helper()
	return v.arpRepliersOn(host, "e0", v.addr(host), target)
}

// arpRepliersOn is arpRepliers from interface ifname with address self.
func (v *vrrpNet) arpRepliersOn(host, ifname, self, target string) []string {
	v.t.Helper()
	type result struct {
		macs []string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread enters host's namespace and is never handed back: it ends with this
		// goroutine, still locked.
		runtime.LockOSThread()
		macs, err := arpInNamespace("/var/run/netns/"+v.ns(host), ifname, self, target)
		ch <- result{macs, err}
	}()
	r := <-ch
	if r.err != nil {
		v.t.Fatalf("arp from %s: %v", host, r.err)
	}
	return r.macs
}

func arpInNamespace(nsPath, ifname, self, target string) ([]string, error) {
	f, err := os.Open(nsPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("setns: %w", err)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons16(unix.ETH_P_ARP)))
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons16(unix.ETH_P_ARP), Ifindex: ifi.Index}); err != nil {
		return nil, err
	}
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	sip, tip := netip.MustParseAddr(self).As4(), netip.MustParseAddr(target).As4()
	req := make([]byte, 42)
	copy(req[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(req[6:12], ifi.HardwareAddr)
	copy(req[12:22], []byte{0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1})
	copy(req[22:28], ifi.HardwareAddr)
	copy(req[28:32], sip[:])
	copy(req[38:42], tip[:])
	to := &unix.SockaddrLinklayer{Protocol: htons16(unix.ETH_P_ARP), Ifindex: ifi.Index, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	if err := unix.Sendto(fd, req, 0, to); err != nil {
		return nil, err
	}
	var macs []string
	buf := make([]byte, 1500)
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil || n < 42 {
			continue
		}
		// An ARP reply (op 2) from target to us.
		if buf[20] == 0 && buf[21] == 2 && [4]byte(buf[28:32]) == tip && [4]byte(buf[38:42]) == sip {
			mac := net.HardwareAddr(buf[22:28]).String()
			if !slices.Contains(macs, mac) {
				macs = append(macs, mac)
			}
		}
	}
	return macs, nil
}

func htons16(v uint16) uint16 { return v<<8 | v>>8 }
