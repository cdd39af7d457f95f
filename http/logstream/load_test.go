package logstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// procStatus returns a field of /proc/self/status in KiB (VmRSS, VmHWM).
func procStatus(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

// watch reads a stream cheaply (no JSON decoding): it checks that line
// events carry seqs from+1, from+2, … in order with matching data, and
// returns how many it got and the done event's data.
func watch(body io.Reader, from int64, onLine func(seq int64)) (int64, string, error) {
	br := bufio.NewReaderSize(body, 64<<10)
	next := from + 1
	var id int64 = -1
	var name string
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return next - from - 1, "", err
		}
		switch {
		case bytes.HasPrefix(line, []byte("id: ")):
			id, err = strconv.ParseInt(string(bytes.TrimSpace(line[4:])), 10, 64)
			if err != nil || id != next {
				return next - from - 1, "", fmt.Errorf("got id %q, want %d", bytes.TrimSpace(line[4:]), next)
			}
		case bytes.HasPrefix(line, []byte("event: ")):
			name = string(bytes.TrimSpace(line[7:]))
		case bytes.HasPrefix(line, []byte("data: ")):
			if name == "done" {
				return next - from - 1, string(bytes.TrimSpace(line[6:])), nil
			}
			if !bytes.HasPrefix(line[6:], []byte(`{"seq":`+strconv.FormatInt(id, 10)+`,`)) {
				return next - from - 1, "", fmt.Errorf("data %q for id %d", line, id)
			}
			if onLine != nil {
				onLine(id)
			}
			next++
		}
	}
}

// TestThousandLinesPerSecondTo200Watchers is the acceptance load test: 1,000
// lines/s pushed into one job (batched as a worker does)
// while 200 SSE clients watch; every client must get every line once, in
// order. It logs throughput and memory; it asserts only correctness.
func TestThousandLinesPerSecondTo200Watchers(t *testing.T) {
	const rate, every = 1000, 20 * time.Millisecond
	clients, duration := 200, 5*time.Second
	if raceEnabled || testing.Short() {
		// The race detector makes the 200 in-process readers ~10x slower
		// (on 2 CPUs this run would take a minute); keep the concurrency
		// check, leave the figures to the normal run.
		clients, duration = 50, time.Second
	}
	b := setup(t, Options{})
	job := newJob(b, stroem.JobRunning)

	type outcome struct {
		n    int64
		done string
		err  error
	}
	outcomes := make(chan outcome, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			resp, err := b.client.Get(b.url(job, ""))
			if err != nil {
				outcomes <- outcome{err: err}
				return
			}
			defer resp.Body.Close()
			n, done, err := watch(resp.Body, 0, nil)
			outcomes <- outcome{n, done, err}
		})
	}
	connect := time.Now()
	require.Eventually(t, func() bool { return b.subscribers(job) == clients }, 30*time.Second, 5*time.Millisecond)
	connected := time.Since(connect)
	runtime.GC()
	rssBefore := procStatus("VmRSS")

	// A step printing 1,000 lines/s, and a worker shipping whatever has
	// accumulated whenever its previous push is acknowledged, waiting at
	// least `every` between pushes (workers batch up to ~50 ms).
	start := time.Now()
	var rssSamples []int64
	lastSample := start
	var total int64
	var pushes int
	var slowestPublish, slowestPush time.Duration
	for {
		now := time.Since(start)
		due := min(int64(now.Seconds()*rate), int64(duration.Seconds()*rate))
		if due == total {
			if now >= duration {
				break
			}
			time.Sleep(every)
			continue
		}
		pl := make([]stroem.PushLine, 0, due-total)
		for i := total; i < due; i++ {
			pl = append(pl, stroem.PushLine{TS: time.Now().UTC(), Stream: stroem.Stdout,
				Text: fmt.Sprintf("line %d: some typical build output, a path /src/pkg/file.go:123 and a message", i+1)})
		}
		p0 := time.Now()
		lines, err := b.src.Append(t.Context(), job, appendOf("s", total, pl))
		require.NoError(t, err)
		p1 := time.Now()
		b.hub.Publish(job, lines)
		slowestPublish = max(slowestPublish, time.Since(p1))
		slowestPush = max(slowestPush, p1.Sub(p0))
		total += int64(len(lines))
		pushes++
		if time.Since(lastSample) >= time.Second {
			rssSamples = append(rssSamples, procStatus("VmRSS"))
			lastSample = time.Now()
		}
		time.Sleep(every - time.Since(p0)) // no-op when the push took longer
	}
	elapsed := time.Since(start)
	rssDuring := procStatus("VmRSS")
	b.src.setStatus(job, stroem.JobCompleted)
	b.hub.Finish(job, stroem.JobCompleted)
	finish := time.Now()
	wg.Wait()
	drained := time.Since(finish)
	close(outcomes)
	for o := range outcomes {
		require.NoError(t, o.err)
		require.Equal(t, total, o.n, "every client gets every line once, in order")
		require.Equal(t, `{"status":"completed"}`, o.done)
	}
	runtime.GC()
	t.Logf("%d clients, %d lines in %d pushes over %v (%.0f lines/s pushed, %.0f line deliveries/s); slowest Append %v, slowest Publish %v",
		clients, total, pushes, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), float64(total*int64(clients))/elapsed.Seconds(), slowestPush, slowestPublish)
	t.Logf("connecting %d clients took %v; after Finish, the last client was done in %v", clients, connected.Round(time.Millisecond), drained.Round(time.Millisecond))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("RSS (whole test process: server and the %d clients) before %d KiB, each second while pushing %v KiB, at the end %d KiB, after Finish+GC %d KiB, peak (VmHWM) %d KiB; Go heap in use after GC %d KiB; race detector: %v",
		clients, rssBefore, rssSamples, rssDuring, procStatus("VmRSS"), procStatus("VmHWM"), ms.HeapInuse>>10, raceEnabled)
}

// BenchmarkPublishToClientLatency measures, over loopback HTTP, how long a
// line takes from the push (Append with fsync, then Publish) and from
// Publish alone to a connected SSE client that is watching with `watchers`
// other clients:
//
//	go test -run '^$' -bench Latency -benchtime 2000x ./http/logstream/
func BenchmarkPublishToClientLatency(b *testing.B) {
	for _, watchers := range []int{1, 200} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			bb := setup(b, Options{})
			job := newJob(bb, stroem.JobRunning)
			received := make(chan time.Time, 1)
			var wg sync.WaitGroup
			defer wg.Wait()
			defer func() {
				bb.src.setStatus(job, stroem.JobCompleted)
				bb.hub.Finish(job, stroem.JobCompleted)
			}()
			for c := range watchers {
				resp, err := bb.client.Get(bb.url(job, ""))
				if err != nil {
					b.Fatal(err)
				}
				wg.Go(func() {
					defer resp.Body.Close()
					var on func(int64)
					if c == 0 {
						on = func(int64) { received <- time.Now() }
					}
					if _, _, err := watch(resp.Body, 0, on); err != nil && !errors.Is(err, io.EOF) {
						b.Error(err)
					}
				})
			}
			for bb.subscribers(job) != watchers {
				time.Sleep(time.Millisecond)
			}
			var fromPush, fromPublish []time.Duration
			var seq int64
			for b.Loop() {
				t0 := time.Now()
				lines, err := bb.src.Append(b.Context(), job, appendOf("s", seq, []stroem.PushLine{{TS: t0, Text: "hello"}}))
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				bb.hub.Publish(job, lines)
				got := <-received
				fromPush = append(fromPush, got.Sub(t0))
				fromPublish = append(fromPublish, got.Sub(t1))
				seq++
			}
			pct := func(d []time.Duration, p float64) float64 {
				slices.Sort(d)
				return float64(d[int(float64(len(d)-1)*p)].Microseconds()) / 1000
			}
			b.ReportMetric(pct(fromPublish, 0.5), "publish→client-p50-ms")
			b.ReportMetric(pct(fromPublish, 0.99), "publish→client-p99-ms")
			b.ReportMetric(pct(fromPush, 0.5), "push→client-p50-ms")
			b.ReportMetric(pct(fromPush, 0.99), "push→client-p99-ms")
		})
	}
}
