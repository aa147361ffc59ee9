//go:build linux

package afxdp

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/forward/packet"
)

// The floor is the smallest forwarder on the setup the afxdp backend uses, for `uvs bench`
// (bench/floor_afxdp_linux.go) to show how far the director's own work is from what AF_XDP
// costs: the same UMEM (one shared UMEM, 4 KiB chunks), the same sockets (one per RX queue,
// copy or zero-copy as the driver allows, need_wakeup), the same ring sizes and batch size,
// an XDP program that redirects every IPv4 frame to this host's MAC to the socket of its
// queue (nothing to classify, no hash), and a loop that rewrites the MAC addresses in place,
// finishes partial checksums (as the worker must: csum.go) and sends each frame from the chunk
// it arrived in, one kick per batch. No other parsing, no table, no scheduler; one thread.

// FloorConfig describes an AF_XDP floor forwarder.
type FloorConfig struct {
	Ifindex int
	Queues  int     // RX queues of the interface (Queues(name)); one socket on each
	SrcMAC  [6]byte // the interface's MAC: frames to it are taken
	DstMAC  [6]byte // the next hop every frame goes to
}

// FloorCounters are what the floor did.
type FloorCounters struct {
	Forwarded, Truncated, TxDropped uint64
	// The kernel's counts of the sockets (XDP_STATISTICS), read when Run returns: frames the
	// redirect could not deliver because the RX ring was full or the fill ring empty, and
	// frames dropped for other reasons (larger than a chunk).
	RxRingFull, FillRingEmpty, RxDropped uint64
}

// XSKFloor is an open AF_XDP floor forwarder. Not safe for concurrent use: Run owns it.
type XSKFloor struct {
	cfg   FloorConfig
	umem  *UMEM
	socks []*Socket
	xsks  *ebpf.Map
	prog  *ebpf.Program
	link  link.Link
	free  []uint64
	c     FloorCounters
}

// floorProgram redirects IPv4 frames to mac to xsks[rx_queue_index] and passes the rest (ARP
// keeps the neighbours resolved).
func floorProgram(xsks int, mac [6]byte) asm.Instructions {
	R0, R1, R2, R3 := asm.R0, asm.R1, asm.R2, asm.R3
	macLo := int32(uint32(mac[0]) | uint32(mac[1])<<8 | uint32(mac[2])<<16 | uint32(mac[3])<<24)
	macHi := int32(uint32(mac[4]) | uint32(mac[5])<<8)
	return asm.Instructions{
		asm.LoadMem(R2, R1, mdData, asm.Word),
		asm.LoadMem(R3, R1, mdDataEnd, asm.Word),
		asm.Mov.Reg(R0, R2),
		asm.Add.Imm(R0, 14),
		asm.JGT.Reg(R0, R3, "pass"),
		asm.LoadMem(R0, R2, 0, asm.Word),
		asm.JNE.Imm32(R0, macLo, "pass"),
		asm.LoadMem(R0, R2, 4, asm.Half),
		asm.JNE.Imm32(R0, macHi, "pass"),
		asm.LoadMem(R0, R2, 12, asm.Half),
		asm.JNE.Imm32(R0, be16(0x0800), "pass"),
		asm.LoadMem(R2, R1, mdRxQueueIdx, asm.Word),
		asm.LoadMapPtr(R1, xsks),
		asm.Mov.Imm(R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Return(),
		asm.Mov.Imm(R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	}
}

// OpenFloor opens the floor's UMEM and sockets and attaches its program (bpf_link, native
// mode where the driver has it). Close undoes it.
func OpenFloor(cfg FloorConfig) (_ *XSKFloor, err error) {
	cfg.Queues = max(cfg.Queues, 1)
	f := &XSKFloor{cfg: cfg}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if f.umem, err = NewUMEM(1, cfg.Queues); err != nil {
		return nil, err
	}
	f.free = make([]uint64, 0, f.umem.chunks)
	for c := f.umem.chunks - 1; c >= 0; c-- {
		f.free = append(f.free, uint64(c)*ChunkBytes)
	}
	if f.xsks, err = ebpf.NewMap(&ebpf.MapSpec{Name: "uvs_floor_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(cfg.Queues)}); err != nil {
		return nil, bpfError("create XSKMAP", err)
	}
	for q := 0; q < cfg.Queues; q++ {
		s, err := f.umem.OpenSocket(cfg.Ifindex, q, 0)
		if err != nil {
			return nil, err
		}
		f.socks = append(f.socks, s)
		if err := f.xsks.Put(uint32(q), uint32(s.fd)); err != nil {
			return nil, fmt.Errorf("afxdp: floor: XSKMAP queue %d: %w", q, err)
		}
		f.refill(s.pool)
	}
	if f.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "uvs_floor", Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: floorProgram(f.xsks.FD(), cfg.SrcMAC)}); err != nil {
		return nil, bpfError("load the floor's XDP program", err)
	}
	f.link, err = link.AttachXDP(link.XDPOptions{Program: f.prog, Interface: cfg.Ifindex, Flags: link.XDPDriverMode})
	if err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EEXIST) {
		f.link, err = link.AttachXDP(link.XDPOptions{Program: f.prog, Interface: cfg.Ifindex, Flags: link.XDPGenericMode})
	}
	if err != nil {
		return nil, bpfError("attach the floor's XDP program", err)
	}
	return f, nil
}

// ZeroCopy reports whether the floor's sockets run in zero-copy mode.
func (f *XSKFloor) ZeroCopy() bool { return f.umem.ZeroCopy() }

// refill moves free chunks into p's fill ring, as many as fit.
func (f *XSKFloor) refill(p *Pool) {
	r := p.fill
	n := min(int(r.size-(p.fillProd-r.loadConsumer())), len(f.free))
	if n <= 0 {
		return
	}
	for i := 0; i < n; i++ {
		r.addrs[(p.fillProd+uint32(i))&r.mask] = f.free[len(f.free)-1-i]
	}
	f.free = f.free[:len(f.free)-n]
	p.fillProd += uint32(n)
	r.storeProducer(p.fillProd)
	if r.needWakeup() {
		_, _, _ = unix.Syscall6(unix.SYS_RECVFROM, uintptr(p.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	}
}

// complete takes sent chunks back from p's completion ring.
func (f *XSKFloor) complete(p *Pool) {
	c := p.comp
	prod := c.loadProducer()
	for ; p.compCons != prod; p.compCons++ {
		f.free = append(f.free, c.addrs[p.compCons&c.mask]&^(ChunkBytes-1))
	}
	c.storeConsumer(p.compCons)
}

// batch forwards up to rxBatch frames of s; it reports whether there were any.
func (f *XSKFloor) batch(s *Socket, mac *[12]byte) bool {
	r, t := s.rx, s.tx
	n := min(r.loadProducer()-s.rxCons, rxBatch)
	if n == 0 {
		return false
	}
	mem := f.umem.mem
	for i := uint32(0); i < n; i++ {
		d := r.descs[(s.rxCons+i)&r.mask]
		if d.Len < 14 || d.Addr&(ChunkBytes-1) < packet.VnetHdrLen || d.Addr+uint64(d.Len) > uint64(len(mem)) {
			f.c.Truncated++
			f.free = append(f.free, d.Addr&^(ChunkBytes-1))
			continue
		}
		if s.txProd-t.loadConsumer() >= t.size {
			f.c.TxDropped++
			f.free = append(f.free, d.Addr&^(ChunkBytes-1))
			continue
		}
		copy(mem[d.Addr:d.Addr+12], mac[:])
		// A partial checksum from a local veth sender is finished here, as the worker does
		// (csum.go): nothing after the socket computes it, and the AF_PACKET floor has the
		// kernel do it (PACKET_VNET_HDR). A complete checksum costs one comparison.
		buf := mem[d.Addr-packet.VnetHdrLen : d.Addr+uint64(d.Len)]
		rxVnetHdr(buf, buf[packet.VnetHdrLen:])
		if finishTX(buf) == nil {
			f.c.Truncated++
			f.free = append(f.free, d.Addr&^(ChunkBytes-1))
			continue
		}
		t.descs[s.txProd&t.mask] = d
		s.txProd++
	}
	s.rxCons += n
	r.storeConsumer(s.rxCons)
	t.storeProducer(s.txProd)
	for k := 0; k < maxKicks && t.loadConsumer() != s.txProd; k++ {
		if f.umem.zc && !t.needWakeup() {
			break
		}
		if e := wakeTX(s.fd); e != 0 && e != unix.EAGAIN && e != unix.EBUSY && e != unix.ENOBUFS {
			break
		}
		f.complete(s.pool)
	}
	cons := t.loadConsumer()
	f.c.Forwarded += uint64(cons - s.txDone)
	s.txDone = cons
	f.complete(s.pool)
	f.refill(s.pool)
	return true
}

// Run forwards until stop is set; wake (an eventfd, or -1) interrupts its idle poll.
func (f *XSKFloor) Run(stop *atomic.Bool, wake int) FloorCounters {
	var mac [12]byte
	copy(mac[:6], f.cfg.DstMAC[:])
	copy(mac[6:], f.cfg.SrcMAC[:])
	pfds := make([]unix.PollFd, 0, len(f.socks)+1)
	for _, s := range f.socks {
		pfds = append(pfds, unix.PollFd{Fd: int32(s.fd), Events: unix.POLLIN})
	}
	if wake >= 0 {
		pfds = append(pfds, unix.PollFd{Fd: int32(wake), Events: unix.POLLIN})
	}
	for !stop.Load() {
		busy := false
		for _, s := range f.socks {
			if f.batch(s, &mac) {
				busy = true
			}
		}
		if !busy {
			for _, s := range f.socks {
				f.complete(s.pool)
				f.refill(s.pool)
			}
			_, _ = unix.Poll(pfds, idlePoll)
		}
	}
	for _, s := range f.socks {
		if st, err := s.Stats(); err == nil {
			f.c.RxRingFull += st.Rx_ring_full
			f.c.FillRingEmpty += st.Rx_fill_ring_empty_descs
			f.c.RxDropped += st.Rx_dropped
		}
	}
	return f.c
}

// Close detaches the program and frees the sockets and the UMEM.
func (f *XSKFloor) Close() {
	if f.link != nil {
		_ = f.link.Close()
		f.link = nil
	}
	if f.prog != nil {
		_ = f.prog.Close()
		f.prog = nil
	}
	for _, s := range f.socks {
		s.Close()
	}
	f.socks = nil
	if f.xsks != nil {
		_ = f.xsks.Close()
		f.xsks = nil
	}
	if f.umem != nil {
		f.umem.Close()
		f.umem = nil
	}
}
