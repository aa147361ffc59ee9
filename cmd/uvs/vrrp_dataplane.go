package main

import "github.com/uvs-project/uvs/forward"

// dataPlaneAlive returns the data plane's liveness signal for VRRP tracking. forward has
// no progress signal yet: always alive.
func dataPlaneAlive(director func() *forward.Director) func() bool {
	return func() bool { return true }
}
