package bench

import (
	"fmt"
	"strings"
)

// afxdpProbe says whether the afxdp backend can run here (afxdp.Probe on Linux).
var afxdpProbe func() error

// withBackendKey returns the TOML text with director.backend set to backend ("" leaves it).
// withDirectorKeys wrote the [director] header line it follows.
func withBackendKey(text, backend string) string {
	if backend == "" {
		return text
	}
	var out []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") {
			in = t == "[director]"
			out = append(out, line)
			if in {
				out = append(out, fmt.Sprintf("backend = %q", backend))
			}
			continue
		}
		if k, _, _ := strings.Cut(t, "="); in && strings.TrimSpace(k) == "backend" {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
