package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"

	"github.com/uvs-project/uvs/realserver"
)

// cmdRealserver prepares (or with --down undoes, or with --check diagnoses) this host as a
// real server. The work is package realserver's.
func cmdRealserver(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("realserver", stderr)
	vips := fs.String("vip", "", "virtual `ADDR[,ADDR...]` to accept")
	method := fs.String("method", "", "forwarding method of the director: dr or tun")
	down := fs.Bool("down", false, "undo what an earlier run changed")
	check := fs.Bool("check", false, "report what is wrong on this host for the VIPs and method; change nothing")
	decap := fs.String("decap", "auto", "tun: auto (kernel ipip if present, else user space), kernel or user")
	tunName := fs.String("tun-device", realserver.DefaultTUNName, "tun: name of the user-space decapsulator's TUN `device`")
	state := fs.String("state", "", "state file (default /run/uvs/realserver-<netns inode>.json)")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "uvs realserver: unexpected argument %q\n", fs.Arg(0))
		return 1
	}
	cfg := realserver.Config{TUNName: *tunName, StatePath: *state, Out: stdout}
	var err error
	if cfg.VIPs, err = realserver.ParseVIPs(*vips); err != nil && !*down {
		return fail(stderr, err)
	}
	if cfg.Method, err = realserver.ParseMethod(*method); err != nil && !*down {
		return fail(stderr, err)
	}
	if cfg.Decap, err = realserver.ParseDecap(*decap); err != nil {
		return fail(stderr, err)
	}
	switch {
	case *down && *check:
		return fail(stderr, fmt.Errorf("--down and --check exclude each other"))
	case *down:
		if err := realserver.DownState(cfg); err != nil {
			return fail(stderr, err)
		}
		return 0
	case *check:
		probs, oks, err := realserver.Check(cfg)
		if err != nil {
			return fail(stderr, err)
		}
		for _, p := range probs {
			fmt.Fprintf(stdout, "problem: %s\n", p)
		}
		if len(probs) != 0 {
			fmt.Fprintf(stdout, "%d problem(s) for %s with method %s\n", len(probs), *vips, cfg.Method)
			return 1
		}
		fmt.Fprintf(stdout, "ok: %s (method %s)\n", strings.Join(oks, ", "), cfg.Method)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	h, err := realserver.Up(cfg)
	if err != nil {
		return fail(stderr, err)
	}
	if !h.Foreground() {
		fmt.Fprintf(stdout, "uvs realserver: ready for %s (%s); undo with uvs realserver --down\n", *vips, cfg.Method)
		return 0
	}
	rerr := h.Run(ctx)
	if err := h.Down(); err != nil {
		fmt.Fprintf(stderr, "uvs realserver: undo: %v\n", err)
		return 1
	}
	if rerr != nil {
		return fail(stderr, rerr)
	}
	return 0
}

// fail prints err as one line and returns exit status 1.
func fail(stderr io.Writer, err error) int {
	msg := strings.TrimPrefix(err.Error(), "realserver: ")
	fmt.Fprintf(stderr, "uvs realserver: %s\n", strings.ReplaceAll(msg, "\n", "; "))
	return 1
}
