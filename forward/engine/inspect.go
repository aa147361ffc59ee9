package engine

import (
	"fmt"
	"net/netip"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/forward/packet"
)

// Read-only accessors for the operator side (package control): listings, metrics and traces
// read the published snapshot and the counters, never the workers' private state.

// Services returns the snapshot's services in ID order. The slice is fresh; the services are
// the snapshot's own and must not be modified.
func (s *Snapshot) Services() []*Service {
	out := make([]*Service, 0, len(s.byID))
	for _, svc := range s.byID {
		if svc != nil {
			out = append(out, svc)
		}
	}
	return out
}

// ServiceByID returns the service with the given ID (as conntrack entries store it), or nil.
func (s *Snapshot) ServiceByID(id uint16) *Service { return s.service(id) }

// Lookup returns the service a packet to addr:port with IP protocol proto would match, as the
// workers look it up (an exact port first, then a port-0 service), or nil.
func (s *Snapshot) Lookup(addr netip.Addr, proto uint8, port uint16) *Service {
	return s.lookupService(addr.Unmap().As16(), proto, port)
}

// EachDrop calls fn with every drop reason's name and count, zero counts included, in a
// fixed order. Counters are read with atomic loads.
func (s *EngineStats) EachDrop(fn func(reason string, n uint64)) {
	for r := packet.Fault(1); r < packet.NumFaults; r++ {
		fn(r.String(), s.Faults[r].Load())
	}
	for r := Drop(1); r < numDrops; r++ {
		fn(r.String(), s.Drops[r].Load())
	}
}

// BuildSnapshot builds a snapshot from cfg for a director with the given number of workers,
// with no egress resolved. It is for tools and tests that need a snapshot without sockets.
func BuildSnapshot(cfg *config.Config, workers int) (*Snapshot, error) {
	if workers < 1 {
		return nil, fmt.Errorf("forward: build snapshot: %d workers", workers)
	}
	g := NewRegistry(workers)
	none := func([16]byte) Egress { return NoEgress }
	s, err := g.Build(cfg, nil, none, 1)
	if err != nil {
		return nil, err
	}
	g.Commit(s)
	return s, nil
}
