package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/internal/testenv"
)

// writeScript writes an executable shell script standing in for the uvs
// binary, which another package provides.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "uvs")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIntegrationDemoDirectorFails(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	prefix := testPrefix(t, "df")
	// The fake checks its arguments and that it runs in the director's
	// namespace with the config it was given, then fails as a director
	// with a bad config would.
	uvs := writeScript(t, `
case "$1" in
lab) exec sleep 60 ;;
run) ;;
*) echo "uvs: unknown command \"$1\"" >&2; exit 1 ;;
esac
[ "$1 $2" = "run --config" ] || { echo "bad args: $*" >&2; exit 2; }
grep -q '^interfaces = \["eth0"' "$3" || { echo "bad config" >&2; exit 2; }
ip -br link show eth0 >/dev/null || exit 2
echo "uvs: not implemented yet" >&2
exit 1
`)
	var out bytes.Buffer
	err := runDemo(t.Context(), demoConfig{uvs: uvs, out: &out, prefix: prefix, readyTimeout: 10 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "director exited") || !strings.Contains(err.Error(), "not implemented yet") {
		t.Fatalf("runDemo = %v, want the director's exit and output", err)
	}
	assertNoNamespaces(t, prefix)
}

// TestIntegrationDemoCancel interrupts a demo whose director never serves while it waits
// for the first answer (ready timeout a minute): the demo must stop because of the
// interrupt, say so once, and leave no namespace behind.
func TestIntegrationDemoCancel(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	prefix := testPrefix(t, "dc")
	// A director that never serves; Ctrl-C arrives while the demo waits.
	uvs := writeScript(t, `case "$1" in run|lab) exec sleep 60 ;; esac; echo "uvs: unknown command" >&2; exit 1`+"\n")
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	sigint := errors.New("interrupt signal received") // what signal.NotifyContext's cause says
	stop := time.AfterFunc(time.Second, func() { cancel(sigint) })
	defer stop.Stop()
	start := time.Now()
	err := runDemo(ctx, demoConfig{uvs: uvs, out: new(bytes.Buffer), prefix: prefix, readyTimeout: time.Minute})
	t.Logf("runDemo returned %v after %v", err, time.Since(start))
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, sigint) {
		t.Fatalf("runDemo = %v, want ErrInterrupted with the signal as cause", err)
	}
	// Reported once, and not as the ready wait it cut short (with its one-minute timeout).
	if msg := err.Error(); msg != "interrupted: interrupt signal received" {
		t.Errorf("error %q, want %q", msg, "interrupted: interrupt signal received")
	}
	assertNoNamespaces(t, prefix)
}
