package migrate

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// vs wraps body in a virtual_server with one real server whose block is
// rs.
func vs(body, rs string) string {
	return "virtual_server 10.0.0.1 80 {\n" + body + "real_server 10.0.1.1 80 {\n" + rs + "}\n}\n"
}

// TestKeepalivedKeywords checks that each keyword lands on its uvs key.
func TestKeepalivedKeywords(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"default nat", vs("", ""), []string{`forward = "nat"`}},
		{"lb_kind DR", vs("lb_kind DR\n", ""), []string{`forward = "dr"`}},
		{"lb_kind tun", vs("lb_kind tun\n", ""), []string{`forward = "tun"`}},
		{"lvs_method", vs("lvs_method DR\n", ""), []string{`forward = "dr"`}},
		{"lb_algo", vs("lb_algo wlc\n", ""), []string{`scheduler = "wlc"`}},
		{"lvs_sched", vs("lvs_sched lc\n", ""), []string{`scheduler = "lc"`}},
		{"persistence", vs("persistence_timeout 50\n", ""), []string{`persistence_timeout = "50s"`}},
		{"persistence default", vs("persistence_timeout\n", ""), []string{`persistence_timeout = "360s"`}},
		{"granularity", vs("persistence_timeout 5\npersistence_granularity 255.255.255.0\n", ""), []string{`persistence_netmask = "255.255.255.0"`}},
		{"protocol udp", vs("protocol UDP\n", ""), []string{`protocol = "udp"`}},
		{"ops", vs("protocol UDP\nops\n", ""), []string{"one_packet = true"}},
		{"scheduler flags", vs("sh-port\nlb_algo sh\nsh-fallback\n", ""), []string{`scheduler_flags = ["sh-port", "sh-fallback"]`}},
		{"weight", vs("", "weight 7\n"), []string{"weight = 7"}},
		{"thresholds", vs("", "uthreshold 10\nlthreshold 5\n"), []string{"upper_threshold = 10", "lower_threshold = 5"}},
		{"real port nat", "virtual_server 10.0.0.1 80 {\nreal_server 10.0.1.1 8080 {\n}\n}\n", []string{"port = 8080"}},
		{"real without port", "virtual_server 10.0.0.1 80 {\nreal_server 10.0.1.1 {\n}\n}\n", []string{`address = "10.0.1.1"`}},
		{"tcp check", vs("delay_loop 3\n", "TCP_CHECK {\nconnect_port 81\nconnect_timeout 2\nretry 4\n}\n"),
			[]string{"[service.check]", `type = "tcp"`, `interval = "3s"`, `timeout = "2s"`, "check_port = 81", "fall = 5"}},
		{"check defaults", vs("", "TCP_CHECK {\n}\n"), []string{`interval = "60s"`, `timeout = "5s"`}},
		{"fractional delay", vs("delay_loop 1.5\n", "TCP_CHECK {\nconnect_timeout 0.5\n}\n"), []string{`interval = "1500ms"`, `timeout = "500ms"`}},
		{"checker delay_loop", vs("delay_loop 9\n", "TCP_CHECK {\ndelay_loop 4\nconnect_timeout 1\n}\n"), []string{`interval = "4s"`}},
		{"http", vs("", "HTTP_GET {\nurl {\npath /x\nstatus_code 200 204\n}\n}\n"), []string{`type = "http"`, `path = "/x"`, "expect_status = [200, 204]"}},
		{"status range", vs("", "HTTP_GET {\nurl {\npath /\nstatus_code 200-202\n}\n}\n"), []string{"expect_status = [200, 201, 202]"}},
		{"ssl", vs("", "SSL_GET {\nurl {\npath /\n}\nconnect_port 443\n}\n"), []string{`type = "https"`, "check_port = 443"}},
		{"virtualhost", vs("virtualhost www.example.com\n", "HTTP_GET {\nurl {\npath /\n}\n}\n"), []string{`host = "www.example.com"`}},
		{"checker virtualhost", vs("virtualhost a.example\n", "HTTP_GET {\nvirtualhost b.example\nurl {\npath /\n}\n}\n"), []string{`host = "b.example"`}},
		{"relative path", vs("", "HTTP_GET {\nurl {\npath index.html\n}\n}\n"), []string{`path = "/index.html"`}},
		{"misc", vs("", "MISC_CHECK {\nmisc_path \"/bin/check 10.0.1.1\"\nmisc_timeout 3\n}\n"), []string{`type = "exec"`, `command = ["/bin/check", "10.0.1.1"]`, `timeout = "3s"`}},
		{"udp", vs("protocol UDP\n", "UDP_CHECK {\nconnect_port 53\npayload 70696e67\nrequire_reply 706f6e67\n}\n"),
			[]string{`type = "udp"`, "check_port = 53", `payload = "ping"`, `expect = "^pong"`}},
		{"smtp", vs("", "SMTP_CHECK {\n}\n"), []string{`type = "tcp"`, "check_port = 25", `expect = "^220"`}},
		{"misc shell", vs("", "MISC_CHECK {\nmisc_path \"/bin/check | grep ok\"\n}\n"), []string{`command = ["/bin/sh", "-c", "/bin/check | grep ok"]`}},
		{"per-real checks", "virtual_server 10.0.0.1 80 {\nreal_server 10.0.1.1 80 {\nTCP_CHECK {\n}\n}\nreal_server 10.0.1.2 80 {\n}\n}\n",
			[]string{"[service.real.check]"}},
		{"comments", "# a\n! b\nvirtual_server 10.0.0.1 80 { # c\n lb_algo rr ! d\n}\n", []string{`scheduler = "rr"`}},
		{"braces on one line", "virtual_server 10.0.0.1 80 { lb_algo sh }\n", []string{`scheduler = "sh"`}},
		{"quoted brace", vs("", "MISC_CHECK {\nmisc_path \"/bin/x {}\"\n}\n"), []string{`command = ["/bin/x", "{}"]`}},
		{"group", "virtual_server_group WEB {\n10.0.0.1 80\n10.0.0.1 443\n10.0.0.2-3 80\n}\nvirtual_server group WEB {\nlb_kind DR\nreal_server 10.0.1.1 {\n}\n}\n",
			[]string{`vip = "10.0.0.1"`, "ports = [80, 443]", `vip = "10.0.0.2"`, `vip = "10.0.0.3"`, "port = 80", "# From k:6: virtual_server group WEB (group WEB: 10.0.0.3)"}},
		{"group fwmark", "virtual_server group G {\n}\nvirtual_server_group G {\nfwmark 3\n}\n", []string{"# [[service]]", "# ports = [PORT, PORT]"}},
		{"fwmark stub", "virtual_server fwmark 1 {\nreal_server 10.0.1.1 80 {\n}\n}\n", []string{"# [[service]]", "# ports = [PORT, PORT]"}},
		{"ipv6", "virtual_server 2001:db8::1 80 {\npersistence_timeout 60\npersistence_granularity 64\nlb_kind NAT\nreal_server 2001:db8::2 8080 {\n}\n}\n",
			[]string{`vip = "2001:db8::1"`, "persistence_netmask = 64", `address = "2001:db8::2"`}},
		{"6-in-4", "virtual_server 10.0.0.1 80 {\nlb_kind TUN\nreal_server 2001:db8::2 80 {\n}\n}\n", []string{`vip = "10.0.0.1"`, `address = "2001:db8::2"`}},
		{"sctp stub", vs("protocol SCTP\n", ""), []string{"# [[service]]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Keepalived("k", []byte(tt.src), Options{})
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

// TestKeepalivedNotes checks the "# uvs import:" comment for each setting
// that is not carried over.
func TestKeepalivedNotes(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"sorry_server", vs("sorry_server 10.0.9.9 8080\n", ""), `k:2: sorry_server = "10.0.9.9:8080": uvs has no sorry_server key yet`},
		{"sorry_server same port", vs("sorry_server 10.0.9.9 80\n", ""), `k:2: sorry_server = "10.0.9.9": uvs has no sorry_server key yet`},
		{"sorry_server all ports", "virtual_server 10.0.0.1 0 {\npersistence_timeout 60\nsorry_server 10.0.9.9 80\n}\n", "k:3: sorry_server port 80: a multi-port or all-ports service sends to the sorry server on the client's port"},
		{"sorry_server v6", vs("sorry_server 2001:db8::9 80\n", ""), "k:2: sorry_server 2001:db8::9: not of the VIP's family; left out"},
		{"quorum", vs("quorum 3\n", ""), "k:2: quorum = 3: uvs has no quorum key yet"},
		{"hysteresis", vs("quorum 3\nhysteresis 1\n", ""), "k:3: hysteresis = 1: uvs has no hysteresis key yet"},
		{"hysteresis over quorum", vs("hysteresis 1\n", ""), "k:2: hysteresis 1: must be below the quorum 1; left out"},
		{"quorum 0", vs("quorum 0\n", ""), "k:2: quorum 0: out of range 1..67107840; left out"},
		{"inhibit_on_failure", vs("", "inhibit_on_failure\nTCP_CHECK {\n}\n"), `k:3: on_failure = "quiesce": uvs has no on_failure key yet`},
		{"no inhibit_on_failure", vs("", "TCP_CHECK {\n}\n"), `k:1: on_failure = "remove": uvs has no on_failure key yet`},
		{"inhibit without check", vs("", "inhibit_on_failure\n"), "k:3: inhibit_on_failure: no effect without a health check"},
		{"inhibit on some", "virtual_server 10.0.0.1 80 {\nreal_server 10.0.1.1 80 {\ninhibit_on_failure\nTCP_CHECK {\n}\n}\nreal_server 10.0.1.2 80 {\nTCP_CHECK {\n}\n}\n}\n",
			`k:3: inhibit_on_failure: uvs sets on_failure per service, and only some of this virtual_server's reals have it; on_failure = "remove" applies to all`},
		{"warmup", vs("", "TCP_CHECK {\nwarmup 5\n}\n"), `k:4: warmup = "5s": uvs has no warmup key yet`},
		{"digest", vs("", "HTTP_GET {\nurl {\npath /\ndigest 9E107D9D372BB6826BD81D3542A419D6\n}\n}\n"), `k:6: digest = "9e107d9d372bb6826bd81d3542a419d6": uvs has no digest key yet`},
		{"bad digest", vs("", "HTTP_GET {\nurl {\npath /\ndigest abc\n}\n}\n"), "k:6: digest abc: not an MD5 digest (32 hex digits, as genhash prints); left out"},
		{"nat_mask", vs("nat_mask 255.255.255.0\n", ""), "k:2: nat_mask: obsolete in keepalived and has no uvs equivalent"},
		{"unknown vs keyword", vs("ha_suspend\n", ""), "k:2: ha_suspend: not carried over: uvs has no equivalent"},
		{"unknown real keyword", vs("", "notify_up /bin/up\n"), "k:3: notify_up /bin/up: not carried over: uvs has no equivalent"},
		{"unknown checker keyword", vs("", "TCP_CHECK {\nbindto 10.0.0.9\n}\n"), "k:4: bindto 10.0.0.9 in TCP_CHECK: not carried over: uvs has no equivalent"},
		{"unknown url keyword", vs("", "HTTP_GET {\nurl {\npath /\nregex ok\n}\n}\n"), "k:6: regex ok in url: not carried over: uvs has no equivalent"},
		{"misc_path elsewhere", vs("", "TCP_CHECK {\nmisc_path /bin/x\n}\n"), "k:4: misc_path in TCP_CHECK: not carried over: it belongs in MISC_CHECK"},
		{"other checker", vs("", "PING_CHECK {\n}\n"), "k:3: PING_CHECK: not carried over: uvs has no equivalent"},
		{"dropped check", vs("", "PING_CHECK {\n}\n"), "k:2: real_server 10.0.1.1: no health check carried over: uvs will never mark this real server down"},
		{"smtp check", vs("", "SMTP_CHECK {\nhelo_name x\n}\n"), "k:3: SMTP_CHECK: converted to a tcp check that expects the 220 greeting; uvs does not send HELO"},
		{"smtp helo", vs("", "SMTP_CHECK {\nhelo_name x\n}\n"), "k:4: helo_name in SMTP_CHECK: not carried over: uvs does not send HELO"},
		{"udp without require_reply", vs("", "UDP_CHECK {\n}\n"), "k:3: UDP_CHECK: without require_reply keepalived passes unless an ICMP port unreachable comes back; uvs's udp check needs a reply, so a real server that never answers will be marked down"},
		{"udp reply length", vs("", "UDP_CHECK {\nrequire_reply\nmin_reply_length 4\n}\n"), "k:5: min_reply_length 4 in UDP_CHECK: not carried over: uvs checks the reply's content, not its length"},
		{"udp binary payload", vs("", "UDP_CHECK {\npayload ff00\nrequire_reply\n}\n"), `k:4: payload in UDP_CHECK: not carried over: uvs takes text, and "ff00" is not hex for valid UTF-8 text (a masked reply is not supported either)`},
		{"second checker", vs("", "TCP_CHECK {\n}\nHTTP_GET {\n}\n"), "k:5: HTTP_GET: uvs runs one check per real server; the first one is kept"},
		{"second url", vs("", "HTTP_GET {\nurl {\npath /a\n}\nurl {\npath /b\n}\n}\n"), "k:7: url: uvs checks one path per real server; the first url is kept"},
		{"timeout over interval", vs("delay_loop 2\n", "TCP_CHECK {\nconnect_timeout 5\n}\n"), "k:4: TCP_CHECK: timeout 5s is longer than the interval 2s; uvs caps it at the interval"},
		{"unknown scheduler", vs("lb_algo foo\n", ""), "k:2: lb_algo foo: uvs has no such scheduler; it uses wlc"},
		{"granularity without persistence", vs("persistence_granularity 255.255.0.0\n", ""), "k:2: persistence_granularity 255.255.0.0: no effect without persistence_timeout"},
		{"flag for other scheduler", vs("lb_algo rr\nmh-port\n", ""), "k:1: scheduler flag mh-port: applies only to the mh scheduler"},
		{"ops on tcp", vs("ops\n", ""), "k:2: ops: one-packet scheduling applies only to protocol UDP"},
		{"dr port", "virtual_server 10.0.0.1 80 {\nlb_kind DR\nreal_server 10.0.1.1 8080 {\n}\n}\n", "k:3: port 8080: with dr the real server receives the service port 80, as in IPVS; left out"},
		{"lthreshold above", vs("", "uthreshold 5\nlthreshold 9\n"), "k:2: lthreshold 9: above uthreshold 5; left out"},
		{"global block", "global_defs {\nrouter_id x\n}\n", "k:2: global_defs router_id x: not carried over"},
		{"top-level statement", "net_namespace blue\n", "k:1: net_namespace blue: not carried over: not part of a virtual_server"},
		{"unused group", "virtual_server_group G {\n10.0.0.1 80\n}\n", "k:1: virtual_server_group G: no virtual_server uses it"},
		{"group port 0", "virtual_server_group G {\n10.0.0.1 0\n10.0.0.1 80\n}\nvirtual_server group G {\npersistence_timeout 60\n}\n",
			"k:5: virtual_server group G (group G: 10.0.0.1): port 0 (all ports) covers the group's other ports of 10.0.0.1; one all-ports service"},
		{"include without fs", "include /etc/keepalived/x.conf\n", "k:1: include /etc/keepalived/x.conf: not followed: give uvs import the file's path (not stdin) to follow includes in its directory; convert the included file on its own otherwise"},
		{"fwmark", "virtual_server fwmark 4 {\n}\n", "k:1: virtual_server fwmark 4: uvs has no firewall-mark services: it matches the VIP and ports itself, with a multi-port service (ports = [...]); the input does not say which VIP and ports mark 4 covers (the iptables/nftables rules do). Fill in vip and ports and uncomment, or re-run with --fwmark 4=VIP:PORT,PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Keepalived("k", []byte(tt.src), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !hasNoteOrSetting(res.TOML, tt.want) {
				t.Errorf("no note (or, for a target key switched on, setting) %q in\n%s", tt.want, res.TOML)
			}
			if m := targetNote.FindStringSubmatch(tt.want); m != nil && targetKeys[m[1]] {
				return
			}
			var notes []string
			for _, n := range res.Notes {
				notes = append(notes, n.String())
			}
			if !slices.Contains(notes, tt.want) {
				t.Errorf("no note %q in Result.Notes:\n%s", tt.want, strings.Join(notes, "\n"))
			}
		})
	}
}

// TestKeepalivedErrors checks that malformed input is an *Error with one
// FILE:LINE: message per problem.
func TestKeepalivedErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unclosed", "virtual_server 10.0.0.1 80 {\nlb_algo rr\n", []string{"k:1: virtual_server block is not closed: missing }"}},
		{"extra close", "virtual_server 10.0.0.1 80 {\n}\n}\n", []string{"k:3: } without a matching {"}},
		{"brace alone", "{\n}\n", []string{"k:1: { without a keyword before it"}},
		{"quote", "virtual_server 10.0.0.1 80 {\nvirtualhost \"x\n}\n", []string{"k:2: unterminated quoted string"}},
		{"host name", "virtual_server www.example.com 80 {\n}\n", []string{`k:1: virtual_server: "www.example.com" is not an IP address (uvs import resolves nothing)`}},
		{"port name", "virtual_server 10.0.0.1 http {\n}\n", []string{`k:1: virtual_server: port "http" must be a number in 0..65535 (uvs import resolves nothing)`}},
		{"vs args", "virtual_server 10.0.0.1 {\n}\n", []string{"k:1: virtual_server needs IP PORT, fwmark MARK or group NAME"}},
		{"bad fwmark", "virtual_server fwmark x {\n}\n", []string{`k:1: virtual_server fwmark "x": mark must be an integer in 1..4294967295`}},
		{"real host name", vsReal("real_server web1 80 {\n}\n"), []string{`k:2: real_server: "web1" is not an IP address (uvs import resolves nothing)`}},
		{"real no block", vsReal("real_server 10.0.1.1 80\n"), []string{"k:2: real_server needs a { ... } block"}},
		{"real args", vsReal("real_server {\n}\n"), []string{"k:2: real_server takes 1 to 2 arguments"}},
		{"weight", vs("", "weight heavy\n"), []string{`k:3: weight "heavy": want an integer in 0..65535`}},
		{"weight range", vs("", "weight 65536\n"), []string{`k:3: weight "65536": want an integer in 0..65535`}},
		{"lb_kind", vs("lb_kind FULLNAT\n", ""), []string{`k:2: lb_kind "FULLNAT": want NAT, DR or TUN`}},
		{"protocol", vs("protocol ICMP\n", ""), []string{`k:2: protocol "ICMP": want TCP, UDP or SCTP`}},
		{"delay_loop", vs("delay_loop 0\n", ""), []string{`k:2: delay_loop "0": want a positive number of seconds`}},
		{"delay_loop args", vs("delay_loop\n", ""), []string{"k:2: delay_loop needs one argument"}},
		{"persistence", vs("persistence_timeout x\n", ""), []string{`k:2: persistence_timeout "x": want a number of seconds`}},
		{"granularity", vs("persistence_granularity 255.0.255.0\n", ""), []string{"k:2: persistence_granularity 255.0.255.0: netmask is not contiguous"}},
		{"status", vs("", "HTTP_GET {\nurl {\nstatus_code 99\n}\n}\n"), []string{`k:5: status_code "99": want HTTP statuses in 100..599 (N or N-M)`}},
		{"misc without path", vs("", "MISC_CHECK {\n}\n"), []string{"k:3: MISC_CHECK needs misc_path"}},
		{"checker no block", vs("", "TCP_CHECK\n"), []string{"k:3: TCP_CHECK needs a { ... } block"}},
		{"connect_port", vs("", "TCP_CHECK {\nconnect_port 99999\n}\n"), []string{`k:4: connect_port: port "99999" must be a number in 0..65535 (uvs import resolves nothing)`}},
		{"port 0", "virtual_server 10.0.0.1 0 {\n}\n", []string{"k:1: virtual_server 10.0.0.1 0: port 0 (all ports) needs persistence_timeout, as in IPVS"}},
		{"duplicate real", vsReal("real_server 10.0.1.1 80 {\n}\nreal_server 10.0.1.1 80 {\n}\n"), []string{"k:4: real_server 10.0.1.1 80 is already in this virtual_server (line 2)"}},
		{"duplicate service", "virtual_server 10.0.0.1 80 {\n}\nvirtual_server 10.0.0.1 80 {\n}\n", []string{"k:3: 10.0.0.1:80/tcp is also the service at k:1"}},
		{"sorry_server", vs("sorry_server sorry 80\n", ""), []string{`k:2: sorry_server: "sorry" is not an IP address`}},
		{"vs no block", "virtual_server 10.0.0.1 80\n", []string{"k:1: virtual_server needs a { ... } block"}},
		{"no group", "virtual_server group G {\n}\n", []string{"k:1: virtual_server group G: no virtual_server_group G in this file"}},
		{"group twice", "virtual_server_group G {\n}\nvirtual_server_group G {\n}\n", []string{"k:3: virtual_server_group G is already defined at k:1"}},
		{"group entry", "virtual_server_group G {\n10.0.0.1\n}\nvirtual_server group G {\n}\n", []string{"k:2: virtual_server_group G: want IP PORT, IP-LAST PORT or fwmark MARK"}},
		{"group range", "virtual_server_group G {\n10.0.0.5-3 80\n}\nvirtual_server group G {\n}\n", []string{`k:2: virtual_server_group: range "10.0.0.5-3": want A.B.C.D-E with E from D to 255`}},
		{"group error once", "virtual_server_group G {\n10.0.0.1 80\n10.0.0.2 80\n}\nvirtual_server group G {\nlb_kind X\n}\n", []string{`k:6: lb_kind "X": want NAT, DR or TUN`}},
		{"include args", "include\n", []string{"k:1: include needs one path"}},
		{"every problem", vs("lb_kind X\nprotocol Y\n", ""), []string{`k:2: lb_kind "X": want NAT, DR or TUN`, `k:3: protocol "Y": want TCP, UDP or SCTP`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Keepalived("k", []byte(tt.src), Options{})
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

func vsReal(reals string) string { return "virtual_server 10.0.0.1 80 {\n" + reals + "}\n" }

func TestKeepalivedInclude(t *testing.T) {
	fsys := fstest.MapFS{
		"conf.d/a.conf": {Data: []byte("virtual_server 10.0.0.2 80 {\nlb_kind DR\n}\n")},
		"conf.d/b.conf": {Data: []byte("virtual_server 10.0.0.3 80 {\n")},
		"loop.conf":     {Data: []byte("include loop.conf\n")},
	}
	inc := &Include{FS: fsys, Dir: "/etc/keepalived"}
	tests := []struct {
		name  string
		src   string
		notes []string
		err   []string
		vips  int
	}{
		{"relative glob", "include conf.d/a*.conf\n", []string{"k:1: include conf.d/a*.conf: followed: /etc/keepalived/conf.d/a.conf is part of this conversion"}, nil, 1},
		{"absolute inside", "include /etc/keepalived/conf.d/a.conf\n", nil, nil, 1},
		{"absolute outside", "include /etc/other/x.conf\n", []string{"k:1: include /etc/other/x.conf: not followed: it is outside /etc/keepalived, the directory of the imported file; convert it on its own"}, nil, 0},
		{"dotdot", "include ../x.conf\n", []string{"k:1: include ../x.conf: not followed: it is outside the directory of the imported file; convert it on its own"}, nil, 0},
		{"no match", "include none/*.conf\n", []string{"k:1: include none/*.conf: no file matches it"}, nil, 0},
		{"error in included file", "include conf.d/b.conf\n", nil, []string{"/etc/keepalived/conf.d/b.conf:1: virtual_server block is not closed: missing }"}, 0},
		{"cycle", "include loop.conf\n", nil, []string{"/etc/keepalived/loop.conf:1: include loop.conf: loop.conf includes itself"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Keepalived("k", []byte(tt.src), Options{Include: inc})
			if tt.err != nil {
				var e *Error
				if !errors.As(err, &e) || !slices.Equal(strings.Split(e.Error(), "\n"), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var notes []string
			for _, n := range res.Notes {
				notes = append(notes, n.String())
			}
			for _, n := range tt.notes {
				if !slices.Contains(notes, n) {
					t.Errorf("no note %q in %q", n, notes)
				}
			}
			if got := strings.Count(string(res.TOML), "\n[[service]]"); got != tt.vips {
				t.Errorf("%d services, want %d:\n%s", got, tt.vips, res.TOML)
			}
		})
	}
}
