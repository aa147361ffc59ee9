package config

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrNetmaskNotContiguous is returned by ParseNetmask for a mask whose ones are not all
// leading (255.0.255.0).
var ErrNetmaskNotContiguous = errors.New("not contiguous")

// ParseNetmask parses a dotted IPv4 netmask ("255.255.255.0", as ipvsadm -M takes it) into
// its prefix length. persistence_netmask and uvs edit -M both use it.
func ParseNetmask(s string) (int, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("invalid netmask %q: want a dotted IPv4 mask, as in \"255.255.255.0\", or a prefix length", s)
	}
	b := a.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for m&(1<<31) != 0 {
		m <<= 1
		ones++
	}
	if m != 0 {
		return 0, fmt.Errorf("netmask %q is %w", s, ErrNetmaskNotContiguous)
	}
	return ones, nil
}
