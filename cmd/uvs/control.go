package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/control"
)

// socketFlag adds --socket and returns the path it selects.
func socketFlag(fs *flag.FlagSet) *string {
	return fs.String("socket", config.DefaultControlSocket, "control socket `PATH` of the running director")
}

// call sends req and prints a failure as one line per problem; it returns nil on failure.
func call(path string, req *control.Request, stderr io.Writer) *control.Response {
	resp, err := control.Call(context.Background(), path, req)
	if err != nil {
		var re *control.RequestError
		if errors.As(err, &re) {
			for _, p := range re.Problems {
				fmt.Fprintln(stderr, p)
			}
		}
		fmt.Fprintf(stderr, "uvs: %v\n", err)
		return nil
	}
	return resp
}

// serviceFlags adds ipvsadm's -t and -u.
type serviceFlags struct{ tcp, udp string }

func (s *serviceFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&s.tcp, "t", "", "TCP service `VIP:PORT`")
	fs.StringVar(&s.udp, "u", "", "UDP service `VIP:PORT`")
}

// ref returns the selected service, nil if none, or an error.
func (s *serviceFlags) ref() (*control.ServiceRef, error) {
	if s.tcp != "" && s.udp != "" {
		return nil, errors.New("-t and -u cannot both be given")
	}
	proto, text := "tcp", s.tcp
	if s.udp != "" {
		proto, text = "udp", s.udp
	}
	if text == "" {
		return nil, nil
	}
	ap, err := netip.ParseAddrPort(text)
	if err != nil || ap.Addr().Zone() != "" || ap.Addr().Is4In6() {
		return nil, fmt.Errorf("service %q: want VIP:PORT, or [VIP]:PORT for IPv6", text)
	}
	return &control.ServiceRef{Protocol: proto, VIP: ap.Addr().String(), Port: ap.Port()}, nil
}

func printJSON(stdout io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
}

// ipvsadmShort expands ipvsadm's bundled short options (-Ln, -Lnc, -lnc): L and l name the
// command and are dropped, n is -n and c is --conns.
func ipvsadmShort(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		if len(a) >= 2 && a[0] == '-' && a[1] != '-' && strings.Trim(a[1:], "Llnc") == "" {
			for _, r := range a[1:] {
				switch r {
				case 'n':
					out = append(out, "-n")
				case 'c':
					out = append(out, "--conns")
				}
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

func cmdList(args []string, stdout, stderr io.Writer) int {
	args = ipvsadmShort(args)
	fs := newFlags("list", stderr)
	socket := socketFlag(fs)
	fs.Bool("n", true, "numeric output (always on; accepted as in ipvsadm)")
	stats := fs.Bool("stats", false, "counters, as ipvsadm -Ln --stats")
	rate := fs.Bool("rate", false, "rates, as ipvsadm -Ln --rate")
	conns := fs.Bool("conns", false, "connection entries, as ipvsadm -Lnc")
	fs.BoolVar(conns, "c", false, "shorthand for --conns")
	timeout := fs.Bool("timeout", false, "timeouts, as ipvsadm -L --timeout")
	thresholds := fs.Bool("thresholds", false, "thresholds, as ipvsadm -Ln --thresholds")
	persistent := fs.Bool("persistent-conn", false, "persistence templates per real, as ipvsadm -Ln --persistent-conn")
	exact := fs.Bool("exact", false, "exact numbers, no K/M/G scaling")
	asJSON := fs.Bool("json", false, "JSON output")
	var svc serviceFlags
	svc.add(fs)
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "uvs: list: unexpected argument %q\n", fs.Arg(0))
		return 1
	}
	n := 0
	for _, b := range []bool{*stats, *rate, *conns, *timeout, *thresholds} {
		if b {
			n++
		}
	}
	if n > 1 {
		fmt.Fprintln(stderr, "uvs: list: --stats, --rate, --conns, --timeout and --thresholds exclude each other")
		return 1
	}
	ref, err := svc.ref()
	if err != nil {
		fmt.Fprintf(stderr, "uvs: list: %v\n", err)
		return 1
	}
	if *conns {
		resp := call(*socket, &control.Request{Op: control.OpConns, Service: ref}, stderr)
		if resp == nil {
			return 1
		}
		if resp.Conns == nil {
			resp.Conns = []control.Connection{}
		}
		if *asJSON {
			printJSON(stdout, map[string]any{"connections": resp.Conns})
			return 0
		}
		_ = control.WriteConns(stdout, resp.Conns, *persistent)
		return 0
	}
	resp := call(*socket, &control.Request{Op: control.OpList, Service: ref, PersistentConn: *persistent}, stderr)
	if resp == nil || resp.Status == nil {
		return 1
	}
	st := resp.Status
	if !*stats {
		st.Drops = nil // an extension of --stats --json only
	}
	switch {
	case *timeout && *asJSON:
		printJSON(stdout, map[string]any{"timeouts": st.Timeouts})
	case *timeout:
		_ = control.WriteTimeout(stdout, st.Timeouts)
	case *asJSON:
		printJSON(stdout, st)
	default:
		_ = control.WriteList(stdout, st, control.Layout{Stats: *stats, Rate: *rate, Thresholds: *thresholds,
			PersistentConn: *persistent, Exact: *exact, One: ref != nil})
		_ = control.WriteBGP(stdout, st.BGP)
	}
	return 0
}

func cmdEdit(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("edit", stderr)
	socket := socketFlag(fs)
	verbs := []struct {
		flag, cmd, help string
	}{
		{"A", control.EditAddService, "add a service"},
		{"E", control.EditEditService, "edit a service"},
		{"D", control.EditDeleteService, "delete a service"},
		{"a", control.EditAddReal, "add a real server"},
		{"e", control.EditEditReal, "edit a real server"},
		{"d", control.EditDeleteReal, "delete a real server"},
		{"Z", control.EditZero, "zero counters (of one service with -t/-u, else all)"},
	}
	chosen := make([]*bool, len(verbs))
	for i, v := range verbs {
		chosen[i] = fs.Bool(v.flag, false, v.help)
	}
	drain := fs.Bool("drain", false, "set the real's weight to 0: no new connections, existing ones continue (as -e -w 0)")
	var svc serviceFlags
	svc.add(fs)
	sched := fs.String("s", "", "scheduler ("+strings.Join(config.Schedulers, " ")+")")
	persist := fs.Int64("p", 0, "persistence timeout in `SECONDS` (0 = off)")
	netmask := fs.String("M", "", "persistence `NETMASK` (255.255.255.0 or a prefix length)")
	name := fs.String("name", "", "service name")
	realFlag := fs.String("r", "", "real server `ADDR[:PORT]`")
	dr := fs.Bool("g", false, "direct routing (Route)")
	tun := fs.Bool("i", false, "IPIP tunnel (Tunnel)")
	nat := fs.Bool("m", false, "masquerading (Masq)")
	weight := fs.Int("w", 1, "weight (0 = quiescent)")
	upper := fs.Int("x", 0, "upper connection threshold (0 = none)")
	lower := fs.Int("y", 0, "lower connection threshold (0 = none)")
	drainDirector := fs.Bool("drain-director", false, "withdraw every BGP route of this director; forwarding goes on")
	undrainDirector := fs.Bool("undrain-director", false, "announce this director's BGP routes again")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if *drainDirector || *undrainDirector {
		return editDirector(fs, *socket, *drainDirector, stdout, stderr)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "uvs: edit: unexpected argument %q\n", fs.Arg(0))
		return 1
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	e := &control.Edit{}
	for i, v := range verbs {
		if *chosen[i] {
			if e.Command != "" {
				fmt.Fprintln(stderr, "uvs: edit: give one of -A -E -D -a -e -d -Z")
				return 1
			}
			e.Command = v.cmd
		}
	}
	if *drain {
		if e.Command != "" && e.Command != control.EditEditReal {
			fmt.Fprintln(stderr, "uvs: edit: --drain edits a real server; it goes with -e or alone")
			return 1
		}
		e.Command = control.EditEditReal
		set["w"] = true
		*weight = 0
	}
	if e.Command == "" {
		fmt.Fprintln(stderr, "uvs: edit: give one of -A -E -D -a -e -d -Z (or --drain)")
		return 1
	}
	ref, err := svc.ref()
	if err != nil {
		fmt.Fprintf(stderr, "uvs: edit: %v\n", err)
		return 1
	}
	if ref == nil && e.Command != control.EditZero {
		fmt.Fprintln(stderr, "uvs: edit: a service (-t VIP:PORT or -u VIP:PORT) is required")
		return 1
	}
	if ref != nil {
		e.Service = *ref
	}
	if set["s"] {
		e.Scheduler = sched
	}
	if set["p"] {
		e.PersistenceTimeout = persist
	}
	if set["M"] {
		e.PersistenceNetmask = netmask
	}
	if set["name"] {
		e.Name = name
	}
	e.Real = *realFlag
	methods := 0
	for _, m := range []struct {
		on   bool
		name string
	}{{*dr, "dr"}, {*tun, "tun"}, {*nat, "nat"}} {
		if m.on {
			methods++
			e.Forward = &m.name
		}
	}
	if methods > 1 {
		fmt.Fprintln(stderr, "uvs: edit: -g, -i and -m exclude each other")
		return 1
	}
	if set["w"] {
		e.Weight = weight
	}
	if set["x"] {
		e.UpperThreshold = upper
	}
	if set["y"] {
		e.LowerThreshold = lower
	}
	resp := call(*socket, &control.Request{Op: control.OpEdit, Edit: e}, stderr)
	if resp == nil {
		return 1
	}
	fmt.Fprintf(stdout, "uvs: %s\n", resp.Message)
	return 0
}

func cmdSave(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("save", stderr)
	socket := socketFlag(fs)
	ipvsadm := fs.Bool("ipvsadm", false, "print as ipvsadm-save -n (thresholds as -x/-y)")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	resp := call(*socket, &control.Request{Op: control.OpSave}, stderr)
	if resp == nil {
		return 1
	}
	if !*ipvsadm {
		fmt.Fprint(stdout, resp.Config)
		return 0
	}
	cfg, err := config.Parse("running config", []byte(resp.Config))
	if err != nil {
		printConfigError(err, stderr)
		return 1
	}
	fmt.Fprint(stdout, control.IPVSRules(cfg))
	return 0
}

func cmdReload(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("reload", stderr)
	socket := socketFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 1
	}
	resp := call(*socket, &control.Request{Op: control.OpReload}, stderr)
	if resp == nil {
		return 1
	}
	fmt.Fprintf(stdout, "uvs: %s\n", resp.Message)
	return 0
}

func cmdDiff(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("diff", stderr)
	socket := socketFlag(fs)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 1
	}
	next, ok := loadConfig(*path, stderr)
	if !ok {
		return 1
	}
	resp := call(*socket, &control.Request{Op: control.OpSave}, stderr)
	if resp == nil {
		return 1
	}
	cur, err := config.Parse("running config", []byte(resp.Config))
	if err != nil {
		printConfigError(err, stderr)
		return 1
	}
	lines := control.Diff(cur, next)
	if len(lines) == 0 {
		fmt.Fprintf(stdout, "no changes: %s matches the running director\n", *path)
		return 0
	}
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	return 0
}

func cmdTrace(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("trace", stderr)
	socket := socketFlag(fs)
	client := fs.String("client", "", "client `ADDR:PORT`")
	var svc serviceFlags
	svc.add(fs)
	asJSON := fs.Bool("json", false, "JSON output")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	ref, err := svc.ref()
	if err != nil || ref == nil || *client == "" {
		fmt.Fprintln(stderr, "uvs: trace: --client ADDR:PORT and -t VIP:PORT (or -u VIP:PORT) are required")
		return 1
	}
	q := &control.TraceQuery{Protocol: ref.Protocol, Client: *client, VIP: netip.AddrPortFrom(netip.MustParseAddr(ref.VIP), ref.Port).String()}
	resp := call(*socket, &control.Request{Op: control.OpTrace, Trace: q}, stderr)
	if resp == nil || resp.Trace == nil {
		return 1
	}
	if *asJSON {
		printJSON(stdout, resp.Trace)
		return 0
	}
	tr := resp.Trace
	fmt.Fprintf(stdout, "flow %s %s -> %s\n", q.Protocol, q.Client, q.VIP)
	for _, r := range tr.Reasons {
		fmt.Fprintf(stdout, "  %s\n", r)
	}
	if len(tr.Candidates) > 0 {
		fmt.Fprintf(stdout, "  %-21s %6s %10s %9s %7s %10s %9s\n", "real", "weight", "ActiveConn", "InActConn", "healthy", "overloaded", "available")
		for _, c := range tr.Candidates {
			fmt.Fprintf(stdout, "  %-21s %6d %10d %9d %7t %10t %9t\n", c.Real, c.Weight, c.ActiveConns, c.InactiveConns, c.Healthy, c.Overloaded, c.Available)
		}
	}
	if tr.Chosen != "" {
		fmt.Fprintf(stdout, "=> %s\n", tr.Chosen)
	} else {
		fmt.Fprintln(stdout, "=> dropped")
	}
	return 0
}
