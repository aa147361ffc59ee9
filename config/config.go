package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"time"
)

// Defaults applied to keys that are absent from the file.
const (
	DefaultControlSocket  = "/run/uvs/uvs.sock" // DefaultControlSocket is director.control_socket's default.
	DefaultMaxConnections = 1 << 20             // DefaultMaxConnections is conntrack.max_connections' default.
	DefaultTCPTimeout     = 900 * time.Second   // DefaultTCPTimeout is the IPVS ESTABLISHED timeout, as ipvsadm --set.
	DefaultTCPFinTimeout  = 120 * time.Second   // DefaultTCPFinTimeout is the IPVS FIN_WAIT timeout.
	DefaultUDPTimeout     = 300 * time.Second   // DefaultUDPTimeout is the IPVS UDP timeout.
	DefaultScheduler      = "wlc"               // DefaultScheduler is ipvsadm's default scheduler.
	DefaultMHTableSize    = 65537               // DefaultMHTableSize is the kernel's default MH table size (CONFIG_IP_VS_MH_TAB_INDEX=12); prime.
	DefaultCheckInterval  = 2 * time.Second     // DefaultCheckInterval is check.interval's default.
	DefaultCheckTimeout   = 1 * time.Second     // DefaultCheckTimeout is check.timeout's default, capped at the interval.
	DefaultCheckRise      = 2                   // DefaultCheckRise is check.rise's default.
	DefaultCheckFall      = 2                   // DefaultCheckFall is check.fall's default.
	DefaultCheckPath      = "/"                 // DefaultCheckPath is check.path's default.
	DefaultQuorum         = 1                   // DefaultQuorum is quorum's default, as keepalived: one live weight unit.
)

// Limits on values.
const (
	MaxWorkers        = 1024    // MaxWorkers bounds director.workers.
	MaxMaxConnections = 1 << 28 // MaxMaxConnections bounds conntrack.max_connections.
	MaxWeight         = 65535   // MaxWeight bounds real weights, as ipvsadm does.
	MinMSSClamp       = 536     // MinMSSClamp is the RFC 879 default MSS, the least mss_clamp.
	MaxMSSClamp       = 9000    // MaxMSSClamp is the greatest mss_clamp: a jumbo frame.
	MaxMHTableSize    = 1 << 20 // MaxMHTableSize bounds mh_table_size.
)

// Config is a validated configuration. Load and Parse return it; it is
// shared read-only and must not be modified.
type Config struct {
	Source    string // File it came from.
	Director  Director
	Conntrack Conntrack
	Timeouts  Timeouts
	Services  []Service
	Lab       Lab   // [lab]; defaults when absent.
	Bench     Bench // [bench]; defaults when absent.
	BGP       BGP   // [bgp]; Present false when absent.

	VRRP           []VRRP          // [[vrrp]] instances (vrrp.go).
	VRRPSyncGroups []VRRPSyncGroup // [[vrrp_sync_group]].

	Sync *Sync // [sync]; nil when absent (see sync.go).
}

// Director is the [director] table.
type Director struct {
	Interfaces    []string   // Interfaces that receive VIP traffic and NAT replies; syntax checked, not existence.
	Workers       int        // Worker goroutines; 0 or absent in the file means runtime.NumCPU().
	ControlSocket string     // Unix socket path for uvs list and friends.
	MetricsListen string     // host:port for Prometheus /metrics; "" means off.
	TXMode        TXMode     // Key tx_mode.
	RXRing        RXRing     // Key rx_ring: the AF_PACKET receive ring (afpacket backend).
	Shield        ShieldMode // Key shield: how VIP traffic is kept from the director's kernel.
	AnswerPing    bool       // Key answer_ping: reply to ICMP echo sent to a VIP.
	Backend       Backend    // Key backend: afpacket, afxdp or auto (the default).
}

// Conntrack is the [conntrack] table.
type Conntrack struct {
	MaxConnections int  // Table capacity, preallocated.
	SloppyTCP      bool // Key sloppy_tcp: create entries from mid-stream TCP packets, as the IPVS sloppy_tcp sysctl.
}

// Timeouts is the [timeouts] table, as ipvsadm --set tcp tcpfin udp.
type Timeouts struct {
	TCP    time.Duration // Established TCP connections.
	TCPFin time.Duration // Key tcp_fin: TCP after a FIN.
	UDP    time.Duration
}

// Service is one [[service]]: a virtual service, as ipvsadm -A.
type Service struct {
	Name     string     // Optional; unique when set.
	VIP      netip.Addr // IPv4 or IPv6; never IPv4-mapped, never zoned.
	Protocol Protocol
	Port     uint16   // 0 = all ports (needs PersistenceTimeout), or when Ports is set.
	Ports    []uint16 // Several ports sharing one set of reals; exclusive with Port.

	Scheduler      string   // rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos.
	SchedulerFlags []string // Key scheduler_flags: sh-port sh-fallback (sh), mh-port mh-fallback (mh).
	MHTableSize    int      // Key mh_table_size: Maglev lookup table size, prime.

	PersistenceTimeout time.Duration // Key persistence_timeout (ipvsadm -p); 0 = none.
	PersistenceBits    int           // Key persistence_netmask (ipvsadm -M), as a prefix length.

	Forward                 Forward        // Default forwarding method of the reals.
	OnePacket               bool           // Key one_packet: UDP one-packet scheduling (ipvsadm -o).
	MSSClamp                int            // Key mss_clamp: 0 = off; TCP only.
	TunnelSource            netip.Addr     // Key tunnel_source: outer source for tun; invalid = egress address.
	DeadReal                DeadRealPolicy // Key dead_real.
	ExpireQuiescentTemplate bool           // Key expire_quiescent_template, as the IPVS sysctl.

	// Failure policy (health checks). OnFailure says what a failed real becomes; SlowStart
	// ramps a recovered real's weight up linearly over that long (0 = at once).
	OnFailure FailurePolicy // Key on_failure.
	SlowStart time.Duration // Key slow_start.
	// SorryServer (key sorry_server, "ip:port") takes every new connection while the
	// service is below quorum; invalid = none. Quorum and Hysteresis are keepalived's:
	// the service goes down when the sum of its live reals' weights drops below
	// Quorum-Hysteresis (or to 0), and up again at Quorum+Hysteresis.
	SorryServer netip.AddrPort
	Quorum      int // Key quorum; default 1.
	Hysteresis  int // Key hysteresis; default 0.

	Check *Check // [service.check]; nil if absent.
	Reals []Real // [[service.real]].
	Line  int    // Line of the [[service]] header; 0 if unknown.
}

// Real is one [[service.real]]: a real server, as ipvsadm -a.
type Real struct {
	Address        netip.Addr // IPv4 or IPv6; the VIP's family unless Forward is tun.
	Port           uint16     // Defaults to the service's Port; may differ only with NAT.
	Weight         int        // 0 = quiescent: no new connections, existing ones continue.
	Forward        Forward    // Defaults to the service's.
	UpperThreshold int        // Key upper_threshold (ipvsadm -x); 0 = none.
	LowerThreshold int        // Key lower_threshold (ipvsadm -y); 0 = none.
	Check          *Check     // [service.real.check]; nil means the service's Check.
	Line           int        // Line of the [[service.real]] header; 0 if unknown.
}

// Check is a health check, [service.check] or [service.real.check].
type Check struct {
	Type         CheckType
	Interval     time.Duration
	Timeout      time.Duration // At most Interval.
	Rise         int           // Consecutive successes to become healthy.
	Fall         int           // Consecutive failures to become unhealthy.
	Path         string        // http, https.
	Host         string        // http, https: Host header and TLS server name; "" = the real's address.
	ExpectStatus []int         // Key expect_status; empty means 200-299.
	Port         int           // Key check_port; 0 = the real's port.
	Command      []string      // exec: argv, run without a shell.
	Payload      string        // tcp, udp: sent after connecting.
	Expect       string        // Regular expression the reply (or HTTP body) must match.
	Digest       string        // http, https: lowercase hex MD5 of the body, as keepalived's digest.
	TLSVerify    bool          // Key tls_verify: https verifies the certificate (default off, as keepalived).
	Warmup       time.Duration // Key warmup: the first check waits a random time up to this long, on top of the stagger.
	Via          CheckVia      // Key via: "real" (default) or "vip".
}

// Load reads and parses the file at path. Any error is an *Error naming the file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = "read: " + pe.Err.Error()
		}
		return nil, &Error{Problems: []Problem{{File: path, Msg: msg}}, err: err}
	}
	return Parse(path, data)
}

// Parse parses data, naming it name in problems. It applies defaults and
// validates the result. Any error is an *Error holding every problem found.
func Parse(name string, data []byte) (*Config, error) {
	d, c := decode(name, data)
	if d.syntax {
		return nil, &Error{Problems: d.problems}
	}
	reported := d.quiet
	if reported == nil {
		reported = map[string]bool{}
	}
	for _, p := range d.problems {
		reported[p.Key] = true
	}
	for _, p := range validate(c, d.lines.line) {
		// A key whose value could not be decoded was left at its zero value;
		// do not report it a second time as, say, "required".
		if !reported[p.Key] {
			d.problems = append(d.problems, p)
		}
	}
	if len(d.problems) > 0 {
		sortProblems(d.problems)
		return nil, &Error{Problems: d.problems}
	}
	return c, nil
}
