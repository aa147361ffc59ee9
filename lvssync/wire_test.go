package lvssync

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// readHex reads a testdata file of hex bytes with # comments.
func readHex(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		b.WriteString(strings.Join(strings.Fields(line), ""))
	}
	out, err := hex.DecodeString(b.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

var (
	a4 = netip.MustParseAddr
)

type decoded struct {
	Conn Conn
	Skip Reason
}

func decodeAll(t testing.TB, msg []byte) (Header, []decoded, Reason) {
	t.Helper()
	h, r := ParseHeader(msg)
	if r != ReasonNone {
		return h, nil, r
	}
	var out []decoded
	var c Conn
	r = Decode(msg, h, &c, func(c *Conn, skip Reason) {
		cc := *c
		cc.PEData = bytes.Clone(c.PEData)
		cc.PEName = bytes.Clone(c.PEName)
		out = append(out, decoded{cc, skip})
	})
	return h, out, r
}

var goldens = []struct {
	file    string
	version uint8
	syncID  uint8
	conns   []Conn
}{
	{"v1_ipv4_dr.hex", Version1, 51, []Conn{{
		Protocol: ProtoTCP, Flags: FlagDRoute, State: TCPEstablished,
		Client: a4("198.18.0.10"), CPort: 40000, VIP: a4("198.18.1.1"), VPort: 80,
		Real: a4("198.18.2.2"), DPort: 80, Timeout: 900,
	}}},
	{"v1_seq_template.hex", Version1, 7, []Conn{
		{
			Protocol: ProtoTCP, Flags: FlagMasq | FlagInSeq | FlagOutSeq, State: TCPFinWait,
			Client: a4("198.18.0.11"), CPort: 50000, VIP: a4("198.18.1.1"), VPort: 8080,
			Real: a4("198.18.3.3"), DPort: 80, FWMark: 42, Timeout: 120,
			HasSeq: true, InSeq: Seq{0x1000, 5, 2}, OutSeq: Seq{0x2000, 0xfffffffb, 0},
		},
		{
			Protocol: ProtoTCP, Flags: FlagTemplate | FlagMasq, State: TemplateAssured,
			Client: a4("198.18.0.11"), CPort: 0, VIP: a4("198.18.1.1"), VPort: 8080,
			Real: a4("198.18.3.3"), DPort: 80, FWMark: 42, Timeout: 300,
		},
	}},
	{"v1_ipv6_pe.hex", Version1, 200, []Conn{{
		Protocol: ProtoUDP, Flags: FlagMasq, State: UDPNormal,
		Client: a4("2001:db8::a"), CPort: 5060, VIP: a4("2001:db8::101"), VPort: 5060,
		Real: a4("2001:db8::202"), DPort: 5060, Timeout: 300,
		PEData: []byte("abc"), PEName: []byte("sip"),
	}}},
	{"v0_ipv4.hex", Version0, 7, []Conn{{
		Protocol: ProtoTCP, Flags: FlagTunnel, State: TCPEstablished,
		Client: a4("198.18.0.10"), CPort: 40000, VIP: a4("198.18.1.1"), VPort: 80,
		Real: a4("198.18.2.2"), DPort: 80,
	}}},
}

var cmpConn = cmp.Options{cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmpopts.EquateEmpty()}

func TestGoldenDecode(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			msg := readHex(t, g.file)
			h, got, r := decodeAll(t, msg)
			if r != ReasonNone {
				t.Fatalf("decode: %v", r)
			}
			if h.Version != g.version || h.SyncID != g.syncID || int(h.Count) != len(g.conns) || h.Auth != 0 {
				t.Fatalf("header %+v", h)
			}
			var want []decoded
			for _, c := range g.conns {
				want = append(want, decoded{Conn: c})
			}
			if d := cmp.Diff(want, got, cmpConn); d != "" {
				t.Errorf("records (-want +got):\n%s", d)
			}
		})
	}
}

func TestGoldenEncode(t *testing.T) {
	for _, g := range goldens {
		if g.version != Version1 {
			continue // uvs sends version 1 only
		}
		t.Run(g.file, func(t *testing.T) {
			b := NewBuilder(1500-28, g.syncID, false)
			for i := range g.conns {
				if !b.Add(&g.conns[i]) {
					t.Fatalf("Add %d refused", i)
				}
			}
			want := readHex(t, g.file)
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("encoded\n%x\nwant\n%x", b.Bytes(), want)
			}
		})
	}
}

func TestBuilderFillsToMaxLen(t *testing.T) {
	c := goldens[0].conns[0]
	// 8 + 36*n <= 1472 (a 1500 MTU minus IP and UDP headers) gives 40 records.
	b := NewBuilder(1472, 1, false)
	n := 0
	for b.Add(&c) {
		n++
	}
	if n != 40 || len(b.Bytes()) != 8+36*40 {
		t.Fatalf("%d records, %d bytes", n, len(b.Bytes()))
	}
	h, recs, r := decodeAll(t, b.Bytes())
	if r != ReasonNone || int(h.Count) != 40 || len(recs) != 40 {
		t.Fatalf("round trip: %v %d %d", r, h.Count, len(recs))
	}
	// nr_conns is one byte: at most 255 records whatever the length.
	b = NewBuilder(65507, 1, false)
	n = 0
	for b.Add(&c) {
		n++
	}
	if n != MaxConns {
		t.Fatalf("%d records in a 64k message", n)
	}
}

func TestDecodeErrors(t *testing.T) {
	base := readHex(t, "v1_ipv4_dr.hex")
	mod := func(f func(m []byte) []byte) []byte { return f(bytes.Clone(base)) }
	tests := []struct {
		name    string
		msg     []byte
		msgDrop Reason // from ParseHeader or Decode
		skip    Reason // of the single record, when delivered
		records int
	}{
		{"short", base[:3], ReasonShort, 0, 0},
		{"size", mod(func(m []byte) []byte { m[3]++; return m }), ReasonSize, 0, 0},
		{"truncated record", mod(func(m []byte) []byte {
			m = m[:40]
			m[3] = 40
			return m
		}), ReasonTruncated, 0, 0},
		{"record size past end", mod(func(m []byte) []byte { m[11] = 0x30; return m }), ReasonTruncated, 0, 0},
		{"record version", mod(func(m []byte) []byte { m[10] = 0x10; return m }), ReasonRecordVersion, 0, 0},
		{"record type", mod(func(m []byte) []byte { m[8] = 4; return m }), ReasonType, 0, 0},
		{"bad protocol", mod(func(m []byte) []byte { m[9] = 132; return m }), 0, ReasonProtocol, 1},
		{"bad state", mod(func(m []byte) []byte { m[17] = 11; return m }), 0, ReasonState, 1},
		{"template state unchecked", mod(func(m []byte) []byte { m[14] = 0x10; m[17] = 99; return m }), 0, 0, 1},
		{"nonzero spare is version 0", mod(func(m []byte) []byte {
			// As the kernel, a nonzero spare means version 0 with nr_conns = the reserved
			// byte; the v0 record at offset 4 then has protocol 1 (the version byte).
			m[0], m[7] = 1, 1
			return m
		}), 0, ReasonProtocol, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, recs, r := decodeAll(t, tt.msg)
			if r != tt.msgDrop {
				t.Errorf("message drop %v, want %v", r, tt.msgDrop)
			}
			if len(recs) != tt.records {
				t.Fatalf("%d records, want %d", len(recs), tt.records)
			}
			if tt.records == 1 && recs[0].Skip != tt.skip {
				t.Errorf("record skip %v, want %v", recs[0].Skip, tt.skip)
			}
		})
	}
}

// withOption returns the v1_ipv4_dr message with one option appended to its record.
func withOption(t *testing.T, opt ...byte) []byte {
	m := readHex(t, "v1_ipv4_dr.hex")
	m = append(m, opt...)
	m[3] = byte(len(m))
	m[11] = byte(36 + len(opt))
	return m
}

func TestDecodeOptions(t *testing.T) {
	tests := []struct {
		name    string
		opt     []byte
		msgDrop Reason
		skip    Reason
	}{
		{"unknown optional skipped", []byte{OptParam | 5, 2, 0xaa, 0xbb}, 0, 0},
		{"unknown mandatory skips record", []byte{5, 2, 0xaa, 0xbb}, 0, ReasonMandatoryOption},
		{"zero length", []byte{OptParam | 5, 0}, ReasonOption, 0},
		{"length past end", []byte{OptParam | 5, 9, 1}, ReasonOption, 0},
		{"lone type byte", []byte{OptParam | 5}, ReasonOption, 0},
		{"seq wrong length", []byte{OptSeqData, 2, 0, 0}, ReasonOption, 0},
		{"pe name too long", append([]byte{OptPEName, 17}, make([]byte, 17)...), ReasonOption, 0},
		{"pe data without name", []byte{OptPEData, 1, 'x'}, 0, ReasonOption},
		{"pe data twice", []byte{OptPEData, 1, 'x', OptPEData, 1, 'y'}, ReasonOption, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, recs, r := decodeAll(t, withOption(t, tt.opt...))
			if r != tt.msgDrop {
				t.Fatalf("message drop %v, want %v", r, tt.msgDrop)
			}
			if r == ReasonNone && (len(recs) != 1 || recs[0].Skip != tt.skip) {
				t.Fatalf("records %+v, want one with skip %v", recs, tt.skip)
			}
		})
	}
}

func TestAuthRoundTripAndReplay(t *testing.T) {
	key := []byte("correct horse battery staple")
	b := NewBuilder(1472, 51, true)
	c := goldens[0].conns[0]
	b.Add(&c)
	s := NewSigner(key, 1000)
	s.Sign(b.Bytes())
	msg := bytes.Clone(b.Bytes())
	if len(msg) != HeaderLen+AuthLen+RecordV4Len || msg[4] != 1 {
		t.Fatalf("keyed message %x", msg)
	}
	h, recs, r := decodeAll(t, msg)
	if r != ReasonNone || h.Auth != HeaderLen || len(recs) != 1 {
		t.Fatalf("decode keyed: %v %+v %d", r, h, len(recs))
	}
	from := a4("198.18.0.1")
	v := NewVerifier(key)
	if r := v.Verify(msg, h, from); r != ReasonNone {
		t.Fatalf("verify: %v", r)
	}
	if r := v.Verify(msg, h, from); r != ReasonReplay {
		t.Fatalf("replayed message: %v", r)
	}
	// A later message passes; the earlier one, replayed after it, does not.
	s.Sign(b.Bytes())
	msg2 := bytes.Clone(b.Bytes())
	if r := v.Verify(msg2, h, from); r != ReasonNone {
		t.Fatalf("second: %v", r)
	}
	if r := v.Verify(msg, h, from); r != ReasonReplay {
		t.Fatalf("old replay: %v", r)
	}
	// Reordering inside the window is accepted once.
	s.Sign(b.Bytes())
	m3 := bytes.Clone(b.Bytes())
	s.Sign(b.Bytes())
	m4 := bytes.Clone(b.Bytes())
	if v.Verify(m4, h, from) != ReasonNone || v.Verify(m3, h, from) != ReasonNone || v.Verify(m3, h, from) != ReasonReplay {
		t.Fatal("window")
	}
	// Any flipped bit fails, and the message is left as it was.
	for i := range msg2 {
		m := bytes.Clone(msg2)
		m[i] ^= 1
		hh, r := ParseHeader(m)
		if r != ReasonNone {
			continue
		}
		if hh.Auth == 0 {
			if got := v.Verify(m, hh, from); got != ReasonUnkeyed {
				t.Fatalf("bit %d: %v", i, got)
			}
			continue
		}
		before := bytes.Clone(m)
		if got := NewVerifier(key).Verify(m, hh, from); got != ReasonAuth {
			t.Fatalf("flipped byte %d: %v", i, got)
		}
		if !bytes.Equal(before, m) {
			t.Fatal("Verify changed the message")
		}
	}
	// Wrong key; unkeyed message to a keyed receiver.
	if r := NewVerifier([]byte("other")).Verify(msg2, h, a4("198.18.0.2")); r != ReasonAuth {
		t.Fatalf("wrong key: %v", r)
	}
	plain := readHex(t, "v1_ipv4_dr.hex")
	ph, _ := ParseHeader(plain)
	if r := v.Verify(plain, ph, from); r != ReasonUnkeyed {
		t.Fatalf("unkeyed: %v", r)
	}
}

func TestKernelRejectsKeyedMessage(t *testing.T) {
	// What ip_vs_process_message does with a keyed message: the first "record" is the auth
	// block; its ver_size is in bounds with version 0 and its type 0x80 is neither 0 nor
	// STYPE_F_INET6, so ip_vs_proc_sync_conn returns -10 and the buffer is dropped.
	b := NewBuilder(1472, 1, true)
	c := goldens[0].conns[0]
	b.Add(&c)
	NewSigner([]byte("k"), 0).Sign(b.Bytes())
	m := b.Bytes()
	a := m[HeaderLen:]
	vs := int(a[2])<<8 | int(a[3])
	if vs>>12 != 0 || HeaderLen+vs&0xfff > len(m) || a[0] == 0 || a[0]&1 != 0 {
		t.Fatalf("auth block would not be rejected cleanly by a kernel: %x", a[:4])
	}
}

func TestBulkRequest(t *testing.T) {
	var buf [HeaderLen + AuthLen]byte
	m := BulkRequest(buf[:], 9, false)
	h, r := ParseHeader(m)
	if r != ReasonNone || !h.IsBulkRequest() || h.SyncID != 9 || h.Count != 0 {
		t.Fatalf("%+v %v", h, r)
	}
	// A kernel: spare != 0, so version 0 with nr_conns = reserved = 0: nothing happens.
	if m[0] != 0 {
		t.Fatal("reserved byte must be 0")
	}
	m = BulkRequest(buf[:], 9, true)
	NewSigner([]byte("k"), 5).Sign(m)
	h, r = ParseHeader(m)
	if r != ReasonNone || !h.IsBulkRequest() || h.Auth == 0 {
		t.Fatalf("keyed: %+v %v", h, r)
	}
	if r := NewVerifier([]byte("k")).Verify(m, h, a4("198.18.0.1")); r != ReasonNone {
		t.Fatal(r)
	}
}

func TestDecodeAllocs(t *testing.T) {
	msg := readHex(t, "v1_seq_template.hex")
	h, _ := ParseHeader(msg)
	var c Conn
	n := 0
	fn := func(*Conn, Reason) { n++ }
	allocs := testing.AllocsPerRun(100, func() { Decode(msg, h, &c, fn) })
	if allocs != 0 {
		t.Fatalf("%v allocations per Decode", allocs)
	}
	b := NewBuilder(1472, 1, false)
	conn := goldens[1].conns[0]
	allocs = testing.AllocsPerRun(100, func() { b.Reset(); b.Add(&conn); b.Add(&conn) })
	if allocs != 0 {
		t.Fatalf("%v allocations per Add", allocs)
	}
}
