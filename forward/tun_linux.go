package forward

// tunnelAttrs sums the workers' TUN, fragmentation-needed and MSS clamp counters into slog
// attributes for the director's counter lines (non-zero ones only).
func (d *Director) tunnelAttrs() []any {
	var v [7]uint64
	for _, w := range d.workers {
		s := w.Engine().Stats()
		t := &s.Tunnel
		v[0] += t.Frames.Load()
		v[1] += t.Segmented.Load()
		v[2] += t.Fragmented.Load()
		v[3] += s.FragNeeded.Load()
		v[4] += t.TooSmallMTU.Load()
		v[5] += t.UnsupGSOType.Load()
		v[6] += s.MSSClamped.Load()
	}
	names := [7]string{"tun_frames", "tun_segmented", "tun_fragmented", "frag_needed",
		"tun_mtu_too_small", "tun_gso_unsupported", "mss_clamped"}
	var attrs []any
	for i, n := range v {
		if n != 0 {
			attrs = append(attrs, names[i], n)
		}
	}
	return attrs
}
