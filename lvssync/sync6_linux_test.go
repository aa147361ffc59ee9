package lvssync

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testConn6 is testConn's IPv6 twin: client 2001:2:0:c7::N, VIP 2001:2:0:c7:100::1, real
// 2001:2:0:c7:200::2, so that an IPv6 and an IPv4 connection never share a key.
func testConn6(i int) Conn {
	c := testConn(i)
	c.Client = netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, 0, 0, 0xc7, 14: byte(i >> 8), 15: byte(i)})
	c.VIP = netip.MustParseAddr("2001:2:0:c7:100::1")
	c.Real = netip.MustParseAddr("2001:2:0:c7:200::2")
	return c
}

// mixed6 is n records alternating IPv6 and IPv4, IPv6 ones in every kind a director sends:
// DR, TUN and NAT (with sequence options), UDP, templates with a firewall mark.
func mixed6(n int) []Conn {
	var out []Conn
	fwds := []uint32{FlagDRoute, FlagTunnel, FlagMasq}
	for i := range n {
		if i%2 == 1 {
			out = append(out, testConn(i))
			continue
		}
		c := testConn6(i)
		c.Flags = fwds[(i/2)%3]
		switch {
		case i%10 == 4:
			c.Protocol, c.State, c.Timeout = ProtoUDP, UDPNormal, 300
		case i%10 == 8:
			c.Flags |= FlagTemplate
			c.State, c.CPort, c.Timeout, c.FWMark = TemplateNone, 0, 360, 7
		case c.Flags == FlagMasq:
			c.HasSeq = true
			c.InSeq = Seq{Init: uint32(i) * 1000, Delta: 4, PrevDelta: 2}
			c.OutSeq = Seq{Init: uint32(i) * 2000, Delta: 8, PrevDelta: 6}
		}
		out = append(out, c)
	}
	return out
}

// TestEngineIPv6Records: IPv6 connections (version 1's struct ip_vs_sync_v6 records) go from
// a master's worker ring to a backup's Installer with every field intact, mixed with IPv4
// ones in the same messages, keyed and not.
func TestEngineIPv6Records(t *testing.T) {
	for _, key := range [][]byte{nil, []byte("s3cret")} {
		t.Run("keyed="+strconv.FormatBool(key != nil), func(t *testing.T) {
			m, b := pair(t, key, newMemTable())
			ring := m.e.NewRing(1024)
			want := mixed6(300)
			for i := range want {
				if !ring.Put(&want[i]) {
					t.Fatal("ring full")
				}
			}
			waitFor(t, "300 installed", func() bool { return b.table.len() == 300 })
			for _, w := range want {
				got, ok := b.table.get(&w)
				if !ok {
					t.Fatalf("%v not installed", w.Client)
				}
				if got.Client != w.Client || got.VIP != w.VIP || got.Real != w.Real || got.CPort != w.CPort ||
					got.VPort != w.VPort || got.DPort != w.DPort || got.Protocol != w.Protocol || got.State != w.State ||
					got.Timeout != w.Timeout || got.FWMark != w.FWMark || got.Flags != w.Flags|FlagSync ||
					got.HasSeq != w.HasSeq || got.InSeq != w.InSeq || got.OutSeq != w.OutSeq {
					t.Fatalf("installed %+v\nsent %+v", got, w)
				}
			}
			for r, n := range b.e.Stats().Dropped {
				if n != 0 {
					t.Errorf("backup dropped %d: %v", n, Reason(r))
				}
			}
		})
	}
}

// TestEngineBulkCopyIPv6: a new backup's bulk copy carries the master's IPv6 connections.
func TestEngineBulkCopyIPv6(t *testing.T) {
	mtable := newMemTable()
	want := mixed6(1000)
	for i := range want {
		mtable.Install(&want[i])
	}
	_, b := pair(t, []byte("k"), mtable)
	waitFor(t, "bulk copy", func() bool { return b.table.len() == len(want) })
	for _, w := range want {
		if got, ok := b.table.get(&w); !ok || got.Real != w.Real || got.InSeq != w.InSeq {
			t.Fatalf("bulk copy of %v: %+v, %v", w.Client, got, ok)
		}
	}
}

// TestTsharkDecodesIPv6Records has an Engine send IPv6 records (mixed with IPv4 ones) and
// Wireshark's ipvs dissector decode them: size 72 (struct ip_vs_sync_v6) and the addresses
// in its caddr6, vaddr6 and daddr6 fields; IPv4 records keep size 36 and caddr. Records
// with options are left out, as in TestTsharkDecodesUVSMessages.
func TestTsharkDecodesIPv6Records(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark is not installed (.ci/run installs it)")
		}
		t.Skip("tshark not installed")
	}
	capture, mt := listenLoopback(t), listenLoopback(t)
	defer capture.Close()
	var want []Conn
	for _, c := range mixed6(40) {
		if !c.HasSeq {
			want = append(want, c)
		}
	}
	m := startNode(t, mt, Config{SyncID: 78, Role: RoleMaster, Peers: []netip.AddrPort{capture.LocalAddr()},
		MaxLen: HeaderLen + 5*RecordV6Len, Flush: 5 * time.Millisecond}, newMemTable())
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
	pcap := filepath.Join(t.TempDir(), "sync6.pcap")
	writePcap(t, pcap, netip.MustParseAddrPort("198.18.0.1:8848"), netip.MustParseAddrPort("224.0.0.81:8848"), dgrams)
	fields := []string{"ipvs.conncount", "ipvs.size.v1", "ipvs.caddr6", "ipvs.vaddr6", "ipvs.daddr6", "ipvs.caddr", "ipvs.cport", "ipvs.fwmark", "ipvs.flags.v1"}
	args := []string{"-r", pcap, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;"}
	for _, f := range fields {
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
	k, n6 := 0, 0
	for i, line := range lines {
		cols := strings.Split(line, "\t")
		if len(cols) != len(fields) {
			t.Fatalf("packet %d: %d columns: %q", i, len(cols), line)
		}
		split := func(j int) []string {
			if cols[j] == "" {
				return nil
			}
			return strings.Split(cols[j], ";")
		}
		count, _ := strconv.Atoi(cols[0])
		sizes, c6, v6, d6, c4, cports, marks, flags := split(1), split(2), split(3), split(4), split(5), split(6), split(7), split(8)
		if len(sizes) != count || len(cports) != count || len(marks) != count || len(flags) != count {
			t.Fatalf("packet %d: %d records, fields %q", i, count, cols)
		}
		i6, i4 := 0, 0
		for r := range count {
			w := want[k]
			k++
			if w.Client.Is6() {
				if sizes[r] != "72" || i6 >= len(c6) || c6[i6] != w.Client.String() || v6[i6] != w.VIP.String() || d6[i6] != w.Real.String() {
					t.Fatalf("record %d (IPv6 %v): tshark size %s, fields %q", k-1, w.Client, sizes[r], cols)
				}
				i6++
				n6++
			} else if sizes[r] != "36" || i4 >= len(c4) || c4[i4] != w.Client.String() {
				t.Fatalf("record %d (IPv4 %v): tshark size %s, fields %q", k-1, w.Client, sizes[r], cols)
			} else {
				i4++
			}
			cp, _ := strconv.ParseUint(cports[r], 0, 16)
			mk, _ := strconv.ParseUint(marks[r], 0, 32) // tshark prints the mark in hex
			if uint16(cp) != w.CPort || uint32(mk) != w.FWMark {
				t.Errorf("record %d: cport %s fwmark %s, sent %d %d", k-1, cports[r], marks[r], w.CPort, w.FWMark)
			}
			if f, _ := strconv.ParseUint(flags[r], 0, 32); uint32(f) != w.Flags {
				t.Errorf("record %d: flags %s, sent %#x", k-1, flags[r], w.Flags)
			}
		}
	}
	if k != len(want) || n6 == 0 {
		t.Fatalf("compared %d records of %d, %d IPv6", k, len(want), n6)
	}
}

// TestEngineIPv6Transport: unkeyed unicast sync over an IPv6 socket (::1), peers checked by
// their IPv6 addresses; IPv4 and IPv6 records travel alike.
func TestEngineIPv6Transport(t *testing.T) {
	mt, bt := listenOn(t, "::1"), listenOn(t, "::1")
	m := startNode(t, mt, Config{SyncID: 5, Role: RoleMaster, Peers: []netip.AddrPort{bt.LocalAddr()}, Flush: 5 * time.Millisecond}, newMemTable())
	b := startNode(t, bt, Config{SyncID: 5, Role: RoleBackup, Peers: []netip.AddrPort{mt.LocalAddr()}, Flush: 5 * time.Millisecond}, newMemTable())
	ring := m.e.NewRing(256)
	want := mixed6(100)
	for i := range want {
		ring.Put(&want[i])
	}
	waitFor(t, "100 installed over IPv6", func() bool { return b.table.len() == 100 })
	if d := b.e.Stats().Dropped[ReasonNotPeer]; d != 0 {
		t.Fatalf("%d messages dropped as not from a peer", d)
	}
}
