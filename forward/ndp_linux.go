package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	mdpacket "github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/forward/packet"
)

// Neighbour discovery for IPv6 VIPs, the control side of it: the workers answer neighbour
// solicitations (packet.ParseNS, packet.BuildNAReply), while the control side announces the
// VIPs with unsolicited advertisements (IPv6's gratuitous ARP, RFC 4861 section 7.2.6) and
// joins each VIP's solicited-node multicast group on every listened interface, so that the
// NIC accepts solicitations for it and an MLD-snooping switch forwards them (RFC 4861 section
// 7.2.1: solicitations go to the solicited-node address).

// sendUnsolicitedNA sends count unsolicited neighbour advertisements for ip on ifname,
// interval apart, to all nodes with the override flag (RFC 4861 section 7.2.6: up to
// MAX_NEIGHBOR_ADVERTISEMENT, 3, of them). It blocks for (count-1)*interval. The socket is
// opened in the calling thread's network namespace.
func sendUnsolicitedNA(ifname string, ip [16]byte, count int, interval time.Duration) error {
	if count < 1 || interval < 0 {
		return fmt.Errorf("forward: unsolicited na on %s: count %d, interval %v", ifname, count, interval)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("forward: unsolicited na: %w", err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return fmt.Errorf("forward: unsolicited na on %s: not an ethernet interface", ifname)
	}
	if ifi.Flags&net.FlagUp == 0 {
		return fmt.Errorf("forward: unsolicited na on %s: interface is down", ifname)
	}
	drop, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		return fmt.Errorf("forward: unsolicited na on %s: assemble filter: %w", ifname, err)
	}
	c, err := mdpacket.Listen(ifi, mdpacket.Raw, unix.ETH_P_IPV6, &mdpacket.Config{Filter: drop})
	if err != nil {
		return fmt.Errorf("forward: unsolicited na on %s: open AF_PACKET socket: %w", ifname, err)
	}
	defer c.Close()
	var buf [128]byte
	frame := buf[:packet.BuildUnsolicitedNA(buf[:], [6]byte(ifi.HardwareAddr), ip)]
	to := &mdpacket.Addr{HardwareAddr: net.HardwareAddr(frame[0:6])}
	var errs error
	sent := 0
	for i := 0; i < count; i++ {
		if i > 0 {
			time.Sleep(interval)
		}
		if _, err := c.WriteTo(frame, to); err != nil {
			errs = errors.Join(errs, err)
			continue
		}
		sent++
	}
	if sent == 0 {
		return fmt.Errorf("forward: unsolicited na on %s: send: %w", ifname, errs)
	}
	if errs != nil {
		return fmt.Errorf("forward: unsolicited na on %s: sent %d of %d: %w", ifname, sent, count, errs)
	}
	return nil
}

// ndGroups holds the solicited-node multicast memberships of the VIPs: one UDP6 socket, whose
// IPV6_JOIN_GROUP memberships make the kernel program the NIC's multicast filter and send
// MLD reports for them. Memberships last until left or until the socket closes. It is owned
// by the control side; set and close must not run concurrently.
type ndGroups struct {
	fd     int
	joined map[ndGroup]bool
}

// ndGroup is one membership: a solicited-node group on an interface.
type ndGroup struct {
	group   [16]byte
	ifindex int
}

// newNDGroups opens the membership socket in the calling thread's network namespace.
func newNDGroups() (*ndGroups, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("forward: solicited-node groups: socket: %w", err)
	}
	return &ndGroups{fd: fd, joined: map[ndGroup]bool{}}, nil
}

// set makes the memberships exactly the solicited-node groups of vips on every interface of
// ifindexes (several VIPs may share a group), joining new ones and leaving old ones.
func (g *ndGroups) set(ifindexes []int, vips []netip.Addr) error {
	want := map[ndGroup]bool{}
	for _, v := range vips {
		if !v.Is6() || v.Is4In6() {
			continue
		}
		for _, ix := range ifindexes {
			want[ndGroup{packet.SolicitedNode(v.As16()), ix}] = true
		}
	}
	var errs error
	for m := range g.joined {
		if !want[m] {
			mr := &unix.IPv6Mreq{Multiaddr: m.group, Interface: uint32(m.ifindex)}
			if err := unix.SetsockoptIPv6Mreq(g.fd, unix.IPPROTO_IPV6, unix.IPV6_LEAVE_GROUP, mr); err != nil {
				errs = errors.Join(errs, fmt.Errorf("leave %s on ifindex %d: %w", netip.AddrFrom16(m.group), m.ifindex, err))
			}
			delete(g.joined, m)
		}
	}
	for m := range want {
		if g.joined[m] {
			continue
		}
		mr := &unix.IPv6Mreq{Multiaddr: m.group, Interface: uint32(m.ifindex)}
		if err := unix.SetsockoptIPv6Mreq(g.fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mr); err != nil && !errors.Is(err, unix.EADDRINUSE) {
			errs = errors.Join(errs, fmt.Errorf("join %s on ifindex %d: %w", netip.AddrFrom16(m.group), m.ifindex, err))
			continue
		}
		g.joined[m] = true
	}
	if errs != nil {
		return fmt.Errorf("forward: solicited-node groups: %w", errs)
	}
	return nil
}

// close leaves every group (closing the socket does) and releases the socket.
func (g *ndGroups) close() {
	if g.fd >= 0 {
		_ = unix.Close(g.fd)
		g.fd = -1
	}
	clear(g.joined)
}
