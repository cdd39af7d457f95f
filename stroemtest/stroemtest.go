// Package stroemtest holds the helpers that the tests of several packages
// share (the in-process scenarios of cmd/stroem, the end-to-end tests, the
// workspace registry's tests), so that none is copied between packages.
// Only tests import it.
package stroemtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// Buffer is a bytes.Buffer safe for concurrent Write and String: the
// output of a subprocess or a logger that a test reads while it is written.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// FreeAddr returns a loopback address nothing listens on: its port was
// free a moment ago (for a server started later, or a refused connection).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// Request sends body (nil for none) to url with c as JSON, with a bearer
// token unless token is "", and returns the answer's status and body.
func Request(t testing.TB, c *http.Client, method, url string, body io.Reader, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, out
}

// SlowBody starts a JSON POST to path on addr whose body never finishes:
// after "{", one byte every `every`. It returns how long the server took
// to close the connection, and fails the test when that takes over limit.
func SlowBody(t testing.TB, addr, path string, every, limit time.Duration) time.Duration {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", path)
	require.NoError(t, err)
	closed := make(chan time.Duration, 1)
	go func() {
		// Read until the server ends the connection.
		_, _ = io.Copy(io.Discard, conn)
		closed <- time.Since(start)
	}()
	tick := time.NewTicker(every)
	defer tick.Stop()
	deadline := time.After(limit)
	for {
		select {
		case took := <-closed:
			return took
		case <-tick.C:
			if _, err := conn.Write([]byte(" ")); err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
				t.Logf("slow body: write: %v", err)
			}
		case <-deadline:
			t.Fatalf("the slow body was not cut off within %v", limit)
		}
	}
}

// Concurrently runs fn(0) … fn(n-1) at once and returns their errors by
// index, once all have returned: the tests of races (concurrent migrations,
// token rotations, trigger ticks) start their contenders with it.
func Concurrently(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errs
}

// MetricSum sums the samples of a metric family whose labels include want:
// counter, gauge and untyped values, histogram sample counts. found says
// whether any sample matched.
func MetricSum(f *dto.MetricFamily, want map[string]string) (sum float64, found bool) {
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum, found
}
