package lvssync

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// UDPConfig configures a UDP transport, as the kernel's sync daemon
// options (ipvsadm --mcast-interface, --mcast-group, --mcast-port,
// --mcast-ttl).
type UDPConfig struct {
	Interface string     // Bound with SO_BINDTODEVICE; multicast is sent and joined here. "" = any (unicast only).
	Listen    netip.Addr // Local address; invalid = any.
	Port      uint16     // Local port (the group's port); 0 picks a free one (tests).
	Group     netip.Addr // Multicast group joined on Interface; invalid = none (unicast only).
	IPv6      bool       // An IPv6 socket (IPv6 peers or group); also when Listen or Group is IPv6.
	TTL       int        // Multicast TTL; default DefaultTTL.
	SockBuf   int        // SO_RCVBUF and SO_SNDBUF when > 0 (the kernel's sync_sock_size).
}

// UDPTransport is a UDP socket for sync messages.
type UDPTransport struct {
	c *net.UDPConn
}

// ListenUDP opens the sync socket: bound to Port (with SO_REUSEADDR, as the
// kernel's receive socket), to Interface, joined to Group there, with
// multicast loopback off so a director does not hear itself.
func ListenUDP(cfg UDPConfig) (*UDPTransport, error) {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			if serr == nil && cfg.Interface != "" {
				serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, cfg.Interface)
			}
			if serr == nil && cfg.SockBuf > 0 {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.SockBuf)
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, cfg.SockBuf)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	v6 := cfg.IPv6 || cfg.Listen.Is6() || cfg.Group.Is6()
	network, laddr := "udp4", "0.0.0.0"
	if v6 {
		network, laddr = "udp6", "::"
	}
	if cfg.Listen.IsValid() {
		laddr = cfg.Listen.String()
	}
	pc, err := lc.ListenPacket(context.Background(), network, net.JoinHostPort(laddr, fmt.Sprint(cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("lvssync: listen: %w", err)
	}
	c := pc.(*net.UDPConn)
	if cfg.Group.IsValid() {
		ifi, err := net.InterfaceByName(cfg.Interface)
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("lvssync: multicast interface: %w", err)
		}
		type step struct {
			what string
			err  error
		}
		var steps []step
		if v6 {
			// The kernel's IPv6 sync socket: hop limit as the TTL, loopback off.
			p := ipv6.NewPacketConn(c)
			steps = []step{
				{"join group", p.JoinGroup(ifi, &net.UDPAddr{IP: cfg.Group.AsSlice()})},
				{"multicast interface", p.SetMulticastInterface(ifi)},
				{"multicast hop limit", p.SetMulticastHopLimit(cfg.TTL)},
				{"multicast loopback", p.SetMulticastLoopback(false)},
			}
		} else {
			p := ipv4.NewPacketConn(c)
			steps = []step{
				{"join group", p.JoinGroup(ifi, &net.UDPAddr{IP: cfg.Group.AsSlice()})},
				{"multicast interface", p.SetMulticastInterface(ifi)},
				{"multicast ttl", p.SetMulticastTTL(cfg.TTL)},
				{"multicast loopback", p.SetMulticastLoopback(false)},
			}
		}
		for _, step := range steps {
			if step.err != nil {
				_ = c.Close()
				return nil, fmt.Errorf("lvssync: %s on %s: %w", step.what, cfg.Interface, step.err)
			}
		}
	}
	return &UDPTransport{c: c}, nil
}

// Send sends msg to to.
func (t *UDPTransport) Send(msg []byte, to netip.AddrPort) error {
	_, err := t.c.WriteToUDPAddrPort(msg, to)
	return err
}

// Recv receives one datagram into buf. A link-local IPv6 sender's address carries its
// zone, so that a bulk copy can be sent back to it.
func (t *UDPTransport) Recv(buf []byte) (int, netip.AddrPort, error) {
	n, from, err := t.c.ReadFromUDPAddrPort(buf)
	return n, from, err
}

// LocalAddr is the socket's address.
func (t *UDPTransport) LocalAddr() netip.AddrPort {
	return t.c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close closes the socket; a blocked Recv returns.
func (t *UDPTransport) Close() error { return t.c.Close() }

// InterfaceMaxLen is the kernel's default sync_maxlen for an interface:
// its MTU minus the IPv4 and UDP headers.
func InterfaceMaxLen(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, fmt.Errorf("lvssync: %w", err)
	}
	return ifi.MTU - 20 - 8, nil
}

// InterfaceMaxLen6 is InterfaceMaxLen for an IPv6 sync socket: the MTU minus the IPv6 and
// UDP headers (the kernel's get_max_sync_msg_size for AF_INET6).
func InterfaceMaxLen6(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, fmt.Errorf("lvssync: %w", err)
	}
	return ifi.MTU - 40 - 8, nil
}
