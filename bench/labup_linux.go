package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/uvs-project/uvs/config"
)

// UpReadyTimeout bounds how long LabUp waits for every VIP to answer.
const UpReadyTimeout = 20 * time.Second

// ErrNoRealserver reports a lab with tun services built with a uvs binary
// that does not have the `uvs realserver` command yet.
var ErrNoRealserver = errors.New("bench: tun real servers need `uvs realserver --vip V --method tun`, which this uvs binary does not have")

// HasCommand reports whether the uvs binary knows the subcommand: it runs
// `uvs NAME -h` and looks for the "unknown command" answer of main.
func HasCommand(uvs, name string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, uvs, name, "-h")
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run()
	return !strings.Contains(out.String(), "unknown command") && ctx.Err() == nil
}

// LabUp builds the lab that cfg describes (LayoutConfig), prepares its real
// servers for their forwarding methods, starts `uvs lab serve` on each of them
// and `uvs run --config cfgPath` in the director namespace, all as background
// processes that outlive the caller, records the lab in StateDir and waits
// until every VIP answers through the director. Progress goes to out. On any
// error, or when ctx ends first, it removes everything it built.
func LabUp(ctx context.Context, cfg *config.Config, cfgPath, uvs string, out io.Writer) (*LabState, error) {
	return labUp(ctx, cfg, cfgPath, uvs, out, UpReadyTimeout)
}

func labUp(ctx context.Context, cfg *config.Config, cfgPath, uvs string, out io.Writer, readyTimeout time.Duration) (_ *LabState, err error) {
	lay, err := LayoutConfig(cfg)
	if err != nil {
		return nil, err
	}
	if cfgPath, err = filepath.Abs(cfgPath); err != nil {
		return nil, fmt.Errorf("bench: lab up: %w", err)
	}
	if uvs, err = filepath.Abs(uvs); err != nil {
		return nil, fmt.Errorf("bench: lab up: %w", err)
	}
	l := lay.Lab
	if _, err := ReadState(l.Spec.Prefix); err == nil {
		return nil, fmt.Errorf("bench: lab %s is up already; run `uvs lab down` first", l.Spec.Prefix)
	}
	if ents, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), l.Spec.Prefix) {
				return nil, fmt.Errorf("bench: namespace %s exists, left by a lab that was killed: run `uvs lab down` with this config first", e.Name())
			}
		}
	}
	needTUN := slices.ContainsFunc(lay.Reals, func(r LabReal) bool { return r.Forward == config.TUN })
	if needTUN && !HasCommand(uvs, "realserver") {
		return nil, ErrNoRealserver
	}
	st := &LabState{Prefix: l.Spec.Prefix, Config: cfgPath, UVS: uvs, SwitchNS: l.switchNS, VIPs: lay.VIPs,
		LogDir: filepath.Join(StateDir, l.Spec.Prefix)}
	for _, n := range l.Nodes() {
		sn := StateNode{Name: n.Name, NS: n.NS, Ifaces: n.Ifaces}
		switch {
		case slices.Contains(l.Clients, n):
			sn.Role = "client"
		case slices.Contains(l.Directors, n), n == l.Director2:
			sn.Role = "director"
		case n == l.Router:
			sn.Role = "router"
		default:
			sn.Role = "real"
			for _, r := range lay.Reals {
				if r.Node == n.Name {
					sn.Method = r.Forward.String()
					for _, v := range r.VIPs {
						sn.VIPs = append(sn.VIPs, v.String())
					}
				}
			}
		}
		st.Nodes = append(st.Nodes, sn)
	}
	if err := os.MkdirAll(st.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: lab up: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(interrupted(ctx, err), st.Down())
		}
	}()
	// Record before building, so that a killed `lab up` leaves a state that
	// `lab down` can remove.
	st.Namespaces = []string{l.switchNS}
	for _, n := range l.Nodes() {
		st.Namespaces = append(st.Namespaces, n.NS)
	}
	if err := st.write(); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "lab %s: building %d namespaces\n", st.Prefix, len(st.Namespaces))
	if err := l.build(ctx); err != nil {
		st.Namespaces = l.created // never delete a namespace this run did not add
		return nil, err
	}
	for _, r := range lay.Reals {
		n := realNode(l, r.Node)
		switch r.Forward {
		case config.DR:
			if err := prepareDR(ctx, n, r.VIPs); err != nil {
				return nil, err
			}
		case config.TUN:
			vips := make([]string, len(r.VIPs))
			for i, v := range r.VIPs {
				vips[i] = v.String()
			}
			args := []string{"realserver", "--vip", strings.Join(vips, ","), "--method", "tun"}
			if l.Spec.IPv6 {
				// No ip6_tunnel or sit here: 6in6, 4in6 and 6in4 are decapsulated in
				// user space, and so is IPIP beside them.
				args = append(args, "--decap", "user")
			}
			p, err := st.startProc(n, "realserver", uvs, args...)
			if err != nil {
				return nil, err
			}
			st.Procs = append(st.Procs, p)
		}
		args := []string{"lab", "serve", "--name", r.Node}
		if l.Spec.IPv6 {
			args = append(args, "--ipv6")
		}
		if len(r.TCPPorts) > 0 {
			args = append(args, "--http", joinInts(r.TCPPorts))
		}
		if len(r.UDPPorts) > 0 {
			args = append(args, "--udp", joinInts(r.UDPPorts))
		}
		p, err := st.startProc(n, "serve", uvs, args...)
		if err != nil {
			return nil, err
		}
		st.Procs = append(st.Procs, p)
	}
	if cfg.BGP.Present {
		if err := st.startBGP(ctx, l, cfg, cfgPath, uvs); err != nil {
			return nil, err
		}
	} else {
		p, err := st.startDirector(l.Director, uvs, cfgPath)
		if err != nil {
			return nil, err
		}
		st.Procs = append(st.Procs, p)
	}
	if l.Director2 != nil {
		// The same file, its own control socket (labpair.go).
		p, err := st.startDirector(l.Director2, uvs, cfgPath, "--control-socket", st.Director2Socket())
		if err != nil {
			return nil, err
		}
		st.Procs = append(st.Procs, p)
	}
	if err := st.write(); err != nil {
		return nil, err
	}
	dirs := "director"
	if l.Director2 != nil {
		dirs = "directors (a VRRP pair)"
	}
	fmt.Fprintf(out, "lab %s: %s and %d real servers started; waiting for the VIPs\n", st.Prefix, dirs, len(lay.Reals))
	if err := st.WaitReady(ctx, cfg, readyTimeout); err != nil {
		return nil, err
	}
	return st, nil
}

func realNode(l *Lab, name string) *Node {
	for _, n := range l.Reals {
		if n.Name == name {
			return n
		}
	}
	panic("bench: layout names a real server the lab lacks")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// prepareDR puts the VIPs on lo and sets arp_ignore=1, arp_announce=2, so
// that the real server accepts VIP traffic but never answers ARP for a VIP.
func prepareDR(ctx context.Context, n *Node, vips []netip.Addr) error {
	var lines []string
	for _, v := range vips {
		if v.Is6() {
			lines = append(lines, "addr replace "+v.String()+"/128 dev lo nodad")
			continue
		}
		lines = append(lines, "addr replace "+v.String()+"/32 dev lo")
	}
	if err := ipBatch(ctx, n.NS, lines); err != nil {
		return err
	}
	return writeSysctls(n.NS, map[string]string{
		"ipv4/conf/all/arp_ignore":   "1",
		"ipv4/conf/lo/arp_ignore":    "1",
		"ipv4/conf/all/arp_announce": "2",
		"ipv4/conf/lo/arp_announce":  "2",
	})
}

// startProc starts name args in n's namespace as a background process in a
// session of its own, with output appended to LogDir/<node>-<role>.log. It
// outlives this process; Down ends it.
func (s *LabState) startProc(n *Node, role, name string, args ...string) (StateProc, error) {
	return s.startLogged(n, role, n.Name+"-"+role, name, args...)
}

// startLogged is startProc with the log file LogDir/<logName>.log.
func (s *LabState) startLogged(n *Node, role, logName, name string, args ...string) (StateProc, error) {
	logPath := filepath.Join(s.LogDir, logName+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return StateProc{}, fmt.Errorf("bench: start %s on %s: %w", role, n.Name, err)
	}
	defer f.Close()
	// ip netns exec execs the command, so the PID is the command's.
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.NS, name}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if wd, err := os.Getwd(); err == nil {
		cmd.Dir = wd
	}
	if err := cmd.Start(); err != nil {
		return StateProc{}, fmt.Errorf("bench: start %s on %s: %w", role, n.Name, err)
	}
	pid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }() // reap it if it dies while this process lives
	p := StateProc{Role: role, Node: n.Name, PID: pid, Args: append([]string{name}, args...), Log: logPath}
	p.Start, _ = procStart(pid)
	return p, nil
}

func (s *LabState) startDirector(n *Node, uvs, cfgPath string, extra ...string) (StateProc, error) {
	return s.startProc(n, "director", uvs, append([]string{"run", "--config", cfgPath}, extra...)...)
}

// procStart returns field 22 of /proc/PID/stat, the start time in ticks,
// or an error if the process is gone or a zombie: an exited lab process is
// reparented to PID 1, which may reap it late.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// comm (field 2) may hold spaces; fields resume after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bench: bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, errors.New("bench: bad /proc stat")
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, errors.New("bench: process exited")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// Alive reports whether the recorded process still runs.
func (p StateProc) Alive() bool {
	st, err := procStart(p.PID)
	return err == nil && (p.Start == 0 || st == p.Start)
}

// Stop sends SIGTERM, waits up to StopTimeout, then SIGKILL.
func (p StateProc) Stop() {
	if !p.Alive() {
		return
	}
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	deadline := time.Now().Add(StopTimeout)
	for p.Alive() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p.Alive() {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
}

// Down stops the lab's processes (the director first, so that it undoes
// what it changed), deletes its namespaces and its state. It goes on after
// errors and returns them all.
func (s *LabState) Down() error {
	var errs []error
	for i := len(s.Procs) - 1; i >= 0; i-- {
		if s.Procs[i].Role == "director" {
			s.Procs[i].Stop()
		}
	}
	for _, p := range s.Procs {
		p.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	for i := len(s.Namespaces) - 1; i >= 0; i-- {
		errs = append(errs, deleteNS(ctx, s.Namespaces[i]))
	}
	if err := os.Remove(statePath(s.Prefix)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if s.LogDir != "" && strings.HasPrefix(s.LogDir, StateDir+"/") {
		errs = append(errs, os.RemoveAll(s.LogDir))
	}
	return errors.Join(errs...)
}

// LabDown removes the lab recorded under prefix; with no record, it removes
// the namespaces whose names start with prefix.
func LabDown(prefix string) error {
	st, err := ReadState(prefix)
	if errors.Is(err, ErrNoLab) {
		return CleanupPrefix(prefix)
	}
	if err != nil {
		return err
	}
	return st.Down()
}

// WaitReady waits until every service of cfg answers from a client: an HTTP
// GET for TCP services, a UDP echo for UDP ones.
func (s *LabState) WaitReady(ctx context.Context, cfg *config.Config, timeout time.Duration) error {
	client := s.NodesByRole("client")[0]
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := client.HTTPClient()
	for _, svc := range cfg.Services {
		port := int(svc.Port)
		if len(svc.Ports) > 0 {
			port = int(svc.Ports[0])
		}
		if port == 0 {
			port = allPortsHTTP
		}
		ap := netip.AddrPortFrom(svc.VIP, uint16(port))
		var last error
		for {
			if d := s.Proc("director"); d != nil && !d.Alive() {
				return fmt.Errorf("bench: director exited; its log %s ends:\n%s", d.Log, tailFile(d.Log, 2048))
			}
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			if svc.Protocol == config.TCP {
				_, last = Get(pctx, hc, "http://"+ap.String()+"/")
			} else {
				_, last = udpEcho(pctx, client, ap, "ready")
			}
			pcancel()
			if last == nil {
				break
			}
			select {
			case <-ctx.Done():
				msg := ""
				if d := s.Proc("director"); d != nil {
					msg = "; director log ends:\n" + tailFile(d.Log, 2048)
				}
				return fmt.Errorf("bench: %s/%s does not answer through the director within %v: %w%s", ap, svc.Protocol, timeout, last, msg)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// Proc returns the first recorded process with role, or nil.
func (s *LabState) Proc(role string) *StateProc {
	for i := range s.Procs {
		if s.Procs[i].Role == role {
			return &s.Procs[i]
		}
	}
	return nil
}

func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// Status writes the lab's nodes, addresses, processes and the director's
// interface counters to w.
func (s *LabState) Status(ctx context.Context, w io.Writer) error {
	fmt.Fprintf(w, "lab %s (from %s)\n\nnodes:\n", s.Prefix, s.Config)
	for _, n := range s.Nodes {
		_, err := os.Stat(filepath.Join(netnsDir, n.NS))
		state := "up"
		if err != nil {
			state = "MISSING"
		}
		fmt.Fprintf(w, "  %-9s %-8s %-22s %-7s", n.Name, n.Role, n.NS, state)
		for _, i := range n.Ifaces {
			fmt.Fprintf(w, " %s %s", i.Name, i.Prefix)
			if i.Prefix6.IsValid() {
				fmt.Fprintf(w, " %s", i.Prefix6)
			}
		}
		if n.Method != "" {
			fmt.Fprintf(w, "  %s vip %s", n.Method, strings.Join(n.VIPs, ","))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "\nprocesses:")
	for _, p := range s.Procs {
		alive := "running"
		if !p.Alive() {
			alive = "EXITED"
		}
		fmt.Fprintf(w, "  %-10s %-9s pid %-7d %-7s %s (log %s)\n", p.Role, p.Node, p.PID, alive, strings.Join(p.Args, " "), p.Log)
	}
	if dn, ok := s.Node("director"); ok {
		ifs, err := readNetDev(dn)
		if err != nil {
			fmt.Fprintf(w, "\ndirector counters: %v\n", err)
			return nil
		}
		fmt.Fprintln(w, "\ndirector interfaces:")
		for _, i := range dn.Ifaces {
			c := ifs[i.Name]
			fmt.Fprintf(w, "  %-6s rx %d packets %d bytes  tx %d packets %d bytes  rx dropped %d\n",
				i.Name, c.RxPackets, c.RxBytes, c.TxPackets, c.TxBytes, c.RxDropped)
		}
	}
	// The director's own counters, through its control socket, once the
	// uvs binary has `uvs list`.
	cfg, err := config.Load(s.Config)
	if err != nil || !HasCommand(s.UVS, "list") {
		fmt.Fprintln(w, "\ndirector counters: not available (no `uvs list` in this binary)")
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(lctx, s.UVS, "list", "-n", "--stats", "--socket", cfg.Director.ControlSocket).CombinedOutput()
	if err != nil {
		fmt.Fprintf(w, "\ndirector counters: not reachable at %s: %s\n", cfg.Director.ControlSocket, strings.TrimSpace(string(out)))
		return nil
	}
	fmt.Fprintf(w, "\ndirector counters (uvs list --stats):\n%s", out)
	if _, ok := s.Node(pairDirector2); ok {
		out, err := exec.CommandContext(lctx, s.UVS, "list", "-n", "--stats", "--socket", s.Director2Socket()).CombinedOutput()
		if err != nil {
			fmt.Fprintf(w, "\ndirector2 counters: not reachable at %s: %s\n", s.Director2Socket(), strings.TrimSpace(string(out)))
			return nil
		}
		fmt.Fprintf(w, "\ndirector2 counters (uvs list --stats --socket %s):\n%s", s.Director2Socket(), out)
	}
	return nil
}

// Director2Socket is the control socket of a pair's second director (uvs lab up starts it
// with --control-socket).
func (s *LabState) Director2Socket() string { return filepath.Join(s.LogDir, pairDirector2+".sock") }

// Exec runs argv in the node's namespace with the given stdio and returns
// its exit status (-1 if it could not run).
func (s *LabState) Exec(ctx context.Context, node string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	n, ok := s.Node(node)
	if !ok {
		names := make([]string, len(s.Nodes))
		for i, n := range s.Nodes {
			names[i] = n.Name
		}
		return -1, fmt.Errorf("bench: lab %s has no node %q (nodes: %s)", s.Prefix, node, strings.Join(names, " "))
	}
	if len(argv) == 0 {
		return -1, errors.New("bench: lab exec: no command")
	}
	cmd := n.Command(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("bench: lab exec: %w", err)
	}
	return 0, nil
}

// readNetDev reads /proc/thread-self/net/dev from a thread inside n's
// namespace: /proc/net follows the reading thread's namespace, /sys does not.
func readNetDev(n *Node) (map[string]NetDev, error) {
	var b []byte
	err := n.Do(func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/dev")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bench: counters of %s: %w", n.Name, err)
	}
	return parseNetDev(b)
}

// Serve runs the test servers of a lab real server in the calling process's
// namespace until ctx ends: HTTP on every tcp port and UDP echo on every udp
// port, as StartServers does. It is `uvs lab serve`.
func Serve(ctx context.Context, name string, tcpPorts, udpPorts []int) error {
	return serve(ctx, name, tcpPorts, udpPorts, false)
}

// ServeDualStack is Serve on IPv6 too, for the real servers of a dual-stack lab: each port
// also has an IPv6 listener (IPV6_V6ONLY, beside the IPv4 one).
func ServeDualStack(ctx context.Context, name string, tcpPorts, udpPorts []int) error {
	return serve(ctx, name, tcpPorts, udpPorts, true)
}

func serve(ctx context.Context, name string, tcpPorts, udpPorts []int, dual bool) error {
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}()
	errc := make(chan error, 2*len(tcpPorts)+1)
	for _, p := range tcpPorts {
		ln, err := listenTCP(p)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: handler(name), ReadHeaderTimeout: 5 * time.Second}
		closers = append(closers, srv)
		go func() { errc <- srv.Serve(ln) }()
		if dual {
			ln6, err := net.Listen("tcp6", ":"+strconv.Itoa(p))
			if err != nil {
				return fmt.Errorf("bench: serve: %w", err)
			}
			go func() { errc <- srv.Serve(ln6) }()
		}
	}
	for _, p := range udpPorts {
		c, err := listenUDPEcho(p)
		if err != nil {
			return err
		}
		closers = append(closers, c)
		go serveUDPEcho(c, name)
		if dual {
			c6, err := listenUDPEcho6(p)
			if err != nil {
				return err
			}
			closers = append(closers, c6)
			go serveUDPEcho6(c6, name)
		}
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return fmt.Errorf("bench: serve: %w", err)
	}
}
