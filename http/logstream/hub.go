package logstream

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/r3labs/sse/v2"

	"github.com/stroem/stroem"
)

// Source is where the hub reads stored lines and job status from.
type Source interface {
	// Read returns the stored lines of the job with seq > afterSeq, of step
	// only when step is not empty (its own and, for a for_each step, its
	// instances', stroem.InStep), in seq order; none for a job without
	// logs. A line with seq n must be readable once any line with a higher
	// seq is.
	Read(jobID string, afterSeq int64, step string) ([]stroem.LogLine, error)
	// JobStatus returns the job's stored status, or an error coded
	// stroem.CodeNotFound when there is no such job.
	JobStatus(ctx context.Context, jobID string) (stroem.JobStatus, error)
}

// Scanner is implemented by Sources that can stream a log without holding it
// in memory (the stores' LogScan does); the hub then replays big logs line by
// line. Its step keeps the lines Read's does.
type Scanner interface {
	Scan(jobID string, afterSeq int64, step string, fn func(stroem.LogLine) error) error
}

// Options tunes a Hub. The zero value gives the defaults.
type Options struct {
	// KeepAlive is the interval of `: keep-alive` comments on an idle stream.
	// The job's status is re-checked at the same interval, so a subscriber
	// still ends if a Finish was missed. Default 15 s.
	KeepAlive time.Duration
	// WriteTimeout bounds each write to a client; a client that does not take
	// the data in time is disconnected. Default 10 s.
	WriteTimeout time.Duration
	// BufferBytes bounds the live data queued for one subscriber; a
	// subscriber that falls further behind is disconnected. Default 1 MiB.
	BufferBytes int
	// ReorderWait is how long Publish holds lines that arrive ahead of an
	// earlier seq of the same job (two pushes acknowledged at once) before
	// sending them anyway. Default 50 ms.
	ReorderWait time.Duration
	// StreamBuffer is the r3labs per-stream event buffer. Default 1024.
	StreamBuffer int
}

func (o Options) withDefaults() Options {
	if o.KeepAlive <= 0 {
		o.KeepAlive = 15 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.BufferBytes <= 0 {
		o.BufferBytes = 1 << 20
	}
	if o.ReorderWait <= 0 {
		o.ReorderWait = 50 * time.Millisecond
	}
	if o.StreamBuffer <= 0 {
		o.StreamBuffer = 1024
	}
	return o
}

// maxHeldLines bounds the lines one job's Publish keeps while waiting for an
// earlier seq; beyond it they are dropped and subscribers read them from the
// Source when they notice the hole.
const maxHeldLines = 1 << 16

// maxEventBytes splits a big push into several live events, so no subscriber
// queue has to take one huge event (each subscriber copies the events it
// gets) and a fast subscriber is never dropped for a single large push.
const maxEventBytes = 64 << 10

// Hub fans a job's log lines out to its SSE subscribers. It is safe for
// concurrent use.
type Hub struct {
	src  Source
	log  *slog.Logger
	opts Options
	srv  *sse.Server

	mu        sync.Mutex
	closed    bool
	jobs      map[string]*jobEntry // jobs with subscribers, by lower-case id
	closing   chan struct{}
	active    sync.WaitGroup // ServeHTTP calls in progress
	closeOnce sync.Once

	nSlowDropped, nGapFills, nLiveDuplicates atomic.Int64
}

// Stats counts what the hub did since New, for tests and metrics.
type Stats struct {
	// SlowDropped counts subscribers disconnected because their queue
	// overflowed.
	SlowDropped int64
	// GapFills counts live lines that arrived with a hole before them and
	// made a subscriber read the hole from the Source. A step's subscriber
	// reads only the step's lines, so the other steps' lines stored before
	// its first live line are such a hole too.
	GapFills int64
	// LiveDuplicates counts live lines a subscriber dropped because its
	// replay (or a gap fill) had already sent them: the replay/live overlap.
	LiveDuplicates int64
}

// Stats returns the counters.
func (h *Hub) Stats() Stats {
	return Stats{SlowDropped: h.nSlowDropped.Load(), GapFills: h.nGapFills.Load(), LiveDuplicates: h.nLiveDuplicates.Load()}
}

// New returns a hub reading history and status from src.
func New(src Source, log *slog.Logger) *Hub {
	return NewWithOptions(src, log, Options{})
}

// NewWithOptions is New with tuning.
func NewWithOptions(src Source, log *slog.Logger, opts Options) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	srv := sse.New()
	srv.AutoReplay = false // history comes from the Source, never from memory
	srv.AutoStream = false // streams exist exactly while a job has subscribers
	srv.BufferSize = opts.StreamBuffer
	return &Hub{
		src:     src,
		log:     log,
		opts:    opts,
		srv:     srv,
		jobs:    make(map[string]*jobEntry),
		closing: make(chan struct{}),
	}
}

// Close ends every subscription (server shutdown) and waits until every
// ServeHTTP call has returned; later ServeHTTP calls answer 503. Call it
// before http.Server.Shutdown, which would otherwise wait for the streams
// forever. Safe to call more than once.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		close(h.closing)
		h.mu.Unlock()
		h.active.Wait()
		h.srv.Close() // no subscriber is left, so no r3labs goroutine leaks
	})
}

// jobEntry is a job that has subscribers.
type jobEntry struct {
	key string // lower-case job id; also the r3labs stream id

	// Guarded by Hub.mu.
	subs     map[*subscriber]struct{}
	finished *stroem.JobStatus

	// Guarded by mu: the ordering of live events.
	mu      sync.Mutex
	removed bool
	next    int64                      // seq expected next; 0 = not known yet
	held    map[int64][]stroem.LogLine // batches waiting for an earlier seq, by first seq
	nHeld   int
	timer   *time.Timer
	encBuf  []byte
	// Lines stored by other servers (see Wake): seen is the highest seq
	// given to Publish, want the highest another server announced, and
	// fetching is set while a goroutine reads the difference.
	seen     int64
	want     int64
	fetching bool
}

func jobKey(jobID string) string { return strings.ToLower(jobID) }

// Publish sends lines (as returned by the log store's Append: consecutive
// seqs, already durable) to the job's live subscribers. It never waits for a
// subscriber. Batches published out of seq order are put back in order.
func (h *Hub) Publish(jobID string, lines []stroem.LogLine) {
	if len(lines) == 0 {
		return
	}
	h.mu.Lock()
	e := h.jobs[jobKey(jobID)]
	h.mu.Unlock()
	if e == nil {
		return // nobody is watching; later subscribers replay from the store
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return
	}
	e.seen = max(e.seen, lines[len(lines)-1].Seq)
	if e.next != 0 {
		i := 0
		for i < len(lines) && lines[i].Seq < e.next {
			i++ // already sent (or given up on and left to the store)
		}
		if lines = lines[i:]; len(lines) == 0 {
			return
		}
		if lines[0].Seq > e.next {
			h.hold(e, lines)
			return
		}
	} else if len(e.held) > 0 {
		h.hold(e, lines) // r3labs was full; keep the order
		return
	}
	if n := h.emit(e, lines); n < len(lines) {
		h.hold(e, lines[n:])
		return
	}
	h.drainHeld(e)
}

// hold keeps lines until the seqs before them are published or ReorderWait
// passes. Callers hold e.mu.
func (h *Hub) hold(e *jobEntry, lines []stroem.LogLine) {
	if e.nHeld+len(lines) > maxHeldLines {
		h.log.Warn("live log lines dropped: publish backlog too long; subscribers re-read them from the store", "job_id", e.key, "lines", e.nHeld+len(lines))
		clear(e.held)
		e.nHeld = 0
		e.next = 0
		return
	}
	if e.held == nil {
		e.held = make(map[int64][]stroem.LogLine)
	}
	e.held[lines[0].Seq] = lines
	e.nHeld += len(lines)
	if e.timer == nil {
		e.timer = time.AfterFunc(h.opts.ReorderWait, func() { h.flushHeld(e) })
	}
}

// firstHeld is the lowest seq of the held batches (e.held is not empty).
// Callers hold e.mu.
func (e *jobEntry) firstHeld() int64 {
	first := int64(-1)
	for k := range e.held {
		if first < 0 || k < first {
			first = k
		}
	}
	return first
}

// drainHeld publishes held batches that are now next in line. Callers hold
// e.mu.
func (h *Hub) drainHeld(e *jobEntry) {
	for len(e.held) > 0 {
		first := e.firstHeld()
		if first > e.next {
			return
		}
		lines := e.held[first]
		delete(e.held, first)
		e.nHeld -= len(lines)
		for len(lines) > 0 && lines[0].Seq < e.next {
			lines = lines[1:]
		}
		if n := h.emit(e, lines); n < len(lines) {
			lines = lines[n:]
			e.held[lines[0].Seq] = lines
			e.nHeld += len(lines)
			return
		}
	}
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
}

// flushHeld runs when held lines waited ReorderWait: the missing seqs are
// given up on (subscribers fill such holes from the store) and the held
// batches are published in order.
func (h *Hub) flushHeld(e *jobEntry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.timer = nil
	if e.removed {
		return
	}
	for len(e.held) > 0 {
		first := e.firstHeld()
		if first > e.next {
			e.next = first
		}
		before := len(e.held)
		h.drainHeld(e)
		if len(e.held) == before {
			break // r3labs is still full: try again later
		}
	}
	if len(e.held) > 0 && e.timer == nil {
		e.timer = time.AfterFunc(h.opts.ReorderWait, func() { h.flushHeld(e) })
	}
}

// emit hands lines to r3labs without blocking, as events of at most about
// maxEventBytes, and advances e.next past what r3labs took. It returns how
// many lines were taken (fewer when r3labs' buffer is full). Callers hold
// e.mu.
func (h *Hub) emit(e *jobEntry, lines []stroem.LogLine) int {
	sent := 0
	for sent < len(lines) {
		data := make([]byte, 0, min(maxEventBytes, 64+(len(lines)-sent)*160))
		n := 0
		for sent+n < len(lines) && (n == 0 || len(data) < maxEventBytes) {
			l := &lines[sent+n]
			e.encBuf = appendLineJSON(e.encBuf[:0], l)
			data = appendRecord(data, l.Seq, l.Step, e.encBuf)
			n++
		}
		ev := &sse.Event{ID: strconv.AppendInt(nil, lines[sent].Seq, 10), Data: data}
		if !h.srv.TryPublish(e.key, ev) {
			return sent
		}
		sent += n
		e.next = lines[sent-1].Seq + 1
	}
	return sent
}

// A live event's data is the batch's lines, each as
// "<seq> <len(step)> <step><LogLine JSON>\n". It is never empty (an empty
// event would disconnect every r3labs client) and is read only by our own
// capture writer, which splits events at r3labs' Flush calls, so any byte
// may appear in it.
func appendRecord(dst []byte, seq int64, step string, jsonLine []byte) []byte {
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(step)), 10)
	dst = append(dst, ' ')
	dst = append(dst, step...)
	dst = append(dst, jsonLine...) // ends with '\n'; JSON has no raw newline
	return dst
}

// liveLine is one decoded record; json aliases the event's data.
type liveLine struct {
	seq  int64
	step string
	json []byte // without the trailing '\n'
}

// nextRecord decodes the first record of data and returns the rest.
func nextRecord(data []byte) (liveLine, []byte, bool) {
	var l liveLine
	sp := bytes.IndexByte(data, ' ')
	if sp <= 0 {
		return l, nil, false
	}
	seq, err := strconv.ParseInt(string(data[:sp]), 10, 64)
	if err != nil {
		return l, nil, false
	}
	data = data[sp+1:]
	sp = bytes.IndexByte(data, ' ')
	if sp <= 0 {
		return l, nil, false
	}
	n, err := strconv.Atoi(string(data[:sp]))
	if err != nil || n < 0 || n > len(data)-sp-1 {
		return l, nil, false
	}
	data = data[sp+1:]
	l.seq, l.step = seq, string(data[:n])
	data = data[n:]
	nl := bytes.IndexByte(data, '\n')
	if nl <= 0 {
		return l, nil, false
	}
	l.json = data[:nl]
	return l, data[nl+1:], true
}

// Finish tells the job's subscribers that the job ended with status: each
// gets the lines stored but not yet sent, then `event: done`, and its
// connection ends; the job's r3labs stream is removed when the last one has
// left. Call it after the terminal status is stored.
func (h *Hub) Finish(jobID string, status stroem.JobStatus) {
	h.mu.Lock()
	e := h.jobs[jobKey(jobID)]
	if e == nil || e.finished != nil {
		h.mu.Unlock()
		return
	}
	e.finished = &status
	subs := make([]*subscriber, 0, len(e.subs))
	for s := range e.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.finish(status)
	}
}

// subscribe adds a subscriber to the job, creating its r3labs stream if it
// is the first. A job already finished yields its status instead.
func (h *Hub) subscribe(jobID, step string) (*subscriber, *stroem.JobStatus, bool) {
	key := jobKey(jobID)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, false
	}
	e := h.jobs[key]
	if e == nil {
		e = &jobEntry{key: key, subs: make(map[*subscriber]struct{})}
		h.jobs[key] = e
		h.srv.CreateStream(key)
	}
	if e.finished != nil {
		st := *e.finished
		return nil, &st, true
	}
	s := &subscriber{
		key:        key,
		jobID:      jobID,
		step:       step,
		limit:      h.opts.BufferBytes,
		registered: make(chan struct{}),
		wake:       make(chan struct{}, 1),
	}
	e.subs[s] = struct{}{}
	return s, nil, true
}

// unsubscribe removes s, whose r3labs subscription has ended; the last one
// out removes the job's stream. RemoveStream is safe then: r3labs leaks a
// goroutine per subscriber still registered when its stream is removed, and
// none is.
func (h *Hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.jobs[s.key]
	if e == nil {
		return
	}
	delete(e.subs, s)
	if len(e.subs) > 0 {
		return
	}
	delete(h.jobs, s.key)
	e.mu.Lock()
	e.removed = true
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.mu.Unlock()
	h.srv.RemoveStream(s.key)
}
