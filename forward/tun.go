package forward

import (
	"encoding/binary"
	"sync/atomic"
)

// TUN forwarding: the client's IP packet goes to the real server inside an outer IPv4 header
// (IPIP, RFC 2003), as ip_vs_tunnel_xmit (net/netfilter/ipvs/ip_vs_xmit.c) does. The frame is
// copied into the engine's scratch behind fresh Ethernet and outer IP headers: the ring leaves
// only the virtio_net_hdr and the old Ethernet header (24 bytes) in front of the IP packet, and
// IPIP needs 44.
//
// Sizes. The outer packet must fit the egress MTU (Real.MTU, from the route or the device).
// A packet that does not:
//   - with DF, is dropped and answered with ICMP fragmentation needed, next-hop MTU = MTU-20,
//     sent to the client from the VIP (the source the kernel's icmp_send picks for a packet to
//     a local address), rate limited per worker like the kernel's global ICMP limit;
//   - without DF, is fragmented before encapsulation (the inner packet): every outer packet is
//     then an atomic datagram (RFC 6864), so the outer IP ID, a per-worker counter that other
//     workers do not coordinate with, never has to be unique for reassembly, and the decapsulator
//     (the kernel's ipip device or `uvs realserver`) needs no reassembly; the real server's stack
//     reassembles the inner fragments, which carry the client's own ID. IPVS instead lets
//     ip_fragment split the outer packet.
//
// GSO super-frames (virtio_net_hdr GSO_TCPV4 or GSO_UDP_L4) cannot be handed to the kernel as
// IPIP GSO through virtio_net_hdr, so they are segmented here, each segment encapsulated with
// complete checksums; a segment that would not fit the tunnel gets the DF treatment above, as
// skb_gso_validate_network_len does in IPVS.

// TunnelStats count what TUN forwarding did beyond one frame in, one frame out. Only the worker
// writes them (atomic load and store); the control side reads them with atomic loads.
type TunnelStats struct {
	Frames       atomic.Uint64 // IPIP frames queued (segments and fragments each count)
	Segmented    atomic.Uint64 // GSO super-frames segmented in software
	Fragmented   atomic.Uint64 // packets without DF split to fit the tunnel
	FragNeeded   atomic.Uint64 // ICMP fragmentation-needed sent for a DF packet too big
	RateLimited  atomic.Uint64 // DF packets too big dropped without ICMP (rate limit)
	TooSmallMTU  atomic.Uint64 // dropped: the egress MTU leaves no room for any payload
	UnsupGSOType atomic.Uint64 // GSO frames of a type uvs cannot segment (also counted as DropGSO)
}

// ICMP rate limit for fragmentation needed: the kernel's defaults for all ICMP it sends
// (net.ipv4.icmp_msgs_per_sec = 1000, icmp_msgs_burst = 50, net/ipv4/icmp.c); PMTU messages
// are exempt only from its per-destination limit.
const (
	fragNeededPerSec = 1000
	fragNeededBurst  = 50
)

// tunState is one worker's TUN state.
type tunState struct {
	started bool
	id      uint16 // outer IP ID counter
	tokens  int    // ICMP token bucket
	lastMs  uint32 // coarse clock of the last refill
}

// ipipOverhead is what an IPIP frame adds in front of the inner IP packet in scratch:
// virtio_net_hdr, Ethernet, outer IPv4.
const ipipOverhead = VnetHdrLen + ipipHdrLen

// scratchBytes sizes a worker's scratch arena for ring blocks of blockBytes. Everything the
// engine generates while handling one block lives there until the flush. A frame taking F
// bytes of the block comes out as IPIP in at most F+30 bytes (44 bytes of virtio_net_hdr,
// Ethernet and outer IP against the 14 of its Ethernet header), less than it takes in the
// block with its tpacket3_hdr (48) and virtio_net_hdr. Segmenting a GSO frame repeats at most
// ipipOverhead+20+60 = 124 bytes of headers per segment of gso_size payload bytes, so with
// gso_size >= 124 the output is at most twice the frame; ARP replies and ICMP errors are
// smaller than the frames they answer. Twice the block therefore holds the output of a block
// of TUN traffic whose MSS is at least 124 (RFC 879's default is 536); a smaller MSS can run
// out of room and is counted as scratch_full. The floor covers one 64 KiB frame segmented at
// that MSS in a test engine with small blocks.
func scratchBytes(blockBytes int) int {
	return max(2*blockBytes, 2*(64<<10))
}

// nextID returns the next outer IP ID. Workers start 4096 apart so that their IDs differ for
// a while even toward the same real server.
func (e *engine) nextID() uint16 {
	if !e.tun.started {
		e.tun.started = true
		e.tun.id = uint16(e.id) << 12
		e.tun.tokens = fragNeededBurst
		e.tun.lastMs = e.nowMs
	}
	e.tun.id++
	return e.tun.id
}

// allowICMP takes a token from the worker's bucket, refilled on the coarse clock.
func (e *engine) allowICMP() bool {
	if !e.tun.started {
		e.nextID()
	}
	t := &e.tun
	if d := e.nowMs - t.lastMs; d > 0 {
		add := int(min(d, 1000*fragNeededBurst)) * fragNeededPerSec / 1000
		if add > 0 {
			t.tokens = min(t.tokens+add, fragNeededBurst)
			t.lastMs = e.nowMs
		}
	}
	if t.tokens <= 0 {
		return false
	}
	t.tokens--
	return true
}

// tunnel forwards a request to a TUN real server by IPIP encapsulation. p holds the frame as
// ParseL4 and VnetHdr.Check accepted it; rxIf is where it came in (ICMP errors go back there).
func (e *engine) tunnel(frame []byte, svc *Service, real *Real, rxIf int) {
	p := &e.p
	src := real.SrcIP
	if svc.TunnelSrc != ([4]byte{}) {
		src = svc.TunnelSrc
	}
	room := 0xffff - ipv4HdrLen // largest inner packet
	if real.MTU > 0 && real.MTU-ipv4HdrLen < room {
		room = real.MTU - ipv4HdrLen
	}
	if room < ipv4HdrLen+8 {
		bump64(&e.stats.Tunnel.TooSmallMTU, 1)
		return
	}
	pkt := frame[:p.L3+p.IPLen] // without Ethernet padding
	if e.vh.GSOType != VnetGSONone {
		e.tunnelGSO(pkt, real, src, room, rxIf)
		return
	}
	if !FinishChecksum(pkt, &e.vh) {
		e.drop(DropBadVnetHdr)
		return
	}
	inner := pkt[p.L3:]
	if len(inner) > room {
		if p.DF {
			e.fragNeeded(frame, rxIf, room)
			return
		}
		e.tunnelFragments(inner, real, src, room)
		return
	}
	b := e.alloc(ipipOverhead + len(inner))
	if b == nil {
		e.edrop(DropScratchFull)
		return
	}
	clear(b[:VnetHdrLen])
	EncapIPIP(b[VnetHdrLen:], inner, real.DstMAC, real.SrcMAC, src, real.Addr, e.nextID())
	e.queue(real.TxIf, b)
	bump64(&e.stats.Tunnel.Frames, 1)
	bump64(&e.stats.Forwarded, 1)
}

// fragNeeded answers a DF packet that does not fit the tunnel with ICMP fragmentation needed
// (RFC 1191) carrying mtu, sent from the VIP to the frame's source MAC on rxIf.
func (e *engine) fragNeeded(frame []byte, rxIf int, mtu int) {
	if rxIf >= len(e.snap.Ifaces) {
		e.edrop(DropEgress)
		return
	}
	if !e.allowICMP() {
		bump64(&e.stats.Tunnel.RateLimited, 1)
		return
	}
	// The quote is the 20-byte header (ParseL4 refuses options) and 8 bytes.
	b := e.alloc(VnetHdrLen + max(ethHdrLen+ipv4HdrLen+icmpHdrLen+ipv4HdrLen+icmpQuoteL4, minFrameLen))
	if b == nil {
		e.edrop(DropScratchFull)
		return
	}
	clear(b[:VnetHdrLen])
	n := BuildICMPError(b[VnetHdrLen:], frame, &e.p, ICMPDestUnreachable, ICMPCodeFragNeeded,
		uint16(mtu), e.p.Dst, [6]byte(frame[6:12]), e.snap.Ifaces[rxIf].MAC)
	if n == 0 {
		return // RFC 1122 forbids an error about this packet; the drop is counted below
	}
	e.queue(rxIf, b[:VnetHdrLen+n])
	bump64(&e.stats.Tunnel.FragNeeded, 1)
}

// fits reports whether n frames of total scratch bytes fit the batch, counting the drop if not.
// Segments and fragments are all or nothing: a partial train only wastes the path.
func (e *engine) fits(n, bytes int) bool {
	if e.used+bytes > len(e.scratch) {
		e.edrop(DropScratchFull)
		return false
	}
	if len(e.out)+n > cap(e.out) {
		e.edrop(DropTxBatchFull)
		return false
	}
	return true
}

// tunnelFragments splits inner (an unfragmented IPv4 packet without options and without DF)
// into fragments of at most room bytes (RFC 791: offsets in 8-byte units) and encapsulates each.
func (e *engine) tunnelFragments(inner []byte, real *Real, src [4]byte, room int) {
	data := inner[ipv4HdrLen:]
	step := (room - ipv4HdrLen) &^ 7
	n := (len(data) + step - 1) / step
	if !e.fits(n, n*(ipipOverhead+ipv4HdrLen)+len(data)) {
		return
	}
	for off := 0; off < len(data); off += step {
		m := min(step, len(data)-off)
		b := e.alloc(ipipOverhead + ipv4HdrLen + m)
		clear(b[:VnetHdrLen])
		f := b[ipipOverhead:]
		copy(f[:ipv4HdrLen], inner[:ipv4HdrLen])
		copy(f[ipv4HdrLen:], data[off:off+m])
		fo := uint16(off / 8)
		if off+m < len(data) {
			fo |= ipFlagMF
		}
		binary.BigEndian.PutUint16(f[2:4], uint16(ipv4HdrLen+m))
		binary.BigEndian.PutUint16(f[6:8], fo)
		f[10], f[11] = 0, 0
		binary.BigEndian.PutUint16(f[10:12], ^Checksum(f[:ipv4HdrLen], 0))
		EncapIPIP(b[VnetHdrLen:], f, real.DstMAC, real.SrcMAC, src, real.Addr, e.nextID())
		e.queue(real.TxIf, b)
	}
	bump64(&e.stats.Tunnel.Frames, uint64(n))
	bump64(&e.stats.Tunnel.Fragmented, 1)
	bump64(&e.stats.Forwarded, 1)
}

// TCP flags that segmentation treats specially (RFC 793, RFC 3168), as tcp_gso_segment:
// FIN and PSH stay on the last segment only, CWR on the first only.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpPSH = 0x08
	tcpCWR = 0x80
)

// tunnelGSO segments a TCP or UDP GSO super-frame (pkt: the frame up to the end of its IP
// packet) by its gso_size and encapsulates each segment with finished checksums.
func (e *engine) tunnelGSO(pkt []byte, real *Real, src [4]byte, room, rxIf int) {
	p := &e.p
	inner := pkt[p.L3:]
	var hl int // IP + L4 header length
	switch {
	case e.vh.GSOType&^VnetGSOECN == VnetGSOTCPv4 && p.Proto == protoTCP:
		hl = ipv4HdrLen + int(inner[ipv4HdrLen+12]>>4)*4
	case e.vh.GSOType == VnetGSOUDPL4 && p.Proto == protoUDP:
		hl = ipv4HdrLen + udpHdrLen
	default:
		bump64(&e.stats.Tunnel.UnsupGSOType, 1)
		e.drop(DropGSO)
		return
	}
	data := inner[hl:]
	mss := int(e.vh.GSOSize)
	if hl+mss > room {
		if p.DF {
			e.fragNeeded(pkt, rxIf, room)
			return
		}
		if mss = room - hl; mss < 8 {
			bump64(&e.stats.Tunnel.TooSmallMTU, 1)
			return
		}
	}
	n := max(1, (len(data)+mss-1)/mss)
	if !e.fits(n, n*(ipipOverhead+hl)+len(data)) {
		return
	}
	id := binary.BigEndian.Uint16(inner[4:6])
	var seq uint32
	var flags uint8
	if p.Proto == protoTCP {
		seq = binary.BigEndian.Uint32(inner[ipv4HdrLen+4:])
		flags = inner[ipv4HdrLen+13]
	}
	for i := 0; i < n; i++ {
		off := i * mss
		m := min(mss, len(data)-off)
		b := e.alloc(ipipOverhead + hl + m)
		clear(b[:VnetHdrLen])
		s := b[ipipOverhead:]
		copy(s[:hl], inner[:hl])
		copy(s[hl:], data[off:off+m])
		ip := s[:ipv4HdrLen]
		binary.BigEndian.PutUint16(ip[2:4], uint16(hl+m))
		binary.BigEndian.PutUint16(ip[4:6], id+uint16(i)) // as inet_gso_segment without FIXEDID
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:12], ^Checksum(ip, 0))
		l4 := s[ipv4HdrLen:]
		l4len := hl - ipv4HdrLen + m
		var csumOff int
		if p.Proto == protoTCP {
			binary.BigEndian.PutUint32(l4[4:8], seq+uint32(off))
			f := flags
			if i > 0 {
				f &^= tcpCWR
			}
			if i < n-1 {
				f &^= tcpFIN | tcpPSH
			}
			l4[13] = f
			csumOff = tcpCsumOff
		} else {
			binary.BigEndian.PutUint16(l4[4:6], uint16(l4len))
			csumOff = udpCsumOff
		}
		l4[csumOff], l4[csumOff+1] = 0, 0
		cs := ^Checksum(l4, PseudoHeaderSum(p.Src, p.Dst, p.Proto, uint16(l4len)))
		if cs == 0 && p.Proto == protoUDP {
			cs = 0xffff // RFC 768
		}
		binary.BigEndian.PutUint16(l4[csumOff:], cs)
		EncapIPIP(b[VnetHdrLen:], s, real.DstMAC, real.SrcMAC, src, real.Addr, e.nextID())
		e.queue(real.TxIf, b)
	}
	bump64(&e.stats.Tunnel.Frames, uint64(n))
	bump64(&e.stats.Tunnel.Segmented, 1)
	bump64(&e.stats.Forwarded, 1)
}
