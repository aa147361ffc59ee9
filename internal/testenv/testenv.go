package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// probeTimeout bounds the probe's two ip(8) invocations. Each is a handful of
// netlink round trips; seconds mean the machine is stuck.
const probeTimeout = 30 * time.Second

// InCI reports whether the environment says this is a CI run (CI=true), in
// which a test that cannot get what it needs fails instead of skipping.
func InCI() bool { return os.Getenv("CI") == "true" }

// SkipOrFail skips t with the reason locally, and fails it in CI, so that CI
// never passes with a test silently skipped.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("cannot run in CI: "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// RequireRoot skips t unless the test can build namespace labs: it runs as
// root and `ip netns add` works. When the environment has CI=true it fails t
// instead of skipping. Call it first in every TestIntegration... test.
func RequireRoot(t testing.TB) {
	t.Helper()
	if err := labsUsable(); err != nil {
		SkipOrFail(t, "integration test: %v", err)
	}
}

// labsUsable probes once per process by adding and deleting a namespace.
var labsUsable = sync.OnceValue(func() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	name := "uvsprobe-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	for _, args := range [][]string{{"netns", "add", name}, {"netns", "del", name}} {
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip netns unusable: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
})
