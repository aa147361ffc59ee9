// Command uvs is a userspace virtual server: an LVS-style layer-4 load balancer that needs no
// ip_vs kernel module. This file only parses flags and wires packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/daemon"
	"github.com/uvs-project/uvs/forward"
	"github.com/uvs-project/uvs/forward/privilege"
)

const usage = `usage: uvs <command> [flags]

commands:
  run --config FILE      run the director in the foreground (SIGHUP reloads FILE)
  check --config FILE    validate FILE
  realserver --vip ADDR[,ADDR...] --method dr|tun [--down|--check]
                         prepare (undo, diagnose) this host as a real server
  list [--stats|--rate|--conns|--timeout|--thresholds] [--json]
                         list the running director, as ipvsadm -Ln
  edit -A|-E|-D|-a|-e|-d|-Z ...
                         change the running director, as ipvsadm (the file is unchanged)
  edit --drain-director|--undrain-director
                         withdraw (announce again) this director's BGP routes
  save [--ipvsadm]       print the running config as TOML (or as ipvsadm-save -n)
  reload                 make the running director re-read its config file (as SIGHUP)
  diff --config FILE     show what reloading FILE would change
  trace --client A:P -t VIP:PORT
                         explain which real server a flow goes to, and why
  import ipvsadm|keepalived FILE|-
                         convert an ipvsadm-save or keepalived.conf setup to uvs TOML
  demo                   build a namespace lab, send traffic through DR, NAT and TUN services, clean up
  lab up|down|status|exec --config FILE   the namespace lab that FILE's services describe
  bench --config FILE [--out DIR]         benchmark FILE's lab against kernel baselines
  version                print version information
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 1
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "import":
		return cmdImport(args[1:], os.Stdin, stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "lab":
		return cmdLab(args[1:], stdout, stderr)
	case "bench":
		return cmdBench(args[1:], stdout, stderr)
	case "realserver":
		return cmdRealserver(args[1:], stdout, stderr)
	case "list":
		return cmdList(args[1:], stdout, stderr)
	case "edit":
		return cmdEdit(args[1:], stdout, stderr)
	case "save":
		return cmdSave(args[1:], stdout, stderr)
	case "reload":
		return cmdReload(args[1:], stdout, stderr)
	case "diff":
		return cmdDiff(args[1:], stdout, stderr)
	case "trace":
		return cmdTrace(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		return cmdVersion(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "uvs: unknown command %q\n%s", args[0], usage)
	return 1
}

// newFlags returns a flag set that reports errors on stderr and never exits the process.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("uvs "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func configFlag(fs *flag.FlagSet) *string {
	path := fs.String("config", "", "configuration `FILE` (TOML)")
	fs.StringVar(path, "c", "", "shorthand for --config")
	return path
}

// loadConfig loads and validates path, printing each problem on its own line.
func loadConfig(path string, stderr io.Writer) (*config.Config, bool) {
	if path == "" {
		fmt.Fprintln(stderr, "uvs: --config FILE is required")
		return nil, false
	}
	cfg, err := config.Load(path)
	if err != nil {
		printConfigError(err, stderr)
		return nil, false
	}
	return cfg, true
}

func printConfigError(err error, stderr io.Writer) {
	var ce *config.Error
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Fprintln(stderr, p.String())
		}
		return
	}
	fmt.Fprintf(stderr, "uvs: %v\n", err)
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", stderr)
	path := configFlag(fs)
	allowEmpty := fs.Bool("allow-empty", false, "accept a file without services (for a director filled by uvs edit)")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 1
	}
	for _, w := range config.Warnings(cfg) {
		fmt.Fprintln(stderr, w.String())
	}
	reals := 0
	for _, s := range cfg.Services {
		reals += len(s.Reals)
	}
	if len(cfg.Services) == 0 {
		// Valid TOML, but a director that serves nothing: an import that dropped every
		// service, or a typo in [[service]]. Say so loudly; --allow-empty is for a
		// director that uvs edit fills at run time.
		fmt.Fprintf(stderr, "%s: WARNING: no services: uvs run with this file would serve nothing\n", *path)
		if !*allowEmpty {
			return 1
		}
	}
	vrrp := ""
	if len(cfg.VRRP) > 0 {
		vrrp = fmt.Sprintf(", %d vrrp instances", len(cfg.VRRP))
	}
	fmt.Fprintf(stdout, "%s: ok (%d services, %d real servers%s)\n", *path, len(cfg.Services), reals, vrrp)
	return 0
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func cmdRun(args []string, stderr io.Writer) int {
	// Signals are caught before anything else: a stop (systemd's SIGTERM) or a reload that
	// comes while the director sets up rings and the shield must not end the process with
	// the default action and leave the host changed. daemon.Run undoes what it started and
	// returns; a SIGHUP during start-up is applied once the director runs.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stops := make(chan os.Signal, 2) // the second one cuts a BGP drain short
	signal.Notify(stops, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(stops)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	fs := newFlags("run", stderr)
	path := configFlag(fs)
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) of the whole run to `FILE`")
	stateFile := fs.String("state-file", "", "save connections to `FILE` on exit and restore them at start")
	keepCaps := fs.Bool("keep-capabilities", false, "do not drop to the capabilities the backend needs (CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF; CAP_IPC_LOCK with afxdp) at start")
	controlSocket := fs.String("control-socket", "", "serve the control socket at `PATH` instead of director.control_socket (a second director on one host: uvs lab's pair)")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "uvs: %v\n", err)
			return 1
		}
		defer stopProfile()
	}
	log, err := newLogger(*logFormat, *logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "uvs: %v\n", err)
		return 1
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 1
	}
	if *controlSocket != "" {
		c := *cfg // the parsed config is shared read-only: change a copy
		c.Director.ControlSocket = *controlSocket
		cfg = &c
	}
	if !*keepCaps {
		// Dropping capabilities re-executes uvs, which loses a signal caught so far: a stop
		// that came already ends here, before the host is touched.
		if ctx.Err() != nil {
			return 0
		}
		if err := privilege.DropCapabilitiesKeeping(forward.BackendCapabilities(cfg)); err != nil {
			log.Warn("running with all capabilities", "err", err)
		}
	}
	err = daemon.Run(ctx, daemon.Options{Config: cfg, ConfigPath: *path, Logger: log, StateFile: *stateFile,
		Stops: stops, Reloads: hup})
	if err != nil {
		fmt.Fprintf(stderr, "uvs: %v\n", err)
		return 1
	}
	return 0
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", stderr)
	failover := fs.Bool("failover", false, "show VRRP failover between two uvs directors instead")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	self, ctx, stop, ok := selfAndSignals(stderr)
	if !ok {
		return 1
	}
	defer stop()
	run := bench.RunDemo
	if *failover {
		run = bench.RunFailoverDemo
	}
	if err := run(ctx, self, stdout); err != nil {
		fmt.Fprintf(stderr, "uvs: demo: %v\n", err)
		return 1
	}
	return 0
}

func cmdVersion(stdout io.Writer) int {
	commit, modified := "unknown", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (modified)"
				}
			}
		}
	}
	fmt.Fprintf(stdout, "uvs %s\ngo %s %s/%s\ncommit %s%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, commit, modified)
	return 0
}

// version is set at release time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// startCPUProfile starts a pprof CPU profile into path; the returned func
// stops it and closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// selfAndSignals returns this program's path (for commands that start uvs in a lab) and a
// context that ends on SIGINT or SIGTERM.
func selfAndSignals(stderr io.Writer) (string, context.Context, context.CancelFunc, bool) {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "uvs: %v\n", err)
		return "", nil, nil, false
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	return self, ctx, stop, true
}
