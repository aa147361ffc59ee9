package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// maxBytes caps GET /bytes?n=N at 16 GiB, far above any test transfer.
const maxBytes = 16 << 30

// Servers are the in-process test servers of a lab's real servers. Each
// real server listens on all its addresses (its own, and the VIP once
// PrepareReals("dr") put it on lo):
//
//   - HTTP on the HTTP port: GET / answers "<name>\n"; GET /bytes?n=N answers
//     the first N bytes of Payload; GET /status500 answers 500. Every answer
//     carries "X-Real: <name>".
//   - UDP echo on the UDP port: a datagram P is answered with "<name>:" + P,
//     from the address P was sent to (IP_PKTINFO), as a DR real server must.
//
// The lab closes its Servers on Close.
type Servers struct {
	lab      *Lab
	httpPort int
	udpPort  int

	mu      sync.Mutex // guards running and closed
	running map[*Node]*realServer
	closed  bool
}

// realServer is one real server's listeners and the goroutines serving them.
type realServer struct {
	http *http.Server
	udp  *ipv4.PacketConn
	udp6 *ipv6.PacketConn // dual-stack labs only
	wg   sync.WaitGroup
}

// StartServers starts the test servers on every real server. udpPort 0 means
// no UDP echo server.
func (l *Lab) StartServers(httpPort, udpPort int) (*Servers, error) {
	if httpPort <= 0 || httpPort > 65535 || udpPort < 0 || udpPort > 65535 {
		return nil, fmt.Errorf("bench: start servers: bad ports %d, %d", httpPort, udpPort)
	}
	s := &Servers{lab: l, httpPort: httpPort, udpPort: udpPort, running: make(map[*Node]*realServer)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("bench: start servers: lab closed")
	}
	l.servers = append(l.servers, s)
	l.mu.Unlock()
	for _, n := range l.Reals {
		if err := s.Start(n); err != nil {
			return nil, errors.Join(err, s.Close())
		}
	}
	return s, nil
}

// Start starts the servers of real server n again after Stop. Starting a
// running server does nothing.
func (s *Servers) Start(n *Node) error {
	if !s.isReal(n) {
		return fmt.Errorf("%w: %v", ErrNoNode, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("bench: start servers: closed")
	}
	if s.running[n] != nil {
		return nil
	}
	rs := &realServer{}
	var ln, ln6 net.Listener
	var pc, pc6 net.PacketConn
	dual := s.lab.Spec.IPv6
	err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", ":"+strconv.Itoa(s.httpPort))
		if err != nil {
			return err
		}
		if dual { // Go sets IPV6_V6ONLY on a "tcp6" wildcard listener
			if ln6, err = net.Listen("tcp6", ":"+strconv.Itoa(s.httpPort)); err != nil {
				return err
			}
		}
		if s.udpPort == 0 {
			return nil
		}
		if pc, err = net.ListenPacket("udp4", ":"+strconv.Itoa(s.udpPort)); err != nil || !dual {
			return err
		}
		pc6, err = net.ListenPacket("udp6", ":"+strconv.Itoa(s.udpPort))
		return err
	})
	if err != nil {
		for _, c := range []io.Closer{ln, ln6, pc} {
			if c != nil {
				c.Close()
			}
		}
		return fmt.Errorf("bench: start servers on %s: %w", n.Name, err)
	}
	rs.http = &http.Server{Handler: handler(n.Name), ReadHeaderTimeout: 5 * time.Second}
	rs.wg.Go(func() { _ = rs.http.Serve(ln) }) // ends with ErrServerClosed
	if ln6 != nil {
		rs.wg.Go(func() { _ = rs.http.Serve(ln6) }) // Close closes both listeners
	}
	if pc6 != nil {
		rs.udp6 = ipv6.NewPacketConn(pc6)
		if err := rs.udp6.SetControlMessage(ipv6.FlagDst, true); err != nil {
			_ = pc.Close()
			rs.stop()
			return fmt.Errorf("bench: start servers on %s: IPV6_RECVPKTINFO: %w", n.Name, err)
		}
		rs.wg.Go(func() { serveUDPEcho6(rs.udp6, n.Name) })
	}
	if pc != nil {
		rs.udp = ipv4.NewPacketConn(pc)
		if err := rs.udp.SetControlMessage(ipv4.FlagDst, true); err != nil {
			rs.stop()
			return fmt.Errorf("bench: start servers on %s: IP_PKTINFO: %w", n.Name, err)
		}
		rs.wg.Go(func() { serveUDPEcho(rs.udp, n.Name) })
	}
	s.running[n] = rs
	return nil
}

// Stop stops the servers of real server n, closing their listeners and
// connections, so that n refuses new connections as a crashed service would.
// Stopping a stopped server does nothing.
func (s *Servers) Stop(n *Node) error {
	if !s.isReal(n) {
		return fmt.Errorf("%w: %v", ErrNoNode, n)
	}
	s.mu.Lock()
	rs := s.running[n]
	delete(s.running, n)
	s.mu.Unlock()
	if rs != nil {
		rs.stop()
	}
	return nil
}

// Close stops all servers. It is idempotent.
func (s *Servers) Close() error {
	s.mu.Lock()
	s.closed = true
	running := s.running
	s.running = make(map[*Node]*realServer)
	s.mu.Unlock()
	for _, rs := range running {
		rs.stop()
	}
	return nil
}

func (s *Servers) isReal(n *Node) bool {
	for _, r := range s.lab.Reals {
		if r == n {
			return true
		}
	}
	return false
}

func (rs *realServer) stop() {
	_ = rs.http.Close() // closes the listener and every connection
	if rs.udp != nil {
		_ = rs.udp.Close()
	}
	if rs.udp6 != nil {
		_ = rs.udp6.Close()
	}
	rs.wg.Wait()
}

// handler serves GET /, GET /status500 and GET /bytes?n=N for the real server called name.
func handler(name string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Real", name)
		_, _ = io.WriteString(w, name+"\n")
	})
	// A server that accepts connections but fails: health checks must tell it from a good one.
	mux.HandleFunc("GET /status500", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Real", name)
		http.Error(w, name+": failing on purpose", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /bytes", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Real", name)
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 || n > maxBytes {
			http.Error(w, "n must be an integer in [0, 16Gi]", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		_, _ = io.CopyN(w, Payload(), n) // a client that goes away ends the copy
	})
	return mux
}

// serveUDPEcho answers every datagram until c is closed, from the datagram's
// destination address: a wildcard socket would otherwise answer a DR request
// to the VIP from the real server's own address.
func serveUDPEcho(c *ipv4.PacketConn, name string) {
	buf := make([]byte, 65536)
	out := make([]byte, 0, len(name)+1+len(buf))
	for {
		n, cm, src, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // for example ECONNREFUSED from an earlier reply's ICMP
		}
		var wcm *ipv4.ControlMessage
		if cm != nil && cm.Dst != nil {
			wcm = &ipv4.ControlMessage{Src: cm.Dst}
		}
		out = append(append(append(out[:0], name...), ':'), buf[:n]...)
		_, _ = c.WriteTo(out, wcm, src) // a lost reply is the client's to notice
	}
}

// serveUDPEcho6 is serveUDPEcho for IPv6 (IPV6_PKTINFO).
func serveUDPEcho6(c *ipv6.PacketConn, name string) {
	buf := make([]byte, 65536)
	out := make([]byte, 0, len(name)+1+len(buf))
	for {
		n, cm, src, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		var wcm *ipv6.ControlMessage
		if cm != nil && cm.Dst != nil {
			wcm = &ipv6.ControlMessage{Src: cm.Dst}
		}
		out = append(append(append(out[:0], name...), ':'), buf[:n]...)
		_, _ = c.WriteTo(out, wcm, src)
	}
}

// Get fetches url with c and returns the body; a status other than 200 is an
// error. It is a convenience for tests and the demo.
func Get(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("bench: GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("bench: GET %s: %s", url, resp.Status)
	}
	return body, nil
}

func listenTCP(port int) (net.Listener, error) {
	ln, err := net.Listen("tcp4", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("bench: serve: %w", err)
	}
	return ln, nil
}

func listenUDPEcho6(port int) (*ipv6.PacketConn, error) {
	pc, err := net.ListenPacket("udp6", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("bench: serve: %w", err)
	}
	c := ipv6.NewPacketConn(pc)
	if err := c.SetControlMessage(ipv6.FlagDst, true); err != nil {
		pc.Close()
		return nil, fmt.Errorf("bench: serve: IPV6_RECVPKTINFO: %w", err)
	}
	return c, nil
}

func listenUDPEcho(port int) (*ipv4.PacketConn, error) {
	pc, err := net.ListenPacket("udp4", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("bench: serve: %w", err)
	}
	c := ipv4.NewPacketConn(pc)
	if err := c.SetControlMessage(ipv4.FlagDst, true); err != nil {
		pc.Close()
		return nil, fmt.Errorf("bench: serve: IP_PKTINFO: %w", err)
	}
	return c, nil
}
