// Package bench owns the namespace lab that integration tests, `uvs demo`,
// `uvs lab` and `uvs bench` share: network namespaces joined by veth pairs to
// bridges in a separate switch namespace, test servers on the real servers,
// and a runner for the director binary inside the lab.
//
// A lab is laid out either from a LabSpec (fixed DR, NAT and TUN topologies,
// used by tests) or from the services of a uvs configuration (LayoutConfig,
// `uvs lab up`): DR real servers share the clients' segment, NAT real servers
// sit on a segment behind the director, TUN real servers behind a router.
// LabUp starts the servers and the director as background processes and
// records the lab under StateDir, so that other processes can show, use and
// remove it. RunBench measures uvs against kernel forwarding and nftables
// DNAT on such a lab with an AF_PACKET TX-ring generator, counting at the
// real servers' interfaces.
//
// Every lab address used by tests is in the benchmarking range
// 198.18.0.0/15 (RFC 2544), and every namespace name starts with a
// caller-given prefix so that concurrent runs never collide. The package
// never touches the interfaces, routes or sysctls of the namespace it is
// started from.
//
// bench must not be imported by the director itself (cmd/uvs run, forward,
// conntrack, sched): it is test and tooling code.
package bench
