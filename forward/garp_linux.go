package forward

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Sizes of a gratuitous ARP frame.
const (
	// arpEthIPv4Len is the ARP payload for Ethernet and IPv4 (RFC 826):
	// htype, ptype, hlen, plen, oper, then 6+4+6+4 address bytes.
	arpEthIPv4Len = 8 + 2*(6+4)
	// garpFrameLen pads the 14+28 bytes to the Ethernet minimum of 60
	// (64 with the FCS), which software devices such as veth do not pad.
	garpFrameLen = 60
)

// SendGratuitousARP broadcasts count gratuitous ARP requests for ip on
// ifname, interval apart, so that neighbours and switches learn or refresh
// that ip is at the interface's MAC (as after a failover). Each is an ARP
// request with sender and target protocol address ip, sender hardware address
// the interface's MAC and target hardware address zero (RFC 5227 section 3,
// as Linux's arp_send for gratuitous ARP). It blocks for (count-1)*interval.
//
// The socket is opened in the calling thread's network namespace.
func SendGratuitousARP(ifname string, ip [4]byte, count int, interval time.Duration) error {
	if count < 1 {
		return fmt.Errorf("forward: gratuitous arp on %s: count %d < 1", ifname, count)
	}
	if interval < 0 {
		return fmt.Errorf("forward: gratuitous arp on %s: negative interval %v", ifname, interval)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("forward: gratuitous arp: %w", err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return fmt.Errorf("forward: gratuitous arp on %s: not an ethernet interface", ifname)
	}
	if ifi.Flags&net.FlagUp == 0 {
		return fmt.Errorf("forward: gratuitous arp on %s: interface is down", ifname)
	}
	// Send only: a filter returning 0 keeps received ARP off the socket.
	drop, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		return fmt.Errorf("forward: gratuitous arp on %s: assemble filter: %w", ifname, err)
	}
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, &packet.Config{Filter: drop})
	if err != nil {
		return fmt.Errorf("forward: gratuitous arp on %s: open AF_PACKET socket: %w", ifname, err)
	}
	defer c.Close()

	var frame [garpFrameLen]byte
	putGratuitousARP(frame[:], [6]byte(ifi.HardwareAddr), ip)
	to := &packet.Addr{HardwareAddr: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	var errs error
	sent := 0
	for i := 0; i < count; i++ {
		if i > 0 {
			time.Sleep(interval)
		}
		if _, err := c.WriteTo(frame[:], to); err != nil {
			errs = errors.Join(errs, err)
			continue
		}
		sent++
	}
	if sent == 0 {
		return fmt.Errorf("forward: gratuitous arp on %s: send: %w", ifname, errs)
	}
	// Some sent: the address is announced. Report partial failure anyway.
	if errs != nil {
		return fmt.Errorf("forward: gratuitous arp on %s: sent %d of %d: %w", ifname, sent, count, errs)
	}
	return nil
}

// putGratuitousARP writes a broadcast gratuitous ARP request into b, which
// must hold at least 14+arpEthIPv4Len bytes; the rest of b is zeroed.
func putGratuitousARP(b []byte, mac [6]byte, ip [4]byte) {
	clear(b)
	copy(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(b[6:12], mac[:])
	binary.BigEndian.PutUint16(b[12:14], unix.ETH_P_ARP)
	a := b[14 : 14+arpEthIPv4Len]
	binary.BigEndian.PutUint16(a[0:2], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(a[2:4], unix.ETH_P_IP)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], 1) // ARPOP_REQUEST
	copy(a[8:14], mac[:])
	copy(a[14:18], ip[:])
	// a[18:24], the target hardware address, stays zero.
	copy(a[24:28], ip[:])
}
