package config

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Defaults of the [lab] and [bench] tables.
const (
	DefaultLabPrefix     = "uvslab-"       // DefaultLabPrefix is lab.prefix's default.
	DefaultLabMTU        = 1500            // DefaultLabMTU is lab.mtu's default.
	DefaultBenchDuration = 2 * time.Second // DefaultBenchDuration is bench.duration's default: one measurement step.
	DefaultBenchFlows    = 10000           // DefaultBenchFlows is bench.flows' default.
	DefaultBenchSYNFlows = 1 << 20         // DefaultBenchSYNFlows is bench.syn_flows' default.
	DefaultBenchMaxLoss  = 0.1             // DefaultBenchMaxLoss is bench.max_loss_percent's default, as RFC 2544 throughput allows none and most papers 0.1%.
	DefaultLatencyLoad   = 50              // DefaultLatencyLoad is bench.latency_load_percent's default.
	DefaultConnParallel  = 16              // DefaultConnParallel is bench.connect_parallel's default.
)

// Limits of the [lab] and [bench] tables.
const (
	MaxLabPrefix    = 20                     // MaxLabPrefix bounds lab.prefix: namespace names are prefix + role.
	MaxLabClients   = 50                     // MaxLabClients bounds lab.clients.
	MaxLabDirectors = 8                      // MaxLabDirectors bounds lab.directors.
	MaxBenchFlows   = 1 << 24                // MaxBenchFlows bounds bench.flows and bench.syn_flows.
	MinPacketSize   = 64                     // MinPacketSize is the least Ethernet frame (FCS included).
	MaxPacketSize   = 9018                   // MaxPacketSize is a jumbo frame.
	MaxBenchSeconds = 600                    // MaxBenchSeconds bounds bench.duration.
	MaxConnParallel = 4096                   // MaxConnParallel bounds bench.connect_parallel.
	MaxBenchRounds  = 20                     // MaxBenchRounds bounds bench.rounds.
	maxRateSteps    = 32                     // bound on bench.rate_steps entries
	maxCostPPS      = 100_000_000            // bound on bench.cost_pps, far above one generator thread
	percent         = 100                    // rate steps are percent of the peak
	minBenchStep    = 100 * time.Millisecond // shorter steps are dominated by start-up
)

// Lab is the [lab] table: how `uvs lab up` lays out the namespace lab for
// the services of the file. Every field has a default, so a file without
// [lab] still describes a lab.
type Lab struct {
	Prefix    string // Key prefix: start of every namespace name; letters, digits, '.', '_', '-'.
	Clients   int    // Key clients: client namespaces on the clients' segment.
	Router    bool   // Key router: put TUN real servers behind a router namespace (required for tun).
	MTU       int    // Key mtu: MTU of every lab link and bridge.
	TXOffload bool   // Key tx_offload: false turns TX checksum offload off on the director's links.
	Directors int    // Key directors: directors behind the router (with [bgp] only); default 1.
	Present   bool   // The file has a [lab] table.
}

// Bench is the [bench] table: the traffic profile of `uvs bench`.
type Bench struct {
	Duration        time.Duration // Key duration: length of one measurement step.
	PacketSizes     []int         // Key packet_sizes: Ethernet frame sizes, FCS included, as RFC 2544.
	Flows           int           // Key flows: distinct UDP/TCP flows of the packet-rate tests.
	SYNFlows        int           // Key syn_flows: distinct flows of the SYN-only test, so that every SYN is new.
	RateSteps       []int         // Key rate_steps: offered rates, in percent of the peak delivered rate, searched for the loss limit.
	MaxLossPercent  float64       // Key max_loss_percent: loss a step may have and still count.
	LatencyLoad     int           // Key latency_load_percent: background load, in percent of the peak, while latency is measured.
	ConnectParallel int           // Key connect_parallel: concurrent connections of the connection-rate test.
	Compare         []string      // Key compare: baselines, "kernel", "nftables", "floor-v3", "floor-v2" and "floor-afxdp".
	Workers         []int         // Key workers: director worker counts to measure.
	TXModes         []TXMode      // Key tx_modes: director TX paths to measure (backend afpacket).
	RXRings         []RXRing      // Key rx_rings: director receive rings to measure (afpacket).
	Backends        []Backend     // Key backends: director backends to measure; afxdp runs once per worker count.
	Tests           []string      // Key tests: which measurements to run.
	Rounds          int           // Key rounds: times every candidate is measured, alternately; the least disturbed round is kept.
	GeneratorCPU    int           // Key generator_cpu: CPU the generator is pinned to; -1 = not pinned.
	DirectorCPU     int           // Key director_cpu: CPU a one-worker director (and its receive softirq) is pinned to; -1 = not pinned.
	CostPPS         int           // Key cost_pps: 64-byte UDP offered to uvs and the floor at this rate beside busy loops on the director's CPU (test udp, row udp-cost): both saturated, costs compare by delivered rate; 0 = off.
	Present         bool          // The file has a [bench] table.
}

// BenchTests are the measurements bench.tests may name, in the order they run.
var BenchTests = []string{"udp", "tcp", "syn", "connect", "latency", "overload"}

// BenchOptionalTests are measurements bench.tests may name that the default profile leaves
// out: "udp6" is "udp" on the configuration's first IPv6 UDP service (uvs candidates only).
var BenchOptionalTests = []string{"udp6"}

// BenchBaselines are the names bench.compare accepts.
// The floors are the smallest forwarders on uvs's rings (bench/floor_linux.go) and on its
// AF_XDP sockets (floor-afxdp, bench/floor_afxdp_linux.go).
var BenchBaselines = []string{"kernel", "nftables", "floor-v3", "floor-v2", "floor-afxdp"}

func (d *decoder) lab(t *table, l *Lab, present bool) {
	*l = Lab{Prefix: DefaultLabPrefix, Router: true, MTU: DefaultLabMTU, TXOffload: true, Present: present}
	t.str("prefix", &l.Prefix)
	t.int("clients", &l.Clients)
	if !t.has("clients") {
		l.Clients = 1
	}
	t.boolean("router", &l.Router)
	t.int("mtu", &l.MTU)
	t.boolean("tx_offload", &l.TXOffload)
	t.int("directors", &l.Directors)
	if l.Directors == 0 {
		l.Directors = 1
	}
	t.done()
}

func (d *decoder) bench(t *table, b *Bench, present bool) {
	*b = Bench{
		Duration:        DefaultBenchDuration,
		PacketSizes:     []int{64, 1400},
		Flows:           DefaultBenchFlows,
		SYNFlows:        DefaultBenchSYNFlows,
		RateSteps:       []int{50, 80, 90, 95, 100},
		MaxLossPercent:  DefaultBenchMaxLoss,
		LatencyLoad:     DefaultLatencyLoad,
		ConnectParallel: DefaultConnParallel,
		Compare:         []string{"kernel", "nftables", "floor-v2"},
		Workers:         []int{1, 2},
		TXModes:         []TXMode{TXRing, TXMMsg},
		RXRings:         []RXRing{DefaultRXRing},
		Backends:        []Backend{BackendAFPacket, BackendAFXDP},
		Tests:           slices.Clone(BenchTests),
		Rounds:          1,
		GeneratorCPU:    0,
		DirectorCPU:     1,
		Present:         present,
	}
	t.duration("duration", &b.Duration)
	d.ints(t, "packet_sizes", &b.PacketSizes)
	t.int("flows", &b.Flows)
	t.int("syn_flows", &b.SYNFlows)
	d.ints(t, "rate_steps", &b.RateSteps)
	d.float(t, "max_loss_percent", &b.MaxLossPercent)
	t.int("latency_load_percent", &b.LatencyLoad)
	t.int("cost_pps", &b.CostPPS)
	t.int("connect_parallel", &b.ConnectParallel)
	t.strings("compare", &b.Compare)
	d.ints(t, "workers", &b.Workers)
	var modes []string
	if t.strings("tx_modes", &modes) {
		b.TXModes = b.TXModes[:0]
		for i, m := range modes {
			tm, err := ParseTXMode(m)
			if err != nil {
				d.problem(indexKey(t.key("tx_modes"), i), "unknown tx mode %q (want %s)", m, oneOf(txModeNames[1:]))
				d.hush(t.key("tx_modes"))
				continue
			}
			b.TXModes = append(b.TXModes, tm)
		}
	}
	var rings []string
	if t.strings("rx_rings", &rings) {
		b.RXRings = b.RXRings[:0]
		for i, m := range rings {
			r, err := ParseRXRing(m)
			if err != nil {
				d.problem(indexKey(t.key("rx_rings"), i), "unknown rx ring %q (want %s)", m, oneOf(rxRingNames[1:]))
				d.hush(t.key("rx_rings"))
				continue
			}
			b.RXRings = append(b.RXRings, r)
		}
	}
	d.benchBackends(t, &b.Backends)
	t.strings("tests", &b.Tests)
	t.int("rounds", &b.Rounds)
	t.int("generator_cpu", &b.GeneratorCPU)
	t.int("director_cpu", &b.DirectorCPU)
	t.done()
}

// ints decodes an array of integers.
func (d *decoder) ints(t *table, k string, dst *[]int) {
	v, ok := t.get(k)
	if !ok {
		return
	}
	list, ok := v.([]any)
	if !ok {
		t.wrongType(k, "an array of integers", v)
		return
	}
	out := []int{}
	for i, e := range list {
		n, ok := e.(int64)
		if !ok {
			d.problem(indexKey(t.key(k), i), "must be an integer, not %s", typeName(e))
			continue
		}
		if n < math.MinInt32 || n > math.MaxInt32 {
			d.problem(indexKey(t.key(k), i), "%d is out of range", n)
			continue
		}
		out = append(out, int(n))
	}
	*dst = out
}

// float decodes a number, integer or float.
func (d *decoder) float(t *table, k string, dst *float64) {
	v, ok := t.get(k)
	if !ok {
		return
	}
	switch v := v.(type) {
	case int64:
		*dst = float64(v)
	case float64:
		*dst = v
	default:
		t.wrongType(k, "a number", v)
	}
}

func (v *validator) lab(l *Lab) {
	if msg := checkLabPrefix(l.Prefix); msg != "" {
		v.problem("lab.prefix", 0, "%s", msg)
	}
	if l.Clients < 1 || l.Clients > MaxLabClients {
		v.problem("lab.clients", 0, "%d is out of range 1..%d", l.Clients, MaxLabClients)
	}
	// 68 is the IPv4 minimum (RFC 791); 65535 is the veth maximum.
	if l.MTU < 68 || l.MTU > 65535 {
		v.problem("lab.mtu", 0, "%d is out of range 68..65535", l.MTU)
	}
	if l.Directors < 1 || l.Directors > MaxLabDirectors {
		v.problem("lab.directors", 0, "%d is out of range 1..%d", l.Directors, MaxLabDirectors)
	}
}

func checkLabPrefix(p string) string {
	if p == "" || len(p) > MaxLabPrefix {
		return fmt.Sprintf("%q must have 1 to %d bytes", p, MaxLabPrefix)
	}
	if p == "." || p == ".." {
		return fmt.Sprintf("invalid prefix %q", p)
	}
	for _, c := range []byte(p) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Sprintf("%q: only letters, digits, '.', '_' and '-'", p)
		}
	}
	return ""
}

func (v *validator) bench(b *Bench) {
	if b.Duration < minBenchStep || b.Duration > MaxBenchSeconds*time.Second {
		v.problem("bench.duration", 0, "%s is out of range 100ms..%ds", b.Duration, MaxBenchSeconds)
	}
	if len(b.PacketSizes) == 0 {
		v.problem("bench.packet_sizes", 0, "must not be empty")
	}
	for i, s := range b.PacketSizes {
		if s < MinPacketSize || s > MaxPacketSize {
			v.problem(indexKey("bench.packet_sizes", i), 0, "%d is out of range %d..%d (Ethernet frame bytes, FCS included)", s, MinPacketSize, MaxPacketSize)
		}
	}
	if b.Flows < 1 || b.Flows > MaxBenchFlows {
		v.problem("bench.flows", 0, "%d is out of range 1..%d", b.Flows, MaxBenchFlows)
	}
	if b.SYNFlows < 1 || b.SYNFlows > MaxBenchFlows {
		v.problem("bench.syn_flows", 0, "%d is out of range 1..%d", b.SYNFlows, MaxBenchFlows)
	}
	if len(b.RateSteps) > maxRateSteps {
		v.problem("bench.rate_steps", 0, "at most %d steps", maxRateSteps)
	}
	for i, s := range b.RateSteps {
		if s < 1 || s > percent {
			v.problem(indexKey("bench.rate_steps", i), 0, "%d is out of range 1..100 (percent of the peak rate)", s)
		}
	}
	if b.MaxLossPercent < 0 || b.MaxLossPercent > percent || math.IsNaN(b.MaxLossPercent) {
		v.problem("bench.max_loss_percent", 0, "%v is out of range 0..100", b.MaxLossPercent)
	}
	if b.LatencyLoad < 0 || b.LatencyLoad > percent {
		v.problem("bench.latency_load_percent", 0, "%d is out of range 0..100", b.LatencyLoad)
	}
	if b.CostPPS < 0 || b.CostPPS > maxCostPPS {
		v.problem("bench.cost_pps", 0, "%d is out of range 0..%d", b.CostPPS, maxCostPPS)
	}
	if b.ConnectParallel < 1 || b.ConnectParallel > MaxConnParallel {
		v.problem("bench.connect_parallel", 0, "%d is out of range 1..%d", b.ConnectParallel, MaxConnParallel)
	}
	for i, c := range b.Compare {
		if !slices.Contains(BenchBaselines, c) {
			v.problem(indexKey("bench.compare", i), 0, "unknown baseline %q (want %s)", c, oneOf(BenchBaselines))
		} else if slices.Index(b.Compare, c) < i {
			v.problem(indexKey("bench.compare", i), 0, "duplicate baseline %q", c)
		}
	}
	if len(b.Workers) == 0 {
		v.problem("bench.workers", 0, "must not be empty")
	}
	for i, w := range b.Workers {
		if w < 1 || w > MaxWorkers {
			v.problem(indexKey("bench.workers", i), 0, "%d is out of range 1..%d", w, MaxWorkers)
		}
	}
	if len(b.TXModes) == 0 {
		v.problem("bench.tx_modes", 0, "must not be empty")
	}
	if len(b.Backends) == 0 {
		v.problem("bench.backends", 0, "must not be empty")
	}
	for i, t := range b.Tests {
		if !slices.Contains(BenchTests, t) && !slices.Contains(BenchOptionalTests, t) {
			v.problem(indexKey("bench.tests", i), 0, "unknown test %q (want %s)", t, oneOf(append(slices.Clone(BenchTests), BenchOptionalTests...)))
		}
	}
	if b.Rounds < 1 || b.Rounds > MaxBenchRounds {
		v.problem("bench.rounds", 0, "%d is out of range 1..%d", b.Rounds, MaxBenchRounds)
	}
	for _, c := range []struct {
		key string
		cpu int
	}{{"bench.generator_cpu", b.GeneratorCPU}, {"bench.director_cpu", b.DirectorCPU}} {
		if c.cpu < -1 || c.cpu > 1023 {
			v.problem(c.key, 0, "%d is out of range -1..1023 (-1: not pinned)", c.cpu)
		}
	}
	if b.GeneratorCPU >= 0 && b.GeneratorCPU == b.DirectorCPU {
		v.problem("bench.director_cpu", 0, "CPU %d is also generator_cpu: the director's cost would hide in the generator's", b.DirectorCPU)
	}
}
