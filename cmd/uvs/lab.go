package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/config"
)

const labUsage = `usage: uvs lab <command> [flags]

commands:
  up --config FILE              build the namespace lab FILE describes, start servers and director
  down --config FILE            stop the lab's processes and delete its namespaces
  status --config FILE          show nodes, addresses, processes and director counters
  exec --config FILE NODE -- CMD [ARG...]   run CMD inside a node's namespace
`

func cmdLab(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, labUsage)
		return 1
	}
	switch args[0] {
	case "up":
		return cmdLabUp(args[1:], stdout, stderr)
	case "down":
		return cmdLabDown(args[1:], stdout, stderr)
	case "status":
		return cmdLabStatus(args[1:], stdout, stderr)
	case "exec":
		return cmdLabExec(args[1:], stderr)
	case "serve":
		return cmdLabServe(args[1:], stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, labUsage)
		return 0
	}
	fmt.Fprintf(stderr, "uvs: unknown lab command %q\n%s", args[0], labUsage)
	return 1
}

// labConfig parses the flags of a lab command and loads its config.
func labConfig(name string, args []string, stderr io.Writer) (*config.Config, string, []string, bool) {
	fs := newFlags("lab "+name, stderr)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return nil, "", nil, false
	}
	cfg, ok := loadConfig(*path, stderr)
	return cfg, *path, fs.Args(), ok
}

func cmdLabUp(args []string, stdout, stderr io.Writer) int {
	cfg, path, _, ok := labConfig("up", args, stderr)
	if !ok {
		return 1
	}
	self, ctx, stop, ok := selfAndSignals(stderr)
	if !ok {
		return 1
	}
	defer stop()
	st, err := bench.LabUp(ctx, cfg, path, self, stdout)
	if err != nil {
		printLines(stderr, "uvs: lab up: ", err)
		return 1
	}
	fmt.Fprintf(stdout, "lab %s is up; `uvs lab status -c %s` shows it, `uvs lab down -c %s` removes it\n", st.Prefix, path, path)
	return 0
}

// printLines prints each line of err's message on its own line with prefix.
func printLines(w io.Writer, prefix string, err error) {
	for _, l := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(w, prefix+l)
	}
}

func cmdLabDown(args []string, stdout, stderr io.Writer) int {
	cfg, _, _, ok := labConfig("down", args, stderr)
	if !ok {
		return 1
	}
	if err := bench.LabDown(cfg.Lab.Prefix); err != nil {
		printLines(stderr, "uvs: lab down: ", err)
		return 1
	}
	fmt.Fprintf(stdout, "lab %s is down\n", cfg.Lab.Prefix)
	return 0
}

func cmdLabStatus(args []string, stdout, stderr io.Writer) int {
	cfg, _, _, ok := labConfig("status", args, stderr)
	if !ok {
		return 1
	}
	st, err := bench.ReadState(cfg.Lab.Prefix)
	if err != nil {
		fmt.Fprintf(stderr, "uvs: lab status: %v\n", err)
		return 1
	}
	if err := st.Status(context.Background(), stdout); err != nil {
		fmt.Fprintf(stderr, "uvs: lab status: %v\n", err)
		return 1
	}
	return 0
}

func cmdLabExec(args []string, stderr io.Writer) int {
	cfg, _, rest, ok := labConfig("exec", args, stderr)
	if !ok {
		return 1
	}
	if len(rest) > 1 && rest[1] == "--" {
		rest = append(rest[:1], rest[2:]...)
	}
	if len(rest) < 2 {
		fmt.Fprintln(stderr, "uvs: lab exec: want NODE -- CMD [ARG...]")
		return 1
	}
	st, err := bench.ReadState(cfg.Lab.Prefix)
	if err != nil {
		fmt.Fprintf(stderr, "uvs: lab exec: %v\n", err)
		return 1
	}
	code, err := st.Exec(context.Background(), rest[0], rest[1:], os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintf(stderr, "uvs: %v\n", err)
		return 1
	}
	return code
}

// cmdLabServe is the hidden `uvs lab serve` that `lab up` starts on each
// real server.
func cmdLabServe(args []string, stderr io.Writer) int {
	fs := newFlags("lab serve", stderr)
	name := fs.String("name", "", "real server `NAME` the servers answer with")
	httpPorts := fs.String("http", "", "comma-separated HTTP `PORTS`")
	udpPorts := fs.String("udp", "", "comma-separated UDP echo `PORTS`")
	dual := fs.Bool("ipv6", false, "listen on IPv6 too (a dual-stack lab)")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	tcp, err1 := parsePorts(*httpPorts)
	udp, err2 := parsePorts(*udpPorts)
	if err1 != nil || err2 != nil || *name == "" {
		fmt.Fprintln(stderr, "uvs: lab serve: want --name NAME and ports as 80,8080")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	serve := bench.Serve
	if *dual {
		serve = bench.ServeDualStack
	}
	if err := serve(ctx, *name, tcp, udp); err != nil {
		fmt.Fprintf(stderr, "uvs: %v\n", err)
		return 1
	}
	return 0
}

func parsePorts(s string) ([]int, error) {
	var out []int
	if s == "" {
		return nil, nil
	}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("bad port %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}
