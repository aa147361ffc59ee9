//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/uvs-project/uvs/bench"
	"github.com/uvs-project/uvs/internal/testenv"
)

// TestIntegrationSoak runs a 60 s soak: HTTP and UDP through a DR service while the config is
// reloaded every 3 s and a real's health flips every 7 s. It must end with no failed request
// and flat memory, goroutines and descriptors.
func TestIntegrationSoak(t *testing.T) {
	testenv.RequireRoot(t)
	eachBackend(t, testSoak)
}

func testSoak(t *testing.T) {
	bin, err := uvsBinary()
	if err != nil {
		t.Fatal(err)
	}
	// UVS_SOAK_DURATION runs a longer soak by hand (e.g. "30m"; give go test a -timeout).
	dur := 60 * time.Second
	if s := os.Getenv("UVS_SOAK_DURATION"); s != "" {
		if dur, err = time.ParseDuration(s); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur+2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := bench.RunSoak(ctx, bin, bench.SoakConfig{
		Duration: dur,
		Sample:   max(5*time.Second, dur/30),
		Prefix:   fmt.Sprintf("uvsk%d-%s-", os.Getpid()%100000, testBackend(t)[:4]),
		Out:      &out,
		Backend:  testBackend(t),
		Ready: func(socket string) error {
			checkBackendAt(t, socket)
			return nil
		},
	})
	t.Logf("soak:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	n := len(rep.Samples)
	if n < 3 {
		t.Fatalf("%d samples", n)
	}
	first, last := rep.Samples[0], rep.Samples[n-1]
	t.Logf("%d UDP echoes asked again (limit %d)", rep.UDPRetried, rep.UDPRetryLimit)
	if rep.UDPRetried > rep.UDPRetryLimit {
		t.Errorf("%d UDP echoes asked again, more than the limit %d", rep.UDPRetried, rep.UDPRetryLimit)
	}
	if rep.Failures != 0 {
		t.Errorf("%d failed requests", rep.Failures)
	}
	if last.HTTPOK == 0 || last.UDPOK == 0 || last.Reloads < 10 || last.Flaps < 5 {
		t.Errorf("soak did too little: %+v", last)
	}
	// Flat: the tables and rings are resident from the start, so growth is the Go heap's
	// churn only.
	if rep.RSSGrowth > 16<<20 {
		t.Errorf("RSS grew by %.1f MiB", rep.RSSGrowth/(1<<20))
	}
	if last.Goroutines > first.Goroutines+10 {
		t.Errorf("goroutines %v -> %v", first.Goroutines, last.Goroutines)
	}
	if last.OpenFDs > first.OpenFDs+5 {
		t.Errorf("open descriptors %v -> %v", first.OpenFDs, last.OpenFDs)
	}
}
