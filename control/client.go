package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// NoDirectorError reports that nothing answers on the control socket.
type NoDirectorError struct {
	Path string
	Err  error
}

func (e *NoDirectorError) Error() string { return fmt.Sprintf("no director at %s: %v", e.Path, e.Err) }

// Unwrap returns the dial error.
func (e *NoDirectorError) Unwrap() error { return e.Err }

// RequestError is a request the director refused or failed.
type RequestError struct {
	Msg      string
	Problems []string
}

func (e *RequestError) Error() string { return e.Msg }

// Call sends req (its version set to ProtocolVersion) to the director at path and returns
// its response. A director that refused the request gives a *RequestError; nothing
// listening gives a *NoDirectorError.
func Call(ctx context.Context, path string, req *Request) (*Response, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, HandlerTimeout+RequestReadTimeout+ResponseWriteTimeout)
		defer cancel()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err
		}
		return nil, &NoDirectorError{Path: path, Err: err}
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	req.Version = ProtocolVersion
	if err := writeMessage(c, req); err != nil {
		return nil, fmt.Errorf("control: send request: %w", err)
	}
	if uc, ok := c.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	data, err := readMessage(c, MaxResponseBytes)
	if err != nil {
		return nil, fmt.Errorf("control: read response: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, fmt.Errorf("control: decode response: %w", err)
	}
	if resp.Version != ProtocolVersion {
		return nil, fmt.Errorf("control: director speaks protocol version %d, this uvs %d", resp.Version, ProtocolVersion)
	}
	if resp.Error != "" {
		return &resp, &RequestError{Msg: resp.Error, Problems: resp.Problems}
	}
	return &resp, nil
}
