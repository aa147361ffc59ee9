package config

import (
	"slices"
	"testing"
)

// svc starts a valid service at line 3, after head.
const svc = head + "[[service]]\nvip = \"10.0.0.1\"\nport = 80\n"

// problemCases pins every validation message, as the exact lines `uvs
// check` prints. FuzzParse also uses the sources as seeds.
var problemCases = []struct {
	name string
	src  string
	want []string
}{
	// File level.
	{"syntax", "[director\n", []string{
		`t.toml:2: expected '.' or ']' to end table name, but got '\n' instead`,
	}},
	{"toml duplicate key", head + "workers = 1\nworkers = 2\n", []string{
		`t.toml:4: key 'director.workers' has already been defined`,
	}},
	{"no director", "", []string{
		`t.toml: director.interfaces: required: at least one interface, as in ["eth0"]`,
	}},
	{"director not a table", "director = 1\n", []string{
		`t.toml:1: director: must be a table, not an integer`,
		`t.toml:1: director.interfaces: required: at least one interface, as in ["eth0"]`,
	}},
	{"unknown top-level", head + "[benchmark]\nx = 1\n", []string{
		`t.toml:3: benchmark: unknown key`,
	}},

	// [lab] and [bench].
	{"lab and bench ranges", head + "[lab]\nprefix = \"a b\"\nmtu = 10\nclients = 0\n[bench]\nduration = \"1ms\"\npacket_sizes = [60]\nrate_steps = [0, 100]\ncompare = [\"ipvs\"]\ntx_modes = [\"xdp\"]\ngenerator_cpu = 1\ndirector_cpu = 1\ntests = [\"udp\", \"x\"]\n", []string{
		`t.toml:4: lab.prefix: "a b": only letters, digits, '.', '_' and '-'`,
		`t.toml:5: lab.mtu: 10 is out of range 68..65535`,
		`t.toml:6: lab.clients: 0 is out of range 1..50`,
		`t.toml:8: bench.duration: 1ms is out of range 100ms..600s`,
		`t.toml:9: bench.packet_sizes[0]: 60 is out of range 64..9018 (Ethernet frame bytes, FCS included)`,
		`t.toml:10: bench.rate_steps[0]: 0 is out of range 1..100 (percent of the peak rate)`,
		`t.toml:11: bench.compare[0]: unknown baseline "ipvs" (want kernel, nftables, floor-v3, floor-v2 or floor-afxdp)`,
		`t.toml:12: bench.tx_modes[0]: unknown tx mode "xdp" (want ring or mmsg)`,
		`t.toml:14: bench.director_cpu: CPU 1 is also generator_cpu: the director's cost would hide in the generator's`,
		`t.toml:15: bench.tests[1]: unknown test "x" (want udp, tcp, syn, connect, latency, overload or udp6)`,
	}},
	{"bench typo", head + "[bench]\nflow = 3\n", []string{
		`t.toml:4: bench.flow: unknown key (did you mean "flows"?)`,
	}},

	// [director].
	{"interfaces string", "[director]\ninterfaces = \"eth0\"\n", []string{
		`t.toml:2: director.interfaces: must be an array of strings, not a string`,
	}},
	{"interfaces element type", "[director]\ninterfaces = [\"eth0\", 1]\n", []string{
		`t.toml:2: director.interfaces[1]: must be a string, not an integer`,
	}},
	{"interfaces empty", "[director]\ninterfaces = []\n", []string{
		`t.toml:2: director.interfaces: required: at least one interface, as in ["eth0"]`,
	}},
	{"interface names", "[director]\ninterfaces = [\"eth/0\", \"\", \"eth0\", \"eth0\", \".\", \"a:b\"]\n", []string{
		`t.toml:2: director.interfaces[0]: invalid interface name "eth/0": no '/', ':' or spaces`,
		`t.toml:2: director.interfaces[1]: interface name must not be empty`,
		`t.toml:2: director.interfaces[3]: duplicate interface "eth0"`,
		`t.toml:2: director.interfaces[4]: invalid interface name "."`,
		`t.toml:2: director.interfaces[5]: invalid interface name "a:b": no '/', ':' or spaces`,
	}},
	{"workers range", head + "workers = -1\n", []string{
		`t.toml:3: director.workers: -1 is out of range 1..1024 (or 0 for one per CPU)`,
	}},
	{"workers too many", head + "workers = 1025\n", []string{
		`t.toml:3: director.workers: 1025 is out of range 1..1024 (or 0 for one per CPU)`,
	}},
	{"workers string", head + "workers = \"2\"\n", []string{
		`t.toml:3: director.workers: must be an integer, not a string`,
	}},
	{"control_socket empty", head + "control_socket = \"\"\n", []string{
		`t.toml:3: director.control_socket: must not be empty`,
	}},
	{"control_socket long", head + "control_socket = \"/" + string(make([]byte, 0)) + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n", []string{
		`t.toml:3: director.control_socket: path is 111 bytes, longer than a unix socket allows (107)`,
	}},
	{"metrics_listen no port", head + "metrics_listen = \"localhost\"\n", []string{
		`t.toml:3: director.metrics_listen: "localhost" is not host:port`,
	}},
	{"metrics_listen port 0", head + "metrics_listen = \"127.0.0.1:0\"\n", []string{
		`t.toml:3: director.metrics_listen: "127.0.0.1:0": port must be a number in 1..65535`,
	}},
	{"metrics_listen named port", head + "metrics_listen = \":http\"\n", []string{
		`t.toml:3: director.metrics_listen: ":http": port must be a number in 1..65535`,
	}},
	{"tx_mode", head + "tx_mode = \"ring2\"\n", []string{
		`t.toml:3: director.tx_mode: unknown tx_mode "ring2" (want ring or mmsg)`,
	}},
	{"answer_ping", head + "answer_ping = \"yes\"\n", []string{
		`t.toml:3: director.answer_ping: must be true or false, not a string`,
	}},

	// [conntrack], [timeouts].
	{"max_connections zero", head + "[conntrack]\nmax_connections = 0\n", []string{
		`t.toml:4: conntrack.max_connections: 0 is out of range 1..268435456`,
	}},
	{"max_connections huge", head + "[conntrack]\nmax_connections = 268435457\n", []string{
		`t.toml:4: conntrack.max_connections: 268435457 is out of range 1..268435456`,
	}},
	{"conntrack unknown", head + "[conntrack]\nsloppy = true\n", []string{
		`t.toml:4: conntrack.sloppy: unknown key`,
	}},
	{"timeouts unknown", head + "[timeouts]\nfin = 5\n", []string{
		`t.toml:4: timeouts.fin: unknown key`,
	}},

	// [[service]].
	{"service not array", head + "[service]\nvip = \"10.0.0.1\"\n", []string{
		`t.toml:3: service: must be an array of tables, written [[service]], not a table`,
	}},
	{"vip missing", head + "[[service]]\nport = 80\n", []string{
		`t.toml:3: service[0].vip: required`,
	}},
	{"vip invalid", head + "[[service]]\nvip = \"10.0.0\"\nport = 80\n", []string{
		`t.toml:4: service[0].vip: invalid IP address "10.0.0"`,
	}},
	{"vip ipv4-mapped", head + "[[service]]\nvip = \"::ffff:10.0.0.1\"\nport = 80\n", []string{
		`t.toml:4: service[0].vip: ::ffff:10.0.0.1 is an IPv4-mapped IPv6 address; write it as 10.0.0.1`,
	}},
	{"vip multicast", head + "[[service]]\nvip = \"ff02::1\"\nport = 80\n", []string{
		`t.toml:4: service[0].vip: ff02::1 is not a unicast address`,
	}},
	{"protocol", svc + "protocol = \"sctp\"\n", []string{
		`t.toml:6: service[0].protocol: unknown protocol "sctp" (want tcp or udp)`,
	}},
	{"port string", head + "[[service]]\nvip = \"10.0.0.1\"\nport = \"80\"\n", []string{
		`t.toml:5: service[0].port: must be an integer, not a string`,
	}},
	{"port range", head + "[[service]]\nvip = \"10.0.0.1\"\nport = 65536\n", []string{
		`t.toml:5: service[0].port: 65536 is out of range 0..65535`,
	}},
	{"port missing", head + "[[service]]\nvip = \"10.0.0.1\"\n", []string{
		`t.toml:3: service[0].port: required (0 means all ports; ports = [...] lists several)`,
	}},
	{"port and ports", svc + "ports = [80, 81]\n", []string{
		`t.toml:6: service[0].ports: port and ports cannot both be set`,
	}},
	{"ports empty", head + "[[service]]\nvip = \"10.0.0.1\"\nports = []\n", []string{
		`t.toml:5: service[0].ports: must not be empty`,
	}},
	{"ports bad", head + "[[service]]\nvip = \"10.0.0.1\"\nports = [0, 80, 80, \"x\", 70000]\n", []string{
		`t.toml:5: service[0].ports[3]: must be an integer, not a string`,
		`t.toml:5: service[0].ports[4]: 70000 is out of range 1..65535`,
		`t.toml:5: service[0].ports[0]: port 0 (all ports) cannot be in a list; use port = 0`,
		`t.toml:5: service[0].ports[2]: duplicate port 80`,
	}},
	{"port 0 without persistence", head + "[[service]]\nvip = \"10.0.0.1\"\nport = 0\n", []string{
		`t.toml:5: service[0].port: port 0 (all ports) needs persistence_timeout, as in IPVS`,
	}},
	{"scheduler", svc + "scheduler = \"random\"\n", []string{
		`t.toml:6: service[0].scheduler: unknown scheduler "random" (want one of rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos)`,
	}},
	{"scheduler flags", svc + "scheduler = \"sh\"\nscheduler_flags = [\"sh-port\", \"mh-port\", \"sh-port\", \"fast\"]\n", []string{
		`t.toml:7: service[0].scheduler_flags[1]: flag "mh-port" needs scheduler = "mh"`,
		`t.toml:7: service[0].scheduler_flags[2]: duplicate flag "sh-port"`,
		`t.toml:7: service[0].scheduler_flags[3]: unknown scheduler flag "fast" (want sh-port, sh-fallback, mh-port or mh-fallback)`,
	}},
	{"mh_table_size", svc + "scheduler = \"mh\"\nmh_table_size = 65536\n", []string{
		`t.toml:7: service[0].mh_table_size: 65536 must be a prime in 2..1048576, as Maglev needs`,
	}},
	{"persistence negative", svc + "persistence_timeout = \"-1s\"\n", []string{
		`t.toml:6: service[0].persistence_timeout: must not be negative`,
	}},
	{"netmask without persistence", svc + "persistence_netmask = \"255.255.255.0\"\n", []string{
		`t.toml:6: service[0].persistence_netmask: needs persistence_timeout`,
	}},
	{"forward", svc + "forward = \"masq\"\n", []string{
		`t.toml:6: service[0].forward: unknown forward "masq" (want dr, tun or nat)`,
	}},
	{"one_packet tcp", svc + "one_packet = true\n", []string{
		`t.toml:6: service[0].one_packet: applies only to protocol = "udp"`,
	}},
	{"mss_clamp range", svc + "mss_clamp = 100\n", []string{
		`t.toml:6: service[0].mss_clamp: 100 is out of range 536..9000 (or 0 for off)`,
	}},
	{"mss_clamp udp", svc + "protocol = \"udp\"\nmss_clamp = 1400\n", []string{
		`t.toml:7: service[0].mss_clamp: applies only to protocol = "tcp"`,
	}},
	{"tunnel_source family", svc + "tunnel_source = \"2001:db8::1\"\nforward = \"tun\"\n[[service.real]]\naddress = \"10.0.0.2\"\n", []string{
		`t.toml:6: service[0].tunnel_source: 2001:db8::1 is not of the family of real[0] 10.0.0.2, the tunnel's outer header`,
	}},
	{"tunnel_source invalid", svc + "tunnel_source = \"here\"\n", []string{
		`t.toml:6: service[0].tunnel_source: invalid IP address "here"`,
	}},
	{"dead_real reset udp", svc + "protocol = \"udp\"\ndead_real = \"reset\"\n", []string{
		`t.toml:7: service[0].dead_real: "reset" applies only to protocol = "tcp"`,
	}},
	{"dead_real bogus", svc + "dead_real = \"drop\"\n", []string{
		`t.toml:6: service[0].dead_real: unknown dead_real "drop" (want keep, expire or reset)`,
	}},
	{"service unknown key", svc + "reals = []\n", []string{
		`t.toml:6: service[0].reals: unknown key (did you mean "real"?)`,
	}},
	{"duplicate endpoint", svc + "[[service]]\nvip = \"10.0.0.1\"\nport = 80\n", []string{
		`t.toml:8: service[1].port: 10.0.0.1:80/tcp is also service[0]`,
	}},
	{"overlapping ports", svc + "[[service]]\nvip = \"10.0.0.1\"\nports = [443, 80]\npersistence_timeout = 5\n", []string{
		`t.toml:8: service[1].ports[1]: 10.0.0.1:80/tcp is also service[0]`,
	}},
	{"duplicate name", svc + "name = \"a\"\n[[service]]\nname = \"a\"\nvip = \"10.0.0.2\"\nport = 80\n", []string{
		`t.toml:8: service[1].name: duplicate service name "a" (also service[0])`,
	}},

	// [[service.real]].
	{"real not array", svc + "[service.real]\naddress = \"10.0.0.2\"\n", []string{
		`t.toml:6: service[0].real: must be an array of tables, written [[service.real]], not a table`,
	}},
	{"check not table", svc + "check = \"tcp\"\n", []string{
		`t.toml:6: service[0].check: must be a table, not a string`,
	}},
	{"real address missing", svc + "[[service.real]]\nweight = 1\n", []string{
		`t.toml:6: service[0].real[0].address: required`,
	}},
	{"real ipv6", svc + "[[service.real]]\naddress = \"::1\"\n", []string{
		`t.toml:7: service[0].real[0].address: ::1 and the VIP 10.0.0.1 are of different families: only forward = "tun" carries one in the other (4-in-6)`,
	}},
	{"real weight", svc + "[[service.real]]\naddress = \"10.0.0.2\"\nweight = -1\n[[service.real]]\naddress = \"10.0.0.3\"\nweight = 65536\n", []string{
		`t.toml:8: service[0].real[0].weight: -1 is out of range 0..65535`,
		`t.toml:11: service[0].real[1].weight: 65536 is out of range 0..65535`,
	}},
	{"real duplicate", svc + "[[service.real]]\naddress = \"10.0.0.2\"\n[[service.real]]\naddress = \"10.0.0.2\"\nport = 80\n", []string{
		`t.toml:9: service[0].real[1].address: 10.0.0.2 port 80 is also real[0]`,
	}},
	{"real port mapping", svc + "[[service.real]]\naddress = \"10.0.0.2\"\nport = 8080\n", []string{
		`t.toml:8: service[0].real[0].port: 8080 differs from the service port 80: port mapping needs forward = "nat"`,
	}},
	{"real port mapping tun", svc + "forward = \"nat\"\n[[service.real]]\naddress = \"10.0.0.2\"\nport = 8080\nforward = \"tun\"\n", []string{
		`t.toml:9: service[0].real[0].port: 8080 differs from the service port 80: port mapping needs forward = "nat"`,
	}},
	{"real forward", svc + "[[service.real]]\naddress = \"10.0.0.2\"\nforward = \"route\"\n", []string{
		`t.toml:8: service[0].real[0].forward: unknown forward "route" (want dr, tun or nat)`,
	}},
	{"real thresholds", svc + "[[service.real]]\naddress = \"10.0.0.2\"\nupper_threshold = -1\nlower_threshold = -2\n[[service.real]]\naddress = \"10.0.0.3\"\nupper_threshold = 10\nlower_threshold = 20\n", []string{
		`t.toml:8: service[0].real[0].upper_threshold: must not be negative`,
		`t.toml:9: service[0].real[0].lower_threshold: must not be negative`,
		`t.toml:13: service[0].real[1].lower_threshold: 20 is above upper_threshold 10`,
	}},
	{"real unknown key", svc + "[[service.real]]\naddress = \"10.0.0.2\"\nwieght = 2\n", []string{
		`t.toml:8: service[0].real[0].wieght: unknown key (did you mean "weight"?)`,
	}},

	// Checks.
	{"check type missing", svc + "[service.check]\ninterval = 1\n", []string{
		`t.toml:6: service[0].check.type: required (tcp, http, https, udp, exec or none)`,
	}},
	{"check type bogus", svc + "[service.check]\ntype = \"icmp\"\n", []string{
		`t.toml:7: service[0].check.type: unknown check type "icmp" (want tcp, http, https, udp, exec or none)`,
	}},
	{"check times", svc + "[service.check]\ntype = \"tcp\"\ninterval = 0\ntimeout = \"-1s\"\n", []string{
		`t.toml:8: service[0].check.interval: must be positive, not 0s`,
		`t.toml:9: service[0].check.timeout: must be positive, not -1s`,
	}},
	{"check timeout above interval", svc + "[service.check]\ntype = \"tcp\"\ninterval = \"1s\"\ntimeout = \"2s\"\n", []string{
		`t.toml:9: service[0].check.timeout: 2s is longer than interval 1s`,
	}},
	{"check rise fall", svc + "[service.check]\ntype = \"tcp\"\nrise = 0\nfall = -1\n", []string{
		`t.toml:8: service[0].check.rise: must be at least 1, not 0`,
		`t.toml:9: service[0].check.fall: must be at least 1, not -1`,
	}},
	{"check http", svc + "[service.check]\ntype = \"http\"\npath = \"healthz\"\nexpect_status = [200, 99, \"x\"]\ncheck_port = 70000\n", []string{
		`t.toml:8: service[0].check.path: "healthz" must start with "/"`,
		`t.toml:9: service[0].check.expect_status[1]: HTTP status 99 is out of range 100..599`,
		`t.toml:9: service[0].check.expect_status[2]: must be an integer, not a string`,
		`t.toml:10: service[0].check.check_port: 70000 is out of range 0..65535`,
	}},
	{"check expect_status type", svc + "[service.check]\ntype = \"http\"\nexpect_status = \"200\"\n", []string{
		`t.toml:8: service[0].check.expect_status: must be an HTTP status or an array of them, not a string`,
	}},
	{"failure policy", svc + "on_failure = \"drop\"\nslow_start = \"-1s\"\nsorry_server = \"10.0.0.9:x\"\nquorum = 0\nhysteresis = -1\n", []string{
		`t.toml:6: service[0].on_failure: unknown on_failure "drop" (want quiesce or remove)`,
		`t.toml:7: service[0].slow_start: must not be negative`,
		`t.toml:8: service[0].sorry_server: invalid address "10.0.0.9:x": want "ip:port" or "ip", as in "10.0.0.9:80"`,
		`t.toml:9: service[0].quorum: 0 is out of range 1..67107840`,
		`t.toml:10: service[0].hysteresis: -1 is out of range 0..quorum-1`,
	}},
	{"hysteresis above quorum", svc + "quorum = 2\nhysteresis = 2\nsorry_server = \"2001:db8::1\"\n", []string{
		`t.toml:7: service[0].hysteresis: 2 is out of range 0..quorum-1`,
		`t.toml:8: service[0].sorry_server: 2001:db8::1 is not of the VIP's family (10.0.0.1)`,
	}},
	{"check keepalived keys", svc + "[service.check]\ntype = \"http\"\ndigest = \"ABC\"\nwarmup = \"-1s\"\nvia = \"lo\"\ntls_verify = true\n", []string{
		`t.toml:8: service[0].check.digest: "ABC" is not an MD5 digest: want 32 lowercase hex digits, as genhash prints`,
		`t.toml:9: service[0].check.warmup: must not be negative`,
		`t.toml:10: service[0].check.via: unknown via "lo" (want real or vip)`,
		`t.toml:11: service[0].check.tls_verify: applies only to https checks, not http`,
	}},
	{"check via vip on a nat real", svc + "[service.check]\ntype = \"tcp\"\nvia = \"vip\"\n[[service.real]]\naddress = \"10.0.0.2\"\nforward = \"nat\"\n", []string{
		`t.toml:11: service[0].real[0].forward: "nat" with the service's via = "vip" check: it needs "dr" (give this real a check of its own)`,
	}},
	{"check via vip needs dr", svc + "forward = \"nat\"\n[service.check]\ntype = \"tcp\"\nvia = \"vip\"\n", []string{
		`t.toml:9: service[0].check.via: "vip" needs forward = "dr", not "nat"`,
	}},
	{"check exec", svc + "[service.check]\ntype = \"exec\"\n", []string{
		`t.toml:6: service[0].check.command: required for exec checks, as an argv list: ["/path/to/prog", "arg"]`,
	}},
	{"check exec string", svc + "[service.check]\ntype = \"exec\"\ncommand = \"/bin/check --fast\"\n", []string{
		`t.toml:8: service[0].check.command: must be an array of strings, not a string`,
	}},
	{"check keys for other types", svc + "[service.check]\ntype = \"tcp\"\npath = \"/\"\ncommand = [\"x\"]\n[[service.real]]\naddress = \"10.0.0.2\"\n[service.real.check]\ntype = \"http\"\npayload = \"x\"\n", []string{
		`t.toml:8: service[0].check.path: applies only to http or https checks, not tcp`,
		`t.toml:9: service[0].check.command: applies only to exec checks, not tcp`,
		`t.toml:14: service[0].real[0].check.payload: applies only to tcp or udp checks, not http`,
	}},
	{"check expect regexp", svc + "[service.check]\ntype = \"tcp\"\nexpect = \"(\"\n", []string{
		"t.toml:8: service[0].check.expect: invalid regular expression: missing closing ): `(`",
	}},
	{"check unknown key", svc + "[service.check]\ntype = \"tcp\"\nretries = 3\n", []string{
		`t.toml:8: service[0].check.retries: unknown key`,
	}},
}

func TestProblems(t *testing.T) {
	for _, tt := range problemCases {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.src)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", quoteLines(got), quoteLines(tt.want))
			}
		})
	}
}

func quoteLines(ls []string) string {
	s := ""
	for _, l := range ls {
		s += "\t`" + l + "`,\n"
	}
	return s
}
