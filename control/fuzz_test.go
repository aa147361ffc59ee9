package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeRequest feeds the control protocol decoder arbitrary bytes, as a local client
// could send them. Invariants: no panic; input over MaxRequestBytes is refused; a request
// it accepts has the current version and a known operation, and survives a re-encode.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"op":"list"}`,
		`{"version":1,"op":"list","service":{"protocol":"tcp","vip":"198.18.0.100","port":80},"persistent_conn":true}`,
		`{"version":1,"op":"edit","edit":{"command":"edit-real","service":{"protocol":"tcp","vip":"198.18.0.100","port":80},"real":"198.18.1.11","weight":0}}`,
		`{"version":1,"op":"trace","trace":{"protocol":"udp","client":"198.19.0.1:5","vip":"198.18.0.100:53"}}`,
		`{"version":2,"op":"list"}`,
		`{"version":1,"op":"edit"}`,
		`{"version":1,"op":"list"} {"version":1,"op":"list"}`,
		`{"version":1,"op":"list","extra":1}`,
		`[]`, `null`, `{`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(data)
		if len(data) > MaxRequestBytes && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%d bytes accepted", len(data))
		}
		if err != nil {
			return
		}
		if req.Version != ProtocolVersion {
			t.Fatalf("accepted version %d", req.Version)
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeRequest(b)
		if err != nil {
			t.Fatalf("re-encoded request rejected: %v\n%s", err, b)
		}
		if again.Op != req.Op {
			t.Fatalf("op %q became %q", req.Op, again.Op)
		}
	})
}

// FuzzReadMessage checks the framing: never more than the limit, never a panic.
func FuzzReadMessage(f *testing.F) {
	f.Add([]byte("{}\n"), 8)
	f.Add([]byte("0123456789\n"), 4)
	f.Add([]byte("abc"), 3)
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		if limit < 0 || limit > 1<<16 {
			return
		}
		msg, err := readMessage(bytes.NewReader(data), limit)
		if err != nil {
			return
		}
		if len(msg) > limit {
			t.Fatalf("%d bytes over limit %d", len(msg), limit)
		}
		if bytes.IndexByte(msg, '\n') >= 0 {
			t.Fatalf("message holds a newline: %q", msg)
		}
	})
}

func TestReadMessageBounds(t *testing.T) {
	tests := []struct {
		name, in string
		limit    int
		want     string
		err      bool
	}{
		{"exact", "abcd\n", 4, "abcd", false},
		{"over", "abcde\n", 4, "", true},
		{"eof", "abcd", 4, "abcd", false},
		{"eof over", "abcde", 4, "", true},
		{"empty", "", 4, "", true},
		{"long", strings.Repeat("x", 200_000) + "\n", 300_000, strings.Repeat("x", 200_000), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readMessage(strings.NewReader(tt.in), tt.limit)
			if (err != nil) != tt.err || string(got) != tt.want {
				t.Errorf("got %q, %v", got, err)
			}
		})
	}
}
