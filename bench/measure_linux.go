package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
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

// probeResult is what latencyProbe measured for one destination.
type probeResult struct {
	rtts []time.Duration // round trips of the answered probes
	lost int             // probes sent and never answered
}

// latencyProbe sends UDP probes from n to the destinations dsts on one fixed,
// open-loop schedule: a Poisson process of rate probes per second per
// destination for d (at most maxProbes in all), each sent when its time comes
// whatever the answers of earlier ones, so that no probe is timed by the
// forwarder's previous answer (a closed loop lands every probe just after a
// ring block retires and reports that phase, not what a user sees). The
// destinations take turns, so each sees the same moments of the machine: the
// difference between a VIP and the real server behind it, probed together,
// is what the forwarder adds, free of what the rest of the machine did in
// that window. It returns the round trips and losses per destination.
// Answers may come from any address (nftables DNAT answers from the real
// server's) and are matched by sequence number.
func latencyProbe(ctx context.Context, n *Node, dsts []netip.AddrPort, d time.Duration, rate float64, maxProbes int) ([]probeResult, error) {
	if len(dsts) == 0 {
		return nil, nil
	}
	var pc net.PacketConn
	if err := n.Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp4", ":0")
		return err
	}); err != nil {
		return nil, fmt.Errorf("bench: latency probe: %w", err)
	}
	defer pc.Close()
	all := rate * float64(len(dsts))
	total := min(maxProbes, max(len(dsts), int(d.Seconds()*all)))
	sentAt := make([]time.Time, total)
	recvAt := make([]time.Time, total) // written by the reader only
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			m, _, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed, or the deadline after the last probe
			}
			now := time.Now()
			_, p, ok := strings.Cut(string(buf[:m]), ":")
			if !ok || !strings.HasPrefix(p, "probe") {
				continue
			}
			if seq, err := strconv.Atoi(p[len("probe"):]); err == nil && seq >= 0 && seq < total && recvAt[seq].IsZero() {
				recvAt[seq] = now
			}
		}
	})
	to := make([]*net.UDPAddr, len(dsts))
	for i, a := range dsts {
		to[i] = net.UDPAddrFromAddrPort(a)
	}
	start := time.Now()
	due := start
	sent := 0
	var werr error
	for seq := 0; seq < total && ctx.Err() == nil; seq++ {
		// Exponential gaps: no phase lock with any timer of the forwarder.
		due = due.Add(time.Duration(rand.ExpFloat64() / all * 1e9))
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		sentAt[seq] = time.Now()
		if _, err := pc.WriteTo([]byte("probe"+strconv.Itoa(seq)), to[seq%len(to)]); err != nil {
			werr = fmt.Errorf("bench: latency probe: %w", err)
			break
		}
		sent++
	}
	_ = pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	wg.Wait()
	if werr != nil {
		return nil, werr
	}
	out := make([]probeResult, len(dsts))
	for i := 0; i < sent; i++ {
		r := &out[i%len(dsts)]
		if recvAt[i].IsZero() {
			r.lost++
			continue
		}
		r.rtts = append(r.rtts, recvAt[i].Sub(sentAt[i]))
	}
	return out, nil
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
