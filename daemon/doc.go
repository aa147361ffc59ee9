// Package daemon runs one director from a config: the data plane (forward.Director), health
// checks, VRRP, connection sync and BGP, the control socket and metrics; their start order,
// reloads (SIGHUP, uvs reload, runtime edits reach every component) and shutdown.
//
// It owns the composition only: what each component does is its own package's. cmd/uvs
// parses flags, sets up logging, loads the config, drops capabilities, installs the signal
// handlers and calls Run; it holds no logic.
//
// Start-up opens, in this order, what can fail without changing the host (the control
// socket and metrics listener, sync, the BGP speaker, the VRRP sockets), then the director,
// which changes the host (shield, rings, XDP programs). A stop request at any point of
// start-up ends Run with everything started undone, as a stop while running does.
//
// It must not parse flags, load config files other than for a reload, or install signal
// handlers: the caller owns the process.
package daemon
