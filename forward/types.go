package forward

import (
	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/forward/engine"
)

// What the operator side (package control, cmd/uvs) reads: the published snapshot and the
// workers' counters. They are the engine's own types (package engine); the names here let the
// control side import forward alone.
type (
	Snapshot    = engine.Snapshot
	Service     = engine.Service
	Real        = engine.Real
	RealRef     = engine.RealRef
	Health      = engine.Health
	Counters    = engine.Counters
	EngineStats = engine.EngineStats
)

// BuildSnapshot builds a snapshot from cfg for a director with the given number of workers,
// with no egress resolved. It is for tools and tests that need a snapshot without sockets.
func BuildSnapshot(cfg *config.Config, workers int) (*Snapshot, error) {
	return engine.BuildSnapshot(cfg, workers)
}

// BackendAFPacket names the AF_PACKET data plane (director.backend).
const BackendAFPacket = "afpacket"

// DataPlane says which mechanisms run (uvs list --json's director object).
type DataPlane struct {
	Backend string // "afpacket" or "afxdp"
	Shield  string // "tcx" or "nftables"; "none" with afxdp
	RXRing  string // "v2" or "v3"
	TXMode  string // "ring" or "mmsg"
}
