package control

import (
	"fmt"
	"strings"

	"github.com/uvs-project/uvs/config"
)

// writeSyncTOML writes the [sync] table. The shared key is a secret: it is written only
// with secrets (the runtime-edit round trip, which never leaves the process); uvs save
// prints a comment in its place. key_file, a path, is always written.
func writeSyncTOML(b *strings.Builder, s *config.Sync, secrets bool) {
	if s == nil {
		return
	}
	fmt.Fprintf(b, "\n[sync]\ninterface = %s\n", config.Quote(s.Interface))
	if s.VRRPInstance != "" {
		fmt.Fprintf(b, "vrrp_instance = %s\n", config.Quote(s.VRRPInstance))
	}
	fmt.Fprintf(b, "syncid = %d\nrole = %s\n", s.SyncID, config.Quote(s.Role.String()))
	fmt.Fprintf(b, "group = %s\nport = %d\nttl = %d\n", config.Quote(s.Group.String()), s.Port, s.TTL)
	if s.MaxLen != 0 {
		fmt.Fprintf(b, "sync_maxlen = %d\n", s.MaxLen)
	}
	if len(s.Peers) > 0 {
		ps := make([]string, len(s.Peers))
		for i, p := range s.Peers {
			ps[i] = p.String()
		}
		fmt.Fprintf(b, "peers = %s\n", tomlStrings(ps))
	}
	switch {
	case s.Key != "" && secrets:
		fmt.Fprintf(b, "key = %s\n", config.Quote(s.Key))
	case s.Key != "":
		b.WriteString("# key is set and not shown; add it back, or use key_file\n")
	}
	if s.KeyFile != "" {
		fmt.Fprintf(b, "key_file = %s\n", config.Quote(s.KeyFile))
	}
	fmt.Fprintf(b, "sync_threshold = %d\nsync_period = %d\nmax_rate = %d\nbulk_rate = %d\n",
		s.Threshold, s.Period, s.MaxRate, s.BulkRate)
}

// diffSync lists [sync] changes. A changed key is reported as changed, never with its value.
func diffSync(cur, next *config.Sync) []string {
	switch {
	case cur == nil && next == nil:
		return nil
	case cur == nil:
		return []string{fmt.Sprintf("+ sync (role %s, syncid %d)", next.Role, next.SyncID)}
	case next == nil:
		return []string{"- sync"}
	}
	a, b := *cur, *next
	keyChanged := a.Key != b.Key
	a.Key, b.Key, a.Line, b.Line = "", "", 0, 0
	var out []string
	var sa, sb strings.Builder
	writeSyncTOML(&sa, &a, false)
	writeSyncTOML(&sb, &b, false)
	al, bl := strings.Split(sa.String(), "\n"), strings.Split(sb.String(), "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			out = append(out, fmt.Sprintf("~ sync %s -> %s", strings.TrimSpace(al[i]), strings.TrimSpace(bl[i])))
		}
	}
	if len(al) != len(bl) {
		out = append(out, "~ sync (keys added or removed)")
	}
	if keyChanged {
		out = append(out, "~ sync key changed (not shown)")
	}
	return out
}
