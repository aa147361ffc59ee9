package migrate

import (
	"bytes"
	"net/netip"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// containsLine reports whether text has a line equal to line, leading
// spaces ignored.
func containsLine(text []byte, line string) bool {
	for _, l := range bytes.Split(text, []byte("\n")) {
		if string(bytes.TrimLeft(l, " ")) == line {
			return true
		}
	}
	return false
}
