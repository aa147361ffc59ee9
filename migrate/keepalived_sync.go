package migrate

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// syncDaemon converts keepalived's
//
//	lvs_sync_daemon INTERFACE VRRP_INSTANCE [id SYNC_ID] [maxlen LEN] [port PORT] [ttl TTL] [group IP]
//
// in a global_defs block into uvs's [sync] table (role auto, following that VRRP
// instance; syncid defaults to its virtual_router_id, as keepalived). It reports whether
// the block had one; globalDefs handles the block's other statements.
func (k *kaImporter) syncDaemon(n *kaNode) bool {
	found := false
	for _, c := range n.kids {
		if c.name() != "lvs_sync_daemon" {
			continue
		}
		found = true
		if len(c.words) < 3 {
			k.fail(c.at, "lvs_sync_daemon needs an interface and a VRRP instance")
			continue
		}
		if ifc := c.words[1]; len(ifc) >= 16 || ifc == "." || ifc == ".." || strings.ContainsAny(ifc, "/: \t\n\v\f\r") {
			k.fail(c.at, "lvs_sync_daemon: %q is not an interface name", ifc)
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "\n# From %s: %s\n[sync]\ninterface = %s\nvrrp_instance = %s\nrole = \"auto\"\n",
			where(c.at), commentSafe(strings.Join(c.words, " ")), quote(c.words[1]), quote(c.words[2]))
		opts := c.words[3:]
		for i := 0; i < len(opts); i++ {
			opt := opts[i]
			if i+1 >= len(opts) {
				k.fail(c.at, "lvs_sync_daemon: %s needs a value", opt)
				break
			}
			v := opts[i+1]
			i++
			num := func(key string, lo, hi int) {
				n, err := strconv.Atoi(v)
				if err != nil || n < lo || n > hi {
					k.fail(c.at, "lvs_sync_daemon: %s %q: want an integer in %d..%d", opt, v, lo, hi)
					return
				}
				fmt.Fprintf(&b, "%s = %d\n", key, n)
			}
			switch opt {
			case "id":
				num("syncid", 0, 255)
			case "maxlen":
				num("sync_maxlen", 138, 65507)
			case "port":
				num("port", 1, 65535)
			case "ttl":
				num("ttl", 1, 255)
			case "group":
				a, err := netip.ParseAddr(v)
				if err != nil || !a.Is4() || !a.IsMulticast() {
					k.fail(c.at, "lvs_sync_daemon: group %q: want an IPv4 multicast address", v)
					continue
				}
				fmt.Fprintf(&b, "group = %s\n", quote(a.String()))
			default:
				k.d.note(c.at, "lvs_sync_daemon %s %s: not carried over: unknown option", opt, v)
			}
		}
		b.WriteString("# uvs import: without key or key_file, only the VRRP instance's peers are accepted;\n")
		b.WriteString("# uvs import: set key_file for an HMAC on every message (keepalived has none).\n")
		k.d.sync = b.String()
		k.syncAt, k.syncVI = c.at, c.words[2]
	}
	return found
}

// checkSync fails an lvs_sync_daemon whose VRRP instance was not converted: [sync] would
// follow an instance the output does not have.
func (k *kaImporter) checkSync() {
	if k.d.sync == "" {
		return
	}
	for _, v := range k.d.vrrp {
		if v.name == k.syncVI {
			return
		}
	}
	k.fail(k.syncAt, "lvs_sync_daemon: no vrrp_instance %s to follow", k.syncVI)
}
