package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/uvs-project/uvs/config"
)

// startBGP starts BIRD in the router namespace and one director per director namespace,
// for a lab laid out by layoutBGP. The first director runs cfgPath itself; the others run
// copies in LogDir that differ in bgp.router_id (their own address) and
// director.control_socket (LogDir/directorN.sock).
func (s *LabState) startBGP(ctx context.Context, l *Lab, cfg *config.Config, cfgPath, uvs string) error {
	b := &cfg.BGP
	pw, err := labPassword(&b.Neighbors[0])
	if err != nil {
		return err
	}
	peers := BirdPeers{RouterID: b.Neighbors[0].Address, RouterASN: b.Neighbors[0].ASN, DirectorASN: b.ASN,
		Hold: b.Neighbors[0].HoldTime, BFD: b.Neighbors[0].BFD, Password: pw}
	for _, d := range l.Directors {
		peers.Directors = append(peers.Directors, d.Addr)
	}
	if err := writeSysctls(l.Router.NS, map[string]string{"ipv4/fib_multipath_hash_policy": "1"}); err != nil {
		return err
	}
	conf := filepath.Join(s.LogDir, "bird.conf")
	if err := os.WriteFile(conf, []byte(birdConfig(peers)), 0o600); err != nil {
		return fmt.Errorf("bench: lab up: %w", err)
	}
	p, err := s.startProc(l.Router, "bird", "bird", "-f", "-c", conf, "-s", filepath.Join(s.LogDir, "bird.ctl"),
		"-P", filepath.Join(s.LogDir, "bird.pid"))
	if err != nil {
		return err
	}
	s.Procs = append(s.Procs, p)
	src, err := os.ReadFile(cfgPath)
	if err != nil {
		return fmt.Errorf("bench: lab up: %w", err)
	}
	for i, n := range l.Directors {
		path := cfgPath
		if i > 0 {
			path = filepath.Join(s.LogDir, n.Name+".toml")
			text, err := directorCopy(src, n.Addr.String(), filepath.Join(s.LogDir, n.Name+".sock"))
			if err != nil {
				return err
			}
			if _, err := config.Parse(path, text); err != nil {
				return fmt.Errorf("bench: lab up: the config for %s: %w", n.Name, err)
			}
			if err := os.WriteFile(path, text, 0o600); err != nil {
				return fmt.Errorf("bench: lab up: %w", err)
			}
		}
		p, err := s.startLogged(n, "director", n.Name, uvs, "run", "--config", path)
		if err != nil {
			return err
		}
		s.Procs = append(s.Procs, p)
	}
	return ctx.Err()
}

var (
	routerIDLine = regexp.MustCompile(`(?m)^(\s*router_id\s*=\s*)"[^"]*"`)
	socketLine   = regexp.MustCompile(`(?m)^(\s*control_socket\s*=\s*)"[^"]*"`)
	directorHead = regexp.MustCompile(`(?m)^\s*\[director\]\s*$`)
)

// directorCopy returns the config text src with router_id and control_socket replaced.
func directorCopy(src []byte, routerID, socket string) ([]byte, error) {
	if !routerIDLine.Match(src) {
		return nil, fmt.Errorf("%w: no router_id = \"...\" line to give the other directors their own", ErrLayout)
	}
	out := routerIDLine.ReplaceAll(src, []byte("${1}"+strconv.Quote(routerID)))
	q := []byte("${1}" + strconv.Quote(socket))
	if socketLine.Match(out) {
		return socketLine.ReplaceAll(out, q), nil
	}
	loc := directorHead.FindIndex(out)
	if loc == nil {
		return nil, fmt.Errorf("%w: no [director] table", ErrLayout)
	}
	line := []byte("\ncontrol_socket = " + strconv.Quote(socket))
	return append(append(append([]byte{}, out[:loc[1]]...), line...), out[loc[1]:]...), nil
}

// labPassword returns the neighbour's MD5 key, reading password_file.
func labPassword(n *config.Neighbor) (string, error) {
	if n.PasswordFile == "" {
		return n.Password, nil
	}
	b, err := os.ReadFile(n.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("bench: lab up: bgp password_file: %w", err)
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return string(b), nil
}
