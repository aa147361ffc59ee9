package engine

// testSrc6 is the director's IPv6 egress address in tests (6in6 and 4in6 outer source).
var testSrc6 = [16]byte{0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 15: 1}
