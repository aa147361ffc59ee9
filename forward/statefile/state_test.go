package statefile

import (
	"bytes"
	"errors"
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
	f.Fuzz(func(t *testing.T, b []byte) {
		names, conns, err := ReadState(bytes.NewReader(b))
		if err == nil && len(b) < 16+16*len(names)+stateRecord*len(conns) {
			t.Fatalf("accepted %d entries from %d bytes", len(conns), len(b))
		}
	})
}
