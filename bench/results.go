package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Results are what `uvs bench` measured, as written to results.json.
type Results struct {
	Meta       Meta            `json:"meta"`
	Profile    Profile         `json:"profile"`
	Candidates []CandidateInfo `json:"candidates"`
	Rows       []Row           `json:"rows"`
	Ratios     []Ratio         `json:"ratios,omitempty"`
	Targets    []Target        `json:"targets,omitempty"`
	Notes      []string        `json:"notes,omitempty"`
}

// Meta says where and when the figures were measured.
type Meta struct {
	Start       string  `json:"start"`
	Kernel      string  `json:"kernel"`
	CPUModel    string  `json:"cpu_model"`
	Cores       int     `json:"cores"`
	GoVersion   string  `json:"go_version"`
	Commit      string  `json:"commit"`
	LoadBefore  string  `json:"loadavg_before"`
	LoadAfter   string  `json:"loadavg_after"`
	Seconds     float64 `json:"seconds"`
	Config      string  `json:"config"`
	Lab         string  `json:"lab"`
	DirectorCPU int     `json:"director_cpu"`
	GenCPU      int     `json:"generator_cpu"`
}

// Profile is the [bench] profile that ran.
type Profile struct {
	DurationS      float64  `json:"duration_s"`
	PacketSizes    []int    `json:"packet_sizes"`
	Flows          int      `json:"flows"`
	SYNFlows       int      `json:"syn_flows"`
	RateSteps      []int    `json:"rate_steps_percent"`
	MaxLossPercent float64  `json:"max_loss_percent"`
	Tests          []string `json:"tests"`
	UDPService     string   `json:"udp_service,omitempty"`
	TCPService     string   `json:"tcp_service,omitempty"`
	UDP6Service    string   `json:"udp6_service,omitempty"` // test udp6: the first IPv6 UDP service
}

// CandidateInfo is one forwarder that was measured.
type CandidateInfo struct {
	Name    string            `json:"name"` // "uvs-ring-w1", "kernel", "nftables"
	Kind    string            `json:"kind"` // uvs, kernel, nftables
	Workers int               `json:"workers,omitempty"`
	TXMode  string            `json:"tx_mode,omitempty"`
	RXRing  string            `json:"rx_ring,omitempty"` // uvs and floor: v2 or v3
	Backend string            `json:"backend,omitempty"` // uvs: afpacket or afxdp
	Pinned  bool              `json:"pinned"`            // director (and its receive softirq) on director_cpu only
	Stopped map[string]string `json:"director_counters,omitempty"`
}

// Row is one measurement.
type Row struct {
	Candidate     string            `json:"candidate"`
	Test          string            `json:"test"` // udp, tcp, syn, connect, latency
	Size          int               `json:"size,omitempty"`
	Flows         int               `json:"flows,omitempty"`
	OfferedPPS    float64           `json:"offered_pps,omitempty"`
	DeliveredPPS  float64           `json:"delivered_pps,omitempty"`
	LossPercent   float64           `json:"loss_percent"`
	NoLossPPS     float64           `json:"rate_at_max_loss_pps,omitempty"` // highest delivered rate of a step within max_loss_percent
	DirectorBusy  float64           `json:"director_cpu_busy"`
	ProcBusy      float64           `json:"director_process_cpu,omitempty"` // uvs: CPU time of the director's threads over the window, as a fraction of it
	GeneratorBusy float64           `json:"generator_cpu_busy"`
	NsPerPkt      float64           `json:"director_cpu_ns_per_packet,omitempty"`
	ProcNsPerPkt  float64           `json:"director_process_ns_per_packet,omitempty"`
	Bottleneck    string            `json:"bottleneck,omitempty"`
	PerReal       map[string]uint64 `json:"per_real,omitempty"`
	ConnsPerSec   float64           `json:"conns_per_s,omitempty"`
	ConnFailures  uint64            `json:"conn_failures,omitempty"`
	LoadPPS       float64           `json:"latency_load_pps,omitempty"`
	P50us         float64           `json:"p50_us,omitempty"`
	P99us         float64           `json:"p99_us,omitempty"`
	AddedP50us    float64           `json:"added_p50_us,omitempty"`
	AddedP99us    float64           `json:"added_p99_us,omitempty"`
	Probes        int               `json:"probes,omitempty"`
	Lost          int               `json:"probes_lost,omitempty"`
	Note          string            `json:"note,omitempty"`
	// CostLoops is how many busy loops shared the director's CPU in a cost row (udp-cost).
	CostLoops int `json:"cost_busy_loops,omitempty"`

	// DirectP50us and DirectP99us are the round trips of probes straight to the first real
	// server, interleaved with the probes through the candidate on one open-loop schedule:
	// the added figures subtract these, measured in the same window.
	DirectP50us  float64 `json:"direct_p50_us,omitempty"`
	DirectP99us  float64 `json:"direct_p99_us,omitempty"`
	DirectProbes int     `json:"direct_probes,omitempty"`
	DirectLost   int     `json:"direct_probes_lost,omitempty"`
}

// Ratio compares a uvs candidate with a baseline on one test.
type Ratio struct {
	Candidate string  `json:"candidate"`
	Baseline  string  `json:"baseline"`
	Test      string  `json:"test"`
	Size      int     `json:"size,omitempty"`
	PPS       float64 `json:"delivered_pps_ratio,omitempty"`
	NsPerPkt  float64 `json:"ns_per_packet_ratio,omitempty"`
	// ThreadNsPerPkt compares the forwarders' own threads' CPU time per
	// packet (uvs and floor only): it leaves out the receive softirq, which
	// is the same kernel work for both, and the other jobs of a loaded
	// machine, which the director CPU's busy time counts.
	ThreadNsPerPkt float64 `json:"thread_ns_per_packet_ratio,omitempty"`
}

// Target is one of the benchmark targets and whether it was met.
type Target struct {
	What   string  `json:"what"`
	Value  float64 `json:"value"`
	Limit  float64 `json:"limit"`
	Met    bool    `json:"met"`
	Detail string  `json:"detail"`
}

// find returns the row of candidate, test and size, or nil.
func (r *Results) find(cand, test string, size int) *Row {
	for i := range r.Rows {
		w := &r.Rows[i]
		if w.Candidate == cand && w.Test == test && (size == 0 || w.Size == size) {
			return w
		}
	}
	return nil
}

// WriteFiles writes dir/results.json and dir/report.svg.
func (r *Results) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: results: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.svg"), []byte(r.SVG()), 0o644); err != nil {
		return fmt.Errorf("bench: results: %w", err)
	}
	return nil
}

// WriteTable writes the results as a text table.
func (r *Results) WriteTable(w io.Writer) {
	m := r.Meta
	fmt.Fprintf(w, "uvs bench: kernel %s, %s, %d cores, %s, commit %.12s\nload before %s, after %s\n\n",
		m.Kernel, m.CPUModel, m.Cores, m.GoVersion, m.Commit, m.LoadBefore, m.LoadAfter)
	fmt.Fprintf(w, "%-14s %-8s %5s %8s %8s %6s %8s %6s %6s  %-10s %s\n",
		"candidate", "test", "size", "Mpps", "Mpps@", "loss%", "ns/pkt", "dir%", "gen%", "bottleneck", "other")
	fmt.Fprintf(w, "%-14s %-8s %5s %8s %8s %6s %8s %6s %6s  %-10s\n", "", "", "", "peak", fmt.Sprintf("<=%.1f%%", r.Profile.MaxLossPercent), "", "director", "", "", "")
	for _, x := range r.Rows {
		size := ""
		if x.Size > 0 {
			size = fmt.Sprint(x.Size)
		}
		var other []string
		if x.ConnsPerSec > 0 {
			other = append(other, fmt.Sprintf("%.0f conn/s", x.ConnsPerSec))
		}
		if x.Probes > 0 {
			other = append(other, fmt.Sprintf("rtt p50 %.0fus p99 %.0fus", x.P50us, x.P99us))
			if x.DirectProbes > 0 {
				other = append(other, fmt.Sprintf("direct p50 %.0fus p99 %.0fus", x.DirectP50us, x.DirectP99us))
			}
			if x.AddedP50us != 0 || x.AddedP99us != 0 {
				other = append(other, fmt.Sprintf("added p50 %+.0fus p99 %+.0fus", x.AddedP50us, x.AddedP99us))
			}
			if x.Lost > 0 {
				other = append(other, fmt.Sprintf("%d of %d lost", x.Lost, x.Probes))
			}
			if x.ProcBusy > 0 {
				other = append(other, fmt.Sprintf("director threads %.2f%% CPU", 100*x.ProcBusy))
			}
		}
		if x.ProcNsPerPkt > 0 && x.ProcNsPerPkt != x.NsPerPkt {
			other = append(other, fmt.Sprintf("thread %.0f ns/pkt", x.ProcNsPerPkt))
		}
		if len(x.PerReal) > 0 {
			other = append(other, perRealString(x.PerReal))
		}
		if x.Note != "" {
			other = append(other, x.Note)
		}
		mpps := func(v float64) string {
			if v == 0 {
				return "-"
			}
			return fmt.Sprintf("%.3f", v/1e6)
		}
		ns := "-"
		if x.NsPerPkt > 0 {
			ns = fmt.Sprintf("%.0f", x.NsPerPkt)
		}
		fmt.Fprintf(w, "%-14s %-8s %5s %8s %8s %6.2f %8s %6.0f %6.0f  %-10s %s\n", x.Candidate, x.Test, size,
			mpps(x.DeliveredPPS), mpps(x.NoLossPPS), x.LossPercent, ns, 100*x.DirectorBusy, 100*x.GeneratorBusy,
			x.Bottleneck, strings.Join(other, "; "))
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintln(w, "\nratios (candidate / baseline): delivered pps, director ns per packet, own threads' ns per packet")
		for _, x := range r.Ratios {
			th := ""
			if x.ThreadNsPerPkt > 0 {
				th = fmt.Sprintf("  thread ns/pkt %.2fx", x.ThreadNsPerPkt)
			}
			fmt.Fprintf(w, "  %-14s / %-9s %-4s %5d  pps %.2fx  ns/pkt %.2fx%s\n", x.Candidate, x.Baseline, x.Test, x.Size, x.PPS, x.NsPerPkt, th)
		}
	}
	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets:")
		for _, t := range r.Targets {
			verdict := "met"
			if !t.Met {
				verdict = "MISSED"
			}
			fmt.Fprintf(w, "  %-6s %s: %s\n", verdict, t.What, t.Detail)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func perRealString(m map[string]uint64) string {
	names := make([]string, 0, len(m))
	var total uint64
	for k, v := range m {
		names = append(names, k)
		total += v
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		pct := 0.0
		if total > 0 {
			pct = 100 * float64(m[k]) / float64(total)
		}
		parts[i] = fmt.Sprintf("%s %.0f%%", k, pct)
	}
	return strings.Join(parts, " ")
}

// Find returns the first row of candidate and test, or nil.
func (r *Results) Find(candidate, test string) *Row { return r.find(candidate, test, 0) }
