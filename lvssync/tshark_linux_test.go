package lvssync

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writePcap writes datagrams as Ethernet/IPv4/UDP frames from src to dst
// (classic libpcap format, LINKTYPE_ETHERNET), so that tshark sees them as
// it would on the wire: UDP port 8848 is the ipvs dissector's port.
func writePcap(t *testing.T, path string, src, dst netip.AddrPort, dgrams [][]byte) {
	t.Helper()
	var b bytes.Buffer
	le := binary.LittleEndian
	hdr := make([]byte, 24)
	le.PutUint32(hdr[0:], 0xa1b2c3d4)
	le.PutUint16(hdr[4:], 2)
	le.PutUint16(hdr[6:], 4)
	le.PutUint32(hdr[16:], 65535)
	le.PutUint32(hdr[20:], 1) // LINKTYPE_ETHERNET
	b.Write(hdr)
	for i, d := range dgrams {
		frame := make([]byte, 14+20+8+len(d))
		copy(frame[0:6], []byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x51})
		copy(frame[6:12], []byte{0x02, 0, 0, 0, 0, 1})
		binary.BigEndian.PutUint16(frame[12:], 0x0800)
		ip := frame[14:34]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(d)))
		ip[8], ip[9] = 1, 17
		s, ds := src.Addr().As4(), dst.Addr().As4()
		copy(ip[12:16], s[:])
		copy(ip[16:20], ds[:])
		var sum uint32
		for j := 0; j < 20; j += 2 {
			sum += uint32(binary.BigEndian.Uint16(ip[j:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
		udp := frame[34:42]
		binary.BigEndian.PutUint16(udp[0:], src.Port())
		binary.BigEndian.PutUint16(udp[2:], dst.Port())
		binary.BigEndian.PutUint16(udp[4:], uint16(8+len(d)))
		copy(frame[42:], d)
		ph := make([]byte, 16)
		le.PutUint32(ph[0:], uint32(1_800_000_000+i))
		le.PutUint32(ph[8:], uint32(len(frame)))
		le.PutUint32(ph[12:], uint32(len(frame)))
		b.Write(ph)
		b.Write(frame)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tsharkFields are the ipvs dissector's fields compared, in this order.
var tsharkFields = []string{
	"ipvs.syncid", "ipvs.conncount", "ipvs.version", // header
	"ipvs.type", "ipvs.proto", "ipvs.size.v1", "ipvs.flags.v1", "ipvs.state",
	"ipvs.cport", "ipvs.vport", "ipvs.dport", "ipvs.fwmark", "ipvs.timeout",
	"ipvs.caddr", "ipvs.vaddr", "ipvs.daddr",
}

// TestTsharkDecodesUVSMessages has an Engine send a mix of records (TCP in
// every state, UDP, templates; DR, TUN and NAT; several timeouts and
// fwmarks) to a peer socket, captures what arrives, and has Wireshark's
// ipvs dissector decode it, comparing every field of every record. tshark
// prints version 1 states and flags as raw numbers and does not skip
// option fields, so the records carry no options and numbers are compared.
func TestTsharkDecodesUVSMessages(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark is not installed (.ci/run installs it)")
		}
		t.Skip("tshark not installed")
	}
	// The capture side: a plain socket on the destination port 8848 would need that port
	// free; the pcap gets 8848 written in, whatever the sockets used.
	capture, mt := listenLoopback(t), listenLoopback(t)
	defer capture.Close()
	var want []Conn
	fwds := []uint32{FlagDRoute, FlagTunnel, FlagMasq}
	for i := range 40 {
		c := testConn(i)
		c.Flags = fwds[i%3]
		c.FWMark = uint32(i % 4)
		switch {
		case i%10 == 9:
			c.Protocol, c.State, c.Timeout = ProtoUDP, UDPNormal, 300
		case i%10 == 8:
			c.Flags |= FlagTemplate
			c.State, c.CPort, c.Timeout = TemplateNone, 0, 360
		default:
			c.State = uint16(i % numTCPStates)
			c.Timeout = uint32(60 + i)
			if c.State != TCPEstablished {
				c.Flags |= FlagInactive
			}
		}
		want = append(want, c)
	}
	// A small sync_maxlen so the records span several messages.
	m := startNode(t, mt, Config{SyncID: 77, Role: RoleMaster, Peers: []netip.AddrPort{capture.LocalAddr()},
		MaxLen: HeaderLen + 10*RecordV4Len, Flush: 5 * time.Millisecond}, newMemTable())
	r := m.e.NewRing(64)
	for i := range want {
		r.Put(&want[i])
	}
	var dgrams [][]byte
	got := 0
	buf := make([]byte, 65536)
	for got < len(want) {
		_ = capture.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := capture.Recv(buf)
		if err != nil {
			t.Fatalf("after %d records: %v", got, err)
		}
		h, rr := ParseHeader(buf[:n])
		if rr != ReasonNone || h.IsBulkRequest() {
			continue
		}
		got += int(h.Count)
		dgrams = append(dgrams, bytes.Clone(buf[:n]))
	}
	if len(dgrams) < 4 {
		t.Fatalf("%d messages; want the records spread over at least 4", len(dgrams))
	}
	pcap := filepath.Join(t.TempDir(), "sync.pcap")
	writePcap(t, pcap, netip.MustParseAddrPort("198.18.0.1:8848"), netip.MustParseAddrPort("224.0.0.81:8848"), dgrams)

	args := []string{"-r", pcap, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;"}
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, tshark, args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != len(dgrams) {
		t.Fatalf("tshark printed %d packets, sent %d:\n%s", len(lines), len(dgrams), out)
	}
	k := 0
	for i, line := range lines {
		cols := strings.Split(line, "\t")
		if len(cols) != len(tsharkFields) {
			t.Fatalf("packet %d: %d columns: %q", i, len(cols), line)
		}
		num := func(s string) uint64 {
			n, err := strconv.ParseUint(s, 0, 64)
			if err != nil {
				t.Fatalf("packet %d: %q: %v", i, s, err)
			}
			return n
		}
		h, _ := ParseHeader(dgrams[i])
		if num(cols[0]) != 77 || num(cols[1]) != uint64(h.Count) || num(cols[2]) != 1 {
			t.Fatalf("packet %d header: %q", i, cols[:3])
		}
		per := make([][]string, len(cols))
		for j := 3; j < len(cols); j++ {
			per[j] = strings.Split(cols[j], ";")
			if len(per[j]) != int(h.Count) {
				t.Fatalf("packet %d field %s: %d values for %d records", i, tsharkFields[j], len(per[j]), h.Count)
			}
		}
		for r := 0; r < int(h.Count); r++ {
			w := want[k]
			k++
			field := func(j int) string { return per[j][r] }
			checks := []struct {
				name string
				got  uint64
				want uint64
			}{
				{"type", num(field(3)), 0},
				{"proto", num(field(4)), uint64(w.Protocol)},
				{"size", num(field(5)), RecordV4Len},
				{"flags", num(field(6)), uint64(w.Flags)},
				{"state", num(field(7)), uint64(w.State)},
				{"cport", num(field(8)), uint64(w.CPort)},
				{"vport", num(field(9)), uint64(w.VPort)},
				{"dport", num(field(10)), uint64(w.DPort)},
				{"fwmark", num(field(11)), uint64(w.FWMark)},
				{"timeout", num(field(12)), uint64(w.Timeout)},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("record %d %s: tshark %d, sent %d", k-1, c.name, c.got, c.want)
				}
			}
			for j, a := range []netip.Addr{w.Client, w.VIP, w.Real} {
				if field(13+j) != a.String() {
					t.Errorf("record %d %s: tshark %s, sent %s", k-1, tsharkFields[13+j], field(13+j), a)
				}
			}
		}
	}
	if k != len(want) {
		t.Fatalf("compared %d records of %d", k, len(want))
	}
}
