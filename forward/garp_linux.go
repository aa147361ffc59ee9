package forward

import (
	"errors"
	"fmt"
	"net"
	"time"

	mdpacket "github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/forward/packet"
)

// sendGratuitousARP broadcasts count gratuitous ARP requests for ip on
// ifname, interval apart, so that neighbours and switches learn or refresh
// that ip is at the interface's MAC (as after a failover). Each is an ARP
// request with sender and target protocol address ip, sender hardware address
// the interface's MAC and target hardware address zero (RFC 5227 section 3,
// as Linux's arp_send for gratuitous ARP). It blocks for (count-1)*interval.
//
// The socket is opened in the calling thread's network namespace.
func sendGratuitousARP(ifname string, ip [4]byte, count int, interval time.Duration) error {
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
	c, err := mdpacket.Listen(ifi, mdpacket.Raw, unix.ETH_P_ARP, &mdpacket.Config{Filter: drop})
	if err != nil {
		return fmt.Errorf("forward: gratuitous arp on %s: open AF_PACKET socket: %w", ifname, err)
	}
	defer c.Close()

	var buf [packet.MinFrameLen]byte
	frame := buf[:packet.BuildGratuitousARP(buf[:], [6]byte(ifi.HardwareAddr), ip)]
	to := &mdpacket.Addr{HardwareAddr: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
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
