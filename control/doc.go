// Package control is the operator API of a running director: the control socket (a small
// versioned protocol, one JSON request and one JSON response per connection), the ipvsadm
// layouts of `uvs list`, runtime edits and reloads, `uvs save` and `uvs diff`, the Prometheus
// collector and `uvs trace`.
//
// It reads the data plane only through forward's published snapshot, its counters and its
// connection dump, and changes it only through Director.Reload with a config validated by
// package config. It must not touch sockets, rings or conntrack tables of the workers, nor
// hold a lock the workers take.
package control
