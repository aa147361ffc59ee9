package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Per-connection time limits. A client sends its request at once; a handler that reads a
// connection dump or reloads a config finishes within seconds.
const (
	RequestReadTimeout   = 5 * time.Second
	HandlerTimeout       = 30 * time.Second
	ResponseWriteTimeout = 30 * time.Second
	// maxConcurrent bounds connections served at once; more wait in the kernel's backlog.
	maxConcurrent = 8
)

// Handler answers requests. Handle must honour ctx.
type Handler interface {
	Handle(ctx context.Context, req *Request) *Response
}

// Server serves the control protocol on a Unix socket.
type Server struct {
	path string
	ln   *net.UnixListener
	log  *slog.Logger
	wg   sync.WaitGroup
}

// Listen creates the control socket at path with mode 0600, creating its directory (0755)
// if needed. A socket left behind by a director that is gone is removed first; one that a
// live director answers on is an error. A nil log discards.
func Listen(path string, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, errors.New("control: no socket path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control: socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control: %s exists and is not a socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("control: another director is listening on %s", path)
		}
		// Only a refused connection proves nobody listens; a socket we may not connect to
		// (another user's director) is left alone.
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("control: %s exists and cannot be checked: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control: remove stale socket: %w", err)
		}
		log.Info("removed a stale control socket", "path", path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control: listen: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("control: chmod socket: %w", err)
	}
	return &Server{path: path, ln: ln, log: log}, nil
}

// Path returns the socket path.
func (s *Server) Path() string { return s.path }

// Serve answers requests with h until ctx ends, then closes the listener (which removes the
// socket) and waits for requests in progress.
func (s *Server) Serve(ctx context.Context, h Handler) error {
	stop := context.AfterFunc(ctx, func() { _ = s.ln.Close() })
	defer stop()
	sem := make(chan struct{}, maxConcurrent)
	defer s.wg.Wait()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("control: accept: %w", err)
		}
		sem <- struct{}{}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-sem }()
			s.serveConn(ctx, c, h)
		}()
	}
}

// Close closes the listener and removes the socket.
func (s *Server) Close() error { return s.ln.Close() }

func (s *Server) serveConn(ctx context.Context, c *net.UnixConn, h Handler) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(RequestReadTimeout))
	resp := s.answer(ctx, c, h)
	resp.Version = ProtocolVersion
	_ = c.SetWriteDeadline(time.Now().Add(ResponseWriteTimeout))
	if err := writeMessage(c, resp); err != nil {
		s.log.Debug("control: write response", "err", err)
	}
}

func (s *Server) answer(ctx context.Context, c *net.UnixConn, h Handler) *Response {
	data, err := readMessage(c, MaxRequestBytes)
	if err != nil {
		return &Response{Error: fmt.Sprintf("control: read request: %v", err)}
	}
	req, err := DecodeRequest(data)
	if err != nil {
		return &Response{Error: err.Error()}
	}
	hctx, cancel := context.WithTimeout(ctx, HandlerTimeout)
	defer cancel()
	resp := h.Handle(hctx, req)
	if resp == nil {
		resp = &Response{Error: "control: no answer"}
	}
	return resp
}
