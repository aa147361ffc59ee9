//go:build linux

// Command tcpflows opens short TCP connections through a DR director at a set rate, from
// a raw socket: per connection SYN, ACK, FIN+ACK and ACK, the packets a DR director sees of
// a short connection (the real server's replies go to the client directly and are not
// needed). It drives the live sync measurement in docs/benchmarks.md ("Connection sync"):
//
//	ip netns exec CLIENT-NS go run ./bench/tcpflows -dst 198.18.1.100:80 \
//	    -src 198.18.1.10,198.18.1.20 -rate 10000 -duration 15s
//
// Flow i comes from source address i%len(src) and port 1024+(i/len(src))%64000, so a run
// of up to 64000*len(src) connections opens only new ones. Linux only, as root.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

func main() {
	dst := flag.String("dst", "198.18.1.100:80", "VIP:port")
	srcs := flag.String("src", "", "comma-separated source addresses (assigned to the client)")
	rate := flag.Float64("rate", 10000, "new connections per second")
	dur := flag.Duration("duration", 15*time.Second, "how long to send")
	open := flag.Bool("open", false, "send only SYN and ACK: leave the connections ESTABLISHED (to fill a table)")
	flag.Parse()
	d, err := netip.ParseAddrPort(*dst)
	if err != nil || !d.Addr().Is4() {
		fail("bad -dst %q", *dst)
	}
	var src []netip.Addr
	for _, s := range strings.Split(*srcs, ",") {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			fail("bad -src %q", s)
		}
		src = append(src, a)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		fail("socket: %v", err)
	}
	to := &syscall.SockaddrInet4{Addr: d.Addr().As4()}
	flags := []byte{0x02, 0x10, 0x11, 0x10} // SYN, ACK, FIN+ACK, ACK
	if *open {
		flags = flags[:2]
	}
	var pkt [40]byte
	start := time.Now()
	sent := 0
	for time.Since(start) < *dur {
		due := int(time.Since(start).Seconds() * *rate)
		for ; sent < due; sent++ {
			s := src[sent%len(src)]
			sport := uint16(1024 + (sent/len(src))%64000)
			for i, f := range flags {
				seq := uint32(sent) * 7919
				if i > 0 {
					seq++
				}
				if i == 3 {
					seq++
				}
				build(pkt[:], s, d, sport, seq, f)
				if err := syscall.Sendto(fd, pkt[:], 0, to); err != nil {
					fail("sendto: %v", err)
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	fmt.Printf("%d connections in %.2f s: %.0f per second\n", sent, el.Seconds(), float64(sent)/el.Seconds())
}

// build writes an IPv4+TCP packet (no options, no payload) with the TCP checksum; the
// kernel fills the IP checksum and ID.
func build(b []byte, src netip.Addr, dst netip.AddrPort, sport uint16, seq uint32, flags byte) {
	clear(b)
	b[0], b[8], b[9] = 0x45, 64, syscall.IPPROTO_TCP
	binary.BigEndian.PutUint16(b[2:], 40)
	s4, d4 := src.As4(), dst.Addr().As4()
	copy(b[12:], s4[:])
	copy(b[16:], d4[:])
	t := b[20:]
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], dst.Port())
	binary.BigEndian.PutUint32(t[4:], seq)
	if flags&0x10 != 0 {
		binary.BigEndian.PutUint32(t[8:], 1)
	}
	t[12], t[13] = 5<<4, flags
	binary.BigEndian.PutUint16(t[14:], 64240)
	sum := uint32(syscall.IPPROTO_TCP) + 20
	for i := 12; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(t[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(t[16:], ^uint16(sum))
}

func fail(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "tcpflows: "+f+"\n", a...)
	os.Exit(1)
}
