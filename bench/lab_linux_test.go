package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPrefix returns a namespace prefix unique to this process and test, and
// removes its leftovers when the test ends.
func testPrefix(t *testing.T, tag string) string {
	t.Helper()
	p := fmt.Sprintf("uvt%d%s-", os.Getpid(), tag)
	if err := CleanupPrefix(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := CleanupPrefix(p); err != nil {
			t.Error(err)
		}
	})
	return p
}

func newTestLab(t *testing.T, spec LabSpec) *Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := NewLab(ctx, spec)
	if err != nil {
		t.Fatalf("NewLab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		assertNoNamespaces(t, spec.Prefix)
	})
	return l
}

func assertNoNamespaces(t *testing.T, prefix string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(netnsDir, prefix+"*"))
	if len(left) > 0 {
		t.Errorf("namespaces left after Close: %v", left)
	}
}

func TestIntegrationLabSmoke(t *testing.T) {
	RequireRoot(t)
	l := newTestLab(t, LabSpec{Prefix: testPrefix(t, "s"), Topology: TopologyDR})
	out, err := l.Client.Command(context.Background(), "ip", "-br", "addr").CombinedOutput()
	t.Logf("%s %v", out, err)
	if !strings.Contains(string(out), "198.18.1.10") {
		t.Fatal("no client address")
	}
}
