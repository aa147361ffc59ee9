package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/uvs-project/uvs/config"
)

// BenchOptions configure RunBench.
type BenchOptions struct {
	Config     *config.Config
	ConfigPath string
	UVS        string    // uvs binary for the director and the servers
	Out        io.Writer // progress lines and the final table
	Progress   io.Writer // a terminal for the progress bar; nil for none
	// PerfDir, if set, profiles each candidate's first udp peak step with perf (perf_linux.go)
	// and writes the recording and a report by kernel function there.
	PerfDir string
}

// benchExtraPs are the Ps RunBench adds to GOMAXPROCS for the threads that hold one while
// they run (the generator's and the floor's).
const benchExtraPs = 2

// Timing of a measurement step.
const (
	drainWait   = 50 * time.Millisecond  // between reads of the sinks' counters while queues drain
	drainMax    = 3 * time.Second        // a director still forwarding after this is reported as loss
	settleWait  = 300 * time.Millisecond // after a forwarder starts, before measuring
	maxProbes   = 5000
	sinkTable   = "uvsbenchsink"
	sinkTable6  = "uvsbenchsink6"
	natTable    = "uvsbench"
	clientPorts = "1024 19999" // below genSrcPort0: sinks answer probes, drop generated frames
)

// candidate is one forwarder under test.
type candidate struct {
	CandidateInfo
	proc  *StateProc   // running uvs director
	floor *Floor       // running floor forwarder
	undo  func() error // removes the floor's ingress drop
}

// runner holds one bench run.
type runner struct {
	rounds   [][]Row // every round's rows, before leastDisturbed keeps one of each
	o        BenchOptions
	b        config.Bench
	st       *LabState
	client   *Node
	director *Node
	reals    []*Node
	udpSvc   *config.Service // the first IPv4 UDP service with a port
	tcpSvc   *config.Service
	udp6Svc  *config.Service // the first IPv6 UDP service with a port (test udp6)
	srcMAC   net.HardwareAddr
	dirMAC   net.HardwareAddr
	res      *Results
	steps    int
	done     int
	dirCPU   int
	genCPU   int
}

// RunBench runs the [bench] profile of o.Config against its lab: the lab
// recorded under lab.prefix if one is up (its director is stopped for the
// run and restarted after), otherwise a lab it builds and removes. It
// measures every uvs worker count and TX mode and every baseline, one
// after the other, and returns the results.
func RunBench(ctx context.Context, o BenchOptions) (_ *Results, err error) {
	b := o.Config.Bench
	// The generator and the floor each hold a P for as long as they run (threads
	// locked and pinned, which never park: the generator sleeps in a raw nanosleep,
	// the floor spins). With GOMAXPROCS at the CPU count (2 here) the probes, their
	// reader and the bench's own polling would then wait for sysmon to preempt one
	// of them, every 10 ms: milliseconds of p99 that belong to the harness. Two Ps
	// more than CPUs leave the rest to the kernel's scheduler.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(runtime.NumCPU() + benchExtraPs))
	r := &runner{o: o, b: b, dirCPU: b.DirectorCPU, genCPU: b.GeneratorCPU}
	if runtime.NumCPU() < 2 || max(r.dirCPU, r.genCPU) >= runtime.NumCPU() {
		r.dirCPU, r.genCPU = -1, -1
	}
	start := time.Now()
	r.res = &Results{Meta: machineMeta(), Profile: Profile{
		DurationS: b.Duration.Seconds(), PacketSizes: b.PacketSizes, Flows: b.Flows, SYNFlows: b.SYNFlows,
		RateSteps: b.RateSteps, MaxLossPercent: b.MaxLossPercent, Tests: b.Tests,
	}}
	r.res.Meta.Start = start.UTC().Format(time.RFC3339)
	r.res.Meta.Config = o.ConfigPath
	if r.res.Meta.Commit == "unknown" {
		// A binary built without VCS stamping: ask the repository the
		// config lives in.
		if out, err := exec.Command("git", "-C", filepath.Dir(o.ConfigPath), "rev-parse", "HEAD").Output(); err == nil {
			r.res.Meta.Commit = strings.TrimSpace(string(out)) + " (of " + filepath.Dir(o.ConfigPath) + ")"
		}
	}
	r.res.Meta.DirectorCPU, r.res.Meta.GenCPU = r.dirCPU, r.genCPU
	for i := range o.Config.Services {
		s := &o.Config.Services[i]
		if s.Protocol == config.UDP && r.udpSvc == nil && s.Port != 0 && s.VIP.Is4() {
			r.udpSvc = s
		}
		if s.Protocol == config.TCP && r.tcpSvc == nil && s.Port != 0 && s.VIP.Is4() {
			r.tcpSvc = s
		}
		if s.Protocol == config.UDP && r.udp6Svc == nil && s.Port != 0 && s.VIP.Is6() {
			r.udp6Svc = s
		}
	}
	if r.udpSvc == nil {
		return nil, errors.New("bench: the config has no IPv4 UDP service with a port; the packet-rate tests need one")
	}
	if r.has("udp6") && r.udp6Svc == nil {
		return nil, errors.New("bench: bench.tests has udp6 but the config has no IPv6 UDP service with a port")
	}
	if r.udp6Svc != nil {
		r.res.Profile.UDP6Service = fmt.Sprintf("%s/udp", netip.AddrPortFrom(r.udp6Svc.VIP, r.udp6Svc.Port))
	}
	r.res.Profile.UDPService = fmt.Sprintf("%s:%d/udp", r.udpSvc.VIP, r.udpSvc.Port)
	if r.tcpSvc != nil {
		r.res.Profile.TCPService = fmt.Sprintf("%s:%d/tcp", r.tcpSvc.VIP, r.tcpSvc.Port)
	}

	// The lab.
	st, err := ReadState(o.Config.Lab.Prefix)
	switch {
	case err == nil:
		fmt.Fprintf(o.Out, "bench: using lab %s that is up; its director is stopped during the run\n", st.Prefix)
		if d := st.Proc("director"); d != nil {
			d.Stop()
			defer func() {
				p, serr := st.startDirector(mustNode(st, "director"), st.UVS, st.Config)
				if serr != nil {
					err = errors.Join(err, serr)
					return
				}
				*d = p
				err = errors.Join(err, st.write())
			}()
		}
	case errors.Is(err, ErrNoLab):
		st, err = LabUp(ctx, o.Config, o.ConfigPath, o.UVS, o.Out)
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, st.Down()) }()
		st.Proc("director").Stop()
	default:
		return nil, err
	}
	r.st = st
	r.res.Meta.Lab = st.Prefix
	r.client = st.NodesByRole("client")[0]
	r.director = mustNode(st, "director")
	r.reals = st.NodesByRole("real")
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	defer r.unprepare()

	cands := r.candidates()
	r.steps = b.Rounds * len(cands) * r.stepsPerCandidate()
	var rounds [][]Row
	// The bench's own threads on the generator's CPU, off the director's
	// (confineProcess); the lab's processes started before keep theirs.
	unconfine := confineProcess(r.genCPU)
	defer unconfine()
	for round := range b.Rounds {
		r.res.Rows = nil
		for _, c := range cands {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := r.runCandidate(ctx, c); err != nil {
				return nil, fmt.Errorf("bench: %s: %w", c.Name, err)
			}
			if round == 0 {
				r.res.Candidates = append(r.res.Candidates, c.CandidateInfo)
			} else {
				for i := range r.res.Candidates {
					if r.res.Candidates[i].Name == c.Name {
						r.res.Candidates[i].Stopped = c.Stopped
					}
				}
			}
		}
		rounds = append(rounds, r.res.Rows)
	}
	r.rounds = rounds
	r.res.Rows = leastDisturbed(rounds)
	if b.Rounds > 1 {
		r.res.Notes = append(r.res.Notes, fmt.Sprintf("each row is the least disturbed of %d rounds (lowest director ns/pkt, most conn/s, lowest p50)", b.Rounds))
	}
	r.progress("done")
	if r.o.Progress != nil {
		fmt.Fprintln(r.o.Progress)
	}
	r.compare()
	r.res.Meta.LoadAfter = loadavg()
	r.res.Meta.Seconds = time.Since(start).Seconds()
	return r.res, nil
}

func mustNode(st *LabState, name string) *Node {
	n, ok := st.Node(name)
	if !ok {
		panic("bench: lab state without " + name)
	}
	return n
}

// candidates lists the forwarders in the order they run: uvs with each TX
// mode at the first worker count, the baselines between them, then the
// other worker counts, so that uvs and the baselines alternate.
func (r *runner) candidates() []*candidate {
	var out []*candidate
	rings := r.b.RXRings
	if len(rings) == 0 {
		rings = []config.RXRing{config.DefaultRXRing}
	}
	uvs := func(w int, m config.TXMode, ring config.RXRing) *candidate {
		name := fmt.Sprintf("uvs-%s-w%d", m, w)
		if len(rings) > 1 {
			name += "-" + ring.String()
		}
		return &candidate{CandidateInfo: CandidateInfo{Name: name, Kind: "uvs", Workers: w, TXMode: m.String(),
			RXRing: ring.String(), Backend: "afpacket", Pinned: w == 1 && r.dirCPU >= 0}}
	}
	var base []*candidate
	for _, c := range r.b.Compare {
		ci := CandidateInfo{Name: c, Kind: c, Pinned: r.dirCPU >= 0}
		if ring, ok := strings.CutPrefix(c, "floor-"); ok {
			ci.Kind, ci.RXRing = "floor", ring
		}
		base = append(base, &candidate{CandidateInfo: ci})
	}
	j := 0
	for i, w := range r.b.Workers {
		for _, m := range r.b.TXModes {
			for _, ring := range rings {
				if r.benchAFPacket() {
					out = append(out, uvs(w, m, ring))
				}
				if i == 0 && j < len(base) {
					out = append(out, base[j])
					j++
				}
			}
		}
		out = append(out, r.afxdpCandidates(w)...)
	}
	out = append(out, base[min(j, len(base)):]...)
	return out
}

func (r *runner) has(test string) bool {
	for _, t := range r.b.Tests {
		if t == test {
			return true
		}
	}
	return false
}

func (r *runner) stepsPerCandidate() int {
	n := 0
	if r.has("udp") {
		n += len(r.b.PacketSizes)
	}
	if r.has("udp6") {
		n += len(r.b.PacketSizes)
	}
	for _, t := range []string{"tcp", "syn", "connect", "latency", "overload"} {
		if r.has(t) {
			n++
		}
	}
	return n
}

// progress redraws the progress bar, on a terminal only.
func (r *runner) progress(what string) {
	if r.o.Progress == nil {
		return
	}
	const width = 30
	filled := 0
	if r.steps > 0 {
		filled = width * r.done / r.steps
	}
	fmt.Fprintf(r.o.Progress, "\r[%s%s] %d/%d %-40.40s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), r.done, r.steps, what)
}

// prepare sets the lab up for measuring: client port range and static ARP
// for the VIPs, sinks that drop generated frames, receive steering.
func (r *runner) prepare(ctx context.Context) error {
	var err error
	if r.srcMAC, err = ifaceMAC(r.client, r.client.Ifaces[0].Name); err != nil {
		return err
	}
	if r.dirMAC, err = ifaceMAC(r.director, r.director.Ifaces[0].Name); err != nil {
		return err
	}
	if err := writeSysctls(r.client.NS, map[string]string{
		"ipv4/ip_local_port_range": clientPorts,
		"ipv4/tcp_tw_reuse":        "1",
	}); err != nil {
		return err
	}
	// Every candidate gets the VIP traffic at the director's MAC: the
	// baselines do not answer ARP for a VIP.
	var neigh []string
	for _, v := range r.st.VIPs {
		if r.client.Ifaces[0].Prefix.Contains(v) || r.client.Ifaces[0].Prefix6.Contains(v) {
			neigh = append(neigh, "neigh replace "+v.String()+" lladdr "+r.dirMAC.String()+" dev "+r.client.Ifaces[0].Name+" nud permanent")
		}
	}
	if err := ipBatch(ctx, r.client.NS, neigh); err != nil {
		return err
	}
	// Sinks drop generated frames (source ports from genSrcPort0) before
	// any socket lookup, after the interface counted them.
	rules := fmt.Sprintf("table ip %s {\n chain pre {\n  type filter hook prerouting priority -300; policy accept;\n  udp sport %d-65535 drop\n  tcp sport %d-65535 drop\n }\n}\n", sinkTable, genSrcPort0, genSrcPort0)
	if r.udp6Svc != nil {
		// The IPv6 frames of test udp6 likewise, in a table of their own (the IPv4
		// table stays as it was, so IPv4 runs are unchanged).
		rules += strings.Replace(strings.Replace(rules, "table ip ", "table ip6 ", 1), sinkTable, sinkTable6, 1)
	}
	for _, n := range r.reals {
		if _, err := run(ctx, rules, "ip", "netns", "exec", n.NS, "nft", "-f", "-"); err != nil {
			return fmt.Errorf("bench: sink rules (needs nft): %w", err)
		}
	}
	// Static bridge entries for every lab MAC: sinks never transmit, so
	// their learned entries would age out and the bridge would flood the
	// director's output to every port, counted at every sink.
	var fdb []string
	for _, sn := range r.st.Nodes {
		n, _ := r.st.Node(sn.Name)
		for k, i := range n.Ifaces {
			mac, err := ifaceMAC(n, i.Name)
			if err != nil {
				return err
			}
			fdb = append(fdb, "fdb replace "+mac.String()+" dev "+fmt.Sprintf("%s-e%d", n.Name, k)+" master static")
		}
	}
	if _, err := run(ctx, strings.Join(fdb, "\n")+"\n", "bridge", "-n", r.st.SwitchNS, "-batch", "-"); err != nil {
		return err
	}
	// Receive steering (veth runs the receiver's softirq on the sender's
	// CPU): the director's receive work goes to its CPU, everything after
	// the director's transmit to the generator's.
	if r.dirCPU >= 0 {
		dmask := strconv.FormatInt(1<<r.dirCPU, 16)
		gmask := strconv.FormatInt(1<<r.genCPU, 16)
		for _, i := range r.director.Ifaces {
			if err := setRPS(ctx, r.director.NS, i.Name, dmask); err != nil {
				return err
			}
		}
		for k := range r.director.Ifaces {
			if err := setRPS(ctx, r.st.SwitchNS, fmt.Sprintf("director-e%d", k), gmask); err != nil {
				return err
			}
		}
		for _, n := range r.reals {
			if err := setRPS(ctx, n.NS, n.Ifaces[0].Name, gmask); err != nil {
				return err
			}
		}
	}
	r.res.Meta.LoadBefore = loadavg()
	return nil
}

func (r *runner) unprepare() {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	for _, n := range r.reals {
		_, _ = run(ctx, "", "ip", "netns", "exec", n.NS, "nft", "delete", "table", "ip", sinkTable)
		if r.udp6Svc != nil {
			_, _ = run(ctx, "", "ip", "netns", "exec", n.NS, "nft", "delete", "table", "ip6", sinkTable6)
		}
	}
}

func setRPS(ctx context.Context, ns, dev, mask string) error {
	// ip netns exec mounts the namespace's own /sys.
	_, err := run(ctx, "", "ip", "netns", "exec", ns, "sh", "-c", "echo "+mask+" > /sys/class/net/"+dev+"/queues/rx-0/rps_cpus")
	return err
}

func ifaceMAC(n *Node, dev string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bench: MAC of %s %s: %w", n.Name, dev, err)
	}
	return mac, nil
}

// counters returns a uvs candidate's drop counters so far, from `uvs list --stats --json`
// on its control socket, or nil.
func (c *candidate) counters(r *runner) map[string]uint64 {
	if c.Kind != "uvs" || c.proc == nil {
		return nil
	}
	out, err := exec.Command(r.st.UVS, "list", "--stats", "--json", "--socket", r.o.Config.Director.ControlSocket).Output()
	if err != nil {
		return nil
	}
	var st struct {
		Drops map[string]uint64 `json:"drops"`
	}
	if json.Unmarshal(out, &st) != nil {
		return nil
	}
	if st.Drops == nil {
		st.Drops = map[string]uint64{}
	}
	return st.Drops
}

// cpu returns the CPU time of c's own threads (uvs: the director process;
// floor: its forwarding thread), or 0 for the kernel baselines.
func (c *candidate) cpu() time.Duration {
	switch {
	case c.proc != nil:
		return procCPU(c.proc.PID)
	case c.floor != nil:
		return c.floor.CPU()
	}
	return 0
}

// runCandidate starts c, runs every test against it and stops it.
func (r *runner) runCandidate(ctx context.Context, c *candidate) (err error) {
	r.progress(c.Name + " starting")
	if err := r.start(ctx, c); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, r.stop(c)) }()
	time.Sleep(settleWait)
	if r.has("udp") {
		for _, size := range r.b.PacketSizes {
			r.progress(fmt.Sprintf("%s udp %d", c.Name, size))
			if err := r.udpTest(ctx, c, size); err != nil {
				return err
			}
			r.done++
		}
	}
	if r.has("udp6") {
		for _, size := range r.b.PacketSizes {
			r.progress(fmt.Sprintf("%s udp6 %d", c.Name, size))
			if err := r.udp6Test(ctx, c, size); err != nil {
				return err
			}
			r.done++
		}
	}
	if r.has("tcp") {
		r.progress(c.Name + " tcp")
		if err := r.tcpTest(ctx, c, GenACK); err != nil {
			return err
		}
		r.done++
	}
	if r.has("syn") {
		r.progress(c.Name + " syn")
		if err := r.tcpTest(ctx, c, GenSYN); err != nil {
			return err
		}
		r.done++
	}
	if r.has("connect") {
		r.progress(c.Name + " connect")
		r.connectTest(ctx, c)
		r.done++
	}
	if r.has("latency") {
		r.progress(c.Name + " latency")
		if err := r.latencyTest(ctx, c); err != nil {
			return err
		}
		r.done++
	}
	if r.has("overload") {
		r.progress(c.Name + " overload")
		if err := r.overloadTest(ctx, c); err != nil {
			return err
		}
		r.done++
	}
	return nil
}

// overloadMultiples are the offered loads of the overload test, in multiples of the
// candidate's loss-free 64-byte rate; 0 is the generator unpaced.
var overloadMultiples = []float64{1, 2, 0}

// overloadTest offers 64-byte UDP at multiples of the candidate's loss-free rate (from its
// udp row) and unpaced, and records what was delivered at each: a forwarder that livelocks
// delivers less as more is offered. Rows "overload-1x", "overload-2x", "overload-max".
func (r *runner) overloadTest(ctx context.Context, c *candidate) error {
	base := 0.0
	if p := r.res.find(c.Name, "udp", 64); p != nil {
		base = p.NoLossPPS
	}
	for _, m := range overloadMultiples {
		name := fmt.Sprintf("overload-%gx", m)
		if m == 0 {
			name = "overload-max"
		}
		row := Row{Candidate: c.Name, Test: name, Size: 64, Flows: r.b.Flows}
		if m > 0 && base == 0 {
			row.Note = "skipped: no loss-free rate"
			r.res.Rows = append(r.res.Rows, row)
			continue
		}
		before := c.counters(r)
		s, err := r.measure(c, GenConfig{Dst: netip.AddrPortFrom(r.udpSvc.VIP, r.udpSvc.Port), Proto: GenUDP, Size: 64,
			Flows: r.b.Flows, Duration: r.b.Duration, Rate: base * m})
		if err != nil {
			return err
		}
		r.fill(&row, c, s)
		parts := []string{fmt.Sprintf("received by the director %d, not delivered %d", s.dirRx, s.dirRx-min(s.dirRx, s.delivered))}
		if after := c.counters(r); before != nil && after != nil {
			for _, k := range []string{"tx_ring_full", "tx_busy", "tx_stuck"} {
				parts = append(parts, fmt.Sprintf("%s %d", k, after[k]-before[k]))
			}
		}
		row.Note = strings.Join(parts, ", ")
		r.res.Rows = append(r.res.Rows, row)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// start brings candidate c up in the director namespace.
func (r *runner) start(ctx context.Context, c *candidate) error {
	switch c.Kind {
	case "uvs":
		text, err := os.ReadFile(r.st.Config)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		derived, err := withDirectorKeys(string(text), c.Workers, c.TXMode, c.RXRing)
		if err != nil {
			return err
		}
		derived = withBackendKey(derived, c.Backend)
		path := filepath.Join(r.st.LogDir, "bench-"+c.Name+".toml")
		if err := os.WriteFile(path, []byte(derived), 0o644); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		argv := []string{r.st.UVS, "run", "--config", path}
		if c.Pinned {
			argv = append([]string{"-c", strconv.Itoa(r.dirCPU)}, argv...)
			argv = append([]string{"taskset"}, argv...)
		}
		p, err := r.st.startLogged(r.director, "director", "bench-"+c.Name, argv[0], argv[1:]...)
		if err != nil {
			return err
		}
		c.proc = &p
		tmp := *r.st
		tmp.Procs = []StateProc{p}
		return tmp.WaitReady(ctx, r.o.Config, UpReadyTimeout)
	case "floor":
		return r.startFloor(ctx, c)
	case "kernel", "nftables":
		lines := []string{}
		rs := r.udpSvc.Reals[0].Address
		if c.Kind == "kernel" {
			lines = append(lines, "route replace "+r.udpSvc.VIP.String()+"/32 via "+rs.String())
			if r.tcpSvc != nil && r.tcpSvc.VIP != r.udpSvc.VIP {
				lines = append(lines, "route replace "+r.tcpSvc.VIP.String()+"/32 via "+r.tcpSvc.Reals[0].Address.String())
			}
		}
		if err := ipBatch(ctx, r.director.NS, lines); err != nil {
			return err
		}
		kv := map[string]string{"ipv4/ip_forward": "1", "ipv4/conf/all/send_redirects": "0"}
		for _, i := range r.director.Ifaces {
			kv["ipv4/conf/"+i.Name+"/send_redirects"] = "0"
		}
		if err := writeSysctls(r.director.NS, kv); err != nil {
			return err
		}
		if c.Kind == "nftables" {
			if _, err := run(ctx, r.nftRules(), "ip", "netns", "exec", r.director.NS, "nft", "-f", "-"); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("bench: unknown candidate %q", c.Kind)
}

// startFloor starts the floor forwarder (floor_linux.go) on the director's
// first interface, sending everything to the first real server, and drops
// the kernel's copy of every frame on tcx ingress, after the AF_PACKET taps.
func (r *runner) startFloor(ctx context.Context, c *candidate) error {
	ring := map[string]FloorRing{"v2": FloorV2, "v3": FloorV3, "afxdp": FloorAFXDP}[c.RXRing]
	if ring == FloorInvalid {
		return fmt.Errorf("bench: unknown floor ring %q", c.RXRing)
	}
	rs := r.reals[0]
	realMAC, err := ifaceMAC(rs, rs.Ifaces[0].Name)
	if err != nil {
		return err
	}
	dev := r.director.Ifaces[0].Name
	// The AF_XDP floor's program takes the frames before the stack sees them: no drop needed.
	undo := func() error { return nil }
	if ring != FloorAFXDP {
		if undo, err = dropIngress(r.director, dev); err != nil {
			return err
		}
	}
	f, err := StartFloor(r.director, FloorConfig{Iface: dev, SrcMAC: r.dirMAC, DstMAC: realMAC, Ring: ring, CPU: r.dirCPU})
	if err != nil {
		return errors.Join(err, undo())
	}
	c.floor, c.undo = f, undo
	return nil
}

// nftRules load-balances the UDP and TCP services by DNAT with numgen, as
// hosts without ip_vs do.
func (r *runner) nftRules() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n chain pre {\n  type nat hook prerouting priority dstnat; policy accept;\n", natTable)
	for _, s := range []*config.Service{r.udpSvc, r.tcpSvc} {
		if s == nil {
			continue
		}
		var m []string
		for i, rs := range s.Reals {
			m = append(m, fmt.Sprintf("%d : %s", i, rs.Address))
		}
		fmt.Fprintf(&b, "  ip daddr %s %s dport %d dnat to numgen inc mod %d map { %s }\n", s.VIP, s.Protocol, s.Port, len(s.Reals), strings.Join(m, ", "))
	}
	b.WriteString(" }\n}\n")
	return b.String()
}

func (r *runner) stop(c *candidate) error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	switch c.Kind {
	case "uvs":
		if c.proc != nil {
			c.proc.Stop()
			c.Stopped = stoppedCounters(c.proc.Log)
		}
		return nil
	case "floor":
		var errs []error
		if c.floor != nil {
			fc, err := c.floor.Stop()
			c.floor = nil
			errs = append(errs, err)
			c.Stopped = map[string]string{"forwarded": strconv.FormatUint(fc.Forwarded, 10), "ignored": strconv.FormatUint(fc.Ignored, 10),
				"truncated": strconv.FormatUint(fc.Truncated, 10), "tx_dropped": strconv.FormatUint(fc.TxDropped, 10)}
			if c.RXRing == "afxdp" {
				c.Stopped["rx_ring_full"] = strconv.FormatUint(fc.RxRingFull, 10)
				c.Stopped["fill_ring_empty"] = strconv.FormatUint(fc.FillRingEmpty, 10)
				c.Stopped["rx_dropped"] = strconv.FormatUint(fc.RxDropped, 10)
			}
		}
		if c.undo != nil {
			errs = append(errs, c.undo())
			c.undo = nil
		}
		return errors.Join(errs...)
	default:
		var errs []error
		if c.Kind == "nftables" {
			_, err := run(ctx, "", "ip", "netns", "exec", r.director.NS, "nft", "delete", "table", "ip", natTable)
			errs = append(errs, err)
		}
		lines := []string{"route del " + r.udpSvc.VIP.String() + "/32"}
		if c.Kind == "kernel" {
			if r.tcpSvc != nil && r.tcpSvc.VIP != r.udpSvc.VIP {
				lines = append(lines, "route del "+r.tcpSvc.VIP.String()+"/32")
			}
			errs = append(errs, ipBatch(ctx, r.director.NS, lines))
		}
		errs = append(errs, writeSysctls(r.director.NS, map[string]string{"ipv4/ip_forward": "0"}))
		return errors.Join(errs...)
	}
}

// sample is one measured generator run.
type sample struct {
	sent, dirRx, delivered uint64
	perReal                map[string]uint64
	dirBusy, genBusy       float64
	elapsed                time.Duration // the generator's trial: rates are per trial, as RFC 2544 counts frames that arrive late
	procCPU                time.Duration
	dirBusyNs              float64 // busy time of the director's CPU over the window
	inTrial                uint64  // delivered while the generator sent (read as it stopped)
}

func (s sample) lossPercent() float64 {
	if s.sent == 0 {
		return 100
	}
	l := 100 * (1 - float64(s.delivered)/float64(s.sent))
	return max(l, 0)
}

func (s sample) pps() float64 { return float64(s.delivered) / s.elapsed.Seconds() }

// measure runs the generator once and counts at the real servers.
func (r *runner) measure(c *candidate, gc GenConfig) (sample, error) {
	gc.Iface, gc.SrcMAC, gc.DstMAC, gc.CPU = r.client.Ifaces[0].Name, r.srcMAC, r.dirMAC, r.genCPU
	rx0, err := rxCounts(r.reals)
	if err != nil {
		return sample{}, err
	}
	d0, err := readNetDev(r.director)
	if err != nil {
		return sample{}, err
	}
	p0 := c.cpu()
	t0, err := readCPUTimes()
	if err != nil {
		return sample{}, err
	}
	start := time.Now()
	var rxEnd map[string]uint64 // what arrived while the generator sent
	var rxErr error
	gc.OnEnd = func() { rxEnd, rxErr = rxCounts(r.reals) }
	res, err := Generate(r.client, gc)
	if err == nil {
		err = rxErr
	}
	if err != nil {
		return sample{}, err
	}
	// Wait for the director's queues to drain: until the sinks' counters
	// stop moving. The CPU window runs until then.
	rx1, err := r.drained()
	if err != nil {
		return sample{}, err
	}
	t1, err := readCPUTimes()
	if err != nil {
		return sample{}, err
	}
	wall := time.Since(start)
	p1 := c.cpu()
	d1, err := readNetDev(r.director)
	if err != nil {
		return sample{}, err
	}
	s := sample{sent: res.Sent, elapsed: res.Elapsed, perReal: map[string]uint64{}, procCPU: p1 - p0}
	for k, v := range rxEnd {
		s.inTrial += v - rx0[k]
	}
	// The busy fraction is over the whole window, drain included, so
	// busy*window is the CPU time spent on these packets.
	dev := r.director.Ifaces[0].Name
	s.dirRx = d1[dev].RxPackets - d0[dev].RxPackets
	for k, v := range rx1 {
		d := v - rx0[k]
		s.perReal[k] = d
		s.delivered += d
	}
	cpu := r.dirCPU
	if cpu >= 0 {
		s.dirBusy = busy(t0, t1, cpu)
		s.genBusy = busy(t0, t1, r.genCPU)
		s.dirBusyNs = s.dirBusy * float64(wall.Nanoseconds())
	}
	return s, nil
}

// drained polls the sinks' counters until two reads drainWait apart agree
// (at most drainMax) and returns the last counts.
func (r *runner) drained() (map[string]uint64, error) {
	prev, err := rxCounts(r.reals)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(drainMax)
	for time.Now().Before(deadline) {
		time.Sleep(drainWait)
		cur, err := rxCounts(r.reals)
		if err != nil {
			return nil, err
		}
		moved := false
		for k, v := range cur {
			if v != prev[k] {
				moved = true
			}
		}
		if !moved {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// fill sets the CPU figures of a row from a sample.
func (r *runner) fill(row *Row, c *candidate, s sample) {
	row.OfferedPPS = float64(s.sent) / s.elapsed.Seconds()
	row.DeliveredPPS = s.pps()
	row.LossPercent = s.lossPercent()
	row.DirectorBusy, row.GeneratorBusy = s.dirBusy, s.genBusy
	if s.delivered > 0 {
		if r.dirCPU >= 0 {
			row.NsPerPkt = s.dirBusyNs / float64(s.delivered)
		}
		if s.procCPU > 0 {
			row.ProcNsPerPkt = float64(s.procCPU.Nanoseconds()) / float64(s.delivered)
		}
	}
	if !c.Pinned && c.Kind == "uvs" {
		// Unpinned workers spread over both CPUs: the director CPU's busy
		// time is not the director's cost, its own thread time is.
		row.NsPerPkt = row.ProcNsPerPkt
		row.Note = "unpinned: ns/pkt is the director's thread time (no softirq)"
	}
	row.Bottleneck = bottleneck(r.dirCPU >= 0, s.dirBusy, s.genBusy)
	row.PerReal = s.perReal
}

// udpTest measures the peak rate, then searches the rate steps (highest
// first) for the first with at most max_loss_percent loss.
func (r *runner) udpTest(ctx context.Context, c *candidate, size int) error {
	return r.udpTestOn(ctx, c, size, r.udpSvc, "udp", "")
}

// udp6Test is udpTest on the IPv6 UDP service (rows "udp6"). Its frames are at least
// MinFrameUDP6 bytes: the 64-byte row is measured at 66, the smallest IPv6 UDP frame, and
// says so. The baselines are IPv4-only (nftables' table ip, the kernel's IPv4 routes, the
// floors' IPv4 parse), so only uvs candidates run it.
func (r *runner) udp6Test(ctx context.Context, c *candidate, size int) error {
	if c.Kind != "uvs" {
		r.res.Rows = append(r.res.Rows, Row{Candidate: c.Name, Test: "udp6", Size: size, Note: "skipped: the baselines are IPv4 only"})
		return nil
	}
	note := ""
	if size < MinFrameUDP6 {
		size, note = MinFrameUDP6, "the smallest IPv6 UDP frame is 66 bytes (IPv6's header is 20 bytes longer than IPv4's)"
	}
	return r.udpTestOn(ctx, c, size, r.udp6Svc, "udp6", note)
}

// udpTestOn is udpTest on svc, recording rows of test with note.
func (r *runner) udpTestOn(ctx context.Context, c *candidate, size int, svc *config.Service, test, note string) error {
	gc := GenConfig{Dst: netip.AddrPortFrom(svc.VIP, svc.Port), Proto: GenUDP, Size: size, Flows: r.b.Flows, Duration: r.b.Duration}
	var stopPerf func() error
	if r.o.PerfDir != "" && test == "udp" && size == r.b.PacketSizes[0] {
		stopPerf = r.startPerf(c.Name+"-udp"+strconv.Itoa(size), c.Kind == "uvs" || c.Kind == "floor")
	}
	peak, err := r.measure(c, gc)
	var perfErr error
	if stopPerf != nil {
		perfErr = stopPerf()
	}
	if err != nil {
		return err
	}
	if perfErr != nil {
		r.res.Notes = append(r.res.Notes, perfErr.Error())
	}
	row := Row{Candidate: c.Name, Test: test, Size: size, Flows: r.b.Flows}
	r.fill(&row, c, peak)
	if peak.lossPercent() <= r.b.MaxLossPercent {
		row.NoLossPPS = peak.pps()
	} else {
		steps := append([]int(nil), r.b.RateSteps...)
		for i := len(steps) - 1; i >= 0 && ctx.Err() == nil; i-- {
			gc.Rate = peak.pps() * float64(steps[i]) / 100
			s, err := r.measure(c, gc)
			if err != nil {
				return err
			}
			if s.lossPercent() <= r.b.MaxLossPercent {
				row.NoLossPPS = s.pps()
				break
			}
		}
	}
	if note != "" {
		row.Note = strings.TrimPrefix(row.Note+"; "+note, "; ")
	}
	r.res.Rows = append(r.res.Rows, row)
	if test == "udp" && size == 64 && r.b.CostPPS > 0 && (c.Kind == "uvs" || c.Kind == "floor") && c.Pinned {
		row, err := r.costStep(c, gc)
		if err != nil {
			return err
		}
		r.res.Rows = append(r.res.Rows, row)
	}
	return nil
}

// costTest is the row of the cost step (costStep).
const costTest = "udp-cost"

// costSaturated reports whether a cost row's forwarder fell behind the offered load
// during the trial, as the cost step needs.
func costSaturated(x *Row) bool { return x.DeliveredPPS < overloadSlack*x.OfferedPPS }

// costStep offers 64-byte UDP at bench.cost_pps while a busy loop competes
// for the director's CPU (competitor), so that the forwarder is saturated and
// never idle, and measures what it delivers. Forwarders measured this way
// get the same share of the same CPU, so the one that costs less per packet
// delivers more: the ratio of two delivered rates is the inverse ratio of
// their costs per packet, receive softirq included, and no spin or wakeup
// enters it. The rate counts what arrived while the generator sent, not what
// the rings still held when it stopped, so that a deeper ring does not count
// as capacity. Only uvs and the floor
// (threads a busy loop competes with; kernel forwarding runs in softirq,
// which no thread holds back) are measured.
//
// A forwarder that carried nearly all it was offered (the generator, on a loaded machine,
// sent less than it could take) is measured again with one busy loop more, up to
// costMaxCompetitors; the row says how many it had (CostLoops), and the target scales each
// rate by its share, 1/(loops+1).
func (r *runner) costStep(c *candidate, gc GenConfig) (Row, error) {
	for n := costCompetitors; ; n++ {
		row, err := r.costTrial(c, gc, n)
		if err != nil || costSaturated(&row) || n >= costMaxCompetitors {
			return row, err
		}
	}
}

// costTrial is one cost step with n busy loops.
func (r *runner) costTrial(c *candidate, gc GenConfig, n int) (Row, error) {
	row := Row{Candidate: c.Name, Test: costTest, Size: 64, Flows: r.b.Flows, CostLoops: n}
	comp, err := startCompetitor(r.dirCPU, n)
	if err != nil {
		return row, err
	}
	time.Sleep(settleWait)
	k0, w0 := comp.cpu(), time.Now()
	gc.Rate = float64(r.b.CostPPS)
	var stopPerf func() error
	if r.o.PerfDir != "" {
		// Saturated, the forwarder never idles: its profile is all work (the busy loops'
		// samples are the "sh" comm's).
		stopPerf = r.startPerf(c.Name+"-"+costTest+"64", true)
	}
	s, err := r.measure(c, gc)
	if stopPerf != nil {
		if perr := stopPerf(); perr != nil {
			r.res.Notes = append(r.res.Notes, perr.Error())
		}
	}
	k1 := comp.cpu()
	comp.stop()
	time.Sleep(settleWait) // the next test starts on a CPU without the busy loop
	if err != nil {
		return row, err
	}
	r.fill(&row, c, s)
	// The rate the forwarder carried while it was offered more than it could: the
	// frames that arrived during the trial. What its rings still held then
	// (V3 holds about 60 000 small frames, V2 8192) is not capacity.
	row.DeliveredPPS = float64(s.inTrial) / s.elapsed.Seconds()
	share := 0.0
	if wall := time.Since(w0); wall > 0 {
		share = float64(k1-k0) / float64(wall)
	}
	row.Note = fmt.Sprintf("offered %.3f Mpps beside %d busy loops on the director's CPU (%.0f%% of it); Mpps is what arrived while the generator sent",
		row.OfferedPPS/1e6, n, 100*share)
	if c.floor != nil && c.floor.SharedGroup() != "" {
		row.Note += "; the floor shares the bench's scheduling weight (" + c.floor.SharedGroup() + "): its rate is low"
	}
	if !costSaturated(&row) {
		row.Note += "; not saturated (carried at least 95% of the offered rate, with the most busy loops the step tries): raise cost_pps"
	}
	return row, nil
}

// tcpTest measures TCP packets of established flows (GenACK: one SYN per
// flow first) or SYN-only traffic where nearly every packet is a new flow.
func (r *runner) tcpTest(ctx context.Context, c *candidate, p GenProto) error {
	test := map[GenProto]string{GenACK: "tcp", GenSYN: "syn"}[p]
	if r.tcpSvc == nil {
		r.res.Rows = append(r.res.Rows, Row{Candidate: c.Name, Test: test, Size: 64, Note: "skipped: no TCP service"})
		return nil
	}
	if p == GenACK && c.Kind == "nftables" {
		// conntrack calls an ACK after a SYN with no SYN-ACK invalid
		// (nf_conntrack_proto_tcp.c, sSS), so DNAT never applies to it.
		r.res.Rows = append(r.res.Rows, Row{Candidate: c.Name, Test: test, Size: 64, Note: "n/a: conntrack needs real handshakes, which generated flows lack"})
		return nil
	}
	dst := netip.AddrPortFrom(r.tcpSvc.VIP, r.tcpSvc.Port)
	flows := r.b.Flows
	if p == GenSYN {
		flows = r.b.SYNFlows
	} else {
		// Open every flow once; the director then sees only packets of
		// flows it knows.
		warm := GenConfig{Dst: dst, Proto: GenSYN, Size: 64, Flows: flows, Count: flows, Duration: 30 * time.Second, Rate: 200000}
		if _, err := r.measure(c, warm); err != nil {
			return err
		}
	}
	s, err := r.measure(c, GenConfig{Dst: dst, Proto: p, Size: 64, Flows: flows, Duration: r.b.Duration})
	if err != nil {
		return err
	}
	row := Row{Candidate: c.Name, Test: test, Size: 64, Flows: flows}
	r.fill(&row, c, s)
	r.res.Rows = append(r.res.Rows, row)
	return ctx.Err()
}

func (r *runner) connectTest(ctx context.Context, c *candidate) {
	row := Row{Candidate: c.Name, Test: "connect"}
	switch {
	case r.tcpSvc == nil:
		row.Note = "skipped: no TCP service"
	case c.Kind == "nftables" && r.tcpSvc.Forward != config.NAT:
		row.Note = "skipped: DNAT needs the replies back through the director, which a " + r.tcpSvc.Forward.String() + " lab does not route"
	default:
		dst := netip.AddrPortFrom(r.tcpSvc.VIP, r.tcpSvc.Port)
		t0, _ := readCPUTimes()
		per, failed, el := connectRate(ctx, r.client, dst, r.b.Duration, r.b.ConnectParallel)
		t1, _ := readCPUTimes()
		var n uint64
		for _, v := range per {
			n += v
		}
		row.ConnsPerSec = float64(n) / el.Seconds()
		row.ConnFailures = failed
		row.PerReal = per
		if r.dirCPU >= 0 {
			row.DirectorBusy, row.GeneratorBusy = busy(t0, t1, r.dirCPU), busy(t0, t1, r.genCPU)
		}
		if failed > 0 {
			row.Note = fmt.Sprintf("%d connections failed", failed)
		}
	}
	r.res.Rows = append(r.res.Rows, row)
}

// Latency probing (open loop, see latencyProbe).
const (
	trickleRate     = 50.0            // probes per second at the trickle: one every 20 ms on average
	trickleMin      = 4 * time.Second // at least 200 probes at the trickle
	loadedProbeRate = 500.0           // probes per second beside the background load
)

// latencyTest probes UDP round trips through the candidate on an open-loop
// schedule, twice: at a trickle (trickleRate probes per second and nothing
// else, row "latency-trickle") and while the generator offers
// latency_load_percent of the candidate's 64-byte peak (row "latency"). Each
// time, the same probes go straight to the first real server, interleaved
// with those through the candidate on one schedule (latencyProbe); the added
// figures are the difference of the two in the same window.
func (r *runner) latencyTest(ctx context.Context, c *candidate) error {
	dsts := []netip.AddrPort{netip.AddrPortFrom(r.udpSvc.VIP, r.udpSvc.Port)}
	if direct := netip.AddrPortFrom(r.udpSvc.Reals[0].Address, r.udpSvc.Port); r.client.Ifaces[0].Prefix.Contains(direct.Addr()) {
		dsts = append(dsts, direct)
	}
	// The trickle, with the director's CPU over the window: an idle
	// worker must sleep in poll(), not spin.
	row := Row{Candidate: c.Name, Test: "latency-trickle", Size: 64, Note: fmt.Sprintf("%.0f probes/s, no other traffic", trickleRate)}
	p0, t0, w0 := c.cpu(), mustCPUTimes(), time.Now()
	pr, err := latencyProbe(ctx, r.client, dsts, max(r.b.Duration, trickleMin), trickleRate, maxProbes, r.genCPU)
	if err != nil {
		return err
	}
	p1, t1, wall := c.cpu(), mustCPUTimes(), time.Since(w0)
	if r.dirCPU >= 0 && t0 != nil && t1 != nil {
		row.DirectorBusy = busy(t0, t1, r.dirCPU)
	}
	if p1 > p0 {
		row.ProcBusy = float64(p1-p0) / float64(wall)
	}
	fillLatency(&row, pr)
	r.res.Rows = append(r.res.Rows, row)

	row = Row{Candidate: c.Name, Test: "latency", Size: 64}
	peak := 0.0
	if p := r.res.find(c.Name, "udp", 64); p != nil {
		peak = p.DeliveredPPS
	}
	load := peak * float64(r.b.LatencyLoad) / 100
	row.LoadPPS = load
	bg := make(chan error, 1)
	if load > 0 {
		gc := GenConfig{Dst: dsts[0], Proto: GenUDP, Size: 64, Flows: r.b.Flows, Rate: load, Duration: r.b.Duration,
			Iface: r.client.Ifaces[0].Name, SrcMAC: r.srcMAC, DstMAC: r.dirMAC, CPU: r.genCPU}
		go func() { _, err := Generate(r.client, gc); bg <- err }()
	} else {
		bg <- nil
	}
	pr, err = latencyProbe(ctx, r.client, dsts, r.b.Duration, loadedProbeRate, maxProbes, r.genCPU)
	if gerr := <-bg; err == nil {
		err = gerr
	}
	if err != nil {
		return err
	}
	fillLatency(&row, pr)
	row.Note = fmt.Sprintf("%.0f probes/s beside %d%% of the 64-byte peak", loadedProbeRate, r.b.LatencyLoad)
	r.res.Rows = append(r.res.Rows, row)
	return nil
}

// fillLatency sets a latency row from latencyProbe's results: the first
// destination is the candidate's VIP, the second (if any) the real server
// probed directly in the same window.
func fillLatency(row *Row, pr []probeResult) {
	if len(pr) == 0 {
		return
	}
	v := pr[0]
	row.Probes, row.Lost = len(v.rtts)+v.lost, v.lost
	if len(v.rtts) == 0 {
		return
	}
	row.P50us = us(percentile(v.rtts, 50))
	row.P99us = us(percentile(v.rtts, 99))
	if len(pr) < 2 || len(pr[1].rtts) == 0 {
		return
	}
	d := pr[1]
	row.DirectProbes, row.DirectLost = len(d.rtts)+d.lost, d.lost
	row.DirectP50us = us(percentile(d.rtts, 50))
	row.DirectP99us = us(percentile(d.rtts, 99))
	row.AddedP50us = row.P50us - row.DirectP50us
	row.AddedP99us = row.P99us - row.DirectP99us
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func mustCPUTimes() map[int]cpuTimes {
	t, _ := readCPUTimes()
	return t
}

// compare fills the ratios and the targets of the issue.
func (r *runner) compare() {
	res := r.res
	ratio := func(cand, base string) {
		for _, test := range []string{"udp", costTest, "tcp", "syn"} {
			for _, size := range r.b.PacketSizes {
				u, k := res.find(cand, test, size), res.find(base, test, size)
				if u == nil || k == nil || k.DeliveredPPS == 0 {
					continue
				}
				q := Ratio{Candidate: cand, Baseline: base, Test: test, Size: size, PPS: u.DeliveredPPS / k.DeliveredPPS}
				if test == costTest {
					q.PPS = 1 / costRatio(u, k) // rates scaled by loops+1 when the busy loops differed
				}
				if k.NsPerPkt > 0 {
					q.NsPerPkt = u.NsPerPkt / k.NsPerPkt
				}
				if u.ProcNsPerPkt > 0 && k.ProcNsPerPkt > 0 {
					q.ThreadNsPerPkt = u.ProcNsPerPkt / k.ProcNsPerPkt
				}
				res.Ratios = append(res.Ratios, q)
			}
		}
	}
	// What the generator reaches unpaced (the udp peaks and the overload-max
	// steps): "twice its capacity" may be more than that.
	lo, hi := 0.0, 0.0
	for _, x := range res.Rows {
		if x.Size == 64 && (x.Test == "udp" || x.Test == "overload-max") && x.OfferedPPS > 0 {
			if lo == 0 || x.OfferedPPS < lo {
				lo = x.OfferedPPS
			}
			hi = max(hi, x.OfferedPPS)
		}
	}
	if hi > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("generator unpaced, 64-byte UDP: offered %.3f-%.3f Mpps over the candidates (udp peaks and overload-max)", lo/1e6, hi/1e6))
	}
	// The floors against the kernel first: a lazy floor shows here.
	for _, c := range res.Candidates {
		if c.Kind != "floor" {
			continue
		}
		for _, b := range r.b.Compare {
			if b == "kernel" || b == "nftables" {
				ratio(c.Name, b)
			}
		}
	}
	for _, c := range res.Candidates {
		if c.Kind != "uvs" {
			continue
		}
		for _, b := range r.b.Compare {
			ratio(c.Name, b)
		}
		if c.Workers == 1 {
			u := res.find(c.Name, "udp", 64)
			if n := res.find("nftables", "udp", 64); u != nil && n != nil && n.NsPerPkt > 0 {
				res.Targets = append(res.Targets, Target{What: c.Name + " 64-byte UDP ns/pkt <= nftables", Value: u.NsPerPkt, Limit: n.NsPerPkt,
					Met: u.NsPerPkt <= n.NsPerPkt, Detail: fmt.Sprintf("%.0f vs %.0f ns (%.2fx)", u.NsPerPkt, n.NsPerPkt, u.NsPerPkt/n.NsPerPkt)})
			}
			if k := res.find("kernel", "udp", 64); u != nil && k != nil && k.NsPerPkt > 0 {
				res.Targets = append(res.Targets, Target{What: c.Name + " 64-byte UDP ns/pkt <= 1.8x kernel forwarding", Value: u.NsPerPkt / k.NsPerPkt, Limit: 1.8,
					Met: u.NsPerPkt <= 1.8*k.NsPerPkt, Detail: fmt.Sprintf("%.0f vs %.0f ns (%.2fx)", u.NsPerPkt, k.NsPerPkt, u.NsPerPkt/k.NsPerPkt)})
			}
			ring := c.RXRing
			switch {
			case c.Backend == "afxdp":
				ring = "afxdp" // its own floor
			case ring == "":
				ring = "v3"
			}
			if f := res.find("floor-"+ring, "udp", 64); u != nil && f != nil && f.NsPerPkt > 0 {
				res.Targets = append(res.Targets, Target{What: c.Name + " 64-byte UDP ns/pkt <= 1.15x floor-" + ring + " at the peak (idle time included unless saturated; the target is udp-cost)", Value: u.NsPerPkt / f.NsPerPkt, Limit: 1.15,
					Met: u.NsPerPkt <= 1.15*f.NsPerPkt, Detail: fmt.Sprintf("%.0f vs %.0f ns (%.2fx)", u.NsPerPkt, f.NsPerPkt, u.NsPerPkt/f.NsPerPkt)})
			}
			if f := res.find("floor-"+ring, "udp", 64); u != nil && f != nil && u.ProcNsPerPkt > 0 && f.ProcNsPerPkt > 0 {
				v := u.ProcNsPerPkt / f.ProcNsPerPkt
				res.Targets = append(res.Targets, Target{What: c.Name + " 64-byte UDP thread ns/pkt <= 1.15x floor-" + ring + " (own threads only) at the peak (idle time included unless saturated; the target is udp-cost)", Value: v, Limit: 1.15,
					Met: v <= 1.15, Detail: fmt.Sprintf("%.0f vs %.0f ns (%.2fx)", u.ProcNsPerPkt, f.ProcNsPerPkt, v)})
			}
			// Like with like: both saturated beside the same busy loop (costStep).
			uc, fc := res.find(c.Name, costTest, 64), res.find("floor-"+ring, costTest, 64)
			if uc != nil && fc != nil && uc.DeliveredPPS > 0 && fc.DeliveredPPS > 0 {
				d, saturated := costDetail(c.Name, "floor-"+ring, uc, fc)
				d += roundRatios(r.rounds, c.Name, "floor-"+ring)
				v := costRatio(uc, fc)
				res.Targets = append(res.Targets, Target{What: c.Name + " 64-byte UDP cost at saturation (cost_pps) <= 1.15x floor-" + ring,
					Value: v, Limit: 1.15, Met: saturated && v <= 1.15, Detail: d})
			}
		}
		for _, test := range []string{"latency-trickle", "latency"} {
			x := res.find(c.Name, test, 64)
			if x == nil || x.Probes == 0 || x.DirectProbes == 0 {
				continue
			}
			t := Target{What: c.Name + " " + test + " added p50 <= 30us and p99 <= 100us", Value: x.AddedP50us, Limit: 30,
				Met:    x.AddedP50us <= 30 && x.AddedP99us <= 100,
				Detail: fmt.Sprintf("added p50 %+.0fus p99 %+.0fus", x.AddedP50us, x.AddedP99us)}
			res.Targets = append(res.Targets, t)
			if test == "latency-trickle" && x.ProcBusy > 0 {
				res.Targets = append(res.Targets, Target{What: c.Name + " director CPU < 2% at the trickle", Value: 100 * x.ProcBusy, Limit: 2,
					Met: x.ProcBusy < 0.02, Detail: fmt.Sprintf("%.2f%% of a CPU (director threads)", 100*x.ProcBusy)})
			}
		}
		if t, ok := overloadTarget(res, c.Name); ok {
			res.Targets = append(res.Targets, t)
		}
		syn, est := res.find(c.Name, "syn", 64), res.find(c.Name, "tcp", 64)
		if syn != nil && est != nil && est.DeliveredPPS > 0 && syn.DeliveredPPS > 0 {
			t := Target{What: c.Name + " SYN-only >= 0.8x established", Value: syn.DeliveredPPS / est.DeliveredPPS, Limit: 0.8}
			t.Met = t.Value >= 0.8
			t.Detail = fmt.Sprintf("%.3f vs %.3f Mpps (%.2fx)", syn.DeliveredPPS/1e6, est.DeliveredPPS/1e6, t.Value)
			if syn.NsPerPkt > 0 && est.NsPerPkt > 0 {
				t.Detail += fmt.Sprintf("; %.0f vs %.0f ns/pkt", syn.NsPerPkt, est.NsPerPkt)
			}
			res.Targets = append(res.Targets, t)
		}
	}
}

// overloadSlack is the share of the expected rate an overload step may fall
// short by: the "at least 95% of its best loss-free rate".
const overloadSlack = 0.95

// overloadTarget checks the overload steps of candidate cand against the
// issue: offered load L, a forwarder whose best loss-free rate is F must
// deliver at least 95% of min(L, F) (a step offered less than F cannot
// deliver F, and one offered more must still deliver F: the surplus is
// dropped before any work), and the delivered rate never falls as the
// offered load rises (no livelock: each step, taken in the order of its
// offered load, delivers at least 95% of the most any step offered less
// delivered). ok is false when the candidate has no loss-free rate or no
// overload step.
func overloadTarget(res *Results, cand string) (Target, bool) {
	u := res.find(cand, "udp", 64)
	if u == nil || u.NoLossPPS <= 0 {
		return Target{}, false
	}
	var steps []*Row
	for _, test := range []string{"overload-1x", "overload-2x", "overload-max"} {
		if x := res.find(cand, test, 64); x != nil && x.OfferedPPS > 0 {
			steps = append(steps, x)
		}
	}
	if len(steps) == 0 {
		return Target{}, false
	}
	slices.SortStableFunc(steps, func(a, b *Row) int { return cmp.Compare(a.OfferedPPS, b.OfferedPPS) })
	met := true
	most, mostOffered := 0.0, 0.0
	var got []string
	for _, x := range steps {
		want := min(x.OfferedPPS, u.NoLossPPS)
		ok := x.DeliveredPPS >= overloadSlack*want
		d := fmt.Sprintf("%s offered %.3f delivered %.3f Mpps", x.Test[len("overload-"):], x.OfferedPPS/1e6, x.DeliveredPPS/1e6)
		if !ok {
			d += fmt.Sprintf(" (< 95%% of %.3f)", want/1e6)
		}
		if most > 0 && x.OfferedPPS > mostOffered && x.DeliveredPPS < overloadSlack*most {
			ok = false
			d += fmt.Sprintf(" (fell from %.3f)", most/1e6)
		}
		if x.DeliveredPPS > most {
			most, mostOffered = x.DeliveredPPS, x.OfferedPPS
		}
		met = met && ok
		got = append(got, d)
	}
	return Target{What: cand + " overloaded: delivers >= 95% of min(offered, loss-free) at every offered load, never less as the load rises",
		Value: u.NoLossPPS, Limit: overloadSlack * u.NoLossPPS, Met: met,
		Detail: fmt.Sprintf("loss-free %.3f Mpps; %s", u.NoLossPPS/1e6, strings.Join(got, "; "))}, true
}

// machineMeta describes this machine and build.
func machineMeta() Meta {
	m := Meta{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Commit: "unknown"}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				m.Commit = s.Value
			}
			if s.Key == "vcs.modified" && s.Value == "true" {
				m.Commit += "+modified"
			}
		}
	}
	if m.Commit == "unknown" {
		if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
			m.Commit = strings.TrimSpace(string(out))
		}
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// costDetail describes the cost target of candidate u against floor f from their cost rows:
// the cost ratio is the floor's delivered rate over uvs's (both saturated beside the same busy
// loops, the one that costs less per packet delivers more), with each one's own thread time
// per packet and its share of the director's CPU beside it; a forwarder that carried nearly
// all it was offered was not saturated, and the ratio then says nothing.
func costDetail(u, f string, uc, fc *Row) (string, bool) {
	d := fmt.Sprintf("cost %.2fx the floor's (%s %.3f / %s %.3f Mpps delivered beside the same busy loops)",
		costRatio(uc, fc), f, fc.DeliveredPPS/1e6, u, uc.DeliveredPPS/1e6)
	if uc.CostLoops != fc.CostLoops {
		d = fmt.Sprintf("cost %.2fx the floor's (%s %.3f Mpps beside %d busy loops / %s %.3f beside %d, each rate times loops+1)",
			costRatio(uc, fc), f, fc.DeliveredPPS/1e6, fc.CostLoops, u, uc.DeliveredPPS/1e6, uc.CostLoops)
	}
	if uc.ProcNsPerPkt > 0 && fc.ProcNsPerPkt > 0 {
		d += fmt.Sprintf("; own threads %.0f vs %.0f ns/pkt (%.2fx), %.0f%% vs %.0f%% of the CPU",
			uc.ProcNsPerPkt, fc.ProcNsPerPkt, uc.ProcNsPerPkt/fc.ProcNsPerPkt,
			100*uc.ProcNsPerPkt*uc.DeliveredPPS/1e9, 100*fc.ProcNsPerPkt*fc.DeliveredPPS/1e9)
	}
	saturated := true
	for _, x := range []struct {
		name string
		r    *Row
	}{{u, uc}, {f, fc}} {
		if !costSaturated(x.r) {
			saturated = false
			d += fmt.Sprintf("; not comparable: %s carried %.0f%% of the %.3f Mpps offered, not saturated (raise cost_pps or add busy loops)",
				x.name, 100*x.r.DeliveredPPS/x.r.OfferedPPS, x.r.OfferedPPS/1e6)
		}
	}
	return d, saturated
}

// roundRatios describes the cost ratio of candidate u to floor f in each round that measured
// both saturated, and their median: the target uses each one's least disturbed round, and on a
// shared machine the rounds' own ratios show how far apart two runs of the same code land. It
// returns "" with fewer than two such rounds.
func roundRatios(rounds [][]Row, u, f string) string {
	var vs []float64
	for _, rows := range rounds {
		rr := Results{Rows: rows}
		uc, fc := rr.find(u, costTest, 64), rr.find(f, costTest, 64)
		if uc != nil && fc != nil && uc.DeliveredPPS > 0 && fc.DeliveredPPS > 0 && costSaturated(uc) && costSaturated(fc) {
			vs = append(vs, costRatio(uc, fc))
		}
	}
	if len(vs) < 2 {
		return ""
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%.2f", v)
	}
	sort.Float64s(vs)
	med := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		med = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	return fmt.Sprintf("; round by round %sx (median %.2fx)", strings.Join(parts, "x "), med)
}

// costRatio is uvs's cost per packet relative to the floor's from their cost rows: the floor's
// delivered rate over uvs's, each scaled by its share of the CPU, 1/(loops+1), when they had
// different numbers of busy loops.
func costRatio(uc, fc *Row) float64 {
	scale := func(x *Row) float64 {
		if x.CostLoops > 0 {
			return x.DeliveredPPS * float64(x.CostLoops+1)
		}
		return x.DeliveredPPS
	}
	return scale(fc) / scale(uc)
}
