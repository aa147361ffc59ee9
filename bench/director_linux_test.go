package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/internal/testenv"
)

func TestIntegrationDirector(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	l := newTestLab(t, LabSpec{Prefix: testPrefix(t, "di"), Topology: TopologyNAT, Reals: 1})
	// The scripts touch "$0.ready" once their trap is set, and the test waits for it.
	const graceful = `trap 'echo bye; exit 0' TERM
ip -br link show eth1
touch "$0.ready"
while :; do sleep 0.05; done
`
	tests := []struct {
		name   string
		script string
		stop   func(*Director, context.CancelFunc) error
		check  func(error) bool
		output string
	}{
		{"stop graceful", graceful, func(d *Director, _ context.CancelFunc) error { return d.Stop() },
			func(err error) bool { return err == nil }, "bye"},
		{"stop killed", "trap '' TERM\ntouch \"$0.ready\"\nwhile :; do sleep 0.05; done\n", func(d *Director, _ context.CancelFunc) error {
			d.stopTimeout = 300 * time.Millisecond
			return d.Stop()
		}, func(err error) bool { return errors.Is(err, ErrKilled) }, ""},
		{"exit status", "touch \"$0.ready\"; echo failing; exit 3\n", func(d *Director, _ context.CancelFunc) error { return d.Wait() },
			func(err error) bool { var ee *exec.ExitError; return errors.As(err, &ee) && ee.ExitCode() == 3 }, "failing"},
		{"context cancel", graceful, func(d *Director, cancel context.CancelFunc) error { cancel(); return d.Wait() },
			func(err error) bool { return err == nil || strings.Contains(err.Error(), "context canceled") }, "bye"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var out bytes.Buffer
			script := writeScript(t, tt.script)
			d, err := l.StartDirector(ctx, script, "/dev/null", &out)
			if err != nil {
				t.Fatal(err)
			}
			waitReadyFile(t, script+".ready")
			if err := tt.stop(d, cancel); !tt.check(err) {
				t.Errorf("stop: unexpected %v", err)
			}
			select {
			case <-d.Exited():
			default:
				t.Fatal("Exited not closed after stop")
			}
			if err2 := d.Stop(); !tt.check(err2) && tt.name != "context cancel" {
				t.Errorf("second Stop: %v", err2)
			}
			if !strings.Contains(out.String(), tt.output) {
				t.Errorf("output %q lacks %q", out.String(), tt.output)
			}
		})
	}
	// Close stops a running director.
	script := writeScript(t, graceful)
	d, err := l.StartDirector(t.Context(), script, "/dev/null", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitReadyFile(t, script+".ready")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(); err != nil {
		t.Errorf("director after Close: %v", err)
	}
	if _, err := l.StartDirector(t.Context(), "/bin/true", "/dev/null", nil); err == nil {
		t.Error("StartDirector on a closed lab succeeded")
	}
}

// waitReadyFile polls until a test script has created path (its trap is set). The bound only
// stops a test that would otherwise hang.
func waitReadyFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
	}
}
