package bench

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The floor's thread belongs to the bench process, whose generator thread
// (gen_linux.go) is busy on the generator's CPU for the whole trial. The fair
// scheduler gives a process's scheduling group (its autogroup: one per
// session) one weight and splits it over the CPUs by the group's load there
// (calc_group_shares), so on the director's CPU the floor held about half the
// weight of uvs (a process of its own, with nothing else busy) or of each busy
// loop of the cost step: in the cost step of 2026-12-06 15:03 it had 14-15% of
// the CPU to uvs's 27-32%, and its rings overflowed for that alone. The floor
// thread is therefore moved into a cpu cgroup of its own (cgroup v1 places
// threads, not only processes), with the default weight: a group of one busy
// thread on that CPU, as uvs's and each busy loop's are.

// floorCPUGroup moves the calling thread (locked to it) into a new cpu cgroup of
// its own and returns what moves it back and removes the group, or a reason why
// it could not (no cgroup v1 cpu controller: the floor then shares the bench's
// weight, and the cost step says so).
func floorCPUGroup() (restore func(), why string) {
	parent := cpuCgroupDir()
	if parent == "" {
		return func() {}, "no cgroup v1 cpu controller"
	}
	dir := filepath.Join(parent, "uvs-bench-floor-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return func() {}, err.Error()
	}
	tid := []byte(strconv.Itoa(unix.Gettid()))
	if err := os.WriteFile(filepath.Join(dir, "tasks"), tid, 0); err != nil {
		_ = os.Remove(dir)
		return func() {}, err.Error()
	}
	return func() {
		_ = os.WriteFile(filepath.Join(parent, "tasks"), tid, 0)
		_ = os.Remove(dir)
	}, ""
}

// cpuCgroupDir returns the directory of this process's cgroup in the cgroup v1
// cpu hierarchy, or "".
func cpuCgroupDir() string {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrls := strings.Split(parts[1], ",")
		for _, c := range ctrls {
			if c != "cpu" {
				continue
			}
			for _, mnt := range []string{"/sys/fs/cgroup/" + parts[1], "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"} {
				d := filepath.Join(mnt, parts[2])
				if _, err := os.Stat(filepath.Join(d, "tasks")); err == nil {
					return d
				}
			}
		}
	}
	return ""
}
