package bench

import (
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// tcActShot is TC_ACT_SHOT (include/uapi/linux/pkt_cls.h), TCX_DROP for tcx.
const tcActShot = 2

// dropIngress attaches a tcx ingress program that drops every frame on dev
// of node n, and returns what detaches it. tcx runs after the AF_PACKET taps
// (__netif_receive_skb_core delivers to ptype_all first), so a ring still
// gets every frame while the kernel's copy costs one program run: the
// cheapest drop there is, which is what the floor candidate needs.
func dropIngress(n *Node, dev string) (func() error, error) {
	var l link.Link
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name:    "uvsbench_drop",
			Type:    ebpf.SchedCLS,
			License: "GPL",
			Instructions: asm.Instructions{
				asm.Mov.Imm(asm.R0, tcActShot),
				asm.Return(),
			},
		})
		if err != nil {
			return err
		}
		defer prog.Close() // the link holds its own reference
		l, err = link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: prog, Attach: ebpf.AttachTCXIngress})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bench: tcx drop on %s %s: %w", n.Name, dev, err)
	}
	return l.Close, nil
}
