package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
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
//
// The prober's own delays stay out of the figures: an answer is timed by the
// kernel when it reaches the socket (SO_TIMESTAMPNS), not when a thread wakes
// for it, and the sending and receiving threads are locked and pinned to cpu
// (the generator's; -1 = not pinned), off the director's CPU, with blocking
// system calls rather than the Go netpoller.
func latencyProbe(ctx context.Context, n *Node, dsts []netip.AddrPort, d time.Duration, rate float64, maxProbes, cpu int) ([]probeResult, error) {
	if len(dsts) == 0 {
		return nil, nil
	}
	var fd int
	if err := n.Do(func() error {
		var err error
		fd, err = probeSocket()
		return err
	}); err != nil {
		return nil, fmt.Errorf("bench: latency probe: %w", err)
	}
	defer unix.Close(fd)
	all := rate * float64(len(dsts))
	total := min(maxProbes, max(len(dsts), int(d.Seconds()*all)))
	sentAt := make([]int64, total) // unix ns; written by the sender before the probe leaves
	recvAt := make([]int64, total) // unix ns; written by the reader only
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer pinThread(cpu)()
		buf := make([]byte, 2048)
		oob := make([]byte, 128)
		for {
			m, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
			if err != nil {
				if done.Load() {
					return // the read timeout after the last probe
				}
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
					continue
				}
				return
			}
			at := rxTimestamp(oob[:oobn])
			_, p, ok := strings.Cut(string(buf[:m]), ":")
			if !ok || !strings.HasPrefix(p, "probe") {
				continue
			}
			if seq, err := strconv.Atoi(p[len("probe"):]); err == nil && seq >= 0 && seq < total && recvAt[seq] == 0 {
				recvAt[seq] = at
			}
		}
	})
	to := make([]unix.Sockaddr, len(dsts))
	for i, a := range dsts {
		to[i] = &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
	}
	sent := 0
	var werr error
	func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer pinThread(cpu)()
		due := time.Now()
		for seq := 0; seq < total && ctx.Err() == nil; seq++ {
			// Exponential gaps: no phase lock with any timer of the forwarder.
			due = due.Add(time.Duration(rand.ExpFloat64() / all * 1e9))
			if w := time.Until(due); w > 0 {
				time.Sleep(w)
			}
			sentAt[seq] = time.Now().UnixNano()
			if err := unix.Sendto(fd, []byte("probe"+strconv.Itoa(seq)), 0, to[seq%len(to)]); err != nil {
				werr = fmt.Errorf("bench: latency probe: %w", err)
				break
			}
			sent++
		}
	}()
	time.Sleep(200 * time.Millisecond) // the last answers
	done.Store(true)
	wg.Wait()
	if werr != nil {
		return nil, werr
	}
	out := make([]probeResult, len(dsts))
	for i := 0; i < sent; i++ {
		r := &out[i%len(dsts)]
		if recvAt[i] == 0 {
			r.lost++
			continue
		}
		r.rtts = append(r.rtts, time.Duration(max(0, recvAt[i]-sentAt[i])))
	}
	return out, nil
}

// probeReadTimeout bounds a blocking read of the prober, so that its reader sees the end.
const probeReadTimeout = 50 * time.Millisecond

// probeSocket opens the prober's UDP socket in the calling thread's namespace:
// bound to an ephemeral port, kernel receive timestamps on, reads bounded by
// probeReadTimeout.
func probeSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	tv := unix.NsecToTimeval(probeReadTimeout.Nanoseconds())
	for _, e := range []error{
		unix.Bind(fd, &unix.SockaddrInet4{}),
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1),
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv),
	} {
		if e != nil {
			unix.Close(fd)
			return -1, e
		}
	}
	return fd, nil
}

// rxTimestamp returns the SCM_TIMESTAMPNS of a received datagram's control
// messages in unix nanoseconds (CLOCK_REALTIME, as time.Now's wall clock), or
// now if there is none.
func rxTimestamp(oob []byte) int64 {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
				sec := int64(binary.NativeEndian.Uint64(m.Data[0:]))
				nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
				return sec*1e9 + nsec
			}
		}
	}
	return time.Now().UnixNano()
}

// pinThread pins the calling (locked) thread to cpu (-1 leaves it) and returns
// what restores its affinity: a thread that goes back to the runtime's pool
// pinned would run any goroutine of the bench on that CPU, the director's
// included.
func pinThread(cpu int) (restore func()) {
	var old unix.CPUSet
	if cpu < 0 || unix.SchedGetaffinity(0, &old) != nil {
		return func() {}
	}
	var set unix.CPUSet
	set.Set(cpu)
	if unix.SchedSetaffinity(0, &set) != nil {
		return func() {}
	}
	return func() { _ = unix.SchedSetaffinity(0, &old) }
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
