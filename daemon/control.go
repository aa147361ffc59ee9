package daemon

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/control"
)

// controlPlane is the operator side of a running director: the control socket and the optional
// metrics listener, opened before the director so that a second director or a busy port
// fails before anything on the host changes.
type controlPlane struct {
	srv     *control.Server
	metrics net.Listener
	log     *slog.Logger
	wg      sync.WaitGroup
}

func openControl(cfg *config.Config, log *slog.Logger) (*controlPlane, error) {
	srv, err := control.Listen(cfg.Director.ControlSocket, log)
	if err != nil {
		return nil, err
	}
	cp := &controlPlane{srv: srv, log: log}
	if cfg.Director.MetricsListen != "" {
		if cp.metrics, err = control.ListenMetrics(cfg.Director.MetricsListen); err != nil {
			_ = srv.Close()
			return nil, err
		}
	}
	return cp, nil
}

// start serves the socket and metrics for op and d until ctx ends.
func (cp *controlPlane) start(ctx context.Context, op *control.Operator, d control.Director) {
	cp.wg.Add(2)
	go func() {
		defer cp.wg.Done()
		if err := cp.srv.Serve(ctx, op); err != nil {
			cp.log.Error("control socket", "err", err)
		}
	}()
	go func() {
		defer cp.wg.Done()
		op.Run(ctx)
	}()
	if cp.metrics != nil {
		cp.wg.Add(1)
		go func() {
			defer cp.wg.Done()
			if err := control.ServeMetrics(ctx, cp.metrics, d, cp.log); err != nil {
				cp.log.Error("metrics", "err", err)
			}
		}()
	}
}

// close removes the socket and closes the metrics listener; ctx must be done for the
// goroutines of start to end.
func (cp *controlPlane) close() {
	_ = cp.srv.Close()
	if cp.metrics != nil {
		_ = cp.metrics.Close()
	}
	cp.wg.Wait()
}

// reloadFromSignal is SIGHUP's handler.
func reloadFromSignal(op *control.Operator, log *slog.Logger) {
	problems, err := op.Reload()
	if err != nil {
		attrs := []any{"err", err}
		if len(problems) > 0 {
			attrs = append(attrs, "problems", strings.Join(problems, "; "))
		}
		log.Error("reload rejected; the running config stays", attrs...)
	}
}
