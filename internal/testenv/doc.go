// Package testenv answers, for tests only, whether this process may build
// namespace labs, and turns "no" into a skip locally or a failure in CI.
//
// It imports package testing, so only _test.go files may import it: the
// director binary must not link testing (`go list -deps ./cmd/uvs` checks
// this in .ci/run). It imports nothing else from the project, so that every
// package's internal tests can use it without an import cycle.
package testenv
