package shield

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/forward/internal/netnstest"
)

// TestIntegrationShieldVIPFromTXRing sends VIP datagrams the way uvs bench's generator and
// any AF_PACKET TX ring sender does: tpacket_snd puts everything past the link header in
// page fragments, and a veth hands the frame on like that, so the shield sees only 14 bytes
// in the linear area. The tcx program once passed such frames (their headers were "too
// short"), and the director's stack paid ip_rcv and ip_error for each one at full rate.
func TestIntegrationShieldVIPFromTXRing(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	for _, mode := range shieldModes {
		t.Run(mode.String(), func(t *testing.T) {
			l := newShieldLab(t)
			frame := udpFrame(netnstest.MACOf(t, l.a, "a0"), netnstest.MACOf(t, l.b, "b0"),
				netnstest.Addr4("198.18.0.1"), netnstest.Addr4("198.18.1.10"), 9)
			send := func() uint64 {
				before := netnstest.Nstat(t, l.b, "IpForwDatagrams")
				netnstest.MustInNS(t, l.a, func() error { return sendTXRing("a0", frame, 5) })
				time.Sleep(50 * time.Millisecond)
				return netnstest.Nstat(t, l.b, "IpForwDatagrams") - before
			}
			// The frames are valid: without the shield B forwards them.
			if n := send(); n < 5 {
				t.Fatalf("without shield: IpForwDatagrams grew by %d, want >= 5", n)
			}
			s := newShieldIn(t, l.b, mode, "b0")
			if err := s.Update([][4]byte{netnstest.Addr4("198.18.1.10")}, nil); err != nil {
				t.Fatal(err)
			}
			if n := send(); n != 0 {
				t.Errorf("with shield: IpForwDatagrams grew by %d for TX-ring frames to a VIP, want 0", n)
			}
		})
	}
}

// udpFrame returns an Ethernet frame holding a UDP datagram from src:40000 to dst:port.
func udpFrame(srcMAC, dstMAC [6]byte, src, dst [4]byte, port uint16) []byte {
	payload := []byte("uvs tx ring test")
	b := make([]byte, 14+20+8+len(payload))
	copy(b[0:], dstMAC[:])
	copy(b[6:], srcMAC[:])
	binary.BigEndian.PutUint16(b[12:], unix.ETH_P_IP)
	ip := b[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(ip[2:], uint16(len(b)-14))
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := b[34:]
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], port)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload))) // checksum 0: none (RFC 768)
	copy(udp[8:], payload)
	return b
}

// sendTXRing sends frame count times on ifname through a TPACKET_V2 TX ring, one kick.
func sendTXRing(ifname string, frame []byte, count int) error {
	const slot, slots, data = 2048, 16, 32 // data: TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return err
	}
	req := unix.TpacketReq{Block_size: slot * slots, Block_nr: 1, Frame_size: slot, Frame_nr: slots}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
		return err
	}
	mem, err := unix.Mmap(fd, 0, slot*slots, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	defer unix.Munmap(mem)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		return err
	}
	if count > slots {
		return fmt.Errorf("sendTXRing: %d frames for %d slots", count, slots)
	}
	for i := 0; i < count; i++ {
		s := mem[i*slot:]
		copy(s[data:], frame)
		binary.NativeEndian.PutUint32(s[4:], uint32(len(frame))) // tp_len
		binary.NativeEndian.PutUint32(s[0:], unix.TP_STATUS_SEND_REQUEST)
	}
	// Without MSG_DONTWAIT tpacket_snd waits until every frame has left the ring.
	if _, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, 0, 0, 0); errno != 0 {
		return fmt.Errorf("sendto: %w", errno)
	}
	return nil
}
