package engine

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/uvs-project/uvs/forward/packet"
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
//     a local address), within the worker's ICMP rate limit: tooBig (mtu.go), as for DR and NAT;
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
// skb_gso_validate_network_len does in IPVS, or without DF is cut to fit.

// TunnelStats count what TUN forwarding did beyond one frame in, one frame out. Only the worker
// writes them (atomic load and store); the control side reads them with atomic loads.
type TunnelStats struct {
	Frames       atomic.Uint64 // IPIP frames queued (segments and fragments each count)
	Segmented    atomic.Uint64 // GSO super-frames segmented in software
	Fragmented   atomic.Uint64 // packets without DF split to fit the tunnel
	TooSmallMTU  atomic.Uint64 // dropped: the egress MTU leaves no room for any payload
	UnsupGSOType atomic.Uint64 // GSO frames of a type uvs cannot segment (also counted as DropGSO)
}

// tunState is one worker's TUN state.
type tunState struct {
	started bool
	id      uint16 // outer IP ID counter
}

// ipipOverhead is what an IPIP frame adds in front of the inner IP packet in scratch:
// virtio_net_hdr, Ethernet, outer IPv4.
const ipipOverhead = packet.VnetHdrLen + packet.IPIPHdrLen

// What one received frame can generate, which the worker keeps free in scratch and in the
// frame list before it handles the next frame (engine.full). The most is a 64 KiB GSO frame
// segmented for the tunnel: each segment repeats the virtio_net_hdr, Ethernet and the outer
// header plus the inner IP and TCP headers (with options): 124 bytes for IPIP, 164 for 6in6
// without extension headers (tun6.go). For gso_size >= minTunnelMSS that is at most
// maxFrameOuts segments and maxFrameScratch bytes (about 106 KiB, sized for 6in6, above the
// 68 KiB of a refragmented 64 KiB datagram; inner extension headers beyond that are
// refused as scratch_full); a smaller gso_size (a peer's MSS below 248, far under RFC
// 879's 536) may not fit and is counted as scratch_full or tx_batch_full.
const (
	minTunnelMSS    = 248
	maxFrameOuts    = (0xffff + minTunnelMSS - 1) / minTunnelMSS
	maxFrameScratch = maxFrameOuts*(packet.VnetHdrLen+packet.IP6IP6HdrLen+packet.IPv6HdrLen+60) + 0xffff
)

// nextID returns the next outer IP ID. Workers start 4096 apart so that their IDs differ for
// a while even toward the same real server.
func (e *Engine) nextID() uint16 {
	if !e.tun.started {
		e.tun.started = true
		e.tun.id = uint16(e.id) << 12
	}
	e.tun.id++
	return e.tun.id
}

// tunnel forwards a packet to a TUN real server by IPIP encapsulation, from dest.SrcIP (the
// service's tunnel_source or the egress address). p holds the frame as ParseL4 and
// VnetHdr.Check accepted it; rxIf is where it came in (ICMP errors go back there). It reports
// whether the packet was queued; a drop or an ICMP error instead is counted here.
func (e *Engine) tunnel(frame []byte, dest *Real, rxIf int) bool {
	p := &e.p
	if p.V6 || dest.V6 {
		return e.tunnel6(frame, dest, rxIf) // 6in6, 4in6, 6in4 (tun6.go)
	}
	src := dest.SrcIP
	room := 0xffff - packet.IPv4HdrLen // largest inner packet
	if dest.MTU > 0 && dest.MTU-packet.IPv4HdrLen < room {
		room = dest.MTU - packet.IPv4HdrLen
	}
	if room < packet.IPv4HdrLen+8 {
		bump64(&e.stats.Tunnel.TooSmallMTU, 1)
		return false
	}
	if e.tooBig(frame, rxIf, room, e.p.Dst) {
		return false
	}
	pkt := frame[:p.L3+p.IPLen] // without Ethernet padding
	if e.vh.GSOType != packet.VnetGSONone {
		return e.tunnelGSO(pkt, dest, src, room)
	}
	if !packet.FinishChecksum(pkt, &e.vh) {
		e.fault(packet.FaultBadVnetHdr)
		return false
	}
	inner := pkt[p.L3:]
	if len(inner) > room { // without DF: tooBig took the others
		return e.tunnelFragments(inner, dest, src, room)
	}
	b := e.alloc(ipipOverhead + len(inner))
	if b == nil {
		e.Drop(DropScratchFull)
		return false
	}
	clear(b[:packet.VnetHdrLen])
	packet.EncapIPIP(b[packet.VnetHdrLen:], inner, dest.DstMAC, dest.SrcMAC, src, [4]byte(dest.Addr[12:]), e.nextID())
	e.queue(dest.TxIf, b)
	bump64(&e.stats.Tunnel.Frames, 1)
	return true
}

// fits reports whether n frames of total scratch bytes fit the batch, counting the drop if not.
// Segments and fragments are all or nothing: a partial train only wastes the path.
func (e *Engine) fits(n, bytes int) bool {
	if e.used+bytes > len(e.scratch) {
		e.Drop(DropScratchFull)
		return false
	}
	if len(e.out)+n > cap(e.out) {
		e.Drop(DropTxBatchFull)
		return false
	}
	return true
}

// writeFragment4 writes into f the fragment of inner (an IPv4 packet without options) that
// carries m bytes of its payload from off: inner's header with the length, fragment offset,
// MF flag and header checksum of the fragment.
func writeFragment4(f, inner []byte, off, m int) {
	data := inner[packet.IPv4HdrLen:]
	copy(f[:packet.IPv4HdrLen], inner[:packet.IPv4HdrLen])
	copy(f[packet.IPv4HdrLen:], data[off:off+m])
	fo := uint16(off / 8)
	if off+m < len(data) {
		fo |= packet.IPFlagMF
	}
	binary.BigEndian.PutUint16(f[2:4], uint16(packet.IPv4HdrLen+m))
	binary.BigEndian.PutUint16(f[6:8], fo)
	f[10], f[11] = 0, 0
	binary.BigEndian.PutUint16(f[10:12], ^packet.Checksum(f[:packet.IPv4HdrLen], 0))
}

// tunnelFragments splits inner (an unfragmented IPv4 packet without options and without DF)
// into fragments of at most room bytes (RFC 791: offsets in 8-byte units) and encapsulates each.
func (e *Engine) tunnelFragments(inner []byte, dest *Real, src [4]byte, room int) bool {
	data := inner[packet.IPv4HdrLen:]
	step := (room - packet.IPv4HdrLen) &^ 7
	n := (len(data) + step - 1) / step
	if !e.fits(n, n*(ipipOverhead+packet.IPv4HdrLen)+len(data)) {
		return false
	}
	for off := 0; off < len(data); off += step {
		m := min(step, len(data)-off)
		b := e.alloc(ipipOverhead + packet.IPv4HdrLen + m)
		clear(b[:packet.VnetHdrLen])
		f := b[ipipOverhead:]
		writeFragment4(f, inner, off, m)
		packet.EncapIPIP(b[packet.VnetHdrLen:], f, dest.DstMAC, dest.SrcMAC, src, [4]byte(dest.Addr[12:]), e.nextID())
		e.queue(dest.TxIf, b)
	}
	bump64(&e.stats.Tunnel.Frames, uint64(n))
	bump64(&e.stats.Tunnel.Fragmented, 1)
	return true
}

// TCP flags that segmentation treats specially (RFC 793, RFC 3168), as tcp_gso_segment:
// FIN (engine.go) and PSH stay on the last segment only, CWR on the first only.
const (
	tcpPSH = 0x08
	tcpCWR = 0x80
)

// tunnelGSO segments a TCP or UDP GSO super-frame (pkt: the frame up to the end of its IP
// packet) by its gso_size and encapsulates each segment with finished checksums.
func (e *Engine) tunnelGSO(pkt []byte, dest *Real, src [4]byte, room int) bool {
	p := &e.p
	inner := pkt[p.L3:]
	hl := e.gsoHeaderLen(pkt) // IP + L4 header length
	if hl == 0 {
		bump64(&e.stats.Tunnel.UnsupGSOType, 1)
		e.fault(packet.FaultGSO)
		return false
	}
	data := inner[hl:]
	mss := int(e.vh.GSOSize)
	if hl+mss > room { // without DF: tooBig took the others
		if mss = room - hl; mss < 8 {
			bump64(&e.stats.Tunnel.TooSmallMTU, 1)
			return false
		}
	}
	n := max(1, (len(data)+mss-1)/mss)
	if !e.fits(n, n*(ipipOverhead+hl)+len(data)) {
		return false
	}
	id := binary.BigEndian.Uint16(inner[4:6])
	var seq uint32
	var flags uint8
	if p.Proto == packet.ProtoTCP {
		seq = binary.BigEndian.Uint32(inner[packet.IPv4HdrLen+4:])
		flags = inner[packet.IPv4HdrLen+13]
	}
	for i := 0; i < n; i++ {
		off := i * mss
		m := min(mss, len(data)-off)
		b := e.alloc(ipipOverhead + hl + m)
		clear(b[:packet.VnetHdrLen])
		s := b[ipipOverhead:]
		copy(s[:hl], inner[:hl])
		copy(s[hl:], data[off:off+m])
		ip := s[:packet.IPv4HdrLen]
		binary.BigEndian.PutUint16(ip[2:4], uint16(hl+m))
		binary.BigEndian.PutUint16(ip[4:6], id+uint16(i)) // as inet_gso_segment without FIXEDID
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:12], ^packet.Checksum(ip, 0))
		l4 := s[packet.IPv4HdrLen:]
		l4len := hl - packet.IPv4HdrLen + m
		csumOff := segmentL4(l4, p.Proto, l4len, seq+uint32(off), flags, i == 0, i == n-1)
		cs := ^packet.Checksum(l4, packet.PseudoHeaderSum(p.Src, p.Dst, p.Proto, uint16(l4len)))
		if cs == 0 && p.Proto == packet.ProtoUDP {
			cs = 0xffff // RFC 768
		}
		binary.BigEndian.PutUint16(l4[csumOff:], cs)
		packet.EncapIPIP(b[packet.VnetHdrLen:], s, dest.DstMAC, dest.SrcMAC, src, [4]byte(dest.Addr[12:]), e.nextID())
		e.queue(dest.TxIf, b)
	}
	bump64(&e.stats.Tunnel.Frames, uint64(n))
	bump64(&e.stats.Tunnel.Segmented, 1)
	return true
}

// segmentL4 fills in the transport header of one segment of a GSO super-frame (l4, its
// header and payload, l4len bytes): for TCP the sequence number seq and the flags (CWR only
// on the first, FIN and PSH only on the last), for UDP the length. It zeroes the checksum
// field and returns its offset.
func segmentL4(l4 []byte, proto uint8, l4len int, seq uint32, flags uint8, first, last bool) int {
	if proto != packet.ProtoTCP {
		binary.BigEndian.PutUint16(l4[4:6], uint16(l4len))
		l4[packet.UDPCsumOff], l4[packet.UDPCsumOff+1] = 0, 0
		return packet.UDPCsumOff
	}
	binary.BigEndian.PutUint32(l4[4:8], seq)
	f := flags
	if !first {
		f &^= tcpCWR
	}
	if !last {
		f &^= packet.TCPFIN | tcpPSH
	}
	l4[13] = f
	l4[packet.TCPCsumOff], l4[packet.TCPCsumOff+1] = 0, 0
	return packet.TCPCsumOff
}
