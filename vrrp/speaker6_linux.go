//go:build linux

package vrrp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/forward/packet"
)

// oobLen6 holds the two control messages an IPv6 advert is read with: IPV6_HOPLIMIT (an int)
// and IPV6_PKTINFO (struct in6_pktinfo, include/uapi/linux/ipv6.h).
var oobLen6 = unix.CmsgSpace(4) + unix.CmsgSpace(unix.SizeofInet6Pktinfo)

// open6 finishes opening an IPv6 instance (RFC 5798 §5.1.2; v2 is keepalived's): the source is unicast_src_ip or
// the interface's link-local address; a raw AF_INET6 socket for next header 112, bound to the
// interface and to that source, hop limit 255 both ways, traffic class 0xc0 as keepalived,
// joined to ff02::12 unless unicast, multicast loop off, and hop limit and destination
// delivered as ancillary data since a raw IPv6 socket reads no header. The checksum is ours
// in both directions (no IPV6_CHECKSUM): a bad one is a counted drop like IPv4's.
func (s *Speaker) open6(in *instance, ifi *net.Interface) (*instance, error) {
	r := in.c
	in.primary = r.UnicastSrcIP
	if !in.primary.IsValid() {
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("vrrp: instance %s: addresses of %s: %w", r.Name, r.Interface, err)
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
					in.primary = ip
					break
				}
			}
		}
		if !in.primary.IsValid() {
			return nil, fmt.Errorf("vrrp: instance %s: %s has no IPv6 link-local address to advertise from (set unicast_src_ip)", r.Name, r.Interface)
		}
	}
	in.setRX(&r)
	in.m = NewMachine(in.rx.Load().p)

	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, Protocol)
	if err != nil {
		return nil, fmt.Errorf("vrrp: instance %s: raw IPv6 socket for protocol 112: %w", r.Name, err)
	}
	fail := func(op string, err error) (*instance, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("vrrp: instance %s: %s: %w", r.Name, op, err)
	}
	if err := unix.BindToDevice(fd, r.Interface); err != nil {
		return fail("SO_BINDTODEVICE", err)
	}
	for _, o := range []struct {
		name string
		opt  int
		val  int
	}{
		{"IPV6_MULTICAST_HOPS", unix.IPV6_MULTICAST_HOPS, HopLimit},
		{"IPV6_UNICAST_HOPS", unix.IPV6_UNICAST_HOPS, HopLimit},
		{"IPV6_MULTICAST_LOOP", unix.IPV6_MULTICAST_LOOP, 0},
		{"IPV6_MULTICAST_IF", unix.IPV6_MULTICAST_IF, ifi.Index},
		{"IPV6_TCLASS", unix.IPV6_TCLASS, TrafficClass},
		{"IPV6_RECVHOPLIMIT", unix.IPV6_RECVHOPLIMIT, 1},
		{"IPV6_RECVPKTINFO", unix.IPV6_RECVPKTINFO, 1},
		// A link-local address that is still tentative (duplicate address detection) can
		// be bound: the instance starts with the interface.
		{"IPV6_FREEBIND", unix.IPV6_FREEBIND, 1},
	} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o.opt, o.val); err != nil {
			return fail(o.name, err)
		}
	}
	sa := &unix.SockaddrInet6{Addr: in.primary.As16()}
	if in.primary.IsLinkLocalUnicast() {
		sa.ZoneId = uint32(ifi.Index)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind "+in.primary.String(), err)
	}
	if len(r.UnicastPeer) == 0 {
		mreq := &unix.IPv6Mreq{Multiaddr: Group6.As16(), Interface: uint32(ifi.Index)}
		if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq); err != nil {
			return fail("IPV6_JOIN_GROUP ff02::12", err)
		}
	}
	tv := unix.NsecToTimeval(recvTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	in.fd = fd
	return in, nil
}

// recv6 reads one IPv6 advert: the message into buf, the header fields VRRP checks into h
// from the source address and the control messages. ok is false when nothing was read (the
// receive timeout, EINTR). A message without its hop limit or destination is a header drop.
func recv6(fd int, buf, oob []byte, h *IPv4) (m []byte, d Drop, ok bool) {
	n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, 0)
	if err != nil {
		return nil, DropNone, false
	}
	sa, isIn6 := from.(*unix.SockaddrInet6)
	if !isIn6 {
		return nil, DropIPHeader, true
	}
	*h = IPv4{Src: netip.AddrFrom16(sa.Addr)}
	var haveHops, haveDst bool
	cms, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, DropIPHeader, true
	}
	for _, cm := range cms {
		if cm.Header.Level != unix.IPPROTO_IPV6 {
			continue
		}
		switch {
		case cm.Header.Type == unix.IPV6_HOPLIMIT && len(cm.Data) >= 4:
			h.TTL = uint8(binary.NativeEndian.Uint32(cm.Data[:4]))
			haveHops = true
		case cm.Header.Type == unix.IPV6_PKTINFO && len(cm.Data) >= unix.SizeofInet6Pktinfo:
			h.Dst = netip.AddrFrom16([16]byte(cm.Data[:16]))
			haveDst = true
		}
	}
	if !haveHops || !haveDst {
		return nil, DropIPHeader, true
	}
	return buf[:n], DropNone, true
}

// send6 writes the message for a to each of dsts; the kernel adds the IPv6 header (source
// bound at open, hop limit 255, traffic class 0xc0).
func (s *Speaker) send6(in *instance, a *Advert, dsts []netip.Addr) {
	for _, dst := range dsts {
		in.buf = AppendMessage(in.buf[:0], a, in.primary, dst)
		sa := &unix.SockaddrInet6{Addr: dst.As16()}
		if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
			sa.ZoneId = uint32(in.ifindex)
		}
		if err := unix.Sendto(in.fd, in.buf, 0, sa); err != nil {
			s.log.Debug("vrrp send", attrInstance, in.c.Name, attrErr, err)
		}
	}
}

// unsolicitedNA sends garp_master_repeat unsolicited neighbour advertisements for each IPv6
// VIP at once (RFC 4861 §7.2.6, IPv6's gratuitous ARP), as keepalived does on takeover: to
// all nodes, override flag, from the interface's MAC.
func (s *Speaker) unsolicitedNA(in *instance) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		s.log.Warn("vrrp unsolicited neighbour advertisement", attrInstance, in.c.Name, attrErr, err)
		return
	}
	defer unix.Close(fd)
	var frame [128]byte
	for range in.c.GARPMasterRepeat {
		for _, vip := range in.vips {
			n := packet.BuildUnsolicitedNA(frame[:], in.mac, vip.As16())
			to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IPV6), Ifindex: in.ifindex, Halen: 6}
			copy(to.Addr[:6], frame[0:6])
			if err := unix.Sendto(fd, frame[:n], 0, to); err != nil {
				s.log.Warn("vrrp unsolicited neighbour advertisement", attrInstance, in.c.Name, attrErr, err)
				return
			}
		}
	}
}
