// Package vrrp is uvs's VRRP speaker: VRRPv2 (RFC 3768) and VRRPv3 for IPv4 (RFC 5798),
// wire-compatible with keepalived, so that a pair of directors (or a uvs director and a
// keepalived one) hand the VIPs over between them.
//
// It owns the advertisement codec (packet.go: pure, bounds-checked, fuzzed), the per-instance
// state machine (state.go: pure, time is a parameter), sync groups, and on Linux the speaker
// (speaker_linux.go): one raw IPv4 socket for protocol 112 per interface, the timers,
// gratuitous ARP on takeover, and the notify commands.
//
// It must not touch rings, snapshots or connection tables: it reports who owns which VIP
// through Config.OnChange, which cmd/uvs points at the director, and reads tracking state
// through callbacks. It imports nothing from uvs but config. A malformed or hostile
// advertisement is a counted drop, never an error value or a log line.
package vrrp
