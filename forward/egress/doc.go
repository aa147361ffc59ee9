// Package egress resolves how frames to a real server leave the director: the device, the
// next hop and the link-layer addresses, from the host's routes, neighbours and links over
// netlink (Resolver). It subscribes to route, neighbour and link changes, asks the kernel to
// resolve missing neighbours, and calls back so the control side rebuilds the snapshot.
//
// It runs on the control side only. It must not be called from a worker or per packet, and
// must not change the host's routes or links.
package egress
