package bench

import (
	"encoding/json"
	"io"
	"time"
)

// SoakConfig describes a soak run. The zero value of each duration means its default.
type SoakConfig struct {
	Duration    time.Duration // whole run (default 60 s)
	Sample      time.Duration // how often to sample (default 5 s)
	ReloadEvery time.Duration // SIGHUP with a changed weight (default 3 s)
	FlapEvery   time.Duration // toggle one real's health check (default 7 s)
	Prefix      string        // lab namespace prefix (default "uvsoak<pid>-")
	Out         io.Writer     // progress table; nil discards it
	Backend     string        // director.backend; "" leaves the default
	// Ready, if set, is called with the director's control socket once the VIP answers; an
	// error ends the soak with it.
	Ready func(controlSocket string) error
}

// SoakSample is one sample of a soak.
type SoakSample struct {
	Seconds    float64 `json:"t_s"`
	RSSBytes   float64 `json:"rss_bytes"`
	Goroutines float64 `json:"goroutines"`
	OpenFDs    float64 `json:"open_fds"`
	HeapBytes  float64 `json:"heap_inuse_bytes"`
	HTTPOK     int64   `json:"http_ok"`
	HTTPFailed int64   `json:"http_failed"`
	UDPOK      int64   `json:"udp_ok"`
	UDPFailed  int64   `json:"udp_failed"`
	UDPRetried int64   `json:"udp_retried"` // datagrams asked again after a lost answer
	Reloads    int64   `json:"reloads"`
	Flaps      int64   `json:"flaps"`
}

// SoakReport is the result of a soak: the samples, and the verdicts a test asserts on.
type SoakReport struct {
	Samples []SoakSample `json:"samples"`
	// Failures counts requests and datagrams that got no (or a wrong) answer.
	Failures int64 `json:"failures"`
	// UDPRetried counts UDP echoes asked a second time after a lost answer (each echo is
	// asked at most twice). A lost datagram on a quiet veth lab is rare; UDPRetryLimit is
	// how many retries the run tolerates (MaxUDPRetryPercent of its echoes, at least one),
	// and a soak over it fails as surely as one with Failures: retries must not hide a
	// director that loses a datagram in ten.
	UDPRetried    int64 `json:"udp_retried"`
	UDPRetryLimit int64 `json:"udp_retry_limit"`
	// RSSGrowth is the last sample's RSS over the first's, in bytes (the first sample is
	// taken after the director's tables and rings are allocated).
	RSSGrowth float64 `json:"rss_growth_bytes"`
	// Errors are the first failed requests and lost UDP answers (retried or not), with
	// when they happened, so that a failed soak says what failed and when.
	Errors []SoakError `json:"errors,omitempty"`
	// Drops are the director's non-zero uvs_dropped_packets_total and ring drops at the
	// end, by reason ("ring" for uvs_worker_ring_drops_total summed over workers).
	Drops map[string]float64 `json:"drops,omitempty"`
}

// SoakError is one failed request or lost UDP answer of a soak.
type SoakError struct {
	Seconds float64 `json:"t_s"`
	Kind    string  `json:"kind"` // "http", "udp" (failed twice) or "udp-retry" (first answer lost)
	Err     string  `json:"error"`
}

// maxSoakErrors bounds SoakReport.Errors.
const maxSoakErrors = 20

// MaxUDPRetryPercent bounds UDPRetried as a percentage of the UDP echoes sent.
const MaxUDPRetryPercent = 1

// OK reports whether the soak passed: no failures, retries within their limit.
func (r *SoakReport) OK() bool { return r.Failures == 0 && r.UDPRetried <= r.UDPRetryLimit }

// WriteSoakJSON writes the report as JSON.
func WriteSoakJSON(w io.Writer, rep *SoakReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
