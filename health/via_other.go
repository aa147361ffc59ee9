//go:build !linux

package health

import (
	"errors"
	"log/slog"
	"net/netip"
	"syscall"
)

// markControl is Linux-only (SO_MARK); elsewhere probes are not marked.
func markControl(uint32) func(network, address string, c syscall.RawConn) error { return nil }

// vipRoutes: via = "vip" needs Linux policy routing.
type vipRoutes struct{}

func newVIPRoutes(*slog.Logger) *vipRoutes { return &vipRoutes{} }

func (*vipRoutes) mark(netip.Addr) (uint32, error) {
	return 0, errors.New("health: via = \"vip\" needs Linux")
}

func (*vipRoutes) keep(map[netip.Addr]bool) {}

func (*vipRoutes) close() error { return nil }
