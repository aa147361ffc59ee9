// Package vrrp is uvs's VRRP speaker: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798) over IPv4,
// and VRRPv3 over IPv6 (adverts to ff02::12 from the link-local address), wire-compatible
// with keepalived, so that a pair of directors (or a uvs director and a
// keepalived one) hand the VIPs over between them.
//
// It owns the advertisement codec (packet.go: pure, bounds-checked, fuzzed), the per-instance
// state machine (state.go: pure, time is a parameter), sync groups, and on Linux the speaker
// (speaker_linux.go): one raw socket for protocol 112 per instance (AF_INET6 for an IPv6
// instance, speaker6_linux.go), the timers, gratuitous ARP (IPv4) or unsolicited neighbour
// advertisements (IPv6) on takeover, and the notify commands.
//
// It must not touch rings, snapshots or connection tables: it reports who owns which VIP
// through Config.OnChange, which package daemon points at the director, and reads tracking state
// through callbacks. It imports nothing from uvs but config and
// forward/packet (the pure neighbour advertisement builder). A malformed or hostile
// advertisement is a counted drop, never an error value or a log line.
package vrrp
