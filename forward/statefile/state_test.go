package statefile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/uvs-project/uvs/conntrack"
)

func TestReadStateRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("UVSSTATE"), []byte("NOTSTATE\x01\x00\x00\x00\x00\x00\x00\x00"),
		append([]byte("UVSSTATE\x01\x00\x00\x00"), 0xff, 0xff, 0xff, 0xff)} {
		if _, _, err := ReadState(bytes.NewReader(b)); !errors.Is(err, ErrStateFormat) {
			t.Errorf("%q: err %v, want ErrStateFormat", b, err)
		}
	}
}

// FuzzReadState: a state file from anywhere must not panic or allocate without bound.
func FuzzReadState(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteState(&buf, []string{"eth0", "eth1"}, []SavedConn{{Key: conntrack.Key{Proto: 6}, RemainingMs: 5}})
	f.Add(buf.Bytes())
	f.Add(v1File())
	f.Fuzz(func(t *testing.T, b []byte) {
		names, conns, err := ReadState(bytes.NewReader(b))
		if err == nil && len(b) < 16+16*len(names)+stateRecordV1*len(conns) {
			t.Fatalf("accepted %d entries from %d bytes", len(conns), len(b))
		}
	})
}

// v1File is a version 1 state file (IPv4, 40-byte records) with one interface and one NAT
// connection 198.18.0.7:40000 -> 198.18.0.100:80 via 198.18.1.11:8080.
func v1File() []byte {
	b := make([]byte, 16+16+stateRecordV1)
	copy(b, stateMagic)
	binary.LittleEndian.PutUint16(b[8:], stateVersionV1)
	b[10] = 1
	binary.LittleEndian.PutUint32(b[12:], 1)
	copy(b[16:], "eth0")
	r := b[32:]
	copy(r[0:4], []byte{198, 18, 0, 7})
	copy(r[4:8], []byte{198, 18, 0, 100})
	binary.LittleEndian.PutUint16(r[8:], 40000)
	binary.LittleEndian.PutUint16(r[10:], 80)
	r[12] = 6
	r[13] = byte(conntrack.StateEstablished)
	r[14] = byte(conntrack.FlagNAT)
	copy(r[16:20], []byte{198, 18, 1, 11})
	binary.LittleEndian.PutUint16(r[20:], 8080)
	binary.LittleEndian.PutUint16(r[22:], 80)
	binary.LittleEndian.PutUint32(r[24:], 5000)
	copy(r[28:34], []byte{2, 0, 0, 0, 0, 7})
	return b
}

// TestStateIPv6AndV1: version 2 files round-trip IPv6 and IPv4 (IPv4-mapped) entries with
// their NAT hop; version 1 files (IPv4 only) are still read, into the mapped form.
func TestStateIPv6AndV1(t *testing.T) {
	a6 := func(s string) [16]byte { return netip.MustParseAddr(s).As16() }
	in := []SavedConn{
		{Key: conntrack.Key{Client: a6("2001:2::7"), VIP: a6("2001:2::100"), CPort: 40000, VPort: 80, Proto: 6},
			Real: a6("2001:2:1::11"), RPort: 8080, ServicePort: 80, State: conntrack.StateEstablished,
			Flags: conntrack.FlagNAT, RemainingMs: 9000, HopIf: 1, HopMAC: [6]byte{2, 0, 0, 0, 0, 9}},
		{Key: conntrack.Key{Client: conntrack.Map4([4]byte{198, 18, 0, 7}), VIP: conntrack.Map4([4]byte{198, 18, 0, 100}), VPort: 80, Proto: 17},
			Real: conntrack.Map4([4]byte{198, 18, 1, 11}), RPort: 53, ServicePort: 53, RemainingMs: 1},
	}
	var buf bytes.Buffer
	if err := WriteState(&buf, []string{"eth0", "eth1"}, in); err != nil {
		t.Fatal(err)
	}
	names, out, err := ReadState(&buf)
	if err != nil || len(names) != 2 || len(out) != 2 || out[0] != in[0] || out[1] != in[1] {
		t.Fatalf("round trip: %v %v %+v", err, names, out)
	}
	names, out, err = ReadState(bytes.NewReader(v1File()))
	want := SavedConn{Key: conntrack.Key{Client: conntrack.Map4([4]byte{198, 18, 0, 7}), VIP: conntrack.Map4([4]byte{198, 18, 0, 100}),
		CPort: 40000, VPort: 80, Proto: 6}, Real: conntrack.Map4([4]byte{198, 18, 1, 11}), RPort: 8080, ServicePort: 80,
		State: conntrack.StateEstablished, Flags: conntrack.FlagNAT, RemainingMs: 5000, HopMAC: [6]byte{2, 0, 0, 0, 0, 7}}
	if err != nil || len(names) != 1 || names[0] != "eth0" || len(out) != 1 || out[0] != want {
		t.Fatalf("version 1: %v %v %+v", err, names, out)
	}
}
