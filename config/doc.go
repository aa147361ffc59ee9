// Package config turns a uvs TOML file into a validated, immutable *Config.
//
// It owns the file format pinned in INTERFACE.md: strict decoding (a key
// the decoder does not know is an error, never ignored), defaults, and
// validation that reports every problem at once, each with its file, line
// and key path ("service[1].real[0].weight"), so that `uvs check` can print
// them as FILE:LINE: key.path: message.
//
// It must not touch the system: it checks the syntax of interface names and
// addresses, never whether they exist, and it imports nothing else from uvs.
// A *Config returned by Load or Parse is shared read-only by the control
// plane; nothing may modify it after it is returned.
package config
