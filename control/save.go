package control

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uvs-project/uvs/config"
)

// ConfigTOML renders cfg as a uvs TOML file that config.Parse accepts and that parses back
// to the same Config (Source and Line fields aside). Keys at their defaults are written
// too where an operator would want to see them (scheduler, forward, weight).
func ConfigTOML(cfg *config.Config) string { return configTOML(cfg, false) }

// configTOML is ConfigTOML; with secrets it also writes the secrets (sync_save.go).
func configTOML(cfg *config.Config, secrets bool) string {
	var b strings.Builder
	b.WriteString("# uvs configuration, saved from the running director by uvs save\n")
	d := &cfg.Director
	fmt.Fprintf(&b, "[director]\ninterfaces = %s\n", tomlStrings(d.Interfaces))
	fmt.Fprintf(&b, "workers = %d\n", d.Workers)
	fmt.Fprintf(&b, "control_socket = %s\n", config.Quote(d.ControlSocket))
	if d.MetricsListen != "" {
		fmt.Fprintf(&b, "metrics_listen = %s\n", config.Quote(d.MetricsListen))
	}
	if d.TXMode != 0 {
		fmt.Fprintf(&b, "tx_mode = %s\n", config.Quote(d.TXMode.String()))
	}
	if d.RXRing != 0 {
		fmt.Fprintf(&b, "rx_ring = %s\n", config.Quote(d.RXRing.String()))
	}
	if d.Shield != 0 {
		fmt.Fprintf(&b, "shield = %s\n", config.Quote(d.Shield.String()))
	}
	fmt.Fprintf(&b, "answer_ping = %t\n", d.AnswerPing)
	if d.Backend != 0 {
		fmt.Fprintf(&b, "backend = %s\n", config.Quote(d.Backend.String()))
	}

	fmt.Fprintf(&b, "\n[conntrack]\nmax_connections = %d\nsloppy_tcp = %t\n", cfg.Conntrack.MaxConnections, cfg.Conntrack.SloppyTCP)
	fmt.Fprintf(&b, "\n[timeouts]\ntcp = %s\ntcp_fin = %s\nudp = %s\n",
		tomlDuration(cfg.Timeouts.TCP), tomlDuration(cfg.Timeouts.TCPFin), tomlDuration(cfg.Timeouts.UDP))

	for i := range cfg.Services {
		s := &cfg.Services[i]
		b.WriteString("\n[[service]]\n")
		if s.Name != "" {
			fmt.Fprintf(&b, "name = %s\n", config.Quote(s.Name))
		}
		fmt.Fprintf(&b, "vip = %s\nprotocol = %s\n", config.Quote(s.VIP.String()), config.Quote(s.Protocol.String()))
		if len(s.Ports) > 0 {
			fmt.Fprintf(&b, "ports = %s\n", tomlInts(s.Ports))
		} else {
			fmt.Fprintf(&b, "port = %d\n", s.Port)
		}
		fmt.Fprintf(&b, "scheduler = %s\n", config.Quote(s.Scheduler))
		if len(s.SchedulerFlags) > 0 {
			fmt.Fprintf(&b, "scheduler_flags = %s\n", tomlStrings(s.SchedulerFlags))
		}
		if s.MHTableSize != 0 && s.MHTableSize != config.DefaultMHTableSize {
			fmt.Fprintf(&b, "mh_table_size = %d\n", s.MHTableSize)
		}
		if s.PersistenceTimeout > 0 {
			fmt.Fprintf(&b, "persistence_timeout = %s\n", tomlDuration(s.PersistenceTimeout))
			if s.VIP.Is6() { // config takes an IPv6 service's netmask as a prefix length only
				fmt.Fprintf(&b, "persistence_netmask = %d\n", s.PersistenceBits)
			} else {
				fmt.Fprintf(&b, "persistence_netmask = %s\n", config.Quote(maskString(s.PersistenceBits)))
			}
		}
		if s.Forward != 0 {
			fmt.Fprintf(&b, "forward = %s\n", config.Quote(s.Forward.String()))
		}
		if s.OnePacket {
			b.WriteString("one_packet = true\n")
		}
		if s.MSSClamp > 0 {
			fmt.Fprintf(&b, "mss_clamp = %d\n", s.MSSClamp)
		}
		if s.TunnelSource.IsValid() {
			fmt.Fprintf(&b, "tunnel_source = %s\n", config.Quote(s.TunnelSource.String()))
		}
		if s.DeadReal != 0 {
			fmt.Fprintf(&b, "dead_real = %s\n", config.Quote(s.DeadReal.String()))
		}
		if s.ExpireQuiescentTemplate {
			b.WriteString("expire_quiescent_template = true\n")
		}
		if s.OnFailure != 0 && s.OnFailure != config.FailQuiesce {
			fmt.Fprintf(&b, "on_failure = %s\n", config.Quote(s.OnFailure.String()))
		}
		if s.SlowStart > 0 {
			fmt.Fprintf(&b, "slow_start = %s\n", tomlDuration(s.SlowStart))
		}
		if s.SorryServer.IsValid() {
			fmt.Fprintf(&b, "sorry_server = %s\n", config.Quote(s.SorryServer.String()))
		}
		if s.Quorum != 0 && s.Quorum != config.DefaultQuorum {
			fmt.Fprintf(&b, "quorum = %d\n", s.Quorum)
		}
		if s.Hysteresis != 0 {
			fmt.Fprintf(&b, "hysteresis = %d\n", s.Hysteresis)
		}
		if s.Check != nil {
			b.WriteString("\n  [service.check]\n")
			writeCheck(&b, s.Check, "  ")
		}
		for j := range s.Reals {
			r := &s.Reals[j]
			fmt.Fprintf(&b, "\n  [[service.real]]\n  address = %s\n", config.Quote(r.Address.String()))
			if r.Port != 0 {
				fmt.Fprintf(&b, "  port = %d\n", r.Port)
			}
			fmt.Fprintf(&b, "  weight = %d\n", r.Weight)
			if r.Forward != 0 {
				fmt.Fprintf(&b, "  forward = %s\n", config.Quote(r.Forward.String()))
			}
			if r.UpperThreshold > 0 {
				fmt.Fprintf(&b, "  upper_threshold = %d\n", r.UpperThreshold)
			}
			if r.LowerThreshold > 0 {
				fmt.Fprintf(&b, "  lower_threshold = %d\n", r.LowerThreshold)
			}
			if r.Check != nil {
				b.WriteString("    [service.real.check]\n")
				writeCheck(&b, r.Check, "    ")
			}
		}
	}
	writeVRRPTOML(&b, cfg)
	writeBGPTOML(&b, &cfg.BGP)
	writeSyncTOML(&b, cfg.Sync, secrets)
	return b.String()
}

func writeCheck(b *strings.Builder, c *config.Check, in string) {
	fmt.Fprintf(b, "%stype = %s\n", in, config.Quote(c.Type.String()))
	fmt.Fprintf(b, "%sinterval = %s\n%stimeout = %s\n%srise = %d\n%sfall = %d\n",
		in, tomlDuration(c.Interval), in, tomlDuration(c.Timeout), in, c.Rise, in, c.Fall)
	web := c.Type == config.CheckHTTP || c.Type == config.CheckHTTPS
	stream := c.Type == config.CheckTCP || c.Type == config.CheckUDP
	if web {
		fmt.Fprintf(b, "%spath = %s\n", in, config.Quote(c.Path))
		if c.Host != "" {
			fmt.Fprintf(b, "%shost = %s\n", in, config.Quote(c.Host))
		}
		if len(c.ExpectStatus) > 0 {
			fmt.Fprintf(b, "%sexpect_status = %s\n", in, tomlInts(c.ExpectStatus))
		}
	}
	if (web || stream) && c.Port != 0 {
		fmt.Fprintf(b, "%scheck_port = %d\n", in, c.Port)
	}
	if c.Type == config.CheckExec && len(c.Command) > 0 {
		fmt.Fprintf(b, "%scommand = %s\n", in, tomlStrings(c.Command))
	}
	if stream && c.Payload != "" {
		fmt.Fprintf(b, "%spayload = %s\n", in, config.Quote(c.Payload))
	}
	if (web || stream) && c.Expect != "" {
		fmt.Fprintf(b, "%sexpect = %s\n", in, config.Quote(c.Expect))
	}
	if web && c.Digest != "" {
		fmt.Fprintf(b, "%sdigest = %s\n", in, config.Quote(c.Digest))
	}
	if c.Type == config.CheckHTTPS && c.TLSVerify {
		fmt.Fprintf(b, "%stls_verify = true\n", in)
	}
	if c.Warmup > 0 {
		fmt.Fprintf(b, "%swarmup = %s\n", in, tomlDuration(c.Warmup))
	}
	if c.Via == config.ViaVIP {
		fmt.Fprintf(b, "%svia = %s\n", in, config.Quote(c.Via.String()))
	}
}

// tomlDuration writes whole seconds as "Ns" and anything finer with Go's notation, both
// of which config accepts.
func tomlDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return config.Quote(strconv.FormatInt(int64(d/time.Second), 10) + "s")
	}
	return config.Quote(d.String())
}

func tomlStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = config.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func tomlInts[T uint16 | int](vs []T) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Itoa(int(v))
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// IPVSRules renders cfg as `ipvsadm-save -n` does (print_service_entry with FMT_RULE):
// one -A line per service and port, then one -a line per real, sorted as ipvsadm sorts
// them; thresholds are kept as -x and -y.
func IPVSRules(cfg *config.Config) string {
	type line struct {
		proto uint8
		vip   netip.Addr
		port  uint16
		text  string
	}
	var lines []line
	for i := range cfg.Services {
		s := &cfg.Services[i]
		ports := s.Ports
		if len(ports) == 0 {
			ports = []uint16{s.Port}
		}
		flag := "-t"
		if s.Protocol == config.UDP {
			flag = "-u"
		}
		for _, port := range ports {
			svc := fmt.Sprintf("%s %s", flag, netip.AddrPortFrom(s.VIP, port))
			var b strings.Builder
			fmt.Fprintf(&b, "-A %s -s %s", svc, s.Scheduler)
			if len(s.SchedulerFlags) > 0 {
				fmt.Fprintf(&b, " -b %s", strings.Join(s.SchedulerFlags, ","))
			}
			if s.PersistenceTimeout > 0 {
				fmt.Fprintf(&b, " -p %d", int64(s.PersistenceTimeout/time.Second))
				if s.PersistenceBits != fullBits(s.VIP) {
					fmt.Fprintf(&b, " -M %s", persistMask(s.VIP, s.PersistenceBits))
				}
			}
			if s.OnePacket {
				b.WriteString(" --ops")
			}
			b.WriteByte('\n')
			reals := slices.Clone(s.Reals)
			slices.SortStableFunc(reals, func(a, c config.Real) int {
				if x := a.Address.Compare(c.Address); x != 0 {
					return x
				}
				return int(a.Port) - int(c.Port)
			})
			for _, r := range reals {
				rport := r.Port
				if rport == 0 {
					rport = port
				}
				fmt.Fprintf(&b, "-a %s -r %s %s -w %d", svc, netip.AddrPortFrom(r.Address, rport), forwardSwitch(r.Forward), r.Weight)
				if r.UpperThreshold > 0 {
					fmt.Fprintf(&b, " -x %d", r.UpperThreshold)
				}
				if r.LowerThreshold > 0 {
					fmt.Fprintf(&b, " -y %d", r.LowerThreshold)
				}
				b.WriteByte('\n')
			}
			lines = append(lines, line{protoNumber(s.Protocol), s.VIP, port, b.String()})
		}
	}
	slices.SortStableFunc(lines, func(a, b line) int {
		if a.proto != b.proto {
			return int(a.proto) - int(b.proto)
		}
		if c := a.vip.Compare(b.vip); c != 0 {
			return c
		}
		return int(a.port) - int(b.port)
	})
	var out strings.Builder
	for _, l := range lines {
		out.WriteString(l.text)
	}
	return out.String()
}

// forwardSwitch is ipvsadm's fwd_switch: -g, -i or -m.
func forwardSwitch(f config.Forward) string {
	switch f {
	case config.TUN:
		return "-i"
	case config.NAT:
		return "-m"
	}
	return "-g"
}
