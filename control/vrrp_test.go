package control

import (
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/vrrp"
)

const vrrpTOML = `[director]
interfaces = ["eth0", "eth1"]
[[service]]
name = "web"
vip = "198.18.0.13"
port = 80
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
state = "master"
auth_type = "pass"
auth_pass = "secret1"
notify_master = ["/bin/true", "x"]
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
v3_checksum_as_v2 = true
nopreempt = true
`

// TestVRRPSaveRoundTrip checks that ConfigTOML keeps [[vrrp]] sections, so that a runtime
// edit (which re-parses it) does not lose them.
func TestVRRPSaveRoundTrip(t *testing.T) {
	c1, err := config.Parse("a.toml", []byte(vrrpTOML))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := config.Parse("b.toml", []byte(ConfigTOML(c1)))
	if err != nil {
		t.Fatalf("%v\n%s", err, ConfigTOML(c1))
	}
	for _, c := range []*config.Config{c1, c2} {
		for i := range c.VRRP {
			c.VRRP[i].Line = 0
		}
		for i := range c.VRRPSyncGroups {
			c.VRRPSyncGroups[i].Line = 0
		}
	}
	if !reflect.DeepEqual(c1.VRRP, c2.VRRP) || !reflect.DeepEqual(c1.VRRPSyncGroups, c2.VRRPSyncGroups) {
		t.Fatalf("round trip:\n%+v\n%+v", c1.VRRP, c2.VRRP)
	}
}

func TestWriteVRRP(t *testing.T) {
	var b strings.Builder
	st := &Status{Services: []Service{}, VRRP: []vrrp.Status{{Name: "VI_1", Interface: "eth0", VRID: 51, Version: 2,
		State: "master", Priority: 150, Master: "198.18.0.2", Transitions: 2}}}
	if err := WriteList(&b, st, Layout{}); err != nil {
		t.Fatal(err)
	}
	want := "\nVRRP Instance    Interface    VRID  V State   Prio Master          Transitions\n" +
		"VI_1             eth0           51  2 MASTER   150 198.18.0.2                2\n"
	if !strings.HasSuffix(b.String(), want) {
		t.Fatalf("listing:\n%s\nwant suffix:\n%s", b.String(), want)
	}
}

type fakeVRRP []vrrp.Status

func (f fakeVRRP) VRRPStatus() []vrrp.Status { return f }

// TestVRRPMetrics checks uvs_vrrp_state{instance} and the drop counters.
func TestVRRPMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	src := fakeVRRP{{Name: "VI_1", State: "master", StateValue: vrrp.StateMaster, Priority: 150, Transitions: 2, Drops: vrrp.DropCounts{"ttl": 3}},
		{Name: "VI_2", State: "fault", StateValue: vrrp.StateFault, Priority: 100}}
	reg.MustRegister(newVRRPCollector(src))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			if m.GetGauge() != nil {
				got[key] = m.GetGauge().GetValue()
			} else {
				got[key] = m.GetCounter().GetValue()
			}
		}
	}
	for k, v := range map[string]float64{
		"uvs_vrrp_state,instance=VI_1":                             2,
		"uvs_vrrp_state,instance=VI_2":                             3,
		"uvs_vrrp_priority,instance=VI_1":                          150,
		"uvs_vrrp_transitions_total,instance=VI_1":                 2,
		"uvs_vrrp_dropped_adverts_total,instance=VI_1,reason=ttl":  3,
		"uvs_vrrp_dropped_adverts_total,instance=VI_2,reason=auth": 0,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

func TestDiffVRRP(t *testing.T) {
	cur, err := config.Parse("a.toml", []byte(vrrpTOML))
	if err != nil {
		t.Fatal(err)
	}
	next, err := config.Parse("b.toml", []byte(strings.NewReplacer("priority = 150", "priority = 50", "virtual_router_id = 52", "virtual_router_id = 53").Replace(vrrpTOML)))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Diff(cur, next), "\n")
	for _, want := range []string{
		"~ vrrp VI_1: priority 150 -> 50",
		"! vrrp VI_2: virtual_router_id 52 -> 53: a reload refuses this; restart uvs",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("diff lacks %q:\n%s", want, got)
		}
	}
	if d := Diff(cur, cur); len(d) != 0 {
		t.Errorf("no change, yet: %v", d)
	}
}
