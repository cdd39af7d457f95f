package logstream

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stroem/stroem"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// source is the hub's Source backed by a real log store and a status map.
type source struct {
	*memLogs
	mu     sync.Mutex
	status map[string]stroem.JobStatus
	// statusHook, when set, answers JobStatus instead of the map.
	statusHook func(jobID string) (stroem.JobStatus, bool)
}

func (s *source) JobStatus(_ context.Context, jobID string) (stroem.JobStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.statusHook != nil {
		if st, ok := s.statusHook(jobID); ok {
			return st, nil
		}
	}
	st, ok := s.status[jobID]
	if !ok {
		return "", stroem.Errorf(stroem.CodeNotFound, "job %s not found", jobID)
	}
	return st, nil
}

func (s *source) setStatus(jobID string, st stroem.JobStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[jobID] = st
}

type testBundle struct {
	src    *source
	hub    *Hub
	server *httptest.Server
	client *http.Client
}

func setup(t testing.TB, opts Options) *testBundle {
	t.Helper()
	store := newMemLogs()
	src := &source{memLogs: store, status: map[string]stroem.JobStatus{}}
	hub := NewWithOptions(src, nil, opts)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/jobs/{id}/logs/stream", func(w http.ResponseWriter, r *http.Request) {
		hub.ServeHTTP(w, r, r.PathValue("id"))
	})
	server := httptest.NewServer(mux)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 0}}
	t.Cleanup(func() {
		hub.Close()
		hub.Close() // idempotent
		server.Close()
		client.CloseIdleConnections()
		require.NoError(t, store.Close())
	})
	return &testBundle{src: src, hub: hub, server: server, client: client}
}

var jobCounter atomic.Int64

func newJob(b *testBundle, st stroem.JobStatus) string {
	id := fmt.Sprintf("00000000-0000-4000-8000-%012x", jobCounter.Add(1))
	b.src.setStatus(id, st)
	return id
}

// push stores lines like the worker API does, then publishes them.
func (b *testBundle) push(t testing.TB, job, step string, offset int64, texts ...string) []stroem.LogLine {
	t.Helper()
	pl := make([]stroem.PushLine, len(texts))
	for i, tx := range texts {
		pl[i] = stroem.PushLine{TS: time.Now().UTC(), Stream: stroem.Stdout, Text: tx}
	}
	lines, err := b.src.Append(context.Background(), job, logAppend{Step: step, Attempt: 1, Offset: offset, Lines: pl})
	require.NoError(t, err)
	b.hub.Publish(job, lines)
	return lines
}

func appendOf(step string, offset int64, pl []stroem.PushLine) logAppend {
	return logAppend{Step: step, Attempt: 1, Offset: offset, Lines: pl}
}

func (b *testBundle) url(job, query string) string {
	u := b.server.URL + "/api/jobs/" + job + "/logs/stream"
	if query != "" {
		u += "?" + query
	}
	return u
}

func (b *testBundle) get(t testing.TB, job, query string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.url(job, query), nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// subscribers returns how many subscribers the hub has for the job.
func (b *testBundle) subscribers(job string) int {
	b.hub.mu.Lock()
	defer b.hub.mu.Unlock()
	if e := b.hub.jobs[jobKey(job)]; e != nil {
		return len(e.subs)
	}
	return 0
}

type sseEvent struct {
	id, name, data, comment string
}

// readSSE parses an event stream, calling fn per event (comments are
// events with only comment set) until fn returns false or the stream ends.
func readSSE(r io.Reader, fn func(sseEvent) bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var ev sseEvent
	any := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if any && !fn(ev) {
				return nil
			}
			ev, any = sseEvent{}, false
		case strings.HasPrefix(line, ":"):
			ev.comment, any = strings.TrimSpace(line[1:]), true
		case strings.HasPrefix(line, "id: "):
			ev.id, any = line[4:], true
		case strings.HasPrefix(line, "event: "):
			ev.name, any = line[7:], true
		case strings.HasPrefix(line, "data: "):
			ev.data, any = ev.data+line[6:], true
		default:
			return fmt.Errorf("unexpected SSE line %q", line)
		}
	}
}

// result is what a client saw on one connection.
type result struct {
	lines  []stroem.LogLine
	done   string // status in the done event, "" if none
	err    error  // how the stream ended (io.EOF after done is normal)
	events int
}

// collect reads a stream to its end, checking each line event's framing.
func collect(resp *http.Response) result { return collectProgress(resp, nil) }

// collectProgress is collect that also stores the sequence number of every
// line it receives in last (when not nil), for a test to wait on.
func collectProgress(resp *http.Response, last *atomic.Int64) result {
	var res result
	res.err = readSSE(resp.Body, func(ev sseEvent) bool {
		res.events++
		switch {
		case ev.comment != "":
		case ev.name == "done":
			var d struct{ Status string }
			if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
				res.err = err
				return false
			}
			res.done = d.Status
		default:
			var l stroem.LogLine
			if err := json.Unmarshal([]byte(ev.data), &l); err != nil {
				res.err = fmt.Errorf("event data %q: %w", ev.data, err)
				return false
			}
			if strconv.FormatInt(l.Seq, 10) != ev.id {
				res.err = fmt.Errorf("event id %q for line seq %d", ev.id, l.Seq)
				return false
			}
			res.lines = append(res.lines, l)
			if last != nil {
				last.Store(l.Seq)
			}
		}
		return true
	})
	return res
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func lineSeqs(lines []stroem.LogLine) []int64 {
	var out []int64
	for _, l := range lines {
		out = append(out, l.Seq)
	}
	return out
}

func TestUnknownJobIs404(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := "00000000-0000-4000-8000-ffffffffffff"
	resp := b.get(t, job, "", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var body map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, map[string]string{"error": "job " + job + " not found"}, body)
}

func TestBadLastEventIDIs400(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJob(b, stroem.JobRunning)
	for _, c := range []struct {
		query string
		hdr   map[string]string
	}{
		{hdr: map[string]string{"Last-Event-ID": "abc"}},
		{hdr: map[string]string{"Last-Event-ID": "-1"}},
		{hdr: map[string]string{"Last-Event-ID": "1.5"}},
		{query: "last_event_id=x"},
		{query: "last_event_id=99999999999999999999999"},
	} {
		resp := b.get(t, job, c.query, c.hdr)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%+v", c)
		var body map[string]string
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		require.Contains(t, body["error"], "invalid")
	}
	require.Zero(t, b.subscribers(job), "a rejected request never subscribes")
}

func TestFinishedJobReplaysThenDone(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJob(b, stroem.JobRunning)
	b.push(t, job, "build", 0, "b1", "b2")
	b.push(t, job, "test", 0, "t1")
	b.push(t, job, "build", 2, "b3")
	b.src.setStatus(job, stroem.JobFailed)

	resp := b.get(t, job, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	require.Equal(t, "no", resp.Header.Get("X-Accel-Buffering"))
	res := collect(resp)
	require.ErrorIs(t, res.err, io.EOF, "the server closes the stream after done")
	require.Equal(t, []int64{1, 2, 3, 4}, lineSeqs(res.lines))
	require.Equal(t, "failed", res.done)
	require.Equal(t, "b1", res.lines[0].Text)
	require.Equal(t, "build", res.lines[0].Step)

	res = collect(b.get(t, job, "step=build", map[string]string{"Last-Event-ID": "1"}))
	require.Equal(t, []int64{2, 4}, lineSeqs(res.lines))
	require.Equal(t, "failed", res.done)

	res = collect(b.get(t, job, "last_event_id=4", nil))
	require.Empty(t, res.lines)
	require.Equal(t, "failed", res.done)

	// A finished job with no logs at all.
	empty := newJob(b, stroem.JobCompleted)
	res = collect(b.get(t, empty, "", nil))
	require.Empty(t, res.lines)
	require.Equal(t, "completed", res.done)
}

func TestLiveThenDone(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJob(b, stroem.JobRunning)
	b.push(t, job, "s", 0, "one", "two")

	resp := b.get(t, job, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, "no", resp.Header.Get("X-Accel-Buffering"))
	got := make(chan result, 1)
	go func() { got <- collect(resp) }()
	require.Eventually(t, func() bool { return b.subscribers(job) == 1 }, 5*time.Second, time.Millisecond)
	b.push(t, job, "s", 2, "three")
	b.push(t, job, "s", 3, "four", "five")
	b.src.setStatus(job, stroem.JobCompleted)
	b.hub.Finish(job, stroem.JobCompleted)
	res := <-got
	require.ErrorIs(t, res.err, io.EOF)
	require.Equal(t, seqRange(1, 5), lineSeqs(res.lines))
	require.Equal(t, []string{"one", "two", "three", "four", "five"}, []string{res.lines[0].Text, res.lines[1].Text, res.lines[2].Text, res.lines[3].Text, res.lines[4].Text})
	require.Equal(t, "completed", res.done)
	require.Eventually(t, func() bool { return !b.hub.srv.StreamExists(jobKey(job)) }, 5*time.Second, time.Millisecond, "the stream is removed after the last subscriber left")
}

func TestResumeFromEveryPosition(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJob(b, stroem.JobRunning)
	const stored, live = 12, 6
	for i := range stored {
		b.push(t, job, []string{"a", "b"}[i%2], int64(i/2), fmt.Sprint("stored ", i+1))
	}
	// One client per possible position, half by header, half by query.
	results := make([]chan result, stored+1)
	for k := range stored + 1 {
		var resp *http.Response
		if k%2 == 0 {
			resp = b.get(t, job, "", map[string]string{"Last-Event-ID": strconv.Itoa(k)})
		} else {
			resp = b.get(t, job, "last_event_id="+strconv.Itoa(k), nil)
		}
		require.Equal(t, http.StatusOK, resp.StatusCode)
		results[k] = make(chan result, 1)
		go func() { results[k] <- collect(resp) }()
	}
	require.Eventually(t, func() bool { return b.subscribers(job) == stored+1 }, 5*time.Second, time.Millisecond)
	for i := range live {
		b.push(t, job, "a", int64(stored/2+i), fmt.Sprint("live ", i+1))
	}
	b.src.setStatus(job, stroem.JobCompleted)
	b.hub.Finish(job, stroem.JobCompleted)
	for k := range stored + 1 {
		res := <-results[k]
		require.Equal(t, seqRange(int64(k)+1, stored+live), lineSeqs(res.lines), "resume after %d", k)
		require.Equal(t, "completed", res.done)
	}
	// The same after the job finished.
	for k := range stored + live + 1 {
		res := collect(b.get(t, job, "", map[string]string{"Last-Event-ID": strconv.Itoa(k)}))
		require.Equal(t, seqRange(int64(k)+1, stored+live), lineSeqs(res.lines), "resume after %d (finished)", k)
		require.Equal(t, "completed", res.done)
	}
}

// TestReplayLiveSwitch is the classic bug: lines published while clients
// connect must reach each client exactly once, in order, whatever moment
// the client's replay ends and its live tail begins.
func TestReplayLiveSwitch(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	const iterations, clients, pushers, pushesEach = 15, 8, 3, 30
	for it := range iterations {
		job := newJob(b, stroem.JobRunning)
		var wg sync.WaitGroup
		var published atomic.Int64
		for p := range pushers {
			wg.Go(func() {
				for i := range pushesEach {
					lines := b.push(t, job, fmt.Sprint("step", p), int64(i*2), fmt.Sprint(p, "-", i, "a"), fmt.Sprint(p, "-", i, "b"))
					published.Store(max(published.Load(), lines[len(lines)-1].Seq))
					if rand.IntN(3) == 0 {
						time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
					}
				}
			})
		}
		type conn struct {
			after int64
			res   chan result
		}
		conns := make([]conn, clients)
		for c := range conns {
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) // connect at random moments
			after := int64(0)
			if c%2 == 1 {
				after = rand.Int64N(published.Load() + 1)
			}
			resp := b.get(t, job, "", map[string]string{"Last-Event-ID": strconv.FormatInt(after, 10)})
			require.Equal(t, http.StatusOK, resp.StatusCode)
			conns[c] = conn{after: after, res: make(chan result, 1)}
			go func() { conns[c].res <- collect(resp) }()
		}
		wg.Wait()
		total := int64(pushers * pushesEach * 2)
		b.src.setStatus(job, stroem.JobCompleted)
		b.hub.Finish(job, stroem.JobCompleted)
		for c, cn := range conns {
			res := <-cn.res
			require.Equal(t, seqRange(cn.after+1, total), lineSeqs(res.lines), "iteration %d client %d after %d", it, c, cn.after)
			require.Equal(t, "completed", res.done)
		}
	}
	st := b.hub.Stats()
	t.Logf("live lines dropped as already replayed: %d, holes filled from the store: %d", st.LiveDuplicates, st.GapFills)
}

func TestStepFilter(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJob(b, stroem.JobRunning)
	b.push(t, job, "build", 0, "b1")
	b.push(t, job, "test", 0, "t1")
	resp := b.get(t, job, "step=test", nil)
	got := make(chan result, 1)
	go func() { got <- collect(resp) }()
	require.Eventually(t, func() bool { return b.subscribers(job) == 1 }, 5*time.Second, time.Millisecond)
	b.push(t, job, "build", 1, "b2")
	b.push(t, job, "test", 1, "t2", "t3")
	b.push(t, job, "build", 2, "b3")
	b.push(t, job, "test", 3, "t4")
	b.hub.Finish(job, stroem.JobCompleted)
	res := <-got
	require.Equal(t, []int64{2, 4, 5, 7}, lineSeqs(res.lines))
	for _, l := range res.lines {
		require.Equal(t, "test", l.Step)
	}
	require.Equal(t, "completed", res.done)
}

// A for_each step's lines are its instances' (deploy[0], …): stored, live
// and, for a finished job, replayed; another step's name with a bracket
// suffix is not one of its instances.
func TestStepFilterOfALoopStep(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJob(b, stroem.JobRunning)
	b.push(t, job, "deploy[0]", 0, "d0")
	b.push(t, job, "build", 0, "b1")
	resp := b.get(t, job, "step=deploy", nil)
	got := make(chan result, 1)
	go func() { got <- collect(resp) }()
	require.Eventually(t, func() bool { return b.subscribers(job) == 1 }, 5*time.Second, time.Millisecond)
	b.push(t, job, "deploy[1]", 0, "d1")
	b.push(t, job, "deployer[0]", 0, "x")
	b.push(t, job, "deploy[0]", 1, "d0b")
	b.hub.Finish(job, stroem.JobCompleted)
	res := <-got
	require.Equal(t, []int64{1, 3, 5}, lineSeqs(res.lines))
	require.Equal(t, "completed", res.done)

	b.src.setStatus(job, stroem.JobCompleted)
	res = collect(b.get(t, job, "step=deploy", nil))
	require.Equal(t, []int64{1, 3, 5}, lineSeqs(res.lines), "replayed")
	res = collect(b.get(t, job, "step=deploy", map[string]string{"Last-Event-ID": "3"}))
	require.Equal(t, []int64{5}, lineSeqs(res.lines))
	res = collect(b.get(t, job, "step=deploy%5B1%5D", nil))
	require.Equal(t, []int64{3}, lineSeqs(res.lines), "an instance's own")
	res = collect(b.get(t, job, "step=build", nil))
	require.Equal(t, []int64{2}, lineSeqs(res.lines))
}

// A step's stream reads the step's lines from the Source (its instances'
// too, through the store's indexes), never the whole job's log: not for
// its replay, its gap fills or a finished job's replay, even when the step
// has no line.
func TestStepStreamReadsOnlyTheStepsLines(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJob(b, stroem.JobRunning)
	b.push(t, job, "build", 0, "b0")
	b.push(t, job, "deploy[0]", 0, "d0")
	b.push(t, job, "build", 1, "b1")
	resp := b.get(t, job, "step=deploy", nil)
	got := make(chan result, 1)
	go func() { got <- collect(resp) }()
	require.Eventually(t, func() bool { return b.subscribers(job) == 1 }, 5*time.Second, time.Millisecond)
	b.push(t, job, "build", 2, "b2")
	b.push(t, job, "deploy[1]", 0, "d1")
	b.hub.Finish(job, stroem.JobCompleted)
	res := <-got
	require.Equal(t, []int64{2, 5}, lineSeqs(res.lines))
	require.Equal(t, "completed", res.done)
	require.NotContains(t, b.src.scanned(), "", "the running job's stream read only the step's lines")

	b.src.setStatus(job, stroem.JobCompleted)
	for _, step := range []string{"deploy", "quiet"} {
		collect(b.get(t, job, "step="+step, nil))
		require.Equal(t, []string{step}, b.src.scanned(), "the finished job's replay of %s", step)
	}
}

func TestOutOfOrderAndMissingPublishes(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{ReorderWait: 20 * time.Millisecond})
	job := newJob(b, stroem.JobRunning)
	resp := b.get(t, job, "", nil)
	got := make(chan result, 1)
	go func() { got <- collect(resp) }()
	require.Eventually(t, func() bool { return b.subscribers(job) == 1 }, 5*time.Second, time.Millisecond)

	store := func(off int64, texts ...string) []stroem.LogLine {
		pl := make([]stroem.PushLine, len(texts))
		for i, tx := range texts {
			pl[i] = stroem.PushLine{Text: tx}
		}
		lines, err := b.src.Append(context.Background(), job, logAppend{Step: "s", Attempt: 1, Offset: off, Lines: pl})
		require.NoError(t, err)
		return lines
	}
	first, second := store(0, "1", "2"), store(2, "3", "4")
	b.hub.Publish(job, second) // acknowledged together, published crossed
	b.hub.Publish(job, first)
	store(4, "5", "6") // stored but never published
	b.hub.Publish(job, store(6, "7", "8"))
	b.hub.Publish(job, first) // a duplicate publish
	b.hub.Finish(job, stroem.JobCompleted)
	res := <-got
	require.Equal(t, seqRange(1, 8), lineSeqs(res.lines))
	require.Equal(t, "completed", res.done)
}

func TestSanitizedAndMaskedLinesStreamSafely(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJob(b, stroem.JobRunning)
	resp := b.get(t, job, "", nil)
	got := make(chan result, 1)
	go func() { got <- collect(resp) }()
	require.Eventually(t, func() bool { return b.subscribers(job) == 1 }, 5*time.Second, time.Millisecond)
	lines, err := b.src.Append(context.Background(), job, logAppend{
		Step: "s", Attempt: 1,
		Mask:  func(s string) string { return strings.ReplaceAll(s, "hunter2", "***") },
		Lines: []stroem.PushLine{{Text: "nul\x00 bad\xff pw=hunter2"}, {Text: "line\nbreak\r and data: x\n\n"}, {Text: ""}},
	})
	require.NoError(t, err)
	b.hub.Publish(job, lines)
	b.hub.Finish(job, stroem.JobCompleted)
	res := <-got
	require.NoError(t, func() error {
		if res.err == io.EOF {
			return nil
		}
		return res.err
	}())
	require.Len(t, res.lines, 3)
	require.Equal(t, "nul\\0 bad\uFFFD pw=***", res.lines[0].Text)
	require.Equal(t, "line\nbreak\r and data: x\n\n", res.lines[1].Text, "newlines travel inside the JSON")
	require.Equal(t, "", res.lines[2].Text, "an empty line is still an event")
}

func TestKeepAliveAndMissedFinish(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{KeepAlive: 30 * time.Millisecond})
	job := newJob(b, stroem.JobRunning)
	resp := b.get(t, job, "", nil)
	comments := make(chan string, 100)
	done := make(chan string, 1)
	go func() {
		_ = readSSE(resp.Body, func(ev sseEvent) bool {
			if ev.comment != "" {
				select {
				case comments <- ev.comment:
				default:
				}
			}
			if ev.name == "done" {
				done <- ev.data
				return false
			}
			return true
		})
		close(done)
	}()
	require.Equal(t, "keep-alive", <-comments)
	require.Equal(t, "keep-alive", <-comments)
	// The job ends but Finish is never called: the periodic status check
	// still ends the stream.
	b.src.setStatus(job, stroem.JobCancelled)
	require.Equal(t, `{"status":"cancelled"}`, <-done)
}

func TestJobFinishedDuringRegistration(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJob(b, stroem.JobRunning)
	b.push(t, job, "s", 0, "a", "b")
	calls := 0
	// The first status check sees the job running; it finishes (and its
	// Finish finds no subscriber) before the stream registration.
	b.src.mu.Lock()
	b.src.statusHook = func(id string) (stroem.JobStatus, bool) {
		if id != job {
			return "", false
		}
		calls++
		if calls == 1 {
			return stroem.JobRunning, true
		}
		return stroem.JobCompleted, true
	}
	b.src.mu.Unlock()
	res := collect(b.get(t, job, "", nil))
	require.Equal(t, []int64{1, 2}, lineSeqs(res.lines))
	require.Equal(t, "completed", res.done)
	require.Eventually(t, func() bool { return b.subscribers(job) == 0 && !b.hub.srv.StreamExists(jobKey(job)) }, 5*time.Second, time.Millisecond)
}

func TestCloseEndsSubscriptions(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	jobs := []string{newJob(b, stroem.JobRunning), newJob(b, stroem.JobRunning)}
	var results []chan result
	for i := range 6 {
		resp := b.get(t, jobs[i%2], "", nil)
		ch := make(chan result, 1)
		go func() { ch <- collect(resp) }()
		results = append(results, ch)
	}
	require.Eventually(t, func() bool { return b.subscribers(jobs[0]) == 3 && b.subscribers(jobs[1]) == 3 }, 5*time.Second, time.Millisecond)
	b.hub.Close()
	for _, ch := range results {
		res := <-ch
		require.Empty(t, res.done, "shutdown is not the job's end")
		require.ErrorIs(t, res.err, io.EOF)
	}
	require.False(t, b.hub.srv.StreamExists(jobKey(jobs[0])))
	resp := b.get(t, jobs[0], "", nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	b.hub.Publish(jobs[0], []stroem.LogLine{{Seq: 1}}) // harmless after Close
	b.hub.Finish(jobs[0], stroem.JobCompleted)
}

func TestManySubscribersOneJob(t *testing.T) {
	b := setup(t, Options{})
	job := newJob(b, stroem.JobRunning)
	const clients, perPush = 200, 10
	pushes := 50
	if raceEnabled {
		pushes = 10 // the race detector makes 200 readers ~10x slower
	}
	b.push(t, job, "s", 0, "before 1", "before 2")
	results := make([]chan result, clients)
	for c := range clients {
		results[c] = make(chan result, 1)
		go func() {
			resp, err := b.client.Get(b.url(job, ""))
			if err != nil {
				results[c] <- result{err: err}
				return
			}
			defer resp.Body.Close()
			results[c] <- collect(resp)
		}()
	}
	require.Eventually(t, func() bool { return b.subscribers(job) == clients }, 30*time.Second, time.Millisecond)
	for p := range pushes {
		texts := make([]string, perPush)
		for i := range texts {
			texts[i] = fmt.Sprintf("push %d line %d", p, i)
		}
		b.push(t, job, "s", int64(2+p*perPush), texts...)
	}
	b.hub.Finish(job, stroem.JobCompleted)
	want := seqRange(1, int64(2+pushes*perPush))
	for c := range clients {
		res := <-results[c]
		require.Equal(t, want, lineSeqs(res.lines), "client %d", c)
		require.Equal(t, "completed", res.done)
	}
}

// TestStalledSubscriberIsDropped connects a raw TCP client that never reads.
// It must be disconnected while Publish keeps returning at once and the
// other subscribers keep receiving everything.
func TestStalledSubscriberIsDropped(t *testing.T) {
	b := setup(t, Options{BufferBytes: 256 << 10, WriteTimeout: 300 * time.Millisecond})
	job := newJob(b, stroem.JobRunning)

	raw, err := net.Dial("tcp", b.server.Listener.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	// A small receive buffer (not below the loopback MSS, or Linux stalls
	// the transfer) so the kernel holds little of what the server sends.
	require.NoError(t, raw.(*net.TCPConn).SetReadBuffer(128<<10))
	_, err = fmt.Fprintf(raw, "GET /api/jobs/%s/logs/stream HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n", job)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.subscribers(job) == 1 }, 5*time.Second, time.Millisecond)

	// The good client reads as fast as it can, but on a busy machine that
	// may be slower than this loop publishes: a client that falls a whole
	// queue behind is cut off by design (it would resume by Last-Event-ID).
	// So each push waits until the good client has received the one before:
	// it never lags by more than one push, whatever the machine's load,
	// while the stalled client only ever falls further behind.
	good := b.get(t, job, "", nil)
	read := &countingReader{r: good.Body}
	good.Body = read
	got := make(chan result, 1)
	var goodSeq atomic.Int64
	go func() { got <- collectProgress(good, &goodSeq) }()
	require.Eventually(t, func() bool { return b.subscribers(job) == 2 }, 5*time.Second, time.Millisecond)

	big := strings.Repeat("x", 4000)
	const pushes, perPush = 200, 10 // 8 MB, far more than socket buffers and the queue
	var slowest time.Duration
	var dropped bool
	for p := range pushes {
		// The good client keeps up (it is never more than two pushes
		// behind); only the stalled one falls behind.
		require.Eventually(t, func() bool { return read.n.Load() >= int64(max(p-2, 0)*perPush*len(big)) },
			10*time.Second, time.Millisecond)
		texts := make([]string, perPush)
		for i := range texts {
			texts[i] = big
		}
		pl := make([]stroem.PushLine, perPush)
		for i := range pl {
			pl[i] = stroem.PushLine{Text: texts[i]}
		}
		lines, err := b.src.Append(context.Background(), job, logAppend{Step: "s", Attempt: 1, Offset: int64(p * perPush), Lines: pl})
		require.NoError(t, err)
		start := time.Now()
		b.hub.Publish(job, lines)
		slowest = max(slowest, time.Since(start))
		dropped = dropped || b.subscribers(job) == 1
		last := lines[len(lines)-1].Seq
		require.Eventually(t, func() bool { return goodSeq.Load() >= last }, 10*time.Second, time.Millisecond,
			"the good client receives push %d", p)
	}
	require.Eventually(t, func() bool { return b.subscribers(job) == 1 }, 10*time.Second, 5*time.Millisecond, "the stalled client is dropped")
	t.Logf("slowest Publish %v; stalled client dropped while publishing: %v", slowest, dropped)

	b.hub.Finish(job, stroem.JobCompleted)
	res := <-got
	require.Equal(t, seqRange(1, pushes*perPush), lineSeqs(res.lines), "the good client got everything")
	require.Equal(t, "completed", res.done)

	// The stalled client's connection was closed: draining it ends.
	require.NoError(t, raw.SetReadDeadline(time.Now().Add(10*time.Second)))
	n, err := io.Copy(io.Discard, raw)
	require.NoError(t, err, "EOF after %d bytes, not a timeout", n)
	require.Less(t, n, int64(pushes*perPush*4000), "it did not get everything")
}

// TestBigPushAndResume sends pushes far bigger than one live event and than
// a subscriber's queue. A client that resumes by Last-Event-ID whenever it
// is cut off (as EventSource and the CLI do) still gets every line once, in
// order.
func TestBigPushAndResume(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{BufferBytes: 256 << 10})
	job := newJob(b, stroem.JobRunning)

	type outcome struct {
		seqs       []int64
		done       string
		reconnects int
		err        error
	}
	out := make(chan outcome, 1)
	var connected atomic.Bool
	go func() {
		var o outcome
		for o.done == "" && o.reconnects < 1000 {
			last := int64(0)
			if len(o.seqs) > 0 {
				last = o.seqs[len(o.seqs)-1]
			}
			req, _ := http.NewRequest(http.MethodGet, b.url(job, ""), nil)
			req.Header.Set("Last-Event-ID", strconv.FormatInt(last, 10))
			resp, err := b.client.Do(req)
			if err != nil {
				o.err = err
				break
			}
			connected.Store(true)
			res := collect(resp)
			resp.Body.Close()
			o.seqs = append(o.seqs, lineSeqs(res.lines)...)
			o.done = res.done
			if o.done == "" {
				o.reconnects++
			}
		}
		out <- o
	}()
	require.Eventually(t, func() bool { return connected.Load() && b.subscribers(job) == 1 }, 5*time.Second, time.Millisecond)

	text := strings.Repeat("y", 300)
	const pushes, perPush = 3, 3000 // 900 KB per push: many live events, more than a queue
	for p := range pushes {
		texts := make([]string, perPush)
		for i := range texts {
			texts[i] = text
		}
		b.push(t, job, "s", int64(p*perPush), texts...)
	}
	b.src.setStatus(job, stroem.JobCompleted)
	b.hub.Finish(job, stroem.JobCompleted)
	o := <-out
	require.NoError(t, o.err)
	require.Equal(t, seqRange(1, pushes*perPush), o.seqs)
	require.Equal(t, "completed", o.done)
	t.Logf("reconnects: %d", o.reconnects)
	require.Equal(t, int64(o.reconnects), b.hub.Stats().SlowDropped)
}

// readOnly hides the store's Scan, so the hub falls back to Read.
type readOnly struct{ Source }

func TestSourceWithoutScan(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJob(b, stroem.JobRunning)
	b.push(t, job, "a", 0, "1", "2")
	b.push(t, job, "b", 0, "3")
	b.src.setStatus(job, stroem.JobCompleted)
	hub := New(readOnly{b.src}, nil)
	defer hub.Close()
	rec := httptest.NewRecorder() // no write deadlines: the hub copes
	req := httptest.NewRequest(http.MethodGet, "/?step=a", nil)
	req.Header.Set("Last-Event-ID", "1")
	hub.ServeHTTP(rec, req, job)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "id: 2\ndata: "+mustJSON(t, b, job, 2)+"\n\nevent: done\ndata: {\"status\":\"completed\"}\n\n", rec.Body.String())
}

func mustJSON(t *testing.T, b *testBundle, job string, seq int64) string {
	t.Helper()
	lines, err := b.src.Read(job, seq-1, "")
	require.NoError(t, err)
	data, err := json.Marshal(lines[0])
	require.NoError(t, err)
	return string(data)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.ReadCloser
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }
