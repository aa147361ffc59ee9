package config

import (
	"slices"
	"strings"
	"testing"
)

const vhead6 = "[director]\ninterfaces = [\"eth0\"]\n[[service]]\nvip = \"198.18.0.1\"\nport = 80\n[[service]]\nvip = \"2001:2:0:5::100\"\nport = 80\n"

func TestVRRPIPv6Parse(t *testing.T) {
	src := vhead6 + "[[vrrp]]\nname = \"v4\"\ninterface = \"eth0\"\nvirtual_router_id = 1\nvips = [\"198.18.0.1\"]\n" +
		"[[vrrp]]\nname = \"v6\"\ninterface = \"eth0\"\nvirtual_router_id = 2\nversion = 3\nvips = [\"2001:2:0:5::100\"]\nunicast_src_ip = \"fe80::1\"\nunicast_peer = [\"fe80::2\"]\n"
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.VRRPIPv6(0) || !c.VRRPIPv6(1) {
		t.Fatalf("VRRPIPv6 = %v, %v", c.VRRPIPv6(0), c.VRRPIPv6(1))
	}
	// IPv4 and IPv6 have separate VRID spaces (RFC 5798 §5.2.3): one VRID per family is fine.
	if _, err := Parse("t.toml", []byte(strings.Replace(src, "virtual_router_id = 2", "virtual_router_id = 1", 1))); err != nil {
		t.Fatalf("the same VRID for IPv4 and IPv6: %v", err)
	}
	// keepalived's VRRPv2 over IPv6 (its default version) is accepted.
	if _, err := Parse("t.toml", []byte(strings.Replace(src, "version = 3\n", "", 1))); err != nil {
		t.Fatalf("version 2 over IPv6: %v", err)
	}
	// The default instance takes the IPv6 service VIP when it is the only one left.
	c, err = Parse("t.toml", []byte(vhead6+"[[vrrp]]\nname = \"v4\"\ninterface = \"eth0\"\nvirtual_router_id = 1\nvips = [\"198.18.0.1\"]\n"+
		"[[vrrp]]\nname = \"v6\"\ninterface = \"eth0\"\nvirtual_router_id = 2\nversion = 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.VRRPIPv6(1) || c.OwnedVIPs(1)[0].String() != "2001:2:0:5::100" {
		t.Fatalf("default instance: IPv6 %v, VIPs %v", c.VRRPIPv6(1), c.OwnedVIPs(1))
	}
}

func TestVRRPIPv6Problems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"auth_pass", vhead6 + "[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvirtual_router_id = 1\nvips = [\"198.18.0.1\"]\n" +
			"[[vrrp]]\nname = \"b\"\ninterface = \"eth0\"\nvirtual_router_id = 2\nvips = [\"2001:2:0:5::100\"]\nauth_type = \"pass\"\nauth_pass = \"x\"\n", []string{
			`t.toml:20: vrrp[1].auth_pass: an IPv6 instance carries no authentication data (keepalived's VRRPv2 over IPv6 neither)`,
		}},
		{"mixed vips", vhead6 + "[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvirtual_router_id = 1\nversion = 3\nvips = [\"2001:2:0:5::100\", \"198.18.0.1\"]\nunicast_src_ip = \"198.18.0.2\"\nunicast_peer = [\"fe80::2\", \"198.18.0.3\"]\n", []string{
			`t.toml:14: vrrp[0].vips[1]: 198.18.0.1 is IPv4, but the instance is IPv6 (its first VIP): an instance is one family, as in keepalived; use one instance per family`,
			`t.toml:15: vrrp[0].unicast_src_ip: 198.18.0.2 is IPv4, but the instance is IPv6`,
			`t.toml:16: vrrp[0].unicast_peer[1]: 198.18.0.3 is IPv4, but the instance is IPv6`,
		}},
		{"default instance takes both families", vhead6 + "[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvirtual_router_id = 1\nversion = 3\n", []string{
			`t.toml:9: vrrp[0].vips: the service VIPs this instance takes are IPv4 and IPv6; an instance is one family: list the IPv6 VIPs (2001:2:0:5::100) in an instance of their own`,
		}},
		{"bad addresses", vhead6 + "[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvirtual_router_id = 1\nvips = [\"198.18.0.1\"]\n" +
			"[[vrrp]]\nname = \"b\"\ninterface = \"eth0\"\nvirtual_router_id = 2\nversion = 3\nvips = [\"2001:2:0:5::100\"]\nunicast_src_ip = \"fe80::1%eth0\"\nunicast_peer = [\"ff02::12\"]\n", []string{
			`t.toml:20: vrrp[1].unicast_src_ip: fe80::1%eth0: a zone is not allowed`,
			`t.toml:21: vrrp[1].unicast_peer[0]: ff02::12 is not a unicast address`,
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
