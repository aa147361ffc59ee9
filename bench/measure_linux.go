package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cpuTimes are one CPU's /proc/stat counters in USER_HZ ticks.
type cpuTimes struct {
	total, idle uint64 // idle includes iowait and steal: time the CPU did no work for this machine
}

// readCPUTimes returns the per-CPU lines of /proc/stat, indexed by CPU.
func readCPUTimes() (map[int]cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, fmt.Errorf("bench: /proc/stat: %w", err)
	}
	m := map[int]cpuTimes{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		cpu, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue
		}
		var t cpuTimes
		// user nice system idle iowait irq softirq steal [guest guest_nice]
		for i := 1; i <= 8; i++ {
			v, _ := strconv.ParseUint(f[i], 10, 64)
			t.total += v
			if i == 4 || i == 5 || i == 8 {
				t.idle += v
			}
		}
		m[cpu] = t
	}
	return m, nil
}

// busy returns the busy fraction of cpu between a and b: 1 - idle/wall.
// Idle time is accounted exactly under NO_HZ, unlike the tick-sampled
// user/system split.
func busy(a, b map[int]cpuTimes, cpu int) float64 {
	x, y := a[cpu], b[cpu]
	if y.total <= x.total {
		return 0
	}
	return 1 - float64(y.idle-x.idle)/float64(y.total-x.total)
}

// procCPU returns the CPU time of every thread of pid from
// /proc/PID/task/*/schedstat (nanoseconds, exact), or 0.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var sum uint64
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			v, _ := strconv.ParseUint(f[0], 10, 64)
			sum += v
		}
	}
	return time.Duration(sum)
}

// rxCounts returns the rx packets of each node's first interface.
func rxCounts(nodes []*Node) (map[string]uint64, error) {
	m := map[string]uint64{}
	for _, n := range nodes {
		c, err := readNetDev(n)
		if err != nil {
			return nil, err
		}
		m[n.Name] = c[n.Ifaces[0].Name].RxPackets
	}
	return m, nil
}

// latencyProbe sends UDP probes from n to dst one at a time until d passes
// or max probes were sent, and returns the round-trip times of those
// answered. Answers may come from any address (nftables DNAT answers from
// the real server's), and are matched by sequence number.
func latencyProbe(ctx context.Context, n *Node, dst netip.AddrPort, d time.Duration, maxProbes int) ([]time.Duration, int, error) {
	var pc net.PacketConn
	if err := n.Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp4", ":0")
		return err
	}); err != nil {
		return nil, 0, fmt.Errorf("bench: latency probe: %w", err)
	}
	defer pc.Close()
	to := net.UDPAddrFromAddrPort(dst)
	buf := make([]byte, 2048)
	var rtts []time.Duration
	lost := 0
	end := time.Now().Add(d)
	for seq := 0; seq < maxProbes && time.Now().Before(end) && ctx.Err() == nil; seq++ {
		msg := "probe" + strconv.Itoa(seq)
		t0 := time.Now()
		if _, err := pc.WriteTo([]byte(msg), to); err != nil {
			return nil, 0, fmt.Errorf("bench: latency probe: %w", err)
		}
		_ = pc.SetReadDeadline(t0.Add(200 * time.Millisecond))
		for {
			m, _, err := pc.ReadFrom(buf)
			if err != nil {
				lost++
				break
			}
			if _, p, ok := strings.Cut(string(buf[:m]), ":"); ok && p == msg {
				rtts = append(rtts, time.Since(t0))
				break
			}
		}
	}
	return rtts, lost, nil
}

// percentile returns the p-th percentile (0..100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p / 100 * float64(len(s)))
	return s[min(i, len(s)-1)]
}

// connectRate opens TCP connections from n to dst with parallel workers
// until d passes, each a request "GET / HTTP/1.0" whose answer names the
// real server, and returns completed connections per real server and
// failures.
func connectRate(ctx context.Context, n *Node, dst netip.AddrPort, d time.Duration, parallel int) (map[string]uint64, uint64, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	per := map[string]uint64{}
	var failed uint64
	start := time.Now()
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			buf := make([]byte, 4096)
			for ctx.Err() == nil {
				name, err := oneConnection(ctx, n, dst, buf)
				mu.Lock()
				if err != nil {
					if ctx.Err() == nil {
						failed++
					}
				} else {
					per[name]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return per, failed, time.Since(start)
}

func oneConnection(ctx context.Context, n *Node, dst netip.AddrPort, buf []byte) (string, error) {
	c, err := n.Dial(ctx, "tcp4", dst.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	var all []byte
	for {
		m, err := c.Read(buf)
		all = append(all, buf[:m]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
	}
	_, body, ok := bytes.Cut(all, []byte("\r\n\r\n"))
	if !ok {
		return "", fmt.Errorf("bench: connect: no HTTP answer")
	}
	return strings.TrimSpace(string(body)), nil
}
