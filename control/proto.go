package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ProtocolVersion is the version of the control protocol. A server answers a request of
// another version with an error naming both, so an old client and a new director fail
// clearly instead of misreading each other.
const ProtocolVersion = 1

// Message size bounds. A request is a verb and a few arguments; 1 MiB leaves room for a
// config file sent by uvs diff. A response can hold a connection dump: 1<<20 entries of
// about 150 bytes of JSON each fit in 256 MiB.
const (
	MaxRequestBytes  = 1 << 20
	MaxResponseBytes = 256 << 20
)

// Operations a request can name.
const (
	OpList   = "list"   // services, reals, counters, rates, timeouts
	OpConns  = "conns"  // connection entries and persistence templates
	OpEdit   = "edit"   // change the running director (ipvsadm -A/-E/-D/-a/-e/-d/-Z)
	OpSave   = "save"   // the running config as TOML
	OpReload = "reload" // re-read the config file
	OpTrace  = "trace"  // explain the scheduling of one flow
)

// ErrTooLarge reports a message over its size bound.
var ErrTooLarge = errors.New("control: message too large")

// Request is one client request.
type Request struct {
	Version int    `json:"version"`
	Op      string `json:"op"`
	// Service restricts list and conns to one service (ipvsadm -t/-u VIP:PORT).
	Service *ServiceRef `json:"service,omitempty"`
	// PersistentConn asks list for per-real persistence template counts.
	PersistentConn bool        `json:"persistent_conn,omitempty"`
	Edit           *Edit       `json:"edit,omitempty"`
	Trace          *TraceQuery `json:"trace,omitempty"`
}

// Response is the server's answer. Error is empty on success; Problems holds config
// problems (one line each) when an edit or reload was rejected.
type Response struct {
	Version  int          `json:"version"`
	Error    string       `json:"error,omitempty"`
	Problems []string     `json:"problems,omitempty"`
	Message  string       `json:"message,omitempty"`
	Status   *Status      `json:"status,omitempty"`
	Conns    []Connection `json:"connections,omitempty"`
	Config   string       `json:"config,omitempty"`
	Trace    *TraceResult `json:"trace,omitempty"`
}

// ServiceRef names a virtual service as ipvsadm does: protocol, VIP and port.
type ServiceRef struct {
	Protocol string `json:"protocol"` // "tcp" or "udp"
	VIP      string `json:"vip"`
	Port     uint16 `json:"port"`
}

// DecodeRequest parses one request. It rejects oversized input, trailing data, unknown
// operations and other protocol versions; it never panics.
func DecodeRequest(data []byte) (*Request, error) {
	if len(data) > MaxRequestBytes {
		return nil, ErrTooLarge
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Request
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("control: decode request: %w", err)
	}
	if dec.More() {
		return nil, errors.New("control: decode request: trailing data")
	}
	if r.Version != ProtocolVersion {
		return nil, fmt.Errorf("control: protocol version %d, this director speaks %d", r.Version, ProtocolVersion)
	}
	switch r.Op {
	case OpList, OpConns, OpSave, OpReload:
	case OpEdit:
		if r.Edit == nil {
			return nil, errors.New("control: edit without arguments")
		}
	case OpTrace:
		if r.Trace == nil {
			return nil, errors.New("control: trace without a flow")
		}
	default:
		return nil, fmt.Errorf("control: unknown operation %q", r.Op)
	}
	return &r, nil
}

// readMessage reads one newline-terminated message of at most limit bytes (newline
// excluded). EOF before the newline ends the message too.
func readMessage(r io.Reader, limit int) ([]byte, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, int64(limit)+2), 64<<10)
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > limit+1 || len(out) == limit+1 && out[limit] != '\n' {
			return nil, ErrTooLarge
		}
		switch {
		case err == nil:
			return out[:len(out)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(out) == 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return out, nil
		default:
			return nil, err
		}
	}
}

// writeMessage writes v as one line of JSON.
func writeMessage(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}
