package bgp

import (
	"github.com/uvs-project/uvs/conntrack"
	"net/netip"
	"slices"

	"github.com/uvs-project/uvs/forward"
)

// Reason says why a VIP is, or is not, announced.
type Reason uint8

// Reasons, in the order the announcer checks them.
const (
	ReasonInvalid   Reason = iota
	ReasonStarting         // workers not running yet, or a real server not checked yet
	ReasonStopping         // shutting down: withdrawn first, forwarding for drain_time
	ReasonDrained          // uvs edit --drain-director
	ReasonDataPlane        // the workers stopped making progress
	ReasonNoHealthy        // no service of the VIP has a healthy real server (or all are below quorum)
	ReasonUp               // announced
)

var reasonNames = [...]string{"invalid", "starting", "stopping", "drained", "data_plane_failed", "no_healthy_real", "up"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "invalid"
}

// Director is the state of the director that decides what is announced.
type Director struct {
	Started  bool // workers run and every real server has had its first health check
	Stopping bool
	Drained  bool
	Alive    bool // the data plane makes progress
}

// Desired returns the /32 of every VIP that d should announce for snap, sorted, and the
// reason for the whole director (ReasonUp when only per-VIP health decides). A VIP is
// announced while uvs forwards for it (it is in the snapshot) and at least one of its
// services is above quorum with a healthy real server that is not a sorry server.
func Desired(snap *forward.Snapshot, d Director) ([]netip.Prefix, Reason) {
	switch {
	case d.Stopping:
		return nil, ReasonStopping
	case !d.Started || snap == nil:
		return nil, ReasonStarting
	case d.Drained:
		return nil, ReasonDrained
	case !d.Alive:
		return nil, ReasonDataPlane
	}
	var out []netip.Prefix
	for _, svc := range snap.Services() {
		if !serviceUp(svc) {
			continue
		}
		p := netip.PrefixFrom(conntrack.Addr(svc.VIP), 32)
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, comparePrefix)
	return out, ReasonUp
}

func serviceUp(svc *forward.Service) bool {
	if svc.Down {
		return false
	}
	for _, r := range svc.Reals {
		if r != nil && !r.Removed && !r.Sorry && r.Healthy {
			return true
		}
	}
	return false
}
