package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// Defaults and limits of [sync], after the IPVS sync daemon (ip_vs_sync.c)
// and ipvsadm's --start-daemon options.
const (
	DefaultSyncPort      = 8848    // DefaultSyncPort is IP_VS_SYNC_PORT.
	DefaultSyncTTL       = 1       // DefaultSyncTTL is the kernel's default mcast_ttl.
	DefaultSyncThreshold = 3       // DefaultSyncThreshold is the sync_threshold sysctl's first value.
	DefaultSyncPeriod    = 50      // DefaultSyncPeriod is the sync_threshold sysctl's second value (sync_period).
	DefaultSyncMaxRate   = 100000  // DefaultSyncMaxRate is max_rate's default: records per second accepted.
	DefaultSyncBulkRate  = 50000   // DefaultSyncBulkRate is bulk_rate's default: records per second of a bulk copy.
	MaxSyncMaxLen        = 65507   // MaxSyncMaxLen is ipvsadm's bound on --sync-maxlen: 65535 - 20 - 8.
	MinSyncMaxLen        = 138     // MinSyncMaxLen fits a header, an auth block and one IPv6 record with options.
	MaxSyncRate          = 1 << 24 // MaxSyncRate bounds max_rate and bulk_rate.
)

// DefaultSyncGroup is IP_VS_SYNC_GROUP.
var DefaultSyncGroup = netip.AddrFrom4([4]byte{224, 0, 0, 81})

// SyncRole is [sync] role. The zero value is invalid.
type SyncRole uint8

// Sync roles.
const (
	SyncAuto   SyncRole = iota + 1 // Follow the VRRP instance: send while master, receive otherwise.
	SyncMaster                     // Send only (ipvsadm --start-daemon master).
	SyncBackup                     // Receive only (ipvsadm --start-daemon backup).
	SyncBoth                       // Both at once.
)

var syncRoleNames = []string{SyncAuto: "auto", SyncMaster: "master", SyncBackup: "backup", SyncBoth: "both"}

// String returns the role as written in the configuration.
func (r SyncRole) String() string { return enumString("SyncRole", syncRoleNames, r) }

// ParseSyncRole parses "auto", "master", "backup" or "both".
func ParseSyncRole(s string) (SyncRole, error) {
	return parseEnum[SyncRole]("role", syncRoleNames, s)
}

// Sync is the [sync] table: connection synchronization with the IPVS sync
// protocol. Config.Sync is nil when the table is absent.
type Sync struct {
	Interface    string     // Multicast interface (ipvsadm --mcast-interface); the socket is bound to it.
	VRRPInstance string     // Key vrrp_instance: the [[vrrp]] whose state role auto follows.
	SyncID       int        // 0..255; default the VRRP instance's virtual_router_id, else 0 (no filtering).
	Role         SyncRole   // Default auto with vrrp_instance; required without.
	Group        netip.Addr // Multicast group (ipvsadm --mcast-group).
	Port         uint16     // UDP port (ipvsadm --mcast-port).
	TTL          int        // Multicast TTL (ipvsadm --mcast-ttl).
	// MaxLen is key sync_maxlen (ipvsadm --sync-maxlen): the largest message, as UDP
	// payload; 0 = the interface's MTU minus 28, as the kernel.
	MaxLen    int
	Peers     []netip.AddrPort // Unicast peers instead of the group; the port defaults to Port.
	Key       string           // Shared HMAC key; secret: never saved, listed, diffed or logged.
	KeyFile   string           // Key key_file: a file holding the key (first line, trimmed).
	Threshold int              // Key sync_threshold: packets before the first record of a connection.
	Period    int              // Key sync_period: a record every this many packets after.
	MaxRate   int              // Key max_rate: records per second a backup accepts.
	BulkRate  int              // Key bulk_rate: records per second a master sends in a bulk copy.
	Line      int              // Line of the [sync] header; 0 if unknown.
}

// LoadKey returns the shared key: Key, or the first line of KeyFile. It
// returns nil when neither is set.
func (s *Sync) LoadKey() ([]byte, error) {
	if s.Key != "" {
		return []byte(s.Key), nil
	}
	if s.KeyFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(s.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("config: sync.key_file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, fmt.Errorf("config: sync.key_file %s: empty key", s.KeyFile)
	}
	return []byte(line), nil
}

// vrrpRouterID returns the virtual_router_id of c's [[vrrp]] named name.
func vrrpRouterID(c *Config, name string) (int, bool) {
	for i := range c.VRRP {
		if c.VRRP[i].Name == name {
			return c.VRRP[i].VirtualRouterID, true
		}
	}
	return 0, false
}

func (d *decoder) sync(t *table) *Sync {
	s := &Sync{SyncID: -1, Group: DefaultSyncGroup, Port: DefaultSyncPort, TTL: DefaultSyncTTL,
		Threshold: DefaultSyncThreshold, Period: DefaultSyncPeriod, MaxRate: DefaultSyncMaxRate,
		BulkRate: DefaultSyncBulkRate, Line: d.lines.line("sync")}
	t.str("interface", &s.Interface)
	t.str("vrrp_instance", &s.VRRPInstance)
	var id int64
	if t.integer("syncid", 0, 255, &id) {
		s.SyncID = int(id)
	}
	if t.has("role") {
		enum(t, "role", ParseSyncRole, &s.Role)
	} else if s.VRRPInstance != "" {
		s.Role = SyncAuto
	}
	t.addr("group", &s.Group)
	t.port("port", &s.Port)
	t.int("ttl", &s.TTL)
	t.int("sync_maxlen", &s.MaxLen)
	var peers []string
	if t.strings("peers", &peers) {
		for i, p := range peers {
			ap, err := netip.ParseAddrPort(p)
			if err != nil {
				a, aerr := netip.ParseAddr(p)
				if aerr != nil {
					d.problem(indexKey(t.key("peers"), i), "invalid peer %q: want an IP address, optionally with :port ([addr]:port for IPv6)", p)
					continue
				}
				ap = netip.AddrPortFrom(a, 0) // the port is filled in below
			}
			if a := ap.Addr(); a.Is4In6() || a.Zone() != "" || a.IsMulticast() || a.IsUnspecified() || a.IsLoopback() && a.Is6() || a.IsLinkLocalUnicast() && a.Is6() {
				d.problem(indexKey(t.key("peers"), i), "%s is not a unicast IPv4 or global IPv6 address", ap.Addr())
				continue
			}
			s.Peers = append(s.Peers, ap)
		}
	}
	for i, p := range s.Peers {
		if p.Port() == 0 {
			s.Peers[i] = netip.AddrPortFrom(p.Addr(), s.Port)
		}
	}
	t.str("key", &s.Key)
	t.str("key_file", &s.KeyFile)
	t.int("sync_threshold", &s.Threshold)
	t.int("sync_period", &s.Period)
	t.int("max_rate", &s.MaxRate)
	t.int("bulk_rate", &s.BulkRate)
	t.done()
	return s
}

func (v *validator) sync(c *Config) {
	s := c.Sync
	if s == nil {
		return
	}
	if msg := checkIfName(s.Interface); msg != "" {
		if s.Interface == "" {
			msg = "required: the interface sync messages use, as in \"eth0\""
		}
		v.problem("sync.interface", s.Line, "%s", msg)
	}
	if s.VRRPInstance != "" {
		vrid, ok := vrrpRouterID(c, s.VRRPInstance)
		switch {
		case !ok:
			v.problem("sync.vrrp_instance", s.Line, "no [[vrrp]] named %q", s.VRRPInstance)
		case s.SyncID < 0:
			s.SyncID = vrid
		}
	}
	if s.SyncID < 0 {
		s.SyncID = 0
	}
	switch {
	case !enumValid(syncRoleNames, s.Role) && s.Role != 0:
		v.problem("sync.role", s.Line, "must be %s", oneOf(syncRoleNames[1:]))
	case s.Role == 0:
		v.problem("sync.role", s.Line, "required without vrrp_instance: master, backup or both")
	case s.Role == SyncAuto && s.VRRPInstance == "":
		v.problem("sync.role", s.Line, "auto follows a VRRP instance: set vrrp_instance, or role master, backup or both")
	}
	v.syncFamily(s)
	if s.Port == 0 {
		v.problem("sync.port", s.Line, "must be in 1..65535")
	}
	if s.TTL < 1 || s.TTL > 255 {
		v.problem("sync.ttl", s.Line, "%d is out of range 1..255", s.TTL)
	}
	if s.MaxLen != 0 && (s.MaxLen < MinSyncMaxLen || s.MaxLen > MaxSyncMaxLen) {
		v.problem("sync.sync_maxlen", s.Line, "%d is out of range %d..%d (or 0 for the interface MTU minus 28)", s.MaxLen, MinSyncMaxLen, MaxSyncMaxLen)
	}
	if s.Key != "" && s.KeyFile != "" {
		v.problem("sync.key_file", s.Line, "set key or key_file, not both")
	}
	if s.KeyFile != "" && !filepath.IsAbs(s.KeyFile) {
		v.problem("sync.key_file", s.Line, "must be an absolute path")
	}
	if s.Key == "" && s.KeyFile == "" && len(s.Peers) == 0 && s.VRRPInstance == "" {
		v.problem("sync.peers", s.Line, "without key or key_file, only peers (or the VRRP instance's peers) are accepted: set peers, key, key_file or vrrp_instance")
	}
	if s.Threshold < 0 || s.Period < 0 || (s.Period > 0 && s.Threshold >= s.Period) {
		v.problem("sync.sync_threshold", s.Line, "want 0 <= sync_threshold < sync_period (the kernel's sync_threshold sysctl: %d %d)", DefaultSyncThreshold, DefaultSyncPeriod)
	}
	if s.MaxRate < 1 || s.MaxRate > MaxSyncRate {
		v.problem("sync.max_rate", s.Line, "%d is out of range 1..%d", s.MaxRate, MaxSyncRate)
	}
	if s.BulkRate < 1 || s.BulkRate > MaxSyncRate {
		v.problem("sync.bulk_rate", s.Line, "%d is out of range 1..%d", s.BulkRate, MaxSyncRate)
	}
}
