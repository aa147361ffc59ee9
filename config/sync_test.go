package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSyncDefaults(t *testing.T) {
	c, err := Parse("t.toml", []byte(head+"[sync]\ninterface = \"eth0\"\nrole = \"master\"\npeers = [\"198.18.0.2\", \"198.18.0.3:9000\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Sync
	want := []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:8848"), netip.MustParseAddrPort("198.18.0.3:9000")}
	if s == nil || s.Role != SyncMaster || s.SyncID != 0 || s.Group != DefaultSyncGroup || s.Port != 8848 || s.TTL != 1 ||
		s.MaxLen != 0 || !slices.Equal(s.Peers, want) || s.Threshold != 3 || s.Period != 50 || s.Line != 3 {
		t.Fatalf("%+v", s)
	}
	if c, _ := Parse("t.toml", []byte(head)); c.Sync != nil {
		t.Fatal("no [sync], but Sync is set")
	}
}

func TestSyncVRRPInstance(t *testing.T) {
	src := head + "[sync]\ninterface = \"eth0\"\nvrrp_instance = \"VI_1\"\n"
	src += "[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = 100\n"
	c, err := Parse("t.toml", []byte(src))
	if err != nil || c.Sync.Role != SyncAuto || c.Sync.SyncID != 51 {
		t.Fatalf("syncid defaults to the VRID: %v %+v", err, c)
	}
	c, err = Parse("t.toml", []byte(strings.Replace(src, "vrrp_instance", "syncid = 7\nvrrp_instance", 1)))
	if err != nil || c.Sync.SyncID != 7 {
		t.Fatalf("explicit syncid: %v", err)
	}
	got := problems(t, head+"[sync]\ninterface = \"eth0\"\nvrrp_instance = \"VI_9\"\n")
	if !slices.Equal(got, []string{`t.toml:5: sync.vrrp_instance: no [[vrrp]] named "VI_9"`}) {
		t.Fatalf("%q", got)
	}
}

func TestSyncProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"no role, no peers", "[sync]\ninterface = \"eth0\"\n", []string{
			`t.toml:3: sync.role: required without vrrp_instance: master, backup or both`,
			`t.toml:3: sync.peers: without key or key_file, only peers (or the VRRP instance's peers) are accepted: set peers, key, key_file or vrrp_instance`,
		}},
		{"ranges", "[sync]\ninterface = \"eth0/x\"\nrole = \"auto\"\ngroup = \"198.18.0.1\"\nport = 0\nttl = 0\nsync_maxlen = 20\npeers = [\"224.0.0.1\", \"nope\"]\nkey = \"a\"\nkey_file = \"rel\"\nsync_threshold = 50\nmax_rate = 0\nbulk_rate = -1\nsyncid = 256\n", []string{
			`t.toml:4: sync.interface: invalid interface name "eth0/x": no '/', ':' or spaces`,
			`t.toml:5: sync.role: auto follows a VRRP instance: set vrrp_instance, or role master, backup or both`,
			`t.toml:6: sync.group: 198.18.0.1 is not an IPv4 or IPv6 multicast address`,
			`t.toml:7: sync.port: must be in 1..65535`,
			`t.toml:8: sync.ttl: 0 is out of range 1..255`,
			`t.toml:9: sync.sync_maxlen: 20 is out of range 138..65507 (or 0 for the interface MTU minus 28)`,
			`t.toml:10: sync.peers[0]: 224.0.0.1 is not a unicast IPv4 or global IPv6 address`,
			`t.toml:10: sync.peers[1]: invalid peer "nope": want an IP address, optionally with :port ([addr]:port for IPv6)`,
			`t.toml:12: sync.key_file: set key or key_file, not both`,
			`t.toml:12: sync.key_file: must be an absolute path`,
			`t.toml:13: sync.sync_threshold: want 0 <= sync_threshold < sync_period (the kernel's sync_threshold sysctl: 3 50)`,
			`t.toml:14: sync.max_rate: 0 is out of range 1..16777216`,
			`t.toml:15: sync.bulk_rate: -1 is out of range 1..16777216`,
			`t.toml:16: sync.syncid: 256 is out of range 0..255`,
		}},
		{"typo and bad role", "[sync]\ninterface = \"eth0\"\nrole = \"slave\"\nkey = \"k\"\npeer = []\n", []string{
			`t.toml:5: sync.role: unknown role "slave" (want auto, master, backup or both)`,
			`t.toml:7: sync.peer: unknown key (did you mean "peers"?)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, head+tt.src)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", quoteLines(got), quoteLines(tt.want))
			}
		})
	}
}

func TestSyncLoadKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sync.key")
	if err := os.WriteFile(path, []byte("  s3cret \nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := Sync{KeyFile: path}
	k, err := s.LoadKey()
	if err != nil || string(k) != "s3cret" {
		t.Fatalf("%q %v", k, err)
	}
	if k, _ := (&Sync{Key: "inline"}).LoadKey(); string(k) != "inline" {
		t.Fatal(k)
	}
	if k, err := (&Sync{}).LoadKey(); k != nil || err != nil {
		t.Fatal(k, err)
	}
	if _, err := (&Sync{KeyFile: path + ".missing"}).LoadKey(); err == nil {
		t.Fatal("missing key file")
	}
}

func TestSyncEveryKey(t *testing.T) {
	c, err := Load("testdata/sync.toml")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Sync; s.SyncID != 51 || s.MaxLen != 1472 || len(s.Peers) != 2 || s.Peers[1].Port() != 8849 || s.KeyFile != "/etc/uvs/sync.key" {
		t.Fatalf("%+v", s)
	}
}
