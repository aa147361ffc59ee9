package migrate

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/config"
)

const svc80 = "-A -t 10.0.0.1:80\n"

// TestIpvsadmOptions checks that each option lands on its uvs key.
func TestIpvsadmOptions(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // Lines the output must have, leading spaces ignored.
	}{
		{"tcp", svc80, []string{`vip = "10.0.0.1"`, "port = 80"}},
		{"udp", "-A -u 10.0.0.1:53\n", []string{`protocol = "udp"`, "port = 53"}},
		{"long service", "--add-service --udp-service=10.0.0.1:53\n", []string{`protocol = "udp"`}},
		{"command name", "ipvsadm -A -t 10.0.0.1:80\n/sbin/ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1\n", []string{`address = "10.0.1.1"`}},
		{"scheduler", "-A -t 10.0.0.1:80 -s lblcr\n", []string{`scheduler = "lblcr"`}},
		{"persistent default", "-A -t 10.0.0.1:80 -p\n", []string{`persistence_timeout = "300s"`}},
		{"persistent timeout", "-A -t 10.0.0.1:80 -p 1800\n", []string{`persistence_timeout = "1800s"`}},
		{"persistent before other", "-A -t 10.0.0.1:80 -p -s rr\n", []string{`persistence_timeout = "300s"`, `scheduler = "rr"`}},
		{"netmask", "-A -t 10.0.0.1:80 -p 60 -M 255.255.0.0\n", []string{`persistence_netmask = "255.255.0.0"`}},
		{"netmask default", "-A -t 10.0.0.1:80 -p 60 -M 255.255.255.255\n", []string{`persistence_timeout = "60s"`}},
		{"all ports", "-A -t 10.0.0.1:0 -p\n", []string{"port = 0"}},
		{"no port", "-A -t 10.0.0.1 -p\n", []string{"port = 0"}},
		{"sched flags", "-A -t 10.0.0.1:80 -s mh -b mh-fallback,mh-port\n", []string{`scheduler_flags = ["mh-fallback", "mh-port"]`}},
		{"ops", "-A -u 10.0.0.1:53 -o\n", []string{"one_packet = true"}},
		{"set", "--set 10 20 0\n", []string{`tcp = "10s"`, `tcp_fin = "20s"`}},
		{"gatewaying", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g\n", []string{`address = "10.0.1.1"`}},
		{"ipip", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1 -i\n", []string{`forward = "tun"`}},
		{"masquerading", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m\n", []string{`forward = "nat"`, "port = 8080"}},
		{"mixed methods", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1 -m\n-a -t 10.0.0.1:80 -r 10.0.1.2 -m\n-a -t 10.0.0.1:80 -r 10.0.1.3 -g\n",
			[]string{`forward = "nat"`, `forward = "dr"`}},
		{"weight", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1 -w 0\n", []string{"weight = 0"}},
		{"thresholds", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1 -x 100 -y 10\n", []string{"upper_threshold = 100", "lower_threshold = 10"}},
		{"long real", svc80 + "--add-server --tcp-service 10.0.0.1:80 --real-server 10.0.1.1 --masquerading --weight 7\n", []string{"weight = 7"}},
		{"edit real", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1 -w 2\n-e -t 10.0.0.1:80 -r 10.0.1.1:80 -w 9\n", []string{"weight = 9"}},
		{"edit service", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1\n-E -t 10.0.0.1:80 -s sed\n", []string{`scheduler = "sed"`, `address = "10.0.1.1"`}},
		{"fwmark", "-A -f 0x10 -s rr\n-a -f 0x10 -r 10.0.1.1:0 -m\n", []string{"# [[service]]", `# scheduler = "rr"`}},
		{"comment and blank", "# saved\n\n" + svc80, []string{"port = 80"}},
		{"ignored commands", "-Z\n-L -n\n" + svc80, []string{"port = 80"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Ipvsadm("s", []byte(tt.src), Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range tt.want {
				if !containsLine(res.TOML, l) {
					t.Errorf("no line %q in\n%s", l, res.TOML)
				}
			}
		})
	}
}

// TestIpvsadmNotes checks the "# uvs import:" comment for each setting that
// is not carried over.
func TestIpvsadmNotes(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"unknown scheduler", "-A -t 10.0.0.1:80 -s foo\n", "s:1: -s foo: uvs has no such scheduler; it uses wlc, the ipvsadm default"},
		{"flag for other scheduler", "-A -t 10.0.0.1:80 -s rr -b sh-port\n", `s:1: -b sh-port: flag "sh-port" applies only to the sh scheduler`},
		{"unknown flag", "-A -t 10.0.0.1:80 -s sh -b flag-1\n", `s:1: -b flag-1: uvs has no scheduler flag "flag-1"`},
		{"mask without persistence", "-A -t 10.0.0.1:80 -M 255.255.255.0\n", "s:1: -M 255.255.255.0: a persistence netmask without persistence has no effect"},
		{"ops on tcp", "-A -t 10.0.0.1:80 -o\n", "s:1: -o: one-packet scheduling applies only to UDP services"},
		{"pe", "-A -u 10.0.0.1:5060 --pe sip\n", "s:1: --pe sip: uvs has no persistence engines"},
		{"dr port", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -g\n", "s:2: port 8080: with dr the real server receives the service port 80, as in IPVS; left out"},
		{"lower above upper", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1 -x 5 -y 9\n", "s:2: -y 9: lower threshold above the upper threshold 5; left out"},
		{"lower alone", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1 -y 9\n", "s:2: -y 9: a lower threshold without an upper one has no effect in IPVS; left out"},
		{"fwmark", "-A -f 3\n", "s:1: -f 3: uvs has no firewall-mark services: it matches the VIP and ports itself, with a multi-port service (ports = [...]); the input does not say which VIP and ports mark 3 covers (the iptables/nftables rules do). Fill in vip and ports and uncomment, or re-run with --fwmark 3=VIP:PORT,PORT"},
		{"sctp", "--sctp-service 10.0.0.1:9 -A\n", "s:1: --sctp-service: uvs has no SCTP services; written commented out"},
		{"ipv6 real behind an ipv4 vip", svc80 + "-a -t 10.0.0.1:80 -r [2001:db8::2] -m\n", "s:2: -r [2001:db8::2]: a real server of another family than the VIP 10.0.0.1 needs tunnelling (-i); written commented out"},
		{"ipv6 netmask without persistence", "-A -t [2001:db8::1]:80 -M 64\n", "s:1: -M 64: a persistence netmask without persistence has no effect"},
		{"tun type", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-type gue --tun-port 6080\n", "s:2: --tun-type gue: uvs tunnels with IPIP only; this real server must accept IPIP"},
		{"tun port", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-type gue --tun-port 6080\n", "s:2: --tun-port 6080: not carried over: uvs tunnels with IPIP only"},
		{"tun csum", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-type gre --tun-nocsum\n", "s:2: --tun-nocsum: not carried over: uvs tunnels with IPIP only"},
		{"daemon", "--start-daemon master --mcast-interface eth0\n", "s:1: --start-daemon: command ignored: it does not describe a service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Ipvsadm("s", []byte(tt.src), Options{})
			if err != nil {
				t.Fatal(err)
			}
			var notes []string
			for _, n := range res.Notes {
				notes = append(notes, n.String())
			}
			if !slices.Contains(notes, tt.want) {
				t.Errorf("no note %q; notes:\n%s", tt.want, strings.Join(notes, "\n"))
			}
			if !containsLine(res.TOML, "# uvs import: "+tt.want) {
				t.Errorf("note %q is not a comment in\n%s", tt.want, res.TOML)
			}
		})
	}
}

// TestIpvsadmErrors checks that malformed input is an *Error with one
// FILE:LINE: message per problem.
func TestIpvsadmErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"host name", "-A -t www.example.com:80\n", []string{`s:1: service address "www.example.com:80": "www.example.com" is a host name; uvs import resolves nothing: save with ipvsadm-save -n (or ipvsadm -Sn)`}},
		{"service name", "-A -t 10.0.0.1:http\n", []string{`s:1: service address "10.0.0.1:http": "http" is a service name; uvs import resolves nothing: save with ipvsadm-save -n (or ipvsadm -Sn)`}},
		{"real host name", svc80 + "-a -t 10.0.0.1:80 -r web1:80\n", []string{`s:2: real server address "web1:80": "web1" is a host name; uvs import resolves nothing: save with ipvsadm-save -n (or ipvsadm -Sn)`}},
		{"port range", "-A -t 10.0.0.1:70000\n", []string{`s:1: service address "10.0.0.1:70000": port 70000 is out of range 0..65535`}},
		{"no command", "-t 10.0.0.1:80\n", []string{"s:1: no command (-A, -E, -a, -e, -D, -d, -C or --set)"}},
		{"two commands", "-A -a -t 10.0.0.1:80\n", []string{"s:1: two commands, -A and -a, on one line"}},
		{"missing argument", "-A -t\n", []string{"s:1: option -t needs an argument"}},
		{"stray word", "-A -t 10.0.0.1:80 rr\n", []string{`s:1: unexpected argument "rr"`}},
		{"twice", "-A -t 10.0.0.1:80 -s rr -s wrr\n", []string{"s:1: option -s given twice"}},
		{"no service", "-A -s rr\n", []string{"s:1: -A needs a virtual service: -t, -u or -f"}},
		{"real option on service", "-A -t 10.0.0.1:80 -w 3\n", []string{"s:1: option -w does not apply to -A"}},
		{"service option on real", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1 -s rr\n", []string{"s:2: option -s does not apply to -a"}},
		{"unknown service", "-a -t 10.0.0.1:80 -r 10.0.1.1\n", []string{"s:1: no virtual service -t 10.0.0.1:80 (add it with -A first)"}},
		{"duplicate service", svc80 + svc80, []string{"s:2: virtual service -t 10.0.0.1:80 already exists (line 1)"}},
		{"edit missing service", "-E -t 10.0.0.1:80\n", []string{"s:1: -E: no virtual service -t 10.0.0.1:80"}},
		{"duplicate real", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1\n-a -t 10.0.0.1:80 -r 10.0.1.1:80\n", []string{"s:3: real server 10.0.1.1:80 already in this service (line 2)"}},
		{"duplicate after dr port", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1\n-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -g\n", []string{"s:3: real server 10.0.1.1:8080 already in this service (line 2)"}},
		{"empty port", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1:\n", []string{`s:2: real server address "10.0.1.1:": missing port after ':'`}},
		{"edit missing real", svc80 + "-e -t 10.0.0.1:80 -r 10.0.1.1\n", []string{"s:2: -e: no real server 10.0.1.1 in this service"}},
		{"delete missing real", svc80 + "-d -t 10.0.0.1:80 -r 10.0.1.1\n", []string{"s:2: -d: no real server 10.0.1.1 in this service"}},
		{"no -r", svc80 + "-a -t 10.0.0.1:80 -w 1\n", []string{"s:2: a real server line needs -r ADDRESS[:PORT]"}},
		{"two methods", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1 -g -m\n", []string{"s:2: -g, -i and -m exclude each other"}},
		{"bad weight", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1 -w 70000\n", []string{`s:2: -w: "70000" must be an integer in 0..65535`}},
		{"bad threshold", svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1 -x -1\n", []string{`s:2: -x: "-1" must be an integer in 0..65535`}},
		{"bad persistence", "-A -t 10.0.0.1:80 -p 0\n", []string{`s:1: -p: timeout "0" must be a positive number of seconds`}},
		{"bad netmask", "-A -t 10.0.0.1:80 -p -M 255.0.255.0\n", []string{"s:1: -M: netmask 255.0.255.0 is not contiguous"}},
		{"bad fwmark", "-A -f 0\n", []string{`s:1: -f: firewall mark "0" must be an integer in 1..4294967295`}},
		{"port 0 without persistence", "-A -t 10.0.0.1:0\n", []string{"s:1: port 0 (all ports) needs persistence (-p), as in IPVS"}},
		{"short set", "--set 1 2\n", []string{"s:1: --set needs three timeouts: tcp tcpfin udp"}},
		{"bad set", "--set 1 x 2\n", []string{`s:1: --set: timeout "x" is not a number of seconds`}},
		{"flag argument", "-A -t 10.0.0.1:80 --ops=1\n", []string{"s:1: option -o takes no argument"}},
		{"unclosed bracket", "-A -t [2001:db8::1:80\n", []string{`s:1: address "[2001:db8::1:80": missing ]`}},
		{"every problem", "-A -t a:80\n-A -t b:80\n", []string{
			`s:1: service address "a:80": "a" is a host name; uvs import resolves nothing: save with ipvsadm-save -n (or ipvsadm -Sn)`,
			`s:2: service address "b:80": "b" is a host name; uvs import resolves nothing: save with ipvsadm-save -n (or ipvsadm -Sn)`,
		}},
		{"overlap", "-A -t 10.0.0.1:80\n-A -f 1\n", []string{"s:2: 10.0.0.1:80/tcp is also the service at s:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := Options{}
			if tt.name == "overlap" {
				opt.Fwmarks = map[uint32]Fwmark{1: {VIP: mustAddr("10.0.0.1"), Ports: []uint16{80, 443}}}
			}
			_, err := Ipvsadm("s", []byte(tt.src), opt)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if got := strings.Split(e.Error(), "\n"); !slices.Equal(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseFwmark(t *testing.T) {
	tests := []struct {
		in      string
		mark    uint32
		ports   []uint16
		proto   string
		wantErr bool
	}{
		{"1=10.0.0.1:80,443", 1, []uint16{80, 443}, "tcp", false},
		{"0x10=10.0.0.1:53/udp", 16, []uint16{53}, "udp", false},
		{"1=10.0.0.1", 0, nil, "", true},
		{"0=10.0.0.1:80", 0, nil, "", true},
		{"1=host:80", 0, nil, "", true},
		{"1=10.0.0.1:80,80", 0, nil, "", true},
		{"1=10.0.0.1:0", 0, nil, "", true},
		{"1=10.0.0.1:80/sctp", 0, nil, "", true},
		{"10.0.0.1:80", 0, nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			mark, fm, err := ParseFwmark(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (mark != tt.mark || !slices.Equal(fm.Ports, tt.ports) || fm.Protocol != tt.proto) {
				t.Errorf("got %d %+v", mark, fm)
			}
		})
	}
}

func TestIpvsadmDelete(t *testing.T) {
	src := svc80 + "-a -t 10.0.0.1:80 -r 10.0.1.1\n-a -t 10.0.0.1:80 -r 10.0.1.2\n-d -t 10.0.0.1:80 -r 10.0.1.1\n" +
		"-A -t 10.0.0.2:80\n-D -t 10.0.0.2:80\n-A -u 10.0.0.3:53\n"
	res, err := Ipvsadm("s", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("x", res.TOML)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Services) != 2 || len(c.Services[0].Reals) != 1 || c.Services[0].Reals[0].Address != mustAddr("10.0.1.2") ||
		c.Services[1].VIP != mustAddr("10.0.0.3") {
		t.Errorf("got %+v", summarize(c))
	}
	res, err = Ipvsadm("s", []byte(src+"-C\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := config.Parse("x", res.TOML); c == nil || len(c.Services) != 0 {
		t.Errorf("-C left services:\n%s", res.TOML)
	}
}
