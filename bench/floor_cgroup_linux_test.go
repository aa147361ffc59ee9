package bench

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/internal/testenv"
)

// TestIntegrationFloorCPUGroup checks that floorCPUGroup moves the calling thread, and only
// it, into a cpu cgroup of its own and that restoring moves it back and removes the group.
func TestIntegrationFloorCPUGroup(t *testing.T) {
	testenv.RequireRoot(t)
	if cpuCgroupDir() == "" {
		t.Skip("no cgroup v1 cpu controller: the floor shares the bench's weight (the cost row says so)")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := strconv.Itoa(unix.Gettid())
	group := func(task string) string {
		b, err := os.ReadFile("/proc/self/task/" + task + "/cgroup")
		if err != nil {
			return "(ended)" // a thread that ended meanwhile
		}
		for _, l := range strings.Split(string(b), "\n") {
			if p := strings.SplitN(l, ":", 3); len(p) == 3 && strings.Contains(","+p[1]+",", ",cpu,") {
				return p[2]
			}
		}
		t.Fatalf("no cpu cgroup in %q", b)
		return ""
	}
	before := group(tid)
	restore, why := floorCPUGroup()
	if why != "" {
		t.Fatalf("floorCPUGroup: %s", why)
	}
	own := group(tid)
	if !strings.Contains(own, "uvs-bench-floor-") {
		t.Errorf("thread in cpu cgroup %q, want its own", own)
	}
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != tid {
			if other := group(e.Name()); other != before && other != "(ended)" {
				t.Errorf("thread %s moved too: %q", e.Name(), other)
			}
		}
	}
	restore()
	if after := group(tid); after != before {
		t.Errorf("after restore, thread in %q, want %q", after, before)
	}
	if _, err := os.Stat(cpuCgroupDir() + own); !os.IsNotExist(err) {
		t.Errorf("group %s not removed: %v", own, err)
	}
}
