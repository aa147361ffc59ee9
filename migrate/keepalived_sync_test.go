package migrate

import (
	"strings"
	"testing"

	"github.com/uvs-project/uvs/config"
)

func TestKeepalivedSyncDaemon(t *testing.T) {
	src := "global_defs {\nrouter_id lb1\nlvs_sync_daemon eth1 VI_1 id 51 maxlen 1400 port 8849 ttl 2 group 224.0.0.82\n}\n" +
		"vrrp_instance VI_1 {\ninterface eth1\nvirtual_router_id 50\npriority 100\nvirtual_ipaddress {\n10.0.0.1\n}\n}\n" +
		"virtual_server 10.0.0.1 80 {\nreal_server 10.0.1.1 80 {\n}\n}\n"
	res, err := Keepalived("k", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("out.toml", res.TOML)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.TOML)
	}
	s := cfg.Sync
	if s == nil || s.Interface != "eth1" || s.VRRPInstance != "VI_1" || s.Role != config.SyncAuto || s.SyncID != 51 ||
		s.MaxLen != 1400 || s.Port != 8849 || s.TTL != 2 || s.Group.String() != "224.0.0.82" {
		t.Fatalf("%+v\n%s", s, res.TOML)
	}
	if !strings.Contains(string(res.TOML), "global_defs router_id lb1: not carried over") {
		t.Fatalf("router_id not noted:\n%s", res.TOML)
	}
	// Without id, syncid is left to default to the instance's virtual_router_id.
	res, err = Keepalived("k", []byte("global_defs {\nlvs_sync_daemon eth0 VI_2\n}\nvrrp_instance VI_2 {\ninterface eth0\nvirtual_router_id 52\npriority 100\n}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(res.TOML), "syncid") || !strings.Contains(string(res.TOML), `vrrp_instance = "VI_2"`) {
		t.Fatalf("%s", res.TOML)
	}
	if cfg, err := config.Parse("out.toml", res.TOML); err != nil || cfg.Sync.SyncID != 52 {
		t.Fatalf("syncid should default to the instance's VRID 52: %v\n%s", err, res.TOML)
	}
	for _, bad := range []string{"lvs_sync_daemon eth0\n", "lvs_sync_daemon eth0 VI_1 id 300\n", "lvs_sync_daemon eth0 VI_1 group 10.0.0.1\n", "lvs_sync_daemon eth0 VI_1 ttl\n"} {
		if _, err := Keepalived("k", []byte("global_defs {\n"+bad+"}\n"), Options{}); err == nil {
			t.Errorf("%q: no problem reported", bad)
		}
	}
}
