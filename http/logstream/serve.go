package logstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/apierror"
)

// errStop ends a replay early (client gone, hub closing).
var errStop = errors.New("stream stopped")

// ServeHTTP serves the job's log stream (GET /api/jobs/{id}/logs/stream).
// `Last-Event-ID` (header, else `?last_event_id=`) resumes after that seq;
// `?step=` keeps one step's lines (a for_each step's are its instances').
// Unknown job → 404, bad Last-Event-ID → 400, both as {"error": "…"}. A
// finished job gets its stored lines and `event: done` at once; a running
// one gets stored lines, then live lines, then `event: done` when Finish is
// called. Only the calling goroutine
// writes to w, and nothing does after ServeHTTP returns.
//
// Do not put this route behind an http.Server WriteTimeout or a timeout
// middleware: the hub sets its own per-write deadline.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request, jobID string) {
	after, err := lastEventID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	step := r.URL.Query().Get("step")

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.fail(w, r, errShuttingDown)
		return
	}
	h.active.Add(1)
	h.mu.Unlock()
	defer h.active.Done()

	status, err := h.src.JobStatus(r.Context(), jobID)
	if err != nil {
		h.fail(w, r, sourceError(jobID, err))
		return
	}
	if status.Terminal() {
		h.replayDone(r.Context(), newEventWriter(w, h.opts.WriteTimeout), jobID, after, step, status)
		return
	}

	sub, finished, ok := h.subscribe(jobID, step)
	if !ok {
		h.fail(w, r, errShuttingDown)
		return
	}
	if finished != nil {
		h.replayDone(r.Context(), newEventWriter(w, h.opts.WriteTimeout), jobID, after, step, *finished)
		return
	}
	defer h.unsubscribe(sub)

	// Register with the r3labs stream. Its ServeHTTP writes into sub's
	// queue, never to the network, so it cannot be slowed by this client.
	ctx, cancel := context.WithCancel(r.Context())
	sub.cancel = cancel
	live := (&http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/", RawQuery: "stream=" + url.QueryEscape(sub.key)}, Header: http.Header{}}).WithContext(ctx)
	liveDone := make(chan struct{})
	go func() {
		defer close(liveDone)
		h.srv.ServeHTTP(&capture{sub: sub, hdr: http.Header{}}, live)
	}()
	defer func() { cancel(); <-liveDone }() // before unsubscribe (defers run in reverse)

	select {
	case <-sub.registered:
	case <-liveDone:
		h.fail(w, r, fmt.Errorf("job %s: log stream registration failed", jobID))
		return
	case <-r.Context().Done():
		return
	case <-h.closing:
		h.fail(w, r, errShuttingDown)
		return
	}

	// The job may have finished between the first check and the
	// registration, with its Finish coming before we were there to see it.
	if status, err = h.src.JobStatus(r.Context(), jobID); err != nil {
		h.fail(w, r, sourceError(jobID, err))
		return
	}
	ew := newEventWriter(w, h.opts.WriteTimeout)
	if status.Terminal() {
		h.replayDone(r.Context(), ew, jobID, after, step, status)
		return
	}
	if err := ew.start(); err != nil {
		return
	}
	// Replay everything stored after the client's position. Every line
	// stored before the registration is in it; every later one also comes
	// live, and is dropped there as already sent.
	pos, err := h.catchUp(r.Context(), ew, jobID, after, step)
	if err == nil {
		err = ew.flush()
	}
	if err != nil {
		h.logEnd(jobID, err)
		return
	}

	keepAlive := time.NewTicker(h.opts.KeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-sub.wake:
		case <-keepAlive.C:
			if status, err := h.src.JobStatus(r.Context(), jobID); err == nil && status.Terminal() {
				sub.finish(status) // a Finish that never came
				break
			}
			if err := ew.comment("keep-alive"); err != nil {
				h.logEnd(jobID, err)
				return
			}
			continue
		case <-r.Context().Done():
			return
		case <-h.closing:
			_ = ew.flush()
			return
		}
		batches, overflow, finished := sub.take()
		wrote := len(batches) > 0
		for _, data := range batches {
			if pos, err = h.writeLive(r.Context(), ew, jobID, step, data, pos); err != nil {
				h.logEnd(jobID, err)
				return
			}
		}
		if finished != nil {
			if _, err = h.catchUp(r.Context(), ew, jobID, pos, step); err == nil {
				err = ew.done(*finished)
			}
			h.logEnd(jobID, err)
			return
		}
		if err := ew.flush(); err != nil {
			h.logEnd(jobID, err)
			return
		}
		if overflow {
			h.nSlowDropped.Add(1)
			h.log.Info("log stream subscriber too slow, disconnected; it can resume by Last-Event-ID", "job_id", jobID, "last_seq", pos)
			// Abort rather than end the response: a cleanly ended response
			// would leave the connection open for keep-alive, and the client
			// that stopped reading would hold it forever.
			panic(http.ErrAbortHandler)
		}
		if wrote {
			keepAlive.Reset(h.opts.KeepAlive)
		}
	}
}

func (h *Hub) logEnd(jobID string, err error) {
	if err != nil && !errors.Is(err, errStop) {
		h.log.Info("log stream ended", "job_id", jobID, "err", err)
	}
}

// writeLive writes the lines of one live event that the client has not
// had, filling from the Source any hole before them, and returns the new
// position (every line of the job up to it has been handled).
func (h *Hub) writeLive(ctx context.Context, ew *eventWriter, jobID, step string, data []byte, pos int64) (int64, error) {
	for len(data) > 0 {
		l, rest, ok := nextRecord(data)
		if !ok {
			h.log.Error("malformed live log event", "job_id", jobID)
			return pos, nil
		}
		data = rest
		if l.seq <= pos {
			h.nLiveDuplicates.Add(1)
			continue // replayed already, or filled from the store
		}
		if l.seq > pos+1 {
			h.nGapFills.Add(1)
			var err error
			if pos, err = h.catchUp(ctx, ew, jobID, pos, step); err != nil {
				return pos, err
			}
			// Every line before this one was stored before it: the read
			// had the step's among them.
			pos = max(pos, l.seq-1)
			if l.seq <= pos {
				continue
			}
		}
		if stroem.InStep(l.step, step) {
			ew.frame(l.seq, l.json)
		}
		pos = l.seq
	}
	return pos, ew.maybeWrite()
}

// catchUp writes the stored lines of step (all steps when empty; a for_each
// step's are its instances', stroem.InStep) with seq > after and returns the
// highest seq written, at least after. It reads the step's lines alone
// (the Source's step filter), so the job's other lines after it may be
// unread: the first live line after them looks like a hole, and its fill
// reads the step's lines again (writeLive).
func (h *Hub) catchUp(ctx context.Context, ew *eventWriter, jobID string, after int64, step string) (int64, error) {
	pos := after
	err := h.scan(jobID, after, step, func(l stroem.LogLine) error {
		if err := h.stopped(ctx); err != nil {
			return err
		}
		if err := ew.line(l); err != nil {
			return err
		}
		pos = max(pos, l.Seq)
		return nil
	})
	return pos, err
}

// replayDone serves a finished job: the stored lines of step (the Source
// reads a for_each step's instances' through the store's indexes, not the
// whole job's log), then done.
func (h *Hub) replayDone(ctx context.Context, ew *eventWriter, jobID string, after int64, step string, status stroem.JobStatus) {
	err := ew.start()
	if err == nil {
		err = h.scan(jobID, after, step, func(l stroem.LogLine) error {
			if err := h.stopped(ctx); err != nil {
				return err
			}
			return ew.line(l)
		})
	}
	if err == nil {
		err = ew.done(status)
	}
	h.logEnd(jobID, err)
}

func (h *Hub) stopped(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return errStop
	case <-h.closing:
		return errStop
	default:
		return nil
	}
}

func (h *Hub) scan(jobID string, after int64, step string, fn func(stroem.LogLine) error) error {
	if sc, ok := h.src.(Scanner); ok {
		return sc.Scan(jobID, after, step, fn)
	}
	lines, err := h.src.Read(jobID, after, step)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

// lastEventID reads the client's position: the Last-Event-ID header (sent
// by EventSource on reconnect), else ?last_event_id=. It is validated here
// so r3labs never sees it.
func lastEventID(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	name := "Last-Event-ID"
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
		name = "last_event_id"
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return 0, stroem.Errorf(stroem.CodeInvalid, "invalid %s %q: want a line's sequence number (a non-negative integer)", name, stroem.SanitizeText(v))
	}
	return n, nil
}

// errShuttingDown answers a stream requested while the hub closes.
var errShuttingDown = stroem.Errorf(stroem.CodeUnavailable, "server is shutting down")

// sourceError is the error of the job-status lookup as the client sees it:
// an unknown job is named; every other error keeps its code.
func sourceError(jobID string, err error) error {
	if stroem.ErrorCode(err) == stroem.CodeNotFound {
		return stroem.Errorf(stroem.CodeNotFound, "job %s not found", jobID)
	}
	return err
}

// fail answers a stream that cannot start through the API's one error
// mapping (apierror), uncached.
func (h *Hub) fail(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("Cache-Control", "no-cache")
	apierror.Write(w, r, h.log, err)
}

// subscriber is one client of a running job's stream.
type subscriber struct {
	key, jobID, step string
	limit            int
	registered       chan struct{} // closed at r3labs' first Flush: we are in its stream
	wake             chan struct{} // capacity 1: "look at the queue"
	cancel           context.CancelFunc

	mu       sync.Mutex
	queue    [][]byte // live event data, oldest first
	queued   int      // bytes in queue
	overflow bool
	finished *stroem.JobStatus
}

func (s *subscriber) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// enqueue is called from r3labs' goroutine; it never blocks on the client.
func (s *subscriber) enqueue(data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overflow || s.finished != nil {
		return // finished: the final catch-up reads the store
	}
	if s.queued > 0 && s.queued+len(data) > s.limit {
		s.overflow = true
		s.queue, s.queued = nil, 0
		s.cancel() // leave the r3labs stream now; the client is dropped
		s.notify()
		return
	}
	s.queue = append(s.queue, data)
	s.queued += len(data)
	s.notify()
}

func (s *subscriber) finish(status stroem.JobStatus) {
	s.mu.Lock()
	if s.finished == nil {
		s.finished = &status
	}
	s.mu.Unlock()
	s.notify()
}

func (s *subscriber) take() (queue [][]byte, overflow bool, finished *stroem.JobStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	queue, s.queue, s.queued = s.queue, nil, 0
	return queue, s.overflow, s.finished
}

// capture is the http.ResponseWriter r3labs writes a subscriber's events
// to. r3labs writes each event with a few Writes and then Flushes, so one
// Flush is one event; its first Flush comes right after the subscriber
// joined the stream.
type capture struct {
	sub     *subscriber
	hdr     http.Header
	buf     []byte
	started bool
}

func (c *capture) Header() http.Header { return c.hdr }
func (c *capture) WriteHeader(int)     {}
func (c *capture) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *capture) Flush() {
	if !c.started {
		c.started = true
		c.buf = c.buf[:0]
		close(c.sub.registered)
		return
	}
	buf := c.buf
	c.buf = nil // the queue keeps buf's data
	// r3labs writes "id: <id>\ndata: <data>\n\n".
	const dataTag = "\ndata: "
	i := bytes.Index(buf, []byte(dataTag))
	if !bytes.HasPrefix(buf, []byte("id: ")) || i < 0 || !bytes.HasSuffix(buf, []byte("\n\n")) || i+len(dataTag) > len(buf)-2 {
		return // not one of ours; the hole it leaves is filled from the store
	}
	c.sub.enqueue(buf[i+len(dataTag) : len(buf)-2])
}

// eventWriter formats SSE frames for one client and writes them with a
// deadline, so a client that stops reading is dropped instead of holding
// the goroutine forever.
type eventWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
	jbuf    []byte
}

func newEventWriter(w http.ResponseWriter, timeout time.Duration) *eventWriter {
	return &eventWriter{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

func (ew *eventWriter) start() error {
	h := ew.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	ew.deadline()
	ew.w.WriteHeader(http.StatusOK)
	return ew.rc.Flush()
}

// line queues one stored line.
func (ew *eventWriter) line(l stroem.LogLine) error {
	ew.jbuf = appendLineJSON(ew.jbuf[:0], &l)
	ew.frame(l.Seq, ew.jbuf[:len(ew.jbuf)-1]) // without its newline
	return ew.maybeWrite()
}

// frame queues "id: <seq>\ndata: <json>\n\n".
func (ew *eventWriter) frame(seq int64, jsonLine []byte) {
	ew.buf = append(ew.buf, "id: "...)
	ew.buf = strconv.AppendInt(ew.buf, seq, 10)
	ew.buf = append(ew.buf, "\ndata: "...)
	ew.buf = append(ew.buf, jsonLine...)
	ew.buf = append(ew.buf, "\n\n"...)
}

func (ew *eventWriter) done(status stroem.JobStatus) error {
	ew.buf = append(ew.buf, "event: done\ndata: "...)
	data, _ := json.Marshal(map[string]stroem.JobStatus{"status": status})
	ew.buf = append(ew.buf, data...)
	ew.buf = append(ew.buf, "\n\n"...)
	return ew.flush()
}

func (ew *eventWriter) comment(text string) error {
	ew.buf = append(ew.buf, ": "...)
	ew.buf = append(ew.buf, text...)
	ew.buf = append(ew.buf, "\n\n"...)
	return ew.flush()
}

// maybeWrite writes the queued frames once they fill a network-sized chunk.
func (ew *eventWriter) maybeWrite() error {
	if len(ew.buf) < 32<<10 {
		return nil
	}
	return ew.write()
}

func (ew *eventWriter) write() error {
	if len(ew.buf) == 0 {
		return nil
	}
	ew.deadline()
	return ew.writeBuf()
}

func (ew *eventWriter) writeBuf() error {
	if len(ew.buf) == 0 {
		return nil
	}
	_, err := ew.w.Write(ew.buf)
	ew.buf = ew.buf[:0]
	return err
}

func (ew *eventWriter) flush() error {
	ew.deadline()
	if err := ew.writeBuf(); err != nil {
		return err
	}
	return ew.rc.Flush()
}

func (ew *eventWriter) deadline() {
	// ErrNotSupported for writers without deadlines (tests' recorders);
	// those cannot stall anyway.
	_ = ew.rc.SetWriteDeadline(time.Now().Add(ew.timeout))
}
