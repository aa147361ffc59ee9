package health

import (
	"bytes"
	"context"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/uvs-project/uvs/config"
)

// FuzzProbeReplies feeds arbitrary server replies to the HTTP and TCP probes. Invariants: no
// panic, the probe returns (its context carries the timeout; a probe that ignored it would
// hang the fuzz run), an HTTP probe passes only on a reply whose status line says 2xx, and a
// TCP probe with expect passes only if the reply matches. How long a probe took is not
// asserted: on a loaded machine scheduling delays are unbounded.
func FuzzProbeReplies(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.1 500 Internal Server Error\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 204 No Content\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\nshort"))
	f.Add([]byte("+PONG\r\n"))
	f.Add([]byte{})
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	replies := make(chan []byte, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			reply := <-replies
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(time.Second))
				buf := make([]byte, 4096)
				_, _ = c.Read(buf) // the request, if any
				_, _ = c.Write(reply)
			}()
		}
	}()
	dst := addrOf(f, ln.Addr())
	expect := regexp.MustCompile(`^\+PONG`)
	f.Fuzz(func(t *testing.T, reply []byte) {
		for _, typ := range []config.CheckType{config.CheckHTTP, config.CheckTCP} {
			c := &config.Check{Type: typ, Timeout: 300 * time.Millisecond, Path: "/", Via: config.ViaReal}
			if typ == config.CheckTCP {
				c.Payload, c.Expect = "PING\r\n", expect.String()
			}
			p := newProbe(c, target{real: dst})
			replies <- reply
			ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
			err := p(ctx)
			cancel()
			if err != nil {
				continue
			}
			switch typ {
			case config.CheckHTTP:
				// net/http accepts any HTTP/x.y version (seed 55a57e2d: "HTTP/0.1 200").
				fs := bytes.Fields(reply)
				if !bytes.HasPrefix(reply, []byte("HTTP/")) || len(fs) < 2 || len(fs[1]) != 3 || fs[1][0] != '2' {
					t.Fatalf("HTTP probe passed on %q", reply)
				}
			case config.CheckTCP:
				if !expect.Match(reply) {
					t.Fatalf("TCP probe passed on %q", reply)
				}
			}
		}
	})
}
