package bench

import (
	"fmt"
	"net"

	"github.com/uvs-project/uvs/forward/afxdp"
)

// runXDP is the floor on AF_XDP (forward/afxdp's XSKFloor): the afxdp backend's UMEM, sockets
// and rings, an XDP program that redirects every IPv4 frame to the interface's MAC to the
// socket of its queue, the MAC rewrite in place and one TX kick per batch. It runs on the
// calling thread (pinned by run) until Stop.
func (f *Floor) runXDP(cfg FloorConfig, ifi *net.Interface, ready chan<- error) error {
	if len(cfg.SrcMAC) != 6 || len(cfg.DstMAC) != 6 {
		err := fmt.Errorf("bench: floor-afxdp: bad MAC addresses %v, %v", cfg.SrcMAC, cfg.DstMAC)
		ready <- err
		return err
	}
	x, err := afxdp.OpenFloor(afxdp.FloorConfig{Ifindex: ifi.Index, Queues: afxdp.Queues(ifi.Name),
		SrcMAC: [6]byte(cfg.SrcMAC), DstMAC: [6]byte(cfg.DstMAC)})
	if err != nil {
		err = fmt.Errorf("bench: floor-afxdp: %w", err)
		ready <- err
		return err
	}
	defer x.Close()
	ready <- nil
	c := x.Run(&f.stop, f.wake)
	f.c.Forwarded, f.c.Truncated, f.c.TxDropped = c.Forwarded, c.Truncated, c.TxDropped
	f.c.RxRingFull, f.c.FillRingEmpty, f.c.RxDropped = c.RxRingFull, c.FillRingEmpty, c.RxDropped
	return nil
}
