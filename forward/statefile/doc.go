// Package statefile is the format of the file that keeps connections and persistence
// templates across a restart (uvs run --state-file): WriteState and ReadState, one
// fixed-size record (SavedConn) per entry, services and real servers named by address and
// port rather than by a run's IDs.
//
// It must not trust the file: lengths and counts are checked before use, and a file uvs did
// not write is ErrStateFormat. Mapping records to a snapshot and the workers' tables is
// package engine's (Restore, SaveConns); writing the file atomically is the Director's.
package statefile
