package config

import (
	"fmt"
	"strings"
)

// Protocol is a service's layer-4 protocol. The zero value is invalid.
type Protocol uint8

// Protocols, as ipvsadm -t and -u.
const (
	TCP Protocol = iota + 1
	UDP
)

var protocolNames = []string{TCP: "tcp", UDP: "udp"}

// String returns "tcp" or "udp".
func (p Protocol) String() string { return enumString("Protocol", protocolNames, p) }

// ParseProtocol parses "tcp" or "udp".
func ParseProtocol(s string) (Protocol, error) {
	return parseEnum[Protocol]("protocol", protocolNames, s)
}

// Forward is a packet-forwarding method, as ipvsadm -g, -i and -m. The zero
// value is invalid.
type Forward uint8

// Forwarding methods.
const (
	DR  Forward = iota + 1 // Direct routing: rewrite the MAC only (ipvsadm -g).
	TUN                    // IP-in-IP tunnelling (ipvsadm -i).
	NAT                    // Masquerading: rewrite the destination (ipvsadm -m).
)

var forwardNames = []string{DR: "dr", TUN: "tun", NAT: "nat"}
var forwardIPVSNames = []string{DR: "Route", TUN: "Tunnel", NAT: "Masq"}

// String returns "dr", "tun" or "nat", as written in the configuration.
func (f Forward) String() string { return enumString("Forward", forwardNames, f) }

// IPVSName returns the name ipvsadm -Ln prints in its Forward column:
// "Route", "Tunnel" or "Masq".
func (f Forward) IPVSName() string { return enumString("Forward", forwardIPVSNames, f) }

// ParseForward parses "dr", "tun" or "nat".
func ParseForward(s string) (Forward, error) { return parseEnum[Forward]("forward", forwardNames, s) }

// TXMode is how workers transmit frames. The zero value is invalid.
type TXMode uint8

// Transmit modes.
const (
	TXRing TXMode = iota + 1 // PACKET_TX_RING, flushed once per batch.
	TXMMsg                   // sendmmsg(2) on a packet socket.
)

var txModeNames = []string{TXRing: "ring", TXMMsg: "mmsg"}

// String returns "ring" or "mmsg".
func (m TXMode) String() string { return enumString("TXMode", txModeNames, m) }

// ParseTXMode parses "ring" or "mmsg".
func ParseTXMode(s string) (TXMode, error) { return parseEnum[TXMode]("tx_mode", txModeNames, s) }

// DeadRealPolicy says what happens to a connection whose real server has
// been removed or failed its health check. The zero value is invalid.
type DeadRealPolicy uint8

// Dead real server policies. They mirror the IPVS sysctls expire_nodest_conn
// (expire) and, for TCP, a reset sent to the client (reset).
const (
	DeadRealKeep   DeadRealPolicy = iota + 1 // Keep forwarding to the old real until the entry times out.
	DeadRealExpire                           // Drop the entry at the next packet (expire_nodest_conn).
	DeadRealReset                            // Drop the entry and reset the client; TCP only.
)

var deadRealNames = []string{DeadRealKeep: "keep", DeadRealExpire: "expire", DeadRealReset: "reset"}

// String returns "keep", "expire" or "reset".
func (d DeadRealPolicy) String() string { return enumString("DeadRealPolicy", deadRealNames, d) }

// ParseDeadRealPolicy parses "keep", "expire" or "reset".
func ParseDeadRealPolicy(s string) (DeadRealPolicy, error) {
	return parseEnum[DeadRealPolicy]("dead_real", deadRealNames, s)
}

// CheckType is the kind of a health check. The zero value is invalid.
type CheckType uint8

// Health check types.
const (
	CheckTCP   CheckType = iota + 1 // TCP connect, optionally send payload and match expect.
	CheckHTTP                       // HTTP GET of path, status in expect_status.
	CheckHTTPS                      // As CheckHTTP, over TLS.
	CheckUDP                        // Send payload, match the reply against expect.
	CheckExec                       // Run command; exit status 0 means healthy.
	CheckNone                       // No check: the real is always up.
)

var checkTypeNames = []string{CheckTCP: "tcp", CheckHTTP: "http", CheckHTTPS: "https", CheckUDP: "udp", CheckExec: "exec", CheckNone: "none"}

// String returns the type as written in the configuration, e.g. "http".
func (c CheckType) String() string { return enumString("CheckType", checkTypeNames, c) }

// ParseCheckType parses "tcp", "http", "https", "udp", "exec" or "none".
func ParseCheckType(s string) (CheckType, error) {
	return parseEnum[CheckType]("check type", checkTypeNames, s)
}

// FailurePolicy is what a real server that fails its health check becomes.
// The zero value is invalid.
type FailurePolicy uint8

// Failure policies.
const (
	FailQuiesce FailurePolicy = iota + 1 // Weight 0: no new connections (keepalived's inhibit_on_failure).
	FailRemove                           // Taken out of the service.
)

var failurePolicyNames = []string{FailQuiesce: "quiesce", FailRemove: "remove"}

// String returns "quiesce" or "remove".
func (p FailurePolicy) String() string { return enumString("FailurePolicy", failurePolicyNames, p) }

// ParseFailurePolicy parses "quiesce" or "remove".
func ParseFailurePolicy(s string) (FailurePolicy, error) {
	return parseEnum[FailurePolicy]("on_failure", failurePolicyNames, s)
}

// CheckVia says where a health check is sent. The zero value is invalid.
type CheckVia uint8

// Check destinations.
const (
	ViaReal CheckVia = iota + 1 // To the real server's own address (or check_port).
	ViaVIP                      // To the VIP, at the real server's link-layer address (DR only).
)

var checkViaNames = []string{ViaReal: "real", ViaVIP: "vip"}

// String returns "real" or "vip".
func (v CheckVia) String() string { return enumString("CheckVia", checkViaNames, v) }

// ParseCheckVia parses "real" or "vip".
func ParseCheckVia(s string) (CheckVia, error) { return parseEnum[CheckVia]("via", checkViaNames, s) }

func enumString[T ~uint8](typ string, names []string, v T) string {
	if v > 0 && int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, v)
}

func enumValid[T ~uint8](names []string, v T) bool { return v > 0 && int(v) < len(names) }

func parseEnum[T ~uint8](what string, names []string, s string) (T, error) {
	for i, n := range names {
		if i > 0 && n == s {
			return T(i), nil
		}
	}
	return 0, fmt.Errorf("config: unknown %s %q (want %s)", what, s, oneOf(names[1:]))
}

// oneOf formats names as "a, b or c".
func oneOf(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
