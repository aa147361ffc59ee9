package migrate

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/config"
)

const kaVRRPConf = `global_defs {
  vrrp_version 3
  vrrp_garp_master_delay 2
}
vrrp_sync_group G1 {
  group {
    VI_1
    VI_2
  }
  notify_master /x
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 0.5
  nopreempt
  preempt_delay 10
  unicast_src_ip 10.0.0.2
  unicast_peer {
    10.0.0.3
  }
  virtual_ipaddress {
    10.0.0.80/24 dev eth0
  }
  notify_master "/usr/local/bin/vip up"
  track_interface {
    eth1
  }
  track_script {
    chk
  }
}
vrrp_instance VI_2 {
  interface eth1
  virtual_router_id 52
  version 2
  garp_master_repeat 3
  virtual_ipaddress {
    10.0.1.254
  }
}
virtual_server 10.0.0.80 80 {
  lb_kind NAT
  real_server 10.0.1.10 80 {
  }
}
virtual_server 10.0.0.90 80 {
  lb_kind DR
  real_server 10.0.1.11 80 {
  }
}
`

// TestKeepalivedVRRP checks that vrrp_instance and vrrp_sync_group blocks become
// [[vrrp]] and [[vrrp_sync_group]], with the global defaults, and that a service VIP no
// virtual_ipaddress lists gets an owner.
func TestKeepalivedVRRP(t *testing.T) {
	res, err := Keepalived("k.conf", []byte(kaVRRPConf), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("out.toml", res.TOML)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.TOML)
	}
	if len(c.VRRP) != 2 || len(c.VRRPSyncGroups) != 1 || !slices.Equal(c.VRRPSyncGroups[0].Instances, []string{"VI_1", "VI_2"}) {
		t.Fatalf("got %+v %+v\n%s", c.VRRP, c.VRRPSyncGroups, res.TOML)
	}
	if !slices.Equal(c.Director.Interfaces, []string{"eth0", "eth1"}) {
		t.Errorf("interfaces = %v", c.Director.Interfaces)
	}
	v1, v2 := c.VRRP[0], c.VRRP[1]
	ip := netip.MustParseAddr
	if v1.Version != 3 || v1.Priority != 150 || v1.AdvertInt != 500*time.Millisecond || !v1.NoPreempt ||
		v1.PreemptDelay != 10*time.Second || v1.UnicastSrcIP != ip("10.0.0.2") || !slices.Equal(v1.UnicastPeer, []netip.Addr{ip("10.0.0.3")}) ||
		!slices.Equal(v1.VIPs, []netip.Addr{ip("10.0.0.80"), ip("10.0.0.90")}) || v1.GARPMasterDelay != 2*time.Second ||
		!slices.Equal(v1.NotifyMaster, []string{"/usr/local/bin/vip", "up"}) || !slices.Equal(v1.TrackInterface, []string{"eth1"}) {
		t.Errorf("VI_1 = %+v\n%s", v1, res.TOML)
	}
	if v2.Version != 2 || v2.GARPMasterRepeat != 3 || !slices.Equal(v2.VIPs, []netip.Addr{ip("10.0.1.254")}) {
		t.Errorf("VI_2 = %+v", v2)
	}
	for _, want := range []string{
		"k.conf:10: notify_master /x: not carried over (notify per instance instead)",
		"k.conf:31: track_script: not carried over: uvs tracks its own services' health (track_service) and interfaces (track_interface)",
		"k.conf:49: service VIP 10.0.0.90 is in no vrrp_instance's virtual_ipaddress: added to VI_1's vips (uvs needs an owner for every VIP)",
	} {
		if !strings.Contains(string(res.TOML), want) {
			t.Errorf("output lacks %q:\n%s", want, res.TOML)
		}
	}
}

// TestKeepalivedVRRPIPv6: an IPv6 vrrp_instance (keepalived's default version 2 over IPv6
// kept) becomes an IPv6 [[vrrp]] with its unicast addresses; addresses of the other family
// and authentication are left out with notes; an IPv6 service VIP goes to the IPv6 instance,
// and one with no instance of its family is written commented out.
func TestKeepalivedVRRPIPv6(t *testing.T) {
	conf := `vrrp_instance VI_4 {
  interface eth0
  virtual_router_id 51
  virtual_ipaddress {
    10.0.0.80
  }
}
vrrp_instance VI_6 {
  interface eth0
  virtual_router_id 51
  unicast_src_ip 2001:db8::2
  unicast_peer {
    2001:db8::3
    10.0.0.3
  }
  authentication {
    auth_type PASS
    auth_pass secret
  }
  virtual_ipaddress {
    2001:db8::100/128
    10.0.0.81
  }
}
virtual_server 2001:db8::101 80 {
  lb_kind DR
  real_server 2001:db8::10 80 {
  }
}
virtual_server 10.0.0.80 80 {
  lb_kind DR
  real_server 10.0.0.10 80 {
  }
}
`
	res, err := Keepalived("k.conf", []byte(conf), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("out.toml", res.TOML)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.TOML)
	}
	ip := netip.MustParseAddr
	if len(c.VRRP) != 2 || !c.VRRPIPv6(1) || c.VRRPIPv6(0) {
		t.Fatalf("instances %+v\n%s", c.VRRP, res.TOML)
	}
	v6 := c.VRRP[1]
	if v6.Version != 2 || v6.AuthPass != "" || v6.UnicastSrcIP != ip("2001:db8::2") || !slices.Equal(v6.UnicastPeer, []netip.Addr{ip("2001:db8::3")}) ||
		!slices.Equal(v6.VIPs, []netip.Addr{ip("2001:db8::100"), ip("2001:db8::101")}) {
		t.Errorf("VI_6 = %+v\n%s", v6, res.TOML)
	}
	if strings.Contains(string(res.TOML), "auth_type PASS carried over") {
		t.Errorf("the PASS note stayed:\n%s", res.TOML)
	}
	for _, want := range []string{
		"k.conf:14: 10.0.0.3: not carried over: the instance is IPv6 (its first address) and a uvs instance is one family; put it in a vrrp_instance of its own",
		"k.conf:22: 10.0.0.81: not carried over: the instance is IPv6",
		"k.conf:16: authentication: not carried over: VRRP over IPv6 carries no authentication",
		"answers neighbour solicitations for them",
	} {
		if !strings.Contains(string(res.TOML), want) {
			t.Errorf("output lacks %q:\n%s", want, res.TOML)
		}
	}
	// Without an IPv6 instance, the IPv6 service is written commented out.
	res, err = Keepalived("k.conf", []byte(conf[:strings.Index(conf, "vrrp_instance VI_6")]+conf[strings.Index(conf, "virtual_server"):]), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse("out.toml", res.TOML); err != nil {
		t.Fatalf("%v\n%s", err, res.TOML)
	}
	if !strings.Contains(string(res.TOML), "vip 2001:db8::101: no vrrp_instance of its family owns it") {
		t.Errorf("IPv6 service not written commented out:\n%s", res.TOML)
	}
}
