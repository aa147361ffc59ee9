// Package migrate converts other load balancers' configurations into uvs
// TOML: `ipvsadm-save -n` (or `ipvsadm -Sn`) output and the virtual_server
// blocks of keepalived.conf.
//
// It owns the mapping from those formats to uvs keys and the diagnostics
// for what does not map: every setting that cannot be carried over becomes
// a "# uvs import: FILE:LINE: ..." comment in the output, and malformed
// input is an *Error holding one "FILE:LINE: message" Problem per fault.
// Output is checked with config.Parse before it is returned, so a Result
// is always a file that `uvs check` accepts.
//
// It must not touch the network or the system: host and port names are
// reported, never resolved, and keepalived include directives are
// followed only inside the fs.FS the caller hands in (the directory of the
// file). It imports only config from uvs.
package migrate
