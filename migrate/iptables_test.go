package migrate

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/config"
)

func TestIptablesMarks(t *testing.T) {
	tests := []struct {
		name   string
		rules  string
		mark   uint32
		want   *Fwmark // nil: not derivable.
		unsure string  // The first reason, when not derivable.
	}{
		{"save format", "*mangle\n-A PREROUTING -d 10.0.0.1/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x1/0xffffffff\n", 1,
			&Fwmark{VIP: mustAddr("10.0.0.1"), Protocol: "tcp", Ports: []uint16{80}}, ""},
		{"command", "iptables -t mangle -A PREROUTING -d 10.0.0.1 -p udp --dports 53,5353 -j MARK --set-mark 7\n", 7,
			&Fwmark{VIP: mustAddr("10.0.0.1"), Protocol: "udp", Ports: []uint16{53, 5353}}, ""},
		{"several rules", "*mangle\n-A PREROUTING -d 10.0.0.1 -p tcp --dport 80 -j MARK --set-mark 1\n-I PREROUTING 1 -d 10.0.0.1 -p tcp --dport 443 -j MARK --set-mark 1\n", 1,
			&Fwmark{VIP: mustAddr("10.0.0.1"), Protocol: "tcp", Ports: []uint16{80, 443}}, ""},
		{"network", "*mangle\n-A PREROUTING -d 207.175.44.110/31 -j MARK --set-mark 1\n", 1, nil,
			"-d 207.175.44.110/31: not one IPv4 host; a uvs service has one VIP"},
		{"no destination", "*mangle\n-A PREROUTING -p tcp --dport 80 -j MARK --set-mark 1\n", 1, nil,
			"no -d: the rule selects every address; a uvs service has one VIP"},
		{"no protocol", "*mangle\n-A PREROUTING -d 10.0.0.1 -j MARK --set-mark 1\n", 1, nil, "no -p tcp or -p udp: a uvs service has one protocol"},
		{"no ports", "*mangle\n-A PREROUTING -d 10.0.0.1 -p tcp -j MARK --set-mark 1\n", 1, nil, "no --dport or --dports: a uvs multi-port service lists its ports"},
		{"port range", "*mangle\n-A PREROUTING -d 10.0.0.1 -p tcp --dport 80:90 -j MARK --set-mark 1\n", 1, nil, "--dport 80:90: only single ports map to a uvs ports list"},
		{"negation", "*mangle\n-A PREROUTING ! -d 10.0.0.1 -p tcp --dport 80 -j MARK --set-mark 1\n", 1, nil, "a negated match cannot be written as a uvs service"},
		{"source match", "*mangle\n-A PREROUTING -s 10.9.0.0/16 -d 10.0.0.1 -p tcp --dport 80 -j MARK --set-mark 1\n", 1, nil, "-s: a match uvs services cannot express"},
		{"partial mask", "*mangle\n-A PREROUTING -d 10.0.0.1 -p tcp --dport 80 -j MARK --set-xmark 0x1/0xff\n", 1, nil, "--set-xmark 0x1/0xff: a partial mask"},
		{"two vips", "*mangle\n-A PREROUTING -d 10.0.0.1 -p tcp --dport 80 -j MARK --set-mark 1\n-A PREROUTING -d 10.0.0.2 -p tcp --dport 80 -j MARK --set-mark 1\n", 1, nil,
			"mark 1 also selects 10.0.0.2/tcp; a uvs service has one VIP and one protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marks := iptablesMarks(&Source{Name: "ipt", Data: []byte(tt.rules)})
			r := marks[tt.mark]
			if r == nil {
				t.Fatalf("mark %d not found in %v", tt.mark, marks)
			}
			if tt.want != nil {
				if len(r.unsure) > 0 || r.fm.VIP != tt.want.VIP || r.fm.Protocol != tt.want.Protocol || !slices.Equal(r.fm.Ports, tt.want.Ports) {
					t.Errorf("got %+v unsure %v, want %+v", r.fm, r.unsure, *tt.want)
				}
				return
			}
			if len(r.unsure) == 0 || r.unsure[0].Msg != tt.unsure {
				t.Errorf("unsure %v, want %q", r.unsure, tt.unsure)
			}
		})
	}
	// Rules outside the mangle table, and other targets, set no mark.
	marks := iptablesMarks(&Source{Name: "ipt", Data: []byte("*filter\n-A INPUT -d 10.0.0.1 -p tcp --dport 22 -j MARK --set-mark 3\n*mangle\n-A PREROUTING -d 10.0.0.1 -j ACCEPT\n")})
	if len(marks) != 0 {
		t.Errorf("marks %v, want none", marks)
	}
}

// TestIptablesFwmarkService converts the ipvsadm(8) fwmark example with
// iptables-save rules: mark 1 becomes a multi-port service; mark 2 (a /31,
// all ports, as in the man page) stays a stub with the reason.
func TestIptablesFwmarkService(t *testing.T) {
	rules, err := os.ReadFile("testdata/iptables-save.txt")
	if err != nil {
		t.Fatal(err)
	}
	src := "-A -f 1 -s rr\n-a -f 1 -r 192.168.10.1:0 -m\n-A -f 2 -s rr\n-a -f 2 -r 192.168.10.2:0 -m\n"
	res, err := Ipvsadm("s", []byte(src), Options{Iptables: &Source{Name: "ipt", Data: rules}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("out.toml", res.TOML)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Services) != 1 || c.Services[0].VIP != mustAddr("207.175.44.110") || !slices.Equal(c.Services[0].Ports, []uint16{80, 443, 8443}) {
		t.Fatalf("services %+v\n%s", summarize(c), res.TOML)
	}
	for _, want := range []string{
		"# uvs import: s:1: -f 1: uvs has no firewall-mark services: it matches the VIP and ports itself, with a multi-port service (ports = [...]); VIP and ports from the MARK rules at ipt:4",
		"# uvs import: ipt:6: MARK rule for mark 2 not usable: -d 207.175.44.110/31: not one IPv4 host; a uvs service has one VIP",
	} {
		if !containsLine(res.TOML, want) {
			t.Errorf("no line %q in\n%s", want, res.TOML)
		}
	}
	if !strings.Contains(string(res.TOML), "# ports = [PORT, PORT]") {
		t.Errorf("mark 2 is not a stub:\n%s", res.TOML)
	}
	// --fwmark wins over the rules.
	res, err = Ipvsadm("s", []byte(src), Options{Iptables: &Source{Name: "ipt", Data: rules},
		Fwmarks: map[uint32]Fwmark{1: {VIP: mustAddr("10.0.0.7"), Ports: []uint16{25}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !containsLine(res.TOML, `vip = "10.0.0.7"`) {
		t.Errorf("--fwmark did not win:\n%s", res.TOML)
	}
}
