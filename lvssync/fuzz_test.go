package lvssync

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary datagrams to the receive path. Invariants: no
// panic; a message drop is a named reason; every record delivered without a
// skip reason re-encodes (version 1) to a record that decodes to the same
// connection; Verify never accepts a message signed with another key.
// Seed testdata/fuzz/FuzzDecode/7a842e1f614d318b found a record whose
// ver_size said 0 bytes (indexing an empty record); it stays.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.hex"))
	for _, name := range files {
		f.Add(readHex(f, filepath.Base(name)))
	}
	b := NewBuilder(1472, 3, true)
	c := Conn{Protocol: ProtoTCP, Flags: FlagDRoute, State: TCPEstablished, Client: netip.MustParseAddr("198.18.0.1"),
		VIP: netip.MustParseAddr("198.18.0.2"), Real: netip.MustParseAddr("198.18.0.3"), CPort: 1, VPort: 2, DPort: 3}
	b.Add(&c)
	NewSigner([]byte("k"), 0).Sign(b.Bytes())
	f.Add(bytes.Clone(b.Bytes()))
	// IPv6 records (struct ip_vs_sync_v6) beside an IPv4 one: plain, with sequence options,
	// a template with a firewall mark, and one with persistence-engine data.
	b6 := NewBuilder(1472, 4, false)
	c6 := Conn{Protocol: ProtoTCP, Flags: FlagMasq, State: TCPEstablished, Client: netip.MustParseAddr("2001:2:0:c7::1"),
		VIP: netip.MustParseAddr("2001:2:0:c7::100"), Real: netip.MustParseAddr("2001:2:0:c7::200"), CPort: 1, VPort: 80, DPort: 8080, Timeout: 900}
	b6.Add(&c6)
	c6.HasSeq, c6.InSeq, c6.OutSeq = true, Seq{1, 2, 3}, Seq{4, 5, 6}
	b6.Add(&c6)
	c6.HasSeq, c6.Flags, c6.State, c6.CPort, c6.FWMark = false, FlagDRoute|FlagTemplate, TemplateNone, 0, 9
	b6.Add(&c6)
	c6.PEName, c6.PEData = []byte("sip"), []byte("call-id")
	b6.Add(&c6)
	b6.Add(&c)
	f.Add(bytes.Clone(b6.Bytes()))

	f.Fuzz(func(t *testing.T, msg []byte) {
		h, r := ParseHeader(msg)
		if r != ReasonNone {
			if r >= NumReasons {
				t.Fatalf("unnamed reason %d", r)
			}
			return
		}
		if NewVerifier([]byte("other key")).Verify(msg, h, netip.MustParseAddr("198.18.0.9")) == ReasonNone {
			t.Fatal("accepted a message not signed with the key")
		}
		var c Conn
		out := NewBuilder(65507, h.SyncID, false)
		var good []Conn
		r = Decode(msg, h, &c, func(c *Conn, skip Reason) {
			if skip >= NumReasons {
				t.Fatalf("unnamed skip reason %d", skip)
			}
			if skip != ReasonNone {
				return
			}
			cc := *c
			cc.PEData, cc.PEName = bytes.Clone(c.PEData), bytes.Clone(c.PEName)
			if cc.Client.Is6() == cc.VIP.Is6() && out.Add(&cc) {
				good = append(good, cc)
			}
		})
		if r >= NumReasons {
			t.Fatalf("unnamed reason %d", r)
		}
		re := out.Bytes()
		h2, r2 := ParseHeader(re)
		if r2 != ReasonNone || int(h2.Count) != len(good) {
			t.Fatalf("re-encoded header %+v %v, %d records", h2, r2, len(good))
		}
		i := 0
		r2 = Decode(re, h2, &c, func(c *Conn, skip Reason) {
			w := good[i]
			i++
			if skip != ReasonNone || c.Protocol != w.Protocol || c.Flags != w.Flags || c.State != w.State ||
				c.Client != w.Client || c.VIP != w.VIP || c.Real != w.Real || c.CPort != w.CPort ||
				c.VPort != w.VPort || c.DPort != w.DPort || c.FWMark != w.FWMark || c.Timeout != w.Timeout ||
				c.HasSeq != w.HasSeq || c.InSeq != w.InSeq || c.OutSeq != w.OutSeq ||
				!bytes.Equal(c.PEData, w.PEData) || !bytes.Equal(c.PEName, w.PEName) {
				t.Fatalf("round trip: got %+v skip %v, want %+v", *c, skip, w)
			}
		})
		if r2 != ReasonNone || i != len(good) {
			t.Fatalf("re-decode: %v, %d of %d", r2, i, len(good))
		}
	})
}
