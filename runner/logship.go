package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

// lineOverhead approximates the bytes a line costs besides its text.
const lineOverhead = 64

// shipper pushes one attempt's log lines to the server as they come. A
// line that finds the shipper idle (no push for LogBatchDelay) is pushed at
// once; lines that come faster wait until LogBatchDelay after the previous
// push started, or until LogBatchLines are waiting, and go together. So a
// quiet step's lines arrive with the latency of one request, and a chatty
// step costs the server at most one push (one fsync) per LogBatchDelay.
//
// Lines wait in pending until they are taken into a batch; only then do they
// get their index within the attempt (the batch's Offset is the index of its
// first line). A batch that fails is retried unchanged, with the same
// Offset, until the server stores it, so the server's dedup by offset makes
// retries harmless. While a batch is being retried (the server is down), new
// lines keep arriving: when pending exceeds its bounds, the oldest pending
// lines are dropped and one marker line at the front says how many. Dropped
// lines never had an index, so the indices the server sees stay contiguous.
type shipper struct {
	w        *Worker
	ctx      context.Context // ends when the worker gives up reporting
	workerID string
	ref      stroem.StepRef
	stop     func(error) // cancels the step

	mu           sync.Mutex
	pending      []stroem.PushLine
	pendingBytes int
	marker       bool      // pending[0] is the drop marker
	dropped      int       // lines the marker stands for
	lastPush     time.Time // when the latest batch was taken
	next         int64     // index of the next line to be taken into a batch
	closed       bool
	stale        bool

	wake chan struct{}
}

func newShipper(w *Worker, ctx context.Context, workerID string, ref stroem.StepRef, stop func(error)) *shipper {
	return &shipper{w: w, ctx: ctx, workerID: workerID, ref: ref, stop: stop, wake: make(chan struct{}, 1)}
}

// add buffers one line; it never blocks on the network.
func (s *shipper) add(l stroem.PushLine) {
	s.mu.Lock()
	if s.stale || s.closed {
		s.mu.Unlock()
		return
	}
	s.pending = append(s.pending, l)
	s.pendingBytes += len(l.Text) + lineOverhead
	cfg := &s.w.cfg
	if len(s.pending) > cfg.LogBufferLines || s.pendingBytes > cfg.LogBufferBytes {
		s.dropOldest()
	}
	s.mu.Unlock()
	s.signal()
}

// dropOldest drops the oldest pending lines until pending is at 90% of its
// bounds (dropping in chunks keeps add O(1) amortised), keeping or creating
// the marker at the front. Called with mu held.
func (s *shipper) dropOldest() {
	cfg := &s.w.cfg
	maxLines, maxBytes := cfg.LogBufferLines*9/10, cfg.LogBufferBytes*9/10
	first := 0
	if s.marker {
		first = 1
	}
	i, lines, bytes := first, len(s.pending), s.pendingBytes
	for i < len(s.pending)-1 && (lines > maxLines || bytes > maxBytes) {
		bytes -= len(s.pending[i].Text) + lineOverhead
		lines--
		i++
	}
	n := i - first
	if n == 0 {
		return
	}
	s.dropped += n
	kept := make([]stroem.PushLine, 0, len(s.pending)-i+1)
	kept = append(kept, stroem.PushLine{
		TS:     time.Now().UTC(),
		Stream: stroem.Stderr,
		Text:   fmt.Sprintf("[stroem] %d log lines dropped: the worker's log buffer was full while the server could not be reached", s.dropped),
	})
	s.pending = append(kept, s.pending[i:]...)
	s.marker = true
	s.recount()
}

// recount recomputes pendingBytes exactly (after a drop, which is rare).
func (s *shipper) recount() {
	b := 0
	for _, l := range s.pending {
		b += len(l.Text) + lineOverhead
	}
	s.pendingBytes = b
}

func (s *shipper) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close says the step has ended: everything pending is pushed at once.
func (s *shipper) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal()
}

func (s *shipper) isStale() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stale
}

// loop pushes batches until the step has ended and everything is delivered,
// the attempt turned out stale, or the worker gave up reporting.
func (s *shipper) loop() {
	cfg := &s.w.cfg
	for {
		s.mu.Lock()
		n, closed, due := len(s.pending), s.closed, s.lastPush.Add(cfg.LogBatchDelay)
		s.mu.Unlock()
		switch {
		case n == 0 && closed:
			return
		case n == 0:
			select {
			case <-s.wake:
			case <-s.ctx.Done():
				return
			}
			continue
		case n < cfg.LogBatchLines && !closed:
			if wait := time.Until(due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-s.wake: // more lines, or closed: look again
				case <-s.ctx.Done():
					t.Stop()
					return
				}
				t.Stop()
				continue
			}
		}
		if !s.push(s.takeBatch()) {
			return
		}
	}
}

// batch is lines with their fixed offset.
type batch struct {
	offset int64
	lines  []stroem.PushLine
}

// takeBatch moves the oldest pending lines into a batch and gives them
// their indices.
func (s *shipper) takeBatch() batch {
	cfg := &s.w.cfg
	s.mu.Lock()
	defer s.mu.Unlock()
	n, size := 0, 0
	for n < len(s.pending) && n < cfg.LogBatchLines && (n == 0 || size+len(s.pending[n].Text) <= cfg.LogBatchBytes) {
		size += len(s.pending[n].Text)
		n++
	}
	b := batch{offset: s.next, lines: append([]stroem.PushLine(nil), s.pending[:n]...)}
	s.next += int64(n)
	s.pending = append(s.pending[:0:0], s.pending[n:]...)
	s.recount()
	if s.marker {
		s.marker, s.dropped = false, 0 // the marker left in this batch
	}
	s.lastPush = time.Now() // the rest waits at most one more delay
	return b
}

// push delivers one batch, retrying with backoff while the server is
// unreachable. It reports whether shipping should go on.
func (s *shipper) push(b batch) bool {
	first := true
	resp, err := backoff.Retry(s.ctx, func() (stroem.LogPushResponse, error) {
		resp, err := s.w.c.PushLogs(s.ctx, s.ref.JobID, s.ref.Step, stroem.LogPush{
			WorkerID: s.workerID, Attempt: s.ref.Attempt, Offset: b.offset, Lines: b.lines,
		})
		s.w.down.observe(err, "push logs")
		if err != nil && !client.Retryable(err) {
			return resp, backoff.Permanent(err)
		}
		if err != nil && first {
			first = false
			s.w.log.Debug("log push failed, retrying", "job_id", s.ref.JobID, "step", s.ref.Step, "err", err)
		}
		return resp, err
	}, s.w.retryOptions()...)
	switch {
	case err == nil:
		if resp.Cancel {
			s.stop(ErrCancelledByServer)
		}
		return true
	case errors.Is(err, stroem.ErrConflict) || errors.Is(err, stroem.ErrNotFound):
		s.mu.Lock()
		s.stale = true
		s.pending, s.pendingBytes = nil, 0
		s.mu.Unlock()
		s.stop(ErrStale)
		return false
	case s.ctx.Err() != nil:
		s.w.log.Error("giving up log delivery", "job_id", s.ref.JobID, "step", s.ref.Step, "undelivered_from", b.offset)
		return false
	default: // refused (400, 413, 401): skip this batch, keep the rest
		s.w.log.Error("log batch refused, skipped", "job_id", s.ref.JobID, "step", s.ref.Step,
			"offset", b.offset, "lines", len(b.lines), "err", err)
		return true
	}
}
