// Package afpacket is the AF_PACKET backend of the data plane: per worker and interface, a
// TPACKET_V3 receive ring with PACKET_VNET_HDR (ring_linux.go, block and frame status in
// ring_unsafe.go), a transmit path by sendmmsg or a TPACKET_V2 TX ring (tx_linux.go), the
// fanout group that spreads flows over workers and runs the steering program of package
// steer, and the worker loop (worker_linux.go) that walks ring blocks through an engine.Engine
// and flushes its frames once per block; setup_linux.go opens a worker and serves the
// control side's requests.
//
// It owns the sockets, rings and kernel-facing counters, and nothing else: what to do with a
// frame is package engine's, the steering hash is package steer's. It must not contain
// per-packet forwarding logic, nor logging or locks in the worker loop. Another backend
// (AF_XDP) goes beside it as a package of its own, driving the same engine.
package afpacket
