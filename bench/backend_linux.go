//go:build linux

package bench

import (
	"fmt"
	"slices"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/forward/afxdp"
)

func init() { afxdpProbe = afxdp.Probe }

// benchAFPacket reports whether bench.backends asks for the afpacket candidates.
func (r *runner) benchAFPacket() bool {
	return slices.Contains(r.b.Backends, config.BackendAFPacket)
}

// afxdpCandidates returns the afxdp candidate of worker count w, if bench.backends asks for
// it: one per worker count (tx_modes are afpacket's), and with the first the floor-afxdp
// candidate.
func (r *runner) afxdpCandidates(w int) []*candidate {
	if !slices.Contains(r.b.Backends, config.BackendAFXDP) {
		return nil
	}
	if afxdpProbe != nil {
		if err := afxdpProbe(); err != nil {
			note := "afxdp skipped: " + err.Error()
			if !slices.Contains(r.res.Notes, note) {
				r.res.Notes = append(r.res.Notes, note)
			}
			return nil
		}
	}
	out := []*candidate{{CandidateInfo: CandidateInfo{Name: fmt.Sprintf("uvs-afxdp-w%d", w), Kind: "uvs", Workers: w,
		TXMode: config.TXRing.String(), Backend: "afxdp", Pinned: w == 1 && r.dirCPU >= 0}}}
	// The backend's own floor (floor-afxdp), once, beside its first candidate, unless
	// bench.compare already names it.
	if len(r.b.Workers) > 0 && w == r.b.Workers[0] && !slices.Contains(r.b.Compare, "floor-afxdp") {
		out = append(out, &candidate{CandidateInfo: CandidateInfo{Name: "floor-afxdp", Kind: "floor", RXRing: "afxdp",
			Backend: "afxdp", Pinned: r.dirCPU >= 0}})
	}
	return out
}
