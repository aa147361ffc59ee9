package config

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

const vrrpPair = `[director]
interfaces = ["eth0", "eth1"]

[[service]]
name = "web"
vip = "198.18.0.13"
port = 80
forward = "nat"
  [[service.real]]
  address = "198.18.1.17"

[[vrrp_sync_group]]
name = "G1"
instances = ["VI_1", "VI_2"]

[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 150
advert_int = 1
state = "master"
notify_master = ["/usr/local/bin/hook", "master"]
track_interface = ["eth1"]
track_service = ["web"]
track_weight = -60

[[vrrp]]
name = "VI_2"
interface = "eth1"
virtual_router_id = 52
version = 3
advert_int = "0.5s"
vips = ["198.18.1.254"]
unicast_src_ip = "198.18.1.2"
unicast_peer = ["198.18.1.3"]
`

func TestVRRPParse(t *testing.T) {
	c, err := Parse("t.toml", []byte(vrrpPair))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.VRRP) != 2 || len(c.VRRPSyncGroups) != 1 {
		t.Fatalf("got %d instances, %d groups", len(c.VRRP), len(c.VRRPSyncGroups))
	}
	v1, v2 := c.VRRP[0], c.VRRP[1]
	if v1.Priority != 150 || v1.AdvertInt != time.Second || !v1.InitialMaster || v1.Version != 2 ||
		v1.GARPMasterRepeat != 5 || v1.GARPMasterDelay != 5*time.Second || v1.VIPs != nil || v1.TrackWeight != -60 {
		t.Fatalf("VI_1 = %+v", v1)
	}
	if v2.Version != 3 || v2.AdvertInt != 500*time.Millisecond || v2.Priority != 100 || v2.InitialMaster ||
		!slices.Equal(v2.UnicastPeer, []netip.Addr{netip.MustParseAddr("198.18.1.3")}) {
		t.Fatalf("VI_2 = %+v", v2)
	}
	if got := c.OwnedVIPs(0); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("198.18.0.13")}) {
		t.Fatalf("OwnedVIPs(0) = %v", got)
	}
	if got := c.OwnedVIPs(1); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("198.18.1.254")}) {
		t.Fatalf("OwnedVIPs(1) = %v", got)
	}
}

const vhead = "[director]\ninterfaces = [\"eth0\"]\n[[service]]\nvip = \"198.18.0.1\"\nport = 80\n"

func TestVRRPProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unowned service VIP", vhead + "[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvirtual_router_id = 1\nvips = [\"198.18.0.2\"]\n", []string{
			`t.toml:4: service[0].vip: 198.18.0.1 is owned by no [[vrrp]] instance: list it in one's vips (both directors would answer for it otherwise)`,
		}},
		{"ranges", vhead + "[[vrrp]]\nname = \"a\"\ninterface = \"eth9\"\nvirtual_router_id = 0\npriority = 256\nadvert_int = \"1.5s\"\ngarp_master_repeat = 0\ntrack_weight = 5\ntrack_service = [\"nope\"]\n", []string{
			`t.toml:8: vrrp[0].interface: "eth9" is not in director.interfaces: uvs answers ARP for the VIPs only there`,
			`t.toml:9: vrrp[0].virtual_router_id: 0 is out of range 1..255`,
			`t.toml:10: vrrp[0].priority: 256 is out of range 1..255`,
			`t.toml:11: vrrp[0].advert_int: 1.5s: VRRPv2 wants whole seconds 1..255`,
			`t.toml:12: vrrp[0].garp_master_repeat: 0 is out of range 1..255`,
			`t.toml:13: vrrp[0].track_weight: 5 is out of range -254..0 (0 = fault)`,
			`t.toml:14: vrrp[0].track_service[0]: no service named "nope"`,
		}},
		{"required and unknown", vhead + "[[vrrp]]\ninterface = \"eth0\"\npriorty = 3\n", []string{
			`t.toml:6: vrrp[0].virtual_router_id: required (1..255, the same on every router of the pair)`,
			`t.toml:6: vrrp[0].name: required`,
			`t.toml:8: vrrp[0].priorty: unknown key (did you mean "priority"?)`,
		}},
		{"duplicates", vhead + "[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvirtual_router_id = 1\n[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvirtual_router_id = 1\n", []string{
			`t.toml:10: vrrp[1].vips: required: vrrp[0] already takes the service VIPs that no instance lists`,
			`t.toml:11: vrrp[1].name: duplicate instance name "a" (also vrrp[0])`,
			`t.toml:13: vrrp[1].virtual_router_id: 1 is also vrrp[0] on eth0`,
		}},
		{"v3 and auth", vhead + "[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvirtual_router_id = 1\nversion = 3\nauth_type = \"pass\"\nauth_pass = \"x\"\nstate = \"master\"\nnopreempt = true\n", []string{
			`t.toml:12: vrrp[0].auth_pass: VRRPv3 has no authentication (RFC 5798 §9)`,
			`t.toml:14: vrrp[0].nopreempt: nopreempt needs state = "backup" (as keepalived)`,
		}},
		{"notify empty, bad state", vhead + "[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvirtual_router_id = 1\nstate = \"primary\"\nnotify_master = []\n", []string{
			`t.toml:10: vrrp[0].state: must be "master" or "backup", not "primary"`,
			`t.toml:11: vrrp[0].notify_master: must name a program: ["/path/to/program", "arg", ...] (argv, never a shell)`,
		}},
		{"sync group", vhead + "[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvirtual_router_id = 1\n[[vrrp_sync_group]]\nname = \"g\"\ninstances = [\"a\", \"b\"]\n", []string{
			`t.toml:12: vrrp_sync_group[0].instances[1]: no [[vrrp]] named "b"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.src)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", quoteLines(got), quoteLines(tt.want))
			}
		})
	}
}
