package control

import (
	"context"
	"errors"
	"fmt"
	"github.com/uvs-project/uvs/conntrack"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/uvs-project/uvs/forward"
)

// Counters the collector needs; *forward.Director satisfies it.
type metricsSource interface {
	Snapshot() *forward.Snapshot
	Stats() []*forward.EngineStats
}

// Labels of the per-backend series, as node_exporter's ipvs collector names them.
var backendLabels = []string{"local_address", "local_port", "remote_address", "remote_port", "proto"}

// Collector is a prometheus.Collector that reads the director's counters at scrape time.
// The IPVS series keep node_exporter's ipvs collector names with node_ipvs_ replaced by
// uvs_, so IPVS dashboards work unchanged. It reads raw counters: `uvs edit -Z` does not
// reset them, so they stay monotonic as Prometheus counters must.
type Collector struct {
	src metricsSource

	conns, inPkts, outPkts, inBytes, outBytes *prometheus.Desc
	active, inactive, weight, up              *prometheus.Desc
	drops, rx, tx, entries, services          *prometheus.Desc
	ringPkts, ringDrops, ringFreezes          *prometheus.Desc
	forwarded, natReplies, icmpSent           *prometheus.Desc
}

// NewCollector returns a collector for d.
func NewCollector(d metricsSource) *Collector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("uvs_"+name, help, labels, nil)
	}
	return &Collector{
		src:         d,
		conns:       desc("connections_total", "The total number of connections made."),
		inPkts:      desc("incoming_packets_total", "The total number of incoming packets."),
		outPkts:     desc("outgoing_packets_total", "The total number of outgoing packets."),
		inBytes:     desc("incoming_bytes_total", "The total amount of incoming data."),
		outBytes:    desc("outgoing_bytes_total", "The total amount of outgoing data."),
		active:      desc("backend_connections_active", "The current active connections by local and remote address.", backendLabels...),
		inactive:    desc("backend_connections_inactive", "The current inactive connections by local and remote address.", backendLabels...),
		weight:      desc("backend_weight", "The current backend weight by local and remote address.", backendLabels...),
		up:          desc("backend_up", "1 if the backend passes its health check (or has none), else 0.", backendLabels...),
		drops:       desc("dropped_packets_total", "Packets dropped by the director, by reason.", "reason"),
		rx:          desc("worker_rx_frames_total", "Frames a worker read from its RX rings.", "worker"),
		tx:          desc("worker_tx_frames_total", "Frames a worker handed to the kernel for transmission.", "worker"),
		entries:     desc("conntrack_entries", "Live connection table entries (persistence templates included), per worker.", "worker"),
		services:    desc("services", "Virtual services in the running configuration."),
		ringPkts:    desc("worker_ring_packets_total", "Frames the kernel put in a worker's RX rings (PACKET_STATISTICS).", "worker"),
		ringDrops:   desc("worker_ring_drops_total", "Frames the kernel dropped because a worker's RX ring was full.", "worker"),
		ringFreezes: desc("worker_ring_freezes_total", "Times a worker's RX ring ran out of free blocks.", "worker"),
		forwarded:   desc("worker_forwarded_frames_total", "Frames a worker forwarded to a real server.", "worker"),
		natReplies:  desc("worker_nat_replies_total", "NAT replies a worker rewrote back to the client.", "worker"),
		icmpSent:    desc("worker_icmp_sent_total", "ICMP errors and RSTs a worker generated.", "worker"),
	}
}

// Describe sends every descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.conns, c.inPkts, c.outPkts, c.inBytes, c.outBytes,
		c.active, c.inactive, c.weight, c.up, c.drops, c.rx, c.tx, c.entries, c.services,
		c.ringPkts, c.ringDrops, c.ringFreezes, c.forwarded, c.natReplies, c.icmpSent} {
		ch <- d
	}
	describeSync(ch)
}

// Collect reads the counters now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	collectSync(c.src, ch)
	snap := c.src.Snapshot()
	var total Stats
	nsvc := 0
	if snap != nil {
		for _, s := range snap.Services() {
			nsvc++
			st := sumCounters(s.Stats)
			total.Conns += st.Conns
			total.InPackets += st.InPackets
			total.OutPackets += st.OutPackets
			total.InBytes += st.InBytes
			total.OutBytes += st.OutBytes
			proto := strings.ToUpper(protoName(s.Proto))
			laddr := conntrack.Addr(s.VIP).String()
			lport := strconv.Itoa(int(s.Port))
			for slot, r := range s.Reals {
				if r == nil || r.Removed {
					continue
				}
				labels := []string{laddr, lport, conntrack.Addr(r.Addr).String(), strconv.Itoa(int(r.Port)), proto}
				ld := &s.Loads[slot]
				ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(max(ld.Active(), 0)), labels...)
				ch <- prometheus.MustNewConstMetric(c.inactive, prometheus.GaugeValue, float64(max(ld.Inactive(), 0)), labels...)
				ch <- prometheus.MustNewConstMetric(c.weight, prometheus.GaugeValue, float64(r.Weight), labels...)
				up := 0.0
				if r.Healthy {
					up = 1
				}
				ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, labels...)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.CounterValue, float64(total.Conns))
	ch <- prometheus.MustNewConstMetric(c.inPkts, prometheus.CounterValue, float64(total.InPackets))
	ch <- prometheus.MustNewConstMetric(c.outPkts, prometheus.CounterValue, float64(total.OutPackets))
	ch <- prometheus.MustNewConstMetric(c.inBytes, prometheus.CounterValue, float64(total.InBytes))
	ch <- prometheus.MustNewConstMetric(c.outBytes, prometheus.CounterValue, float64(total.OutBytes))
	ch <- prometheus.MustNewConstMetric(c.services, prometheus.GaugeValue, float64(nsvc))
	drops := map[string]uint64{}
	var order []string
	for i, ws := range c.src.Stats() {
		w := strconv.Itoa(i)
		ch <- prometheus.MustNewConstMetric(c.rx, prometheus.CounterValue, float64(ws.RxFrames.Load()), w)
		ch <- prometheus.MustNewConstMetric(c.tx, prometheus.CounterValue, float64(ws.TxFrames.Load()), w)
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(max(ws.Conns.Load(), 0)), w)
		ch <- prometheus.MustNewConstMetric(c.ringPkts, prometheus.CounterValue, float64(ws.RingPackets.Load()), w)
		ch <- prometheus.MustNewConstMetric(c.ringDrops, prometheus.CounterValue, float64(ws.RingDrops.Load()), w)
		ch <- prometheus.MustNewConstMetric(c.ringFreezes, prometheus.CounterValue, float64(ws.RingFreezes.Load()), w)
		ch <- prometheus.MustNewConstMetric(c.forwarded, prometheus.CounterValue, float64(ws.Forwarded.Load()), w)
		ch <- prometheus.MustNewConstMetric(c.natReplies, prometheus.CounterValue, float64(ws.Replies.Load()), w)
		ch <- prometheus.MustNewConstMetric(c.icmpSent, prometheus.CounterValue, float64(ws.ICMPSent.Load()), w)
		ws.EachDrop(func(reason string, n uint64) {
			if _, ok := drops[reason]; !ok {
				order = append(order, reason)
			}
			drops[reason] += n
		})
	}
	for _, r := range order {
		ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(drops[r]), r)
	}
}

// MetricsHandler returns the /metrics handler for d, on a registry of its own.
func MetricsHandler(d metricsSource) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	// The standard runtime and process series (go_goroutines, process_resident_memory_bytes,
	// process_open_fds, ...) beside uvs's own, so a soak or a dashboard can watch for leaks.
	for _, c := range []prometheus.Collector{NewCollector(d), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("control: register collector: %w", err)
		}
	}
	if v, ok := d.(VRRPReporter); ok {
		if err := reg.Register(newVRRPCollector(v)); err != nil {
			return nil, fmt.Errorf("control: register vrrp collector: %w", err)
		}
	}
	if b, ok := d.(BGPSource); ok {
		if err := reg.Register(newBGPCollector(b)); err != nil {
			return nil, fmt.Errorf("control: register bgp collector: %w", err)
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}), nil
}

// ListenMetrics opens the metrics listener, so that a bad or busy address is reported at
// startup, before the director changes anything on the host.
func ListenMetrics(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control: metrics listen %s: %w", addr, err)
	}
	return ln, nil
}

// ServeMetrics serves /metrics for d on ln until ctx ends, then closes ln.
func ServeMetrics(ctx context.Context, ln net.Listener, d metricsSource, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h, err := MetricsHandler(d)
	if err != nil {
		_ = ln.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	log.Info("serving metrics", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("control: metrics: %w", err)
	}
	return nil
}
