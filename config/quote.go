package config

import (
	"fmt"
	"strings"
)

// Quote returns s as a TOML basic string (TOML v1.0.0, "String"): only '"', '\' and control
// characters need escapes. Code that writes uvs configuration (uvs save, the lab) uses it so
// that what it writes reads back as the same string.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
