package health

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"

	"github.com/uvs-project/uvs/config"
)

// maxReply bounds what a probe reads: an HTTP body (for expect and digest) or a TCP or UDP
// reply. keepalived's digest reads the whole body; pages for health checks are small.
const maxReply = 1 << 20

// probe runs one check against a real server and returns nil if it passed. The context ends
// at the check's timeout.
type probe func(ctx context.Context) error

// target is where a probe goes: the real (or check_port) and the service it belongs to.
type target struct {
	real  netip.AddrPort // the real's address, and check_port or the real's port
	vip   netip.AddrPort // the service's VIP and (first) port
	proto config.Protocol
	mark  uint32 // SO_MARK of via = "vip" probes, 0 otherwise
	err   error  // set-up failure: the probe fails with it
}

// newProbe returns the probe for c against t. c has been validated.
func newProbe(c *config.Check, t target) probe {
	if t.err != nil {
		return func(context.Context) error { return t.err }
	}
	var expect *regexp.Regexp
	if c.Expect != "" {
		expect = regexp.MustCompile(c.Expect)
	}
	dst := t.real
	if c.Via == config.ViaVIP {
		dst = netip.AddrPortFrom(t.vip.Addr(), t.real.Port())
		if c.Port == 0 {
			dst = t.vip
		}
	}
	d := &net.Dialer{Control: markControl(t.mark)}
	switch c.Type {
	case config.CheckTCP:
		return func(ctx context.Context) error { return probeTCP(ctx, d, dst, c.Payload, expect) }
	case config.CheckHTTP, config.CheckHTTPS:
		return newHTTPProbe(c, d, dst, expect)
	case config.CheckUDP:
		return func(ctx context.Context) error { return probeUDP(ctx, dst, c.Payload, expect) }
	case config.CheckExec:
		env := []string{
			"UVS_REAL_ADDR=" + t.real.Addr().String(),
			"UVS_REAL_PORT=" + strconv.Itoa(int(t.real.Port())),
			"UVS_VIP=" + t.vip.Addr().String(),
			"UVS_VPORT=" + strconv.Itoa(int(t.vip.Port())),
			"UVS_PROTOCOL=" + t.proto.String(),
		}
		return func(ctx context.Context) error { return probeExec(ctx, c.Command, env) }
	}
	return func(context.Context) error { return nil }
}

// probeTCP connects, sends payload if any, and reads until expect matches.
func probeTCP(ctx context.Context, d *net.Dialer, dst netip.AddrPort, payload string, expect *regexp.Regexp) error {
	c, err := d.DialContext(ctx, network("tcp", dst), dst.String())
	if err != nil {
		return shortErr(ctx, "connect", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if payload != "" {
		if _, err := io.WriteString(c, payload); err != nil {
			return shortErr(ctx, "send", err)
		}
	}
	if expect == nil {
		return nil
	}
	return readMatch(ctx, c, expect)
}

// readMatch reads from c until what it read matches expect, the peer closes, or maxReply.
func readMatch(ctx context.Context, c io.Reader, expect *regexp.Regexp) error {
	buf := make([]byte, 0, 4096)
	for len(buf) < maxReply {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf))
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if expect.Match(buf) {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return shortErr(ctx, "read", err)
		}
	}
	return fmt.Errorf("reply %s does not match %q", quoteStart(buf), expect)
}

// probeUDP sends payload from a connected socket and waits for a reply (matching expect).
// A closed port answers with ICMP port unreachable, which fails the read at once.
func probeUDP(ctx context.Context, dst netip.AddrPort, payload string, expect *regexp.Regexp) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, network("udp", dst), dst.String())
	if err != nil {
		return shortErr(ctx, "dial", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, payload); err != nil {
		return shortErr(ctx, "send", err)
	}
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		return shortErr(ctx, "read", err)
	}
	if expect != nil && !expect.Match(buf[:n]) {
		return fmt.Errorf("reply %s does not match %q", quoteStart(buf[:n]), expect)
	}
	return nil
}

// newHTTPProbe returns a probe that GETs c.Path from dst. Each probe is a new connection
// ("Connection: close"), as keepalived's: it proves that the server still accepts
// connections. The request is written and the response read on the probe's own goroutine
// (no http.Transport: no connection pool, no reader and writer goroutines per probe). https
// does not verify the certificate unless tls_verify is set, as keepalived never does: a
// health check asks whether the server answers, not whether it is who it says.
func newHTTPProbe(c *config.Check, d *net.Dialer, dst netip.AddrPort, expect *regexp.Regexp) probe {
	scheme := "http"
	var tlsConf *tls.Config
	if c.Type == config.CheckHTTPS {
		scheme = "https"
		tlsConf = &tls.Config{InsecureSkipVerify: !c.TLSVerify, ServerName: c.Host}
		if c.Host == "" {
			tlsConf.ServerName = dst.Addr().String()
		}
	}
	// The request is built once; http.Request.Write escapes the path and refuses header
	// values that would split the request, so nothing in the config can inject into it.
	req, reqErr := http.NewRequest(http.MethodGet, scheme+"://"+dst.String()+c.Path, nil)
	if reqErr == nil {
		if c.Host != "" {
			req.Host = c.Host
		}
		req.Close = true
		req.Header.Set("User-Agent", "uvs-health")
	}
	op := "GET " + c.Path
	return func(ctx context.Context) error {
		if reqErr != nil {
			return fmt.Errorf("%s: %w", op, reqErr)
		}
		conn, err := d.DialContext(ctx, network("tcp", dst), dst.String())
		if err != nil {
			return shortErr(ctx, op, err)
		}
		defer conn.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		if tlsConf != nil {
			tc := tls.Client(conn, tlsConf)
			if err := tc.HandshakeContext(ctx); err != nil {
				return shortErr(ctx, op+": tls", err)
			}
			conn = tc
		}
		bw := bufio.NewWriterSize(conn, 512)
		if err := req.Write(bw); err != nil {
			return shortErr(ctx, op, err)
		}
		if err := bw.Flush(); err != nil {
			return shortErr(ctx, op, err)
		}
		resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), req)
		if err != nil {
			return shortErr(ctx, op, err)
		}
		defer resp.Body.Close()
		if !statusOK(resp.StatusCode, c.ExpectStatus) {
			return fmt.Errorf("%s: status %d", op, resp.StatusCode)
		}
		if expect == nil && c.Digest == "" {
			return nil
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
		if err != nil {
			return shortErr(ctx, op+" body", err)
		}
		if expect != nil && !expect.Match(body) {
			return fmt.Errorf("%s: body does not match %q", op, expect)
		}
		if c.Digest != "" {
			sum := md5.Sum(body)
			if got := hex.EncodeToString(sum[:]); got != c.Digest {
				return fmt.Errorf("%s: digest %s, want %s", op, got, c.Digest)
			}
		}
		return nil
	}
}

// statusOK reports whether code is one of want, or 2xx when want is empty.
func statusOK(code int, want []int) bool {
	if len(want) == 0 {
		return code >= 200 && code <= 299
	}
	return slices.Contains(want, code)
}

// shortErr names op and reduces err to its cause: "connect: connection refused", "timeout".
func shortErr(ctx context.Context, op string, err error) error {
	var ne net.Error
	if ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: timeout", op)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
		var se interface{ Unwrap() error }
		if errors.As(err, &se) && se.Unwrap() != nil {
			err = se.Unwrap()
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// quoteStart quotes the first bytes of b for a reason string.
func quoteStart(b []byte) string {
	const n = 32
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "..."
	}
	if len(b) == 0 {
		return "(empty)"
	}
	return strconv.Quote(string(b))
}

// network returns "tcp4" or "udp4" for an IPv4 destination and "tcp6" or "udp6" for an IPv6
// one: the probe goes out of the destination's family, never a mapped address.
func network(proto string, dst netip.AddrPort) string {
	if dst.Addr().Is6() {
		return proto + "6"
	}
	return proto + "4"
}
