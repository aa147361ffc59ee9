package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// SVG layout, in pixels.
const (
	svgWidth  = 1100
	svgLabelW = 150 // candidate names
	svgBarH   = 16
	svgTextW  = 420 // room right of the longest bar for its label (about 60 characters)
	svgGap    = 6
	svgPanelH = 28 // panel title
)

// svgColors cycle through the candidates.
var svgColors = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// SVG returns a self-contained SVG chart: for each packet size, delivered
// Mpps and director ns per packet of every candidate; then latency p50 and
// p99. It is hand-written, with no scripts or external references, so any
// browser opens it.
func (r *Results) SVG() string {
	type bar struct {
		label, text string
		v           float64
		color       string
	}
	type panel struct {
		title string
		bars  []bar
	}
	color := map[string]string{}
	for i, c := range r.Candidates {
		color[c.Name] = svgColors[i%len(svgColors)]
	}
	var panels []panel
	for _, test := range []string{"udp", "tcp", "syn"} {
		for _, size := range r.Profile.PacketSizes {
			var p, q panel
			p.title = fmt.Sprintf("%s %d-byte frames: delivered Mpps, and the bottleneck", strings.ToUpper(test), size)
			q.title = fmt.Sprintf("%s %d-byte frames: director CPU ns per packet (lower is better)", strings.ToUpper(test), size)
			for _, x := range r.Rows {
				if x.Test != test || x.Size != size {
					continue
				}
				text := fmt.Sprintf("%.3f Mpps", x.DeliveredPPS/1e6)
				if x.NoLossPPS > 0 {
					text += fmt.Sprintf(" (%.3f at <=%.1f%% loss)", x.NoLossPPS/1e6, r.Profile.MaxLossPercent)
				}
				if x.Bottleneck != "" {
					text += ", bottleneck: " + x.Bottleneck
				}
				if x.Note != "" && x.DeliveredPPS == 0 {
					text = x.Note
				}
				p.bars = append(p.bars, bar{x.Candidate, text, x.DeliveredPPS / 1e6, color[x.Candidate]})
				if x.NsPerPkt > 0 {
					text := fmt.Sprintf("%.0f ns", x.NsPerPkt)
					if x.ProcNsPerPkt == x.NsPerPkt {
						text += " (director thread time, unpinned)"
					}
					q.bars = append(q.bars, bar{x.Candidate, text, x.NsPerPkt, color[x.Candidate]})
				}
			}
			if len(p.bars) > 0 {
				panels = append(panels, p)
			}
			if len(q.bars) > 0 {
				panels = append(panels, q)
			}
		}
	}
	var trickle, lat, conn panel
	trickle.title = "UDP round trip at a trickle (50 probes/s, open loop): p50 (bar) and p99, microseconds"
	lat.title = "UDP round trip beside 50% of the peak (open loop): p50 (bar) and p99, microseconds"
	conn.title = "new TCP connections per second through the VIP"
	for _, x := range r.Rows {
		switch {
		case x.Test == "latency-trickle" && x.Probes > 0:
			trickle.bars = append(trickle.bars, bar{x.Candidate, fmt.Sprintf("p50 %.0f us, p99 %.0f us (added %+.0f / %+.0f)", x.P50us, x.P99us, x.AddedP50us, x.AddedP99us), x.P50us, color[x.Candidate]})
		case x.Test == "latency" && x.Probes > 0:
			lat.bars = append(lat.bars, bar{x.Candidate, fmt.Sprintf("p50 %.0f us, p99 %.0f us", x.P50us, x.P99us), x.P50us, color[x.Candidate]})
		case x.Test == "connect" && x.ConnsPerSec > 0:
			conn.bars = append(conn.bars, bar{x.Candidate, fmt.Sprintf("%.0f conn/s", x.ConnsPerSec), x.ConnsPerSec, color[x.Candidate]})
		}
	}
	for _, p := range []panel{trickle, lat, conn} {
		if len(p.bars) > 0 {
			panels = append(panels, p)
		}
	}
	h := 60
	for _, p := range panels {
		h += svgPanelH + len(p.bars)*(svgBarH+svgGap) + 12
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgWidth, h, svgWidth, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	m := r.Meta
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="15" font-weight="bold">uvs bench %s</text>`+"\n", esc(m.Start))
	fmt.Fprintf(&b, `<text x="10" y="40">%s</text>`+"\n", esc(fmt.Sprintf("kernel %s, %s, %d cores, %s, commit %.12s, load %s", m.Kernel, m.CPUModel, m.Cores, m.GoVersion, m.Commit, m.LoadBefore)))
	y := 60
	for _, p := range panels {
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+16, esc(p.title))
		y += svgPanelH
		maxV := 0.0
		for _, x := range p.bars {
			maxV = math.Max(maxV, x.v)
		}
		if maxV == 0 {
			maxV = 1
		}
		span := float64(svgWidth - svgLabelW - svgTextW)
		for _, x := range p.bars {
			w := x.v / maxV * span
			fmt.Fprintf(&b, `<text x="10" y="%d">%s</text>`+"\n", y+12, esc(x.label))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", svgLabelW, y, w, svgBarH, x.color)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(svgLabelW)+w+6, y+12, esc(x.text))
			y += svgBarH + svgGap
		}
		y += 12
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func esc(s string) string { return html.EscapeString(s) }
