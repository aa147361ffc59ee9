package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/migrate"
)

const importUsage = `usage: uvs import ipvsadm [flags] FILE|-     convert ipvsadm-save -n output
       uvs import keepalived [flags] FILE|-  convert keepalived.conf virtual_server blocks

flags: --out FILE, --fwmark MARK=VIP:PORT[,PORT...][/udp], --iptables FILE (iptables-save),
       --allow-empty (exit 0 even if no service is carried over)

The uvs configuration goes to stdout (or --out FILE); settings that could not be
carried over are "# uvs import:" comments in it. If no service is carried over,
it says so on stderr and exits 1 (unless --allow-empty).
`

// cmdImport runs `uvs import ipvsadm|keepalived FILE|-`.
func cmdImport(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "ipvsadm" && args[0] != "keepalived") {
		fmt.Fprint(stderr, importUsage)
		return 1
	}
	kind := args[0]
	fs := newFlags("import "+kind, stderr)
	out := fs.String("out", "", "write the configuration to `FILE` instead of stdout")
	fs.StringVar(out, "o", "", "shorthand for --out")
	opt := migrate.Options{Fwmarks: map[uint32]migrate.Fwmark{}}
	fs.Func("fwmark", "`MARK=VIP:PORT[,PORT...][/udp]`: what a firewall mark selects (repeatable)", func(s string) error {
		mark, fm, err := migrate.ParseFwmark(s)
		if err != nil {
			return err
		}
		opt.Fwmarks[mark] = fm
		return nil
	})
	allowEmpty := fs.Bool("allow-empty", false, "exit 0 even if no service is carried over")
	iptables := fs.String("iptables", "", "iptables-save output `FILE` whose mangle MARK rules say what fwmark services select")
	// Flags may come before or after FILE.
	var files []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return 1
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 {
		fmt.Fprintf(stderr, "uvs: import %s needs exactly one FILE (or - for stdin)\n", kind)
		return 1
	}
	name, data, err := readInput(files[0], stdin)
	if err != nil {
		fmt.Fprintf(stderr, "uvs: %v\n", err)
		return 1
	}
	if *iptables != "" {
		rules, err := os.ReadFile(*iptables)
		if err != nil {
			fmt.Fprintf(stderr, "uvs: import: --iptables: %v\n", err)
			return 1
		}
		opt.Iptables = &migrate.Source{Name: *iptables, Data: rules}
	}
	var res *migrate.Result
	if kind == "ipvsadm" {
		res, err = migrate.Ipvsadm(name, data, opt)
	} else {
		if files[0] != "-" {
			if dir, aerr := filepath.Abs(filepath.Dir(files[0])); aerr == nil {
				opt.Include = &migrate.Include{FS: os.DirFS(dir), Dir: filepath.ToSlash(dir)}
			}
		}
		res, err = migrate.Keepalived(name, data, opt)
	}
	if err != nil {
		var me *migrate.Error
		if errors.As(err, &me) {
			for _, p := range me.Problems {
				fmt.Fprintln(stderr, p.String())
			}
		} else {
			fmt.Fprintf(stderr, "uvs: %v\n", err)
		}
		return 1
	}
	if *out != "" {
		err = os.WriteFile(*out, res.TOML, 0o644)
	} else {
		_, err = stdout.Write(res.TOML)
	}
	if err != nil {
		fmt.Fprintf(stderr, "uvs: import: %v\n", err)
		return 1
	}
	if len(res.Notes) > 0 {
		fmt.Fprintf(stderr, "uvs import: %d setting(s) not carried over; see the \"# uvs import:\" comments\n", len(res.Notes))
	}
	// The file is written either way (its commented-out stubs are where to start), but a
	// configuration that serves nothing must not pass for a successful conversion: a
	// script that imports and then reloads would take every service down.
	if cfg, err := config.Parse(name, res.TOML); err == nil && len(cfg.Services) == 0 {
		fmt.Fprintln(stderr, "uvs import: WARNING: no service was carried over (fwmark-only services are written commented out): this configuration serves nothing")
		if !*allowEmpty {
			return 1
		}
	}
	return 0
}

// readInput reads path, or stdin for "-".
func readInput(path string, stdin io.Reader) (string, []byte, error) {
	if path == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return "", nil, fmt.Errorf("import: read stdin: %w", err)
		}
		return "stdin", data, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("import: %w", err)
	}
	return path, data, nil
}
