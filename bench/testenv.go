package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RequireRoot skips t unless the test can build namespace labs: it runs as
// root and `ip netns add` works. When the environment has CI=true it fails t
// instead of skipping, so that CI never passes with the privileged tests
// silently skipped. Call it first in every TestIntegration... test.
func RequireRoot(t testing.TB) {
	t.Helper()
	if err := labsUsable(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("integration test cannot run in CI: %v", err)
		}
		t.Skipf("skipping integration test: %v", err)
	}
}

// labsUsable probes once per process by adding and deleting a namespace.
var labsUsable = sync.OnceValue(func() error {
	if os.Geteuid() != 0 {
		return errors.New("not root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	name := "uvsprobe-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	if _, err := run(ctx, "", "ip", "netns", "add", name); err != nil {
		return fmt.Errorf("ip netns unusable: %w", err)
	}
	if _, err := run(ctx, "", "ip", "netns", "del", name); err != nil {
		return fmt.Errorf("ip netns unusable: %w", err)
	}
	return nil
})
