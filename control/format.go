package control

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/uvs-project/uvs/config"
)

// IPVSVersion is the IPVS version uvs reports in its listing header; scripts that parse
// `ipvsadm -Ln` expect the line.
const IPVSVersion = "1.2.1"

// Layout selects a `uvs list` layout, as ipvsadm's list format flags do.
type Layout struct {
	Stats          bool // --stats
	Rate           bool // --rate
	Thresholds     bool // --thresholds
	PersistentConn bool // --persistent-conn
	Exact          bool // --exact: no K/M/G scaling
	// One is set when the listing is of one service (-t/-u): ipvsadm then prints no
	// version header.
	One bool
}

// WriteList writes st in the layout of `ipvsadm -Ln` with l's options (ipvsadm.c
// list_all, print_title, print_service_entry).
func WriteList(w io.Writer, st *Status, l Layout) error {
	var b strings.Builder
	if !l.One {
		fmt.Fprintf(&b, "IP Virtual Server version %s (size=%d)\n", IPVSVersion, st.ConnTableSize)
	}
	switch {
	case l.Stats:
		fmt.Fprintf(&b, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case l.Rate:
		fmt.Fprintf(&b, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case l.Thresholds:
		fmt.Fprintf(&b, "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	case l.PersistentConn:
		fmt.Fprintf(&b, "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn")
	default:
		b.WriteString("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
	for i := range st.Services {
		for _, port := range servicePorts(&st.Services[i]) {
			writeService(&b, &st.Services[i], port, l)
		}
	}
	if st.Sync != nil && !l.One {
		formatSync(&b, st.Sync)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	return writeVRRP(w, st.VRRP)
}

// servicePorts lists the ports a service is listed under: a multi-port service is shown as
// one IPVS service per port, as keepalived would configure it.
func servicePorts(s *Service) []uint16 {
	if len(s.Ports) > 0 {
		return s.Ports
	}
	return []uint16{s.Port}
}

func writeService(b *strings.Builder, s *Service, port uint16, l Layout) {
	vip := netip.MustParseAddr(s.VIP)
	name := strings.ToUpper(s.Protocol) + "  " + netip.AddrPortFrom(vip, port).String()
	if len(name) > 33 && vip.Is4() {
		name = name[:33] // ipvsadm truncates an IPv4 svc_name at 33 bytes (format6.go)
	}
	switch {
	case l.Stats:
		fmt.Fprintf(b, "%-33s", name)
		largeNums(b, l.Exact, s.Stats.Conns, s.Stats.InPackets, s.Stats.OutPackets, s.Stats.InBytes, s.Stats.OutBytes)
	case l.Rate:
		fmt.Fprintf(b, "%-33s", name)
		largeNums(b, l.Exact, s.Rates.CPS, s.Rates.InPPS, s.Rates.OutPPS, s.Rates.InBPS, s.Rates.OutBPS)
	default:
		fmt.Fprintf(b, "%s %s", name, s.Scheduler)
		if s.PersistenceTimeoutS > 0 {
			fmt.Fprintf(b, " persistent %d", s.PersistenceTimeoutS)
			if s.PersistenceNetmask != "" && s.PersistenceNetmask != fullMask(vip) {
				fmt.Fprintf(b, " mask %s", s.PersistenceNetmask)
			}
		}
		if s.OnePacket {
			b.WriteString(" ops")
		}
	}
	b.WriteByte('\n')
	for i := range s.Reals {
		r := &s.Reals[i]
		rport := r.Port
		if rport == 0 {
			rport = port
		}
		raddr := netip.MustParseAddr(r.Address)
		dname := netip.AddrPortFrom(raddr, rport).String()
		if len(dname) > 28 && vip.Is4() && raddr.Is4() {
			dname = dname[:28] // ipvsadm truncates an IPv4 dname at 28 bytes (format6.go)
		}
		switch {
		case l.Stats:
			fmt.Fprintf(b, "  -> %-28s", dname)
			largeNums(b, l.Exact, r.Stats.Conns, r.Stats.InPackets, r.Stats.OutPackets, r.Stats.InBytes, r.Stats.OutBytes)
			b.WriteByte('\n')
		case l.Rate:
			fmt.Fprintf(b, "  -> %-28s %8d %8d %8d", dname, uint32(r.Rates.CPS), uint32(r.Rates.InPPS), uint32(r.Rates.OutPPS))
			largeNums(b, l.Exact, r.Rates.InBPS, r.Rates.OutBPS)
			b.WriteByte('\n')
		case l.Thresholds:
			fmt.Fprintf(b, "  -> %-28s %-10d %-10d %-10d %-10d\n", dname,
				r.UpperThreshold, r.LowerThreshold, r.ActiveConns, r.InactiveConns)
		case l.PersistentConn:
			fmt.Fprintf(b, "  -> %-28s %-9d %-11d %-10d %-10d\n", dname,
				r.Weight, r.PersistConns, r.ActiveConns, r.InactiveConns)
		default:
			fmt.Fprintf(b, "  -> %-28s %-7s %-6d %-10d %-10d\n", dname,
				ipvsForward(r.Forward), r.Weight, r.ActiveConns, r.InactiveConns)
		}
	}
}

// ipvsForward maps "dr", "tun", "nat" to ipvsadm's Forward column.
func ipvsForward(name string) string {
	f, err := config.ParseForward(name)
	if err != nil {
		return name
	}
	return f.IPVSName()
}

// largeNums prints each value as ipvsadm's print_largenum: 9 columns, scaled to K, M, G or T
// above 10^8, or exact (at least 9 columns) with --exact.
func largeNums(b *strings.Builder, exact bool, vs ...uint64) {
	for _, i := range vs {
		b.WriteString(largeNum(i, exact))
	}
}

func largeNum(i uint64, exact bool) string {
	if exact {
		s := strconv.FormatUint(i, 10)
		width := 9
		if len(s) > 8 {
			width = len(s) + 1
		}
		return fmt.Sprintf("%*d", width, i)
	}
	switch {
	case i < 100_000_000:
		return fmt.Sprintf("%9d", i)
	case i < 1_000_000_000:
		return fmt.Sprintf("%8dK", i/1000)
	case i < 100_000_000_000:
		return fmt.Sprintf("%8dM", i/1_000_000)
	case i < 100_000_000_000_000:
		return fmt.Sprintf("%8dG", i/1_000_000_000)
	}
	return fmt.Sprintf("%8dT", i/1_000_000_000_000)
}

// WriteConns writes connection entries as `ipvsadm -Lnc` (list_conn, print_conn). With
// persistent, the header has ipvsadm's pe name and pe_data columns; uvs has no persistence
// engines, so rows stay as without it.
func WriteConns(w io.Writer, cs []Connection, persistent bool) error {
	var b strings.Builder
	b.WriteString("IPVS connection entries\n")
	if persistent {
		fmt.Fprintf(&b, "pro expire %-11s %-18s %-18s %-18s %-16s %s\n",
			"state", "source", "virtual", "destination", "pe name", "pe_data")
	} else {
		fmt.Fprintf(&b, "pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination")
	}
	for _, c := range cs {
		exp := fmt.Sprintf("%02d:%02d", c.ExpiresS/60, c.ExpiresS%60)
		fmt.Fprintf(&b, "%-3s %-6s %-11s %-18s %-18s %s\n",
			strings.ToUpper(c.Protocol), exp, c.State, c.Client, c.VIP, c.Real)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteTimeout writes the timeouts as `ipvsadm -L --timeout`.
func WriteTimeout(w io.Writer, t Timeouts) error {
	_, err := fmt.Fprintf(w, "Timeout (tcp tcpfin udp): %d %d %d\n", t.TCP, t.TCPFin, t.UDP)
	return err
}
