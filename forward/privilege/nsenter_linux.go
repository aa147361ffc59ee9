//go:build linux

package privilege

import "github.com/vishvananda/netns"

// InNetNS reports whether the calling thread is in network namespace h. Opening a netlink
// socket "in" a namespace enters it with setns(2), which needs CAP_SYS_ADMIN even when the
// thread is there already; callers skip that when they are, so that a director run with
// only CAP_NET_ADMIN and CAP_NET_RAW (docs/uvs.service) works. The caller must not be
// moved between threads of different namespaces in between (lock the OS thread if the
// process has such threads).
func InNetNS(h netns.NsHandle) bool {
	cur, err := netns.Get()
	if err != nil {
		return false
	}
	defer cur.Close()
	return cur.Equal(h)
}
