// Package steer decides which worker gets a packet: a hash on the client side of the
// packet that keeps a connection's two directions (a NAT request and its reply), every
// connection of a persistent client, fragments and ICMP errors on the worker that holds the
// connection (SteerRule; steerHash is its plain Go twin for tests), and its compilation into
// the classic BPF program that an AF_PACKET fanout group runs (BuildSteerProgram). State
// restore uses the same hash to put each saved connection on the worker its packets reach.
//
// It is pure code (golang.org/x/net/bpf assembles, nothing is loaded here): it must not
// depend on Linux, open sockets or know about rings; installing the program is the backend's.
package steer
