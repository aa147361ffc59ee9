package control

import (
	"fmt"
	"io"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/uvs-project/uvs/vrrp"
)

// VRRPReporter is implemented by a director that runs VRRP instances (package daemon wraps the
// director with the speaker). The operator and the metrics collector ask for it with a
// type assertion, so a director without VRRP needs nothing.
type VRRPReporter interface {
	VRRPStatus() []vrrp.Status
}

func vrrpStatus(d any) []vrrp.Status {
	if r, ok := d.(VRRPReporter); ok {
		return r.VRRPStatus()
	}
	return nil
}

// writeVRRP appends the instances to a `uvs list` listing, after the ipvsadm table (only
// when VRRP is configured, so the ipvsadm layout is unchanged otherwise).
func writeVRRP(w io.Writer, vs []vrrp.Status) error {
	if len(vs) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-16s %-12s %4s %2s %-7s %4s %-15s %11s\n", "VRRP Instance", "Interface", "VRID", "V", "State", "Prio", "Master", "Transitions")
	for _, s := range vs {
		fmt.Fprintf(&b, "%-16s %-12s %4d %2d %-7s %4d %-15s %11d\n", s.Name, s.Interface, s.VRID, s.Version,
			strings.ToUpper(s.State), s.Priority, s.Master, s.Transitions)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// vrrpCollector exports uvs_vrrp_state{instance} (0 init, 1 backup, 2 master, 3 fault),
// the priority, transitions and dropped adverts by reason.
type vrrpCollector struct {
	src                             VRRPReporter
	state, prio, transitions, drops *prometheus.Desc
}

func newVRRPCollector(src VRRPReporter) *vrrpCollector {
	return &vrrpCollector{
		src:         src,
		state:       prometheus.NewDesc("uvs_vrrp_state", "VRRP instance state: 0 init, 1 backup, 2 master, 3 fault.", []string{"instance"}, nil),
		prio:        prometheus.NewDesc("uvs_vrrp_priority", "VRRP instance priority in effect (tracking included).", []string{"instance"}, nil),
		transitions: prometheus.NewDesc("uvs_vrrp_transitions_total", "VRRP state changes of an instance.", []string{"instance"}, nil),
		drops:       prometheus.NewDesc("uvs_vrrp_dropped_adverts_total", "VRRP advertisements dropped, by instance and reason.", []string{"instance", "reason"}, nil),
	}
}

func (c *vrrpCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.prio
	ch <- c.transitions
	ch <- c.drops
}

func (c *vrrpCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.src.VRRPStatus() {
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, float64(s.StateValue), s.Name)
		ch <- prometheus.MustNewConstMetric(c.prio, prometheus.GaugeValue, float64(s.Priority), s.Name)
		ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, float64(s.Transitions), s.Name)
		for _, d := range vrrp.DropReasons() {
			ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(s.Drops[d.String()]), s.Name, d.String())
		}
	}
}
