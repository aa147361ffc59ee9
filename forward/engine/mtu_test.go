package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/forward/packet"
)

// mtuEngine is an engine for method whose real servers' egress MTU is mtu (a route MTU below
// the interface's 1500), with a connection from the client open (SYN seen).
func mtuEngine(t *testing.T, method string, mtu int) *Engine {
	t.Helper()
	port := 80
	if method == "nat" {
		port = 8080
	}
	e := newTestEngine(t, engineConfig(t, method, port), 1024)
	for _, svc := range e.snap.byID {
		for _, r := range svc.Reals {
			if r != nil {
				r.MTU = mtu
			}
		}
	}
	e.one(t, tcpFrame(t, 40000, 0x02, false))
	e.Reset()
	return e
}

// tcpBig is a TCP ACK segment from the client of ipLen bytes (IP packet), DF as given, with a
// complete or a partial (CHECKSUM_PARTIAL) checksum.
func tcpBig(t *testing.T, ipLen int, df, partial bool) []byte {
	s := defaultSpec(layers.IPProtocolTCP, ipLen-40)
	s.flags, s.df, s.partial = 0x10, df, partial
	return withVnet(build(t, s), partial)
}

// checkFragNeeded checks that out is ICMP fragmentation needed carrying mtu, from the VIP to
// the client's MAC and address, quoting orig (the frame as it arrived, after the vnet header).
func checkFragNeeded(t *testing.T, out, orig []byte, mtu int) {
	t.Helper()
	f := out[packet.VnetHdrLen:]
	if [6]byte(f[0:6]) != macA || [6]byte(f[6:12]) != ifaceMAC {
		t.Fatalf("ICMP MACs %x %x", f[0:6], f[6:12])
	}
	if [4]byte(f[26:30]) != vip || [4]byte(f[30:34]) != client || f[23] != packet.ProtoICMP {
		t.Fatalf("ICMP IP header %x", f[14:34])
	}
	if refSum(f[14:34]) != 0xffff {
		t.Fatal("ICMP IP header checksum")
	}
	m := f[34:]
	if m[0] != packet.ICMPDestUnreachable || m[1] != packet.ICMPCodeFragNeeded || int(binary.BigEndian.Uint16(m[6:8])) != mtu {
		t.Fatalf("ICMP %d/%d mtu %d, want 3/4 mtu %d", m[0], m[1], binary.BigEndian.Uint16(m[6:8]), mtu)
	}
	if refSum(m[:int(binary.BigEndian.Uint16(f[16:18]))-20]) != 0xffff {
		t.Fatal("ICMP checksum")
	}
	// The quote is the client's own header (before any NAT rewrite) and 8 bytes of L4, so the
	// client's stack finds its socket.
	if !bytes.Equal(m[8:36], orig[14:42]) {
		t.Fatalf("quote\n got %x\nwant %x", m[8:36], orig[14:42])
	}
}

// TestEngineFragNeeded: a DF packet larger than the real server's egress MTU is answered with
// fragmentation needed from the VIP and counted as too_big, for DR and NAT, with complete and
// partial checksums; one that fits is forwarded.
func TestEngineFragNeeded(t *testing.T) {
	for _, method := range []string{"dr", "nat"} {
		for _, partial := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/partial=%v", method, partial), func(t *testing.T) {
				e := mtuEngine(t, method, 1400)
				in := tcpBig(t, 1401, true, partial)
				orig := append([]byte(nil), in[packet.VnetHdrLen:]...)
				checkFragNeeded(t, e.one(t, in), orig, 1400)
				if d := e.dropSummary(); d["too_big"] != 1 || len(d) != 1 {
					t.Fatalf("drops %v, want too_big 1", d)
				}
				if e.stats.FragNeeded.Load() != 1 || e.stats.ICMPSent.Load() != 1 || e.stats.Forwarded.Load() != 1 {
					t.Fatalf("frag needed %d, ICMP sent %d, forwarded %d (the SYN)", e.stats.FragNeeded.Load(),
						e.stats.ICMPSent.Load(), e.stats.Forwarded.Load())
				}
				// 1400 fits and is forwarded whole, to the real's MAC.
				out := e.one(t, tcpBig(t, 1400, true, partial))
				f := out[packet.VnetHdrLen:]
				if f[0] != realMAC[0] || f[1] != realMAC[1] || int(binary.BigEndian.Uint16(f[16:18])) != 1400 {
					t.Fatalf("forwarded frame %x", f[:34])
				}
			})
		}
	}
}

// gsoBig is a TCP (or UDP) GSO super-frame from the client with payload bytes in segments of
// mss, DF as given. GSO frames are always CHECKSUM_PARTIAL.
func gsoBig(t *testing.T, proto layers.IPProtocol, payload, mss int, df bool) []byte {
	s := defaultSpec(proto, payload)
	s.flags, s.df, s.partial = 0x10, df, true
	hl, gso, off := 54, packet.VnetGSOTCPv4, packet.TCPCsumOff
	if proto == layers.IPProtocolUDP {
		s.dport = 53
		hl, gso, off = 42, packet.VnetGSOUDPL4, packet.UDPCsumOff
	}
	b := withVnet(build(t, s), true)
	vh := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: uint8(gso), GSOSize: uint16(mss), HdrLen: uint16(hl), CsumStart: 34, CsumOffset: uint16(off)}
	vh.Encode(b)
	return b
}

// TestEngineGSOFragNeeded: a GSO super-frame is measured by its segments (headers plus
// gso_size), not by its total length: one whose segments exceed the egress MTU gets
// fragmentation needed (DF) or is dropped (no DF: DR and NAT cannot cut it smaller); one whose
// segments fit goes out as the same super-frame, however long it is.
func TestEngineGSOFragNeeded(t *testing.T) {
	for _, method := range []string{"dr", "nat"} {
		for _, proto := range []layers.IPProtocol{layers.IPProtocolTCP, layers.IPProtocolUDP} {
			hl := 40
			if proto == layers.IPProtocolUDP {
				hl = 28
			}
			t.Run(fmt.Sprintf("%s/%v", method, proto), func(t *testing.T) {
				e := mtuEngine(t, method, 1400)
				in := gsoBig(t, proto, 5000, 1400-hl+1, true)
				orig := append([]byte(nil), in[packet.VnetHdrLen:]...)
				checkFragNeeded(t, e.one(t, in), orig, 1400)
				if d := e.dropSummary(); d["too_big"] != 1 || len(d) != 1 {
					t.Fatalf("drops %v, want too_big 1", d)
				}

				// Segments that fit: the super-frame goes out as it came, GSO header kept.
				out := e.one(t, gsoBig(t, proto, 5000, 1400-hl, true))
				var vh packet.VnetHdr
				vh.Decode(out)
				if vh.GSOSize != uint16(1400-hl) || len(out) != packet.VnetHdrLen+14+hl+5000 {
					t.Fatalf("forwarded super-frame: %+v, %d bytes", vh, len(out))
				}

				// Without DF nothing can be said to the client: dropped, counted, no ICMP.
				e.Reset()
				e.Handle(gsoBig(t, proto, 5000, 1400-hl+1, false), 0)
				if len(e.out) != 0 || e.dropSummary()["too_big"] != 2 {
					t.Fatalf("GSO without DF: out %d, drops %v", len(e.out), e.dropSummary())
				}
			})
		}
	}
}

// TestEngineFragNeededBudget: the replies share the worker's ICMP bucket; what it suppresses
// is dropped under too_big_icmp_limited, so every packet lands in one counter.
func TestEngineFragNeededBudget(t *testing.T) {
	e := mtuEngine(t, "dr", 1400)
	big := tcpBig(t, 1500, true, false)
	work := make([]byte, len(big))
	e.Reset()
	for i := 0; i < icmpBurst+10; i++ {
		copy(work, big)
		e.Handle(work, 0)
	}
	if len(e.out) != icmpBurst {
		t.Fatalf("%d ICMP, want %d", len(e.out), icmpBurst)
	}
	d := e.dropSummary()
	if d["too_big"] != icmpBurst || d["too_big_icmp_limited"] != 10 || e.stats.ICMPLimited.Load() != 10 {
		t.Fatalf("drops %v, ICMP limited %d", d, e.stats.ICMPLimited.Load())
	}
}

// TestEngineFragmentsAtRouteMTU: without DF a datagram larger than the real's route MTU (below
// the interface's) leaves in fragments of that MTU.
func TestEngineFragmentsAtRouteMTU(t *testing.T) {
	for _, method := range []string{"dr", "nat"} {
		t.Run(method, func(t *testing.T) {
			e := mtuEngine(t, method, 1000)
			s := defaultSpec(layers.IPProtocolUDP, 1400)
			s.dport, s.df = 53, false
			e.Handle(withVnet(build(t, s), false), 0)
			if len(e.out) != 2 {
				t.Fatalf("%d frames out, want 2 fragments (drops %v)", len(e.out), e.dropSummary())
			}
			for i, o := range e.out {
				if tot := int(binary.BigEndian.Uint16(o.Frame[packet.VnetHdrLen+16:])); tot > 1000 {
					t.Fatalf("fragment %d: %d bytes, MTU 1000", i, tot)
				}
			}
		})
	}
}

// TestEngineNATReplyFragNeeded: a NAT reply with DF too big for the client's side is answered
// to the real server with fragmentation needed from the director's address on the real's
// side, quoting the real's own header (before the rewrite to the VIP).
func TestEngineNATReplyFragNeeded(t *testing.T) {
	for _, partial := range []bool{false, true} {
		t.Run(fmt.Sprintf("partial=%v", partial), func(t *testing.T) {
			e := newTestEngine(t, engineConfig(t, "nat", 8080), 1024)
			e.snap.Ifaces[0].MTU, e.snap.Ifaces[0].Addr = 1400, [4]byte{10, 1, 2, 1}
			syn := e.one(t, tcpFrame(t, 40000, 0x02, false))
			dest := [4]byte(syn[packet.VnetHdrLen+30 : packet.VnetHdrLen+34])

			s := defaultSpec(layers.IPProtocolTCP, 1401-40)
			s.src, s.dst, s.sport, s.dport, s.flags, s.partial = dest, client, 8080, 40000, 0x10, partial
			in := withVnet(build(t, s), partial)
			orig := append([]byte(nil), in[packet.VnetHdrLen:]...)
			f := e.one(t, in)[packet.VnetHdrLen:]
			if [6]byte(f[0:6]) != macA || [4]byte(f[26:30]) != [4]byte{10, 1, 2, 1} || [4]byte(f[30:34]) != dest {
				t.Fatalf("ICMP to the real: %x", f[:34])
			}
			m := f[34:]
			if m[0] != packet.ICMPDestUnreachable || m[1] != packet.ICMPCodeFragNeeded || binary.BigEndian.Uint16(m[6:8]) != 1400 {
				t.Fatalf("ICMP %d/%d mtu %d", m[0], m[1], binary.BigEndian.Uint16(m[6:8]))
			}
			if !bytes.Equal(m[8:36], orig[14:42]) {
				t.Fatalf("quote\n got %x\nwant %x", m[8:36], orig[14:42])
			}
			if d := e.dropSummary(); d["too_big"] != 1 || e.stats.Replies.Load() != 0 {
				t.Fatalf("drops %v, replies %d", d, e.stats.Replies.Load())
			}
			// 1400 fits: rewritten to come from the VIP.
			s.payload = s.payload[:1400-40]
			out := e.one(t, withVnet(build(t, s), partial))[packet.VnetHdrLen:]
			if [4]byte(out[26:30]) != vip || e.stats.Replies.Load() != 1 {
				t.Fatalf("reply from %v, replies %d", out[26:30], e.stats.Replies.Load())
			}
		})
	}
}
