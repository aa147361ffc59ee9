// Package bench owns the namespace lab that integration tests, `uvs demo`
// and benchmarks share: network namespaces joined by veth pairs to bridges in
// a separate switch namespace, in-process test servers on the real servers,
// and a runner for the director binary inside the lab.
//
// Every lab address is in the benchmarking range 198.18.0.0/15 (RFC 2544),
// and every namespace name starts with a caller-given prefix so that
// concurrent runs never collide. The package never touches the interfaces,
// routes or sysctls of the namespace it is started from.
//
// bench must not be imported by the director itself (cmd/uvs run, forward,
// conntrack, sched): it is test and tooling code.
package bench
