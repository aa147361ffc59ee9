package control

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/uvs-project/uvs/config"
)

// Edit commands beyond ipvsadm's: withdraw the director's BGP routes and announce them
// again (uvs edit --drain-director, --undrain-director). Forwarding is unchanged.
const (
	EditDrainDirector   = "drain-director"
	EditUndrainDirector = "undrain-director"
)

// BGPStatus is the `bgp` object of `uvs list --json`: the sessions of the embedded
// speaker and the routes it announces. Field names are pinned by INTERFACE.md.
type BGPStatus struct {
	Sessions  []BGPSession `json:"sessions"`
	Announced []string     `json:"announced"` // prefixes, "198.18.0.10/32"
	// State says why routes are or are not announced: up, starting, stopping, drained,
	// data_plane_failed (no_healthy_real is per VIP and shows as a VIP missing from
	// Announced).
	State   string `json:"state"`
	Drained bool   `json:"drained"`
}

// BGPSession is one neighbour's session. It never carries a password.
type BGPSession struct {
	Address string `json:"address"`
	ASN     uint32 `json:"asn"`
	State   string `json:"state"` // idle, connect, active, opensent, openconfirm, established
	BFD     string `json:"bfd,omitempty"`
}

// BGP is what the operator needs from the BGP announcer; package daemon adapts package bgp to it.
type BGP interface {
	// BGPStatus returns the current state, or nil when the config has no [bgp].
	BGPStatus() *BGPStatus
	// Drain withdraws (true) or re-announces (false) every route.
	Drain(on bool) error
}

// SetBGP gives the operator the BGP announcer. Call it before serving requests.
func (o *Operator) SetBGP(b BGP) { o.bgp = b }

// drainDirector handles --drain-director and --undrain-director.
func (o *Operator) drainDirector(on bool) (string, []string, error) {
	if o.bgp == nil || o.bgp.BGPStatus() == nil {
		return "", nil, errors.New("the director announces nothing: the running config has no [bgp]")
	}
	if err := o.bgp.Drain(on); err != nil {
		return "", nil, err
	}
	o.log.Info("runtime edit", "command", map[bool]string{true: EditDrainDirector, false: EditUndrainDirector}[on])
	if on {
		return "drained: every BGP route withdrawn; connections still arriving are forwarded (undo with --undrain-director)", nil, nil
	}
	return "undrained: BGP routes announced again where their services are healthy", nil, nil
}

// WriteBGP writes the BGP part of `uvs list` after the ipvsadm listing.
func WriteBGP(w io.Writer, b *BGPStatus) error {
	if b == nil {
		return nil
	}
	fmt.Fprintf(w, "\nBGP: %s\n", b.State)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  Neighbor\tAS\tState\tBFD")
	for _, s := range b.Sessions {
		bfd := s.BFD
		if bfd == "" {
			bfd = "-"
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\n", s.Address, s.ASN, s.State, bfd)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	ann := "none"
	if len(b.Announced) > 0 {
		ann = strings.Join(b.Announced, " ")
	}
	_, err := fmt.Fprintf(w, "  Announced: %s\n", ann)
	return err
}

// writeBGPTOML renders [bgp] for ConfigTOML. An inline password is never written: the line
// says one is set. password_file is written (a path, not a secret).
func writeBGPTOML(b *strings.Builder, g *config.BGP) {
	if !g.Present {
		return
	}
	fmt.Fprintf(b, "\n[bgp]\nasn = %d\nrouter_id = %s\n", g.ASN, config.Quote(g.RouterID.String()))
	if g.NextHop.IsValid() {
		fmt.Fprintf(b, "next_hop = %s\n", config.Quote(g.NextHop.String()))
	}
	if g.NextHop6.IsValid() {
		fmt.Fprintf(b, "next_hop6 = %s\n", config.Quote(g.NextHop6.String()))
	}
	fmt.Fprintf(b, "drain_time = %s\npassive = %t\nmax_prefixes = %d\n", tomlDuration(g.DrainTime), g.Passive, g.MaxPrefixes)
	for i := range g.Neighbors {
		n := &g.Neighbors[i]
		fmt.Fprintf(b, "\n  [[bgp.neighbor]]\n  address = %s\n  asn = %d\n  hold_time = %s\n",
			config.Quote(n.Address.String()), n.ASN, tomlDuration(n.HoldTime))
		if n.PasswordFile != "" {
			fmt.Fprintf(b, "  password_file = %s\n", config.Quote(n.PasswordFile))
		}
		if n.Password != "" {
			b.WriteString("  # password: set in the file, not shown\n")
		}
		if n.BFD {
			b.WriteString("  bfd = true\n")
		}
	}
}

// diffBGP lists what a reload would change in [bgp]. Passwords are compared, never shown.
func diffBGP(cur, next *config.BGP) []string {
	switch {
	case !cur.Present && !next.Present:
		return nil
	case !next.Present:
		return []string{"- bgp: every route withdrawn, the speaker stopped"}
	case !cur.Present:
		return []string{fmt.Sprintf("+ bgp: AS%d router_id %s, %d neighbours", next.ASN, next.RouterID, len(next.Neighbors))}
	}
	var out []string
	if cur.ASN != next.ASN || cur.RouterID != next.RouterID || cur.Passive != next.Passive || cur.MaxPrefixes != next.MaxPrefixes {
		out = append(out, fmt.Sprintf("~ bgp: AS%d router_id %s passive %t max_prefixes %d -> AS%d router_id %s passive %t max_prefixes %d: every session restarts",
			cur.ASN, cur.RouterID, cur.Passive, cur.MaxPrefixes, next.ASN, next.RouterID, next.Passive, next.MaxPrefixes))
	}
	if a, b := cur.NextHopOrRouterID(), next.NextHopOrRouterID(); a != b {
		out = append(out, fmt.Sprintf("~ bgp: next_hop %s -> %s (routes re-announced)", a, b))
	}
	if cur.NextHop6 != next.NextHop6 {
		nh := func(a netip.Addr) string {
			if !a.IsValid() {
				return "(each session's address)"
			}
			return a.String()
		}
		out = append(out, fmt.Sprintf("~ bgp: next_hop6 %s -> %s (IPv6 routes re-announced)", nh(cur.NextHop6), nh(next.NextHop6)))
	}
	if cur.DrainTime != next.DrainTime {
		out = append(out, fmt.Sprintf("~ bgp: drain_time %s -> %s", cur.DrainTime, next.DrainTime))
	}
	old := map[string]*config.Neighbor{}
	for i := range cur.Neighbors {
		old[cur.Neighbors[i].Address.String()] = &cur.Neighbors[i]
	}
	seen := map[string]bool{}
	for i := range next.Neighbors {
		n := &next.Neighbors[i]
		k := n.Address.String()
		seen[k] = true
		o := old[k]
		if o == nil {
			out = append(out, fmt.Sprintf("+ bgp neighbor %s", n.String()))
			continue
		}
		var ch []string
		if o.ASN != n.ASN {
			ch = append(ch, fmt.Sprintf("asn %d -> %d", o.ASN, n.ASN))
		}
		if o.HoldTime != n.HoldTime {
			ch = append(ch, fmt.Sprintf("hold_time %s -> %s", o.HoldTime, n.HoldTime))
		}
		if o.Password != n.Password || o.PasswordFile != n.PasswordFile {
			ch = append(ch, "password changed")
		}
		if o.BFD != n.BFD {
			ch = append(ch, fmt.Sprintf("bfd %t -> %t", o.BFD, n.BFD))
		}
		if len(ch) > 0 {
			out = append(out, fmt.Sprintf("~ bgp neighbor %s: %s (its session restarts)", k, strings.Join(ch, "; ")))
		}
	}
	for i := range cur.Neighbors {
		if k := cur.Neighbors[i].Address.String(); !seen[k] {
			out = append(out, fmt.Sprintf("- bgp neighbor %s", k))
		}
	}
	return out
}

// BGPSource is a metrics source that also has a BGP announcer.
type BGPSource interface {
	BGPStatus() *BGPStatus
}

// bgpCollector exports uvs_bgp_session_up{neighbor} and uvs_bgp_announced_routes.
type bgpCollector struct {
	src       BGPSource
	up, count *prometheus.Desc
}

func newBGPCollector(src BGPSource) *bgpCollector {
	return &bgpCollector{src: src,
		up:    prometheus.NewDesc("uvs_bgp_session_up", "1 if the BGP session with the neighbour is established, else 0.", []string{"neighbor"}, nil),
		count: prometheus.NewDesc("uvs_bgp_announced_routes", "Routes (VIP /32s) the director announces over BGP.", nil, nil),
	}
}

func (c *bgpCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.up; ch <- c.count }

func (c *bgpCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.BGPStatus()
	if st == nil {
		return
	}
	for _, s := range st.Sessions {
		v := 0.0
		if s.State == "established" {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, v, s.Address)
	}
	ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(len(st.Announced)))
}
