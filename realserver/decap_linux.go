package realserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// User-space IPIP decapsulation. A raw AF_INET socket bound to protocol 4 (IPPROTO_IPIP)
// receives every IPIP packet addressed to this host, outer header included, after the kernel
// reassembled fragments; its existence also makes raw_local_deliver claim the protocol, so the
// kernel no longer answers each tunnel packet with ICMP protocol unreachable (ip_local_deliver_finish).
// The inner packet is written into a TUN device (IFF_TUN, no packet information), where the
// kernel receives it as if it had arrived on that device: rp_filter must be off there.
//
// The device also takes a virtio_net_hdr (IFF_VNET_HDR): a packet longer than the device MTU
// can only be one that GRO merged on the way in, whose inner L4 checksum field then holds a
// partial sum; it is written with NEEDS_CSUM, which the receiving stack treats as verified,
// as it does for GRO output. Other packets go with an empty header and are verified as usual.

// decapBatch is the number of packets one recvmmsg returns at most. 16 amortises the system
// call (about a microsecond) below the cost of the per-packet TUN write, while the buffers,
// each a full 64 KiB IPv4 datagram since the socket hands out reassembled packets, stay at 1 MiB.
const decapBatch = 16

// decapBufBytes is the largest IPv4 datagram (RFC 791 total length is 16 bits).
const decapBufBytes = 1 << 16

// vnetHdrLen is sizeof(struct virtio_net_hdr) (include/uapi/linux/virtio_net.h).
const vnetHdrLen = 10

// DecapStats count the decapsulator's work.
type DecapStats struct {
	Packets     uint64 // inner packets written to the TUN device
	Bytes       uint64 // their bytes
	Malformed   uint64 // outer or inner header invalid
	WriteErrors uint64 // the TUN write failed (the kernel refused the packet)
}

// Tunnels other than IPIP. The director also sends IPv6 in IPv4 (protocol 41, RFC 4213),
// IPv6 in IPv6 (next header 41, RFC 2473) and IPv4 in IPv6 (next header 4); this kernel has
// neither sit nor ip6_tunnel, so each gets a raw socket of its own, read the same way. An
// AF_INET6 raw socket delivers the payload without the IPv6 header (RFC 3542 section 3), so
// its buffers keep vnetHdrLen bytes of headroom in front of the inner packet instead.

// rawTunnel is one raw socket of the decapsulator.
type rawTunnel struct {
	raw   *os.File // the raw socket, non-blocking, in Go's poller
	b     *mmsgBatch
	outer bool // the datagram starts with the outer IPv4 header (AF_INET); else headroom
	name  string
}

// decapper is the user-space decapsulator. run is its only goroutine, plus one per extra
// tunnel socket; stop and close may be called from others.
type decapper struct {
	raw   *os.File // the IPIP raw socket, non-blocking, in Go's poller
	tun   int
	mtu   int
	b     *mmsgBatch
	more  []rawTunnel // 6in4, 6in6 and 4in6 sockets; missing if the kernel refused them
	stats struct {
		packets, bytes, malformed, writeErrors atomic.Uint64
	}
	stopped atomic.Bool
}

// openDecap opens the raw socket and creates the TUN device name with mtu, set up.
func openDecap(name string, mtu int) (_ *decapper, err error) {
	d := &decapper{tun: -1, mtu: mtu}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_IPIP)
	if err != nil {
		return nil, fmt.Errorf("realserver: raw socket for IPIP: %w", err)
	}
	d.raw = os.NewFile(uintptr(fd), "ipip-raw")
	// A 4 MiB receive buffer rides out scheduling delays at a few hundred thousand packets per
	// second; the kernel caps it at net.core.rmem_max unless FORCE works (root).
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	if _, err := netlink.LinkByName(name); err == nil {
		return nil, fmt.Errorf("realserver: device %s exists (another uvs realserver running?)", name)
	}
	d.tun, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("realserver: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, fmt.Errorf("realserver: TUN device %s: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(d.tun, unix.TUNSETIFF, ifr); err != nil {
		return nil, fmt.Errorf("realserver: create TUN device %s: %w", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("realserver: find %s: %w", name, err)
	}
	if err := netlink.LinkSetMTU(l, mtu); err != nil {
		return nil, fmt.Errorf("realserver: set %s mtu %d: %w", name, mtu, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("realserver: set %s up: %w", name, err)
	}
	d.b = newMMsgBatch(decapBatch, decapBufBytes, 0)
	d.more = openMoreTunnels()
	return d, nil
}

// openMoreTunnels opens the raw sockets of the 6in4, 6in6 and 4in6 tunnels. A family the
// kernel does not have (IPv6 disabled at boot) is skipped: IPIP alone still works.
func openMoreTunnels() []rawTunnel {
	var out []rawTunnel
	for _, t := range []struct {
		family, proto int
		name          string
	}{
		{unix.AF_INET, unix.IPPROTO_IPV6, "6in4"},
		{unix.AF_INET6, unix.IPPROTO_IPV6, "6in6"},
		{unix.AF_INET6, unix.IPPROTO_IPIP, "4in6"},
	} {
		fd, err := unix.Socket(t.family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, t.proto)
		if err != nil {
			continue
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20); err != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
		}
		head := 0
		if t.family == unix.AF_INET6 {
			head = vnetHdrLen
		}
		// A quarter of IPIP's batch: these tunnels carry less, and each buffer is 64 KiB.
		out = append(out, rawTunnel{raw: os.NewFile(uintptr(fd), t.name+"-raw"), b: newMMsgBatch(decapBatch/4, decapBufBytes, head),
			outer: t.family == unix.AF_INET, name: t.name})
	}
	return out
}

// run reads batches from every tunnel socket until stop, the extra ones in goroutines of their
// own, and returns the first error.
func (d *decapper) run() error {
	errs := make(chan error, len(d.more))
	for i := range d.more {
		t := &d.more[i]
		go func() { errs <- d.runSocket(t.raw, t.b, t.outer) }()
	}
	err := d.runSocket(d.raw, d.b, true)
	for range d.more {
		if e := <-errs; err == nil {
			err = e
		}
	}
	return err
}

// runSocket reads batches from raw until stop. It allocates nothing per packet: the batch, its
// buffers and the read callback are made once.
func (d *decapper) runSocket(raw *os.File, b *mmsgBatch, outer bool) error {
	rc, err := raw.SyscallConn()
	if err != nil {
		return fmt.Errorf("realserver: raw socket: %w", err)
	}
	var n int
	var rerr error
	read := func(fd uintptr) bool {
		n, rerr = b.recv(int(fd))
		return rerr != unix.EAGAIN && rerr != unix.EINTR
	}
	for {
		if err := rc.Read(read); err != nil {
			if d.stopped.Load() || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("realserver: read IPIP: %w", err)
		}
		if rerr != nil {
			if d.stopped.Load() {
				return nil
			}
			return fmt.Errorf("realserver: recvmmsg: %w", rerr)
		}
		for i := 0; i < n; i++ {
			if outer {
				d.deliver(b.packet(i))
			} else {
				d.deliverHeadroom(b.packet(i))
			}
		}
	}
}

// deliver writes the inner packet of one IPIP datagram (outer header included) into the TUN
// device. The virtio_net_hdr goes over the tail of the outer header, so nothing is copied.
func (d *decapper) deliver(b []byte) {
	off, end, hdr, ok := innerPacket(b, d.mtu)
	d.write(b, off, end, hdr, ok)
}

// deliverHeadroom writes the inner packet of an AF_INET6 raw socket's datagram, which follows
// vnetHdrLen bytes of headroom in b, into the TUN device.
func (d *decapper) deliverHeadroom(b []byte) {
	var hdr [vnetHdrLen]byte
	ok := len(b) > vnetHdrLen
	if ok {
		hdr, ok = innerHeader(b[vnetHdrLen:], d.mtu)
	}
	d.write(b, vnetHdrLen, len(b), hdr, ok)
}

// write sends b[off:end] with the virtio_net_hdr hdr written just before it, or counts a
// malformed packet.
func (d *decapper) write(b []byte, off, end int, hdr [vnetHdrLen]byte, ok bool) {
	if !ok {
		d.stats.malformed.Store(d.stats.malformed.Load() + 1)
		return
	}
	w := b[off-vnetHdrLen : end]
	copy(w[:vnetHdrLen], hdr[:])
	if _, err := unix.Write(d.tun, w); err != nil {
		d.stats.writeErrors.Store(d.stats.writeErrors.Load() + 1)
		return
	}
	d.stats.packets.Store(d.stats.packets.Load() + 1)
	d.stats.bytes.Store(d.stats.bytes.Load() + uint64(len(w)-vnetHdrLen))
}

// innerPacket validates an IPIP or 6in4 datagram b (outer IPv4 header first, protocol 4 or
// 41) and returns where the inner IPv4 or IPv6 packet starts and ends, and the virtio_net_hdr
// to send it with. The outer header is at least 20 bytes, so the 10-byte virtio_net_hdr fits
// before the inner packet. Never trusting a length: both headers' lengths are checked
// against b and each other, and the inner version must be the one the protocol names.
func innerPacket(b []byte, mtu int) (int, int, [vnetHdrLen]byte, bool) {
	var hdr [vnetHdrLen]byte
	if len(b) < 40 || b[0]>>4 != 4 || b[9] != 4 && b[9] != 41 {
		return 0, 0, hdr, false
	}
	ohl := int(b[0]&0x0f) * 4
	otot := int(binary.BigEndian.Uint16(b[2:4]))
	if ohl < 20 || otot < ohl+20 || otot > len(b) {
		return 0, 0, hdr, false
	}
	in := b[ohl:otot]
	if want := uint8(4); b[9] == 41 && in[0]>>4 != 6 || b[9] == 4 && in[0]>>4 != want {
		return 0, 0, hdr, false // protocol 4 carries IPv4, 41 IPv6
	}
	hdr, ok := innerHeader(in, mtu)
	return ohl, otot, hdr, ok
}

// innerHeader validates the inner IPv4 or IPv6 packet in (its length must be exactly len(in))
// and returns the virtio_net_hdr to write it with.
func innerHeader(in []byte, mtu int) ([vnetHdrLen]byte, bool) {
	var hdr [vnetHdrLen]byte
	if len(in) < 20 {
		return hdr, false
	}
	if in[0]>>4 == 6 {
		// IPv6: no fragmentation on the way, so a packet above the MTU was merged by GRO.
		if len(in) < 40 || 40+int(binary.BigEndian.Uint16(in[4:6])) != len(in) {
			return hdr, false
		}
		if len(in) > mtu {
			gsoHeader(&hdr, in[6], 40, len(in))
		}
		return hdr, true
	}
	ihl := int(in[0]&0x0f) * 4
	itot := int(binary.BigEndian.Uint16(in[2:4]))
	if in[0]>>4 != 4 || ihl < 20 || itot < ihl || itot != len(in) {
		return hdr, false
	}
	if itot > mtu && binary.BigEndian.Uint16(in[6:8])&0x3fff == 0 {
		gsoHeader(&hdr, in[9], ihl, itot)
	}
	return hdr, true
}

// gsoHeader marks a packet GRO merged (see the file comment): its TCP or UDP checksum, at l4
// of a packet of tot bytes, holds a partial sum. Other protocols keep an empty header.
func gsoHeader(hdr *[vnetHdrLen]byte, proto uint8, l4, tot int) {
	var csumOff uint16
	switch proto {
	case 6:
		csumOff = 16
	case 17:
		csumOff = 6
	}
	if csumOff != 0 && tot >= l4+int(csumOff)+2 {
		hdr[0] = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
		binary.LittleEndian.PutUint16(hdr[6:8], uint16(l4))
		binary.LittleEndian.PutUint16(hdr[8:10], csumOff)
	}
}

// pastDeadline makes a pending read return at once.
var pastDeadline = time.Unix(1, 0)

// stop makes run return.
func (d *decapper) stop() {
	d.stopped.Store(true)
	_ = d.raw.SetReadDeadline(pastDeadline)
	for _, t := range d.more {
		_ = t.raw.SetReadDeadline(pastDeadline)
	}
}

// close stops run, closes the socket and the TUN device (which removes it: it is not
// persistent) and returns the counters.
func (d *decapper) close() DecapStats {
	if d.raw != nil {
		d.stop()
		_ = d.raw.Close()
	}
	for _, t := range d.more {
		_ = t.raw.Close()
	}
	d.more = nil
	if d.tun >= 0 {
		_ = unix.Close(d.tun)
		d.tun = -1
	}
	return DecapStats{
		Packets:     d.stats.packets.Load(),
		Bytes:       d.stats.bytes.Load(),
		Malformed:   d.stats.malformed.Load(),
		WriteErrors: d.stats.writeErrors.Load(),
	}
}
