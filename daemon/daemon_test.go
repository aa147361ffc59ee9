package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/config"
)

// testConfig parses a director config whose control socket is in a fresh temporary
// directory, with extra appended, and returns it with the socket's path.
func testConfig(t *testing.T, extra string) (*config.Config, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "uvs.sock")
	src := "[director]\ninterfaces = [\"uvs-no-such-if0\"]\ncontrol_socket = \"" + sock + "\"\n" +
		"[[service]]\nvip = \"198.18.0.10\"\nport = 80\nscheduler = \"wlc\"\n  [[service.real]]\n  address = \"198.18.1.2\"\n" + extra
	cfg, err := config.Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, sock
}

func TestRunNoConfig(t *testing.T) {
	if err := Run(context.Background(), Options{}); err == nil {
		t.Fatal("Run without a config returned nil")
	}
}

// TestRunStoppedBeforeDirector: a stop that came before start-up reached the director (a
// SIGTERM while the control socket and sync were opened) ends Run with nil, as a normal
// stop, before anything on the host changes, and the control socket is removed. The
// config's interface does not exist, so reaching forward.NewDirector would fail the test.
func TestRunStoppedBeforeDirector(t *testing.T) {
	cfg, sock := testConfig(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Run(ctx, Options{Config: cfg}); err != nil {
		t.Fatalf("Run after a stop: %v, want nil", err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left: %v", err)
	}
}

// TestRunSetupErrorUndoes: a start-up step that fails returns its error, and what the steps
// before it opened is closed again (the control socket is removed).
func TestRunSetupErrorUndoes(t *testing.T) {
	for _, tt := range []struct {
		name, extra, want string
	}{
		{"sync", "[sync]\ninterface = \"uvs-no-such-if0\"\nrole = \"master\"\npeers = [\"198.18.0.2\"]\n", "sync:"},
		{"director", "", "uvs-no-such-if0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, sock := testConfig(t, tt.extra)
			err := Run(context.Background(), Options{Config: cfg})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run: %v, want an error with %q", err, tt.want)
			}
			if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("control socket left: %v", err)
			}
		})
	}
}

func TestCheckVRRPReload(t *testing.T) {
	none, _ := testConfig(t, "")
	with, _ := testConfig(t, "[[vrrp]]\nname = \"VI_1\"\ninterface = \"uvs-no-such-if0\"\nvirtual_router_id = 51\npriority = 100\n")
	if err := checkVRRPReload(nil, none, none); err != nil {
		t.Errorf("no VRRP before or after: %v", err)
	}
	if err := checkVRRPReload(nil, none, with); err == nil || !strings.Contains(err.Error(), "needs a restart") {
		t.Errorf("adding [[vrrp]] without a speaker: %v, want a restart error", err)
	}
}

// TestRunContextStops: the director's context ends with the stop context; without [bgp]
// there is no drain. A stop signal in Stops is the first one, taken, not a second.
func TestRunContextStops(t *testing.T) {
	for _, tt := range []struct {
		name  string
		stops chan os.Signal
	}{
		{"no-stops", nil},
		{"first-signal", make(chan os.Signal, 2)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := testConfig(t, "")
			b, err := newBGP(cfg, slog.New(slog.DiscardHandler), tt.stops)
			if err != nil {
				t.Fatal(err)
			}
			defer b.close()
			stop, cancel := context.WithCancel(context.Background())
			ctx := b.runContext(stop)
			if tt.stops != nil {
				tt.stops <- syscall.SIGTERM
			}
			cancel()
			select {
			case <-ctx.Done():
			case <-time.After(30 * time.Second):
				t.Fatal("the director's context did not end with the stop")
			}
			if len(tt.stops) != 0 {
				t.Error("the first signal was left in Stops: a second one would be taken as the first")
			}
		})
	}
}
