// Package frametest holds the IPv4 frame builders and checksum oracle shared by the tests of
// forward/packet and forward/engine: frames are built with gopacket and checked against
// gopacket (the oracle) and against RefSum, a slow, obviously-right RFC 1071 sum.
//
// It is for tests only: no package but a _test.go file may import it, so gopacket and
// testing never reach the uvs binary. It must not import forward/packet, whose own tests
// import it; its sums are therefore written out here, independent of the code under test.
package frametest
