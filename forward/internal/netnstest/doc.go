// Package netnstest holds the helpers of the forward packages' TestIntegration tests:
// network namespaces, veth pairs, sysctls, AF_PACKET taps and traffic, set up with ip(8).
//
// It is for tests only: no package but a _test.go file may import it.
package netnstest
