package main

import (
	"net/netip"

	"github.com/uvs-project/uvs/forward"
)

// setActiveVIPs hands the addresses owned by master instances to the data plane.
// Until forward publishes per-VIP ownership this is a no-op: the director answers for
// every VIP (see docs/operations.md, "VRRP").
func setActiveVIPs(d *forward.Director, active []netip.Addr) {}

// dataPlaneAlive returns the data plane's liveness signal for VRRP tracking. forward has
// no progress signal yet: always alive.
func dataPlaneAlive(d *forward.Director) func() bool { return func() bool { return true } }
