package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// GenProto is the kind of frame the generator sends.
type GenProto uint8

// Generator frame kinds.
const (
	GenInvalid GenProto = iota
	GenUDP              // UDP datagrams
	GenSYN              // TCP SYN: every new flow is a scheduling decision
	GenACK              // TCP ACK: packets of flows a SYN opened
)

// String returns "udp", "syn" or "ack".
func (p GenProto) String() string {
	switch p {
	case GenUDP:
		return "udp"
	case GenSYN:
		return "syn"
	case GenACK:
		return "ack"
	}
	return fmt.Sprintf("GenProto(%d)", p)
}

// Generator source space: flow i comes from genSrcBase + i%genSrcAddrs,
// port genSrcPort0 + (i/genSrcAddrs)%genSrcPorts. The ports are above the
// clients' ephemeral range (bench sets it to 1024-19999) so that sinks can
// drop generated traffic by source port and probes still get answers.
var genSrcBase = netip.MustParseAddr("198.19.128.0")

const (
	genSrcAddrs = 4096
	genSrcPort0 = 20000
	genSrcPorts = 65536 - genSrcPort0
)

// TX ring geometry. 2 KiB frames hold a 1518-byte frame after the 32-byte
// tpacket2_hdr; jumbo frames take 16 KiB slots. 8 MiB of ring lets the
// generator stay ahead of the veth by thousands of frames.
const (
	genRingBytes = 8 << 20
	genBlockSize = 1 << 16
	// genDataOff is TPACKET2_HDRLEN - sizeof(struct sockaddr_ll): where
	// frame data starts in a TX slot without PACKET_TX_HAS_OFF
	// (Documentation/networking/packet_mmap.rst).
	genDataOff = 32
	// genSndBuf is forced with SO_SNDBUFFORCE: the default socket buffer
	// would block the ring after a few hundred in-flight frames.
	genSndBuf = 64 << 20
	// tp_status values from include/uapi/linux/if_packet.h.
	tpStatusAvailable   = 0
	tpStatusSendRequest = 1
	tpStatusWrongFormat = 4
)

// GenConfig describes one generator run.
type GenConfig struct {
	Iface    string           // Interface in the node's namespace.
	SrcMAC   net.HardwareAddr // The interface's MAC.
	DstMAC   net.HardwareAddr // Next hop: the director's MAC.
	Dst      netip.AddrPort   // VIP and port.
	Proto    GenProto
	Size     int           // Ethernet frame bytes, FCS included (64 = 60 on the wire without FCS).
	Flows    int           // Distinct source addr:port pairs.
	FlowBase int           // First flow number; lets a run continue the flows of another.
	Rate     float64       // Frames per second; 0 = as fast as the ring drains.
	Duration time.Duration // How long to send.
	Count    int           // If > 0, stop after this many frames.
	CPU      int           // CPU to pin the sending thread to; -1 = none.
	// OnEnd, if set, is called when the last frame is handed to the kernel, before the
	// frames still in flight are waited for: what arrived by then arrived during the trial.
	OnEnd func()
}

// GenResult is what the generator sent.
type GenResult struct {
	Sent    uint64
	Elapsed time.Duration
}

// Generate sends frames from node n as cfg says, from an AF_PACKET socket
// with a TPACKET_V2 TX ring, on a thread pinned to cfg.CPU. Frames are built
// once; per frame only the source address, port and checksums change.
func Generate(n *Node, cfg GenConfig) (GenResult, error) {
	var res GenResult
	err := n.Do(func() error {
		var err error
		res, err = generate(cfg)
		return err
	})
	return res, err
}

func generate(cfg GenConfig) (GenResult, error) {
	if cfg.Proto == GenInvalid || cfg.Size < MinFrameSize(cfg.Dst.Addr(), cfg.Proto) || cfg.Flows < 1 || !cfg.Dst.Addr().Is4() && !cfg.Dst.Addr().Is6() {
		return GenResult{}, fmt.Errorf("bench: generator: bad config %+v", cfg)
	}
	if cfg.CPU >= 0 {
		// Do's goroutine is locked to its thread, so this pins only it, until
		// the thread goes back to the runtime's pool: then the old affinity is
		// restored, or any goroutine of the bench could run pinned there.
		var old, set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &old); err != nil {
			return GenResult{}, fmt.Errorf("bench: generator: sched_getaffinity: %w", err)
		}
		set.Set(cfg.CPU)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return GenResult{}, fmt.Errorf("bench: generator: sched_setaffinity: %w", err)
		}
		defer unix.SchedSetaffinity(0, &old)
	}
	defer setTimerSlack(setTimerSlack(1000)) // pacing sleeps end within a microsecond (threadSleep)
	ifi, err := net.InterfaceByName(cfg.Iface)
	if err != nil {
		return GenResult{}, fmt.Errorf("bench: generator: %w", err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return GenResult{}, fmt.Errorf("bench: generator: socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, genSndBuf); err != nil {
		return GenResult{}, fmt.Errorf("bench: generator: setsockopt SO_SNDBUFFORCE: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return GenResult{}, fmt.Errorf("bench: generator: setsockopt PACKET_VERSION: %w", err)
	}
	// No qdisc: the frames go straight to the driver, as pktgen does.
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
	frameSize := 2048
	if cfg.Size-4 > frameSize-genDataOff {
		frameSize = 16384
	}
	req := unix.TpacketReq{
		Block_size: genBlockSize,
		Block_nr:   genRingBytes / genBlockSize,
		Frame_size: uint32(frameSize),
		Frame_nr:   genRingBytes / uint32(frameSize),
	}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
		return GenResult{}, fmt.Errorf("bench: generator: setsockopt PACKET_TX_RING: %w", err)
	}
	ring, err := unix.Mmap(fd, 0, genRingBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return GenResult{}, fmt.Errorf("bench: generator: mmap: %w", err)
	}
	defer unix.Munmap(ring)
	proto := uint16(unix.ETH_P_IP)
	if cfg.Dst.Addr().Is6() {
		proto = unix.ETH_P_IPV6
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(proto)}); err != nil {
		return GenResult{}, fmt.Errorf("bench: generator: bind: %w", err)
	}
	pfd := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	tmpl := buildFrame(cfg)
	nframes := int(req.Frame_nr)
	for i := range nframes {
		copy(ring[i*frameSize+genDataOff:], tmpl.b)
	}
	// Batch: enough frames per kick to amortise the send(2), few enough
	// that pacing stays smooth at low rates (10 kicks per millisecond).
	batch := 256
	if cfg.Rate > 0 {
		batch = max(1, min(batch, int(cfg.Rate/10000)))
	}
	var sent uint64
	flow := uint64(cfg.FlowBase)
	slot := 0
	start := time.Now()
	end := start.Add(cfg.Duration)
	for {
		now := time.Now()
		if now.After(end) || cfg.Count > 0 && sent >= uint64(cfg.Count) {
			break
		}
		if cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(sent) / cfg.Rate * 1e9))
			if d := due.Sub(now); d > 0 {
				threadSleep(d)
				continue
			}
		}
		queued := 0
		for queued < batch {
			if cfg.Count > 0 && sent+uint64(queued) >= uint64(cfg.Count) {
				break
			}
			f := ring[slot*frameSize : (slot+1)*frameSize]
			st := ringStatus(f)
			s := st.Load()
			if s == tpStatusWrongFormat {
				return GenResult{}, errors.New("bench: generator: kernel rejected a frame (TP_STATUS_WRONG_FORMAT)")
			}
			if s != tpStatusAvailable {
				break // ring full: kick and come back
			}
			if tmpl.v6 {
				tmpl.setFlow6(f[genDataOff:], int(flow%uint64(cfg.Flows)))
			} else {
				tmpl.setFlow(f[genDataOff:], int(flow%uint64(cfg.Flows)))
			}
			binary.NativeEndian.PutUint32(f[4:], uint32(len(tmpl.b))) // tp_len
			st.Store(tpStatusSendRequest)
			flow++
			queued++
			slot++
			if slot == nframes {
				slot = 0
			}
		}
		if queued == 0 {
			// Nothing free: the kernel still holds every slot. Wait for one
			// (the skb destructor wakes POLLOUT), kicking any slot left at
			// SEND_REQUEST by a failed send.
			if _, err := unix.SendmsgN(fd, nil, nil, nil, unix.MSG_DONTWAIT); err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.ENOBUFS) {
				return GenResult{}, fmt.Errorf("bench: generator: send: %w", err)
			}
			_, _ = unix.Poll(pfd[:], 1)
			continue
		}
		// Not a blocking send: that waits until every frame of the batch is
		// freed, and a frame is freed where its skb ends, in the director's
		// receive path on the director's CPU (veth keeps the sender's socket
		// on the skb across namespaces), so each batch waited for the
		// director and the two CPUs took turns instead of working together.
		if _, err := unix.SendmsgN(fd, nil, nil, nil, unix.MSG_DONTWAIT); err != nil && !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
			return GenResult{}, fmt.Errorf("bench: generator: send: %w", err)
		}
		sent += uint64(queued)
	}
	elapsed := time.Since(start)
	if cfg.OnEnd != nil {
		cfg.OnEnd()
	}
	// Let the kernel finish what is queued (a blocking send waits for every
	// frame in flight) before the ring is unmapped.
	_, _ = unix.SendmsgN(fd, nil, nil, nil, 0)
	return GenResult{Sent: sent, Elapsed: elapsed}, nil
}

// genMaxSleep bounds one pacing sleep, so that a raw nanosleep never keeps
// the thread from the runtime's preemption for long.
const genMaxSleep = time.Millisecond

// setTimerSlack sets the calling thread's timer slack (PR_SET_TIMERSLACK) to
// ns and returns the old one; the default 50 us would make every pacing sleep
// up to 50 us late.
func setTimerSlack(ns int) (old int) {
	old = 50000
	if v, _, errno := unix.Syscall6(unix.SYS_PRCTL, unix.PR_GET_TIMERSLACK, 0, 0, 0, 0, 0); errno == 0 {
		old = int(v)
	}
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(ns), 0, 0, 0)
	return old
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// frameTemplate is a pre-built frame and the unfolded checksum sums of its
// fixed parts, so that setFlow patches a frame in a handful of stores.
type frameTemplate struct {
	b       []byte
	ipSum   uint32 // IPv4 header sum without the source address
	l4Sum   uint32 // L4 sum (pseudo-header included) without source address and port
	l4      int    // offset of the L4 header
	csumOff int    // offset of the L4 checksum
	v6      bool   // an IPv6 frame (gen6.go): setFlow6 patches it
}

// buildFrame builds the frame of cfg with a zero source address and port.
func buildFrame(cfg GenConfig) frameTemplate {
	if cfg.Dst.Addr().Is6() {
		return buildFrame6(cfg)
	}
	n := cfg.Size - 4 // no FCS on the wire of a veth
	b := make([]byte, n)
	copy(b[0:6], cfg.DstMAC)
	copy(b[6:12], cfg.SrcMAC)
	binary.BigEndian.PutUint16(b[12:], unix.ETH_P_IP)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(n-14))
	ip[8] = 64
	dst := cfg.Dst.Addr().As4()
	copy(ip[16:20], dst[:])
	l4 := 34
	l4len := n - l4
	t := frameTemplate{b: b, l4: l4}
	ip[9], t.csumOff = writeL4(b[l4:], cfg.Proto, cfg.Dst.Port(), l4len)
	t.csumOff += l4
	t.ipSum = sum16(ip[:20])
	// Pseudo-header (RFC 768, RFC 793): addresses, protocol, L4 length.
	t.l4Sum = sum16(dst[:]) + uint32(ip[9]) + uint32(l4len) + sum16(b[l4:])
	return t
}

// writeL4 writes the transport header of a generated frame of either family into b (UDP, or
// TCP with SYN for GenSYN and ACK otherwise) and returns the IP protocol number and the offset
// of the checksum field in b.
func writeL4(b []byte, proto GenProto, dport uint16, l4len int) (ipProto byte, csumOff int) {
	binary.BigEndian.PutUint16(b[2:], dport)
	if proto == GenUDP {
		binary.BigEndian.PutUint16(b[4:], uint16(l4len))
		return unix.IPPROTO_UDP, 6
	}
	binary.BigEndian.PutUint32(b[4:], 0x1000) // seq
	b[12] = 5 << 4                            // data offset: 20 bytes
	if proto == GenSYN {
		b[13] = 0x02
	} else {
		binary.BigEndian.PutUint32(b[8:], 1)
		b[13] = 0x10
	}
	binary.BigEndian.PutUint16(b[14:], 65535) // window
	return unix.IPPROTO_TCP, 16
}

// setFlow writes flow i's source address and port into frame f (a copy of
// t.b) and fixes both checksums.
func (t *frameTemplate) setFlow(f []byte, i int) {
	a := genSrcBase.As4()
	v := binary.BigEndian.Uint32(a[:]) + uint32(i%genSrcAddrs)
	port := uint16(genSrcPort0 + (i/genSrcAddrs)%genSrcPorts)
	binary.BigEndian.PutUint32(f[26:], v)
	binary.BigEndian.PutUint16(f[t.l4:], port)
	as := v>>16 + v&0xffff
	binary.BigEndian.PutUint16(f[24:], ^fold(t.ipSum+as))
	c := ^fold(t.l4Sum + as + uint32(port))
	if c == 0 && f[23] == unix.IPPROTO_UDP {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(f[t.csumOff:], c)
}

func sum16(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
