package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// withDirectorKeys returns the TOML text with workers, tx_mode and (if
// rxRing is not empty) rx_ring of [director] replaced.
func withDirectorKeys(text string, workers int, txMode, rxRing string) (string, error) {
	var out []string
	in, found := false, false
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") {
			in = t == "[director]"
			out = append(out, line)
			if in {
				found = true
				out = append(out, fmt.Sprintf("workers = %d", workers), fmt.Sprintf("tx_mode = %q", txMode))
				if rxRing != "" {
					out = append(out, fmt.Sprintf("rx_ring = %q", rxRing))
				}
			}
			continue
		}
		if in {
			k, _, _ := strings.Cut(t, "=")
			if k = strings.TrimSpace(k); k == "workers" || k == "tx_mode" || k == "rx_ring" && rxRing != "" {
				continue
			}
		}
		out = append(out, line)
	}
	if !found {
		return "", errors.New("bench: the config has no [director] table header to set workers and tx_mode under")
	}
	return strings.Join(out, "\n"), nil
}

// stoppedCounters parses the director's "stopped" log line (key=value).
func stoppedCounters(logPath string) map[string]string {
	f, err := os.Open(logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "msg=stopped") {
			last = sc.Text()
		}
	}
	if last == "" {
		return nil
	}
	m := map[string]string{}
	for _, f := range strings.Fields(last) {
		k, v, ok := strings.Cut(f, "=")
		if ok && k != "time" && k != "level" && k != "msg" {
			m[k] = v
		}
	}
	return m
}

// NetDev holds the counters of one interface from /proc/net/dev.
type NetDev struct {
	RxBytes, RxPackets, RxDropped, TxBytes, TxPackets, TxDropped uint64
}

// parseNetDev parses /proc/net/dev: two header lines, then
// "name: rx bytes packets errs drop fifo frame compressed multicast tx bytes packets errs drop ...".
func parseNetDev(b []byte) (map[string]NetDev, error) {
	m := map[string]NetDev{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			continue
		}
		var v [16]uint64
		for i := range v {
			v[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		m[strings.TrimSpace(name)] = NetDev{RxBytes: v[0], RxPackets: v[1], RxDropped: v[3], TxBytes: v[8], TxPackets: v[9], TxDropped: v[11]}
	}
	if len(m) == 0 {
		return nil, errors.New("bench: /proc/net/dev: no interfaces")
	}
	return m, sc.Err()
}

// leastDisturbed merges the rows of several rounds: for each candidate,
// test and size it keeps the round that other work on the machine disturbed
// least, which is the one with the lowest director ns per packet (packet
// tests), the most connections per second, or the quietest window (latency:
// the lowest p99 straight to the real server, measured beside the candidate).
func leastDisturbed(rounds [][]Row) []Row {
	if len(rounds) == 0 {
		return nil
	}
	out := append([]Row(nil), rounds[0]...)
	for _, rows := range rounds[1:] {
		for _, x := range rows {
			for i := range out {
				o := &out[i]
				if o.Candidate != x.Candidate || o.Test != x.Test || o.Size != x.Size {
					continue
				}
				better := false
				switch {
				case x.Test == "connect":
					better = x.ConnsPerSec > o.ConnsPerSec
				case x.Test == "latency" || x.Test == "latency-trickle":
					// The quietest window: the lowest p99 of the probes straight to the
					// real server in it (the p50 through the candidate without them).
					if x.DirectProbes > 0 && o.DirectProbes > 0 {
						better = x.DirectP99us < o.DirectP99us
					} else {
						better = x.Probes > 0 && (o.Probes == 0 || x.P50us < o.P50us)
					}
				default:
					better = x.NsPerPkt > 0 && (o.NsPerPkt == 0 || x.NsPerPkt < o.NsPerPkt)
				}
				if better {
					*o = x
				}
			}
		}
	}
	return out
}

// busyLimit is how busy a CPU must be to be called the bottleneck. The
// generator's CPU never reaches 100%: it waits in poll(2) for TX ring slots
// while its softirq work (bridge, sinks) runs.
const busyLimit = 0.85

// bottleneck names the side that limited a measurement: the busier of the
// director's and the generator's CPUs, if it was at least busyLimit busy.
func bottleneck(pinned bool, dir, gen float64) string {
	switch {
	case !pinned:
		return "unknown"
	case max(dir, gen) < busyLimit:
		return "neither"
	case dir >= gen:
		return "director"
	}
	return "generator"
}
