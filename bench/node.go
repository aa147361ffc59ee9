package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// Dial connects from inside the node's namespace, as net.Dialer.DialContext
// does. The socket is created in the namespace; the returned conn may be used
// from any goroutine.
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// HTTPClient returns a client whose connections are dialled from the node.
// Keep-alives are off, so each request is a new connection (and a new flow
// through the director); set DisableKeepAlives on its *http.Transport to
// false to reuse connections. No proxy is used, whatever the environment
// says; each request times out after 10s unless its context ends first.
func (n *Node) HTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:       n.Dial,
			DisableKeepAlives: true,
		},
		Timeout: 10 * time.Second,
	}
}

// Ping sends one ICMP echo request from the node to dst and waits for the
// matching reply until ctx ends (at most 2s). It needs a raw socket (root).
func (n *Node) Ping(ctx context.Context, dst netip.Addr) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var c *icmp.PacketConn
	if err := n.Do(func() error {
		var err error
		c, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		return fmt.Errorf("bench: ping from %s: %w", n.Name, err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	if err := c.SetDeadline(deadline); err != nil {
		return fmt.Errorf("bench: ping from %s: %w", n.Name, err)
	}
	id, seq := os.Getpid()&0xffff, int(time.Now().UnixNano()&0xffff)
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("uvs-bench")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return fmt.Errorf("bench: ping: %w", err)
	}
	if _, err := c.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return fmt.Errorf("bench: ping %s from %s: %w", dst, n.Name, err)
	}
	buf := make([]byte, 1500)
	for {
		m, from, err := c.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("bench: ping %s from %s: %w", dst, n.Name, err)
		}
		ip, ok := from.(*net.IPAddr)
		if !ok || !ip.IP.Equal(dst.AsSlice()) {
			continue
		}
		// 1 is the IANA protocol number of ICMP.
		rm, err := icmp.ParseMessage(1, buf[:m])
		if err != nil || rm.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		if e, ok := rm.Body.(*icmp.Echo); ok && e.ID == id && e.Seq == seq {
			return nil
		}
	}
}

// Nstat returns the node's absolute SNMP and netstat counters (`nstat -asz`:
// absolute, no history update, zeros included), keyed by nstat's names such
// as TcpOutRsts, IpForwDatagrams or UdpInDatagrams.
func Nstat(ctx context.Context, n *Node) (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	cmd := n.Command(ctx, "nstat", "-asz")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("bench: nstat in %s: %w: %s", n.Name, err, strings.TrimSpace(stderr.String()))
	}
	return parseNstat(out)
}

// parseNstat parses nstat's text output: a "#kernel" header, then lines of
// name, value and rate.
func parseNstat(out []byte) (map[string]uint64, error) {
	m := make(map[string]uint64)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 2 {
			return nil, fmt.Errorf("bench: nstat: bad line %q", sc.Text())
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bench: nstat: bad line %q: %w", sc.Text(), err)
		}
		m[f[0]] = v
	}
	if len(m) == 0 {
		return nil, errors.New("bench: nstat: no counters")
	}
	return m, sc.Err()
}
