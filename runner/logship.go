package runner

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
// push started, or until LogBatchLines are waiting (or memory is full), and
// go together. So a quiet step's lines arrive with the latency of one
// request, and a chatty step costs the server at most one push per
// LogBatchDelay unless it fills batches faster.
//
// Nothing is dropped while the server answers. Lines wait in memory: the
// lines waiting and those in the pushes in flight together are at most
// LogBufferLines / LogBufferBytes. When that is full and the server is
// reachable, add blocks — the step's pipe fills and the step waits for its
// log to be stored (backpressure). Counting the lines in flight keeps the
// worker from reading far ahead of what the server has stored: under a
// flood a line's latency is about what is queued ahead of it (the pipe and
// LogBufferLines) divided by the storing rate, so the queue is kept short
// (see proc_linux.go for the pipe). When the latest push
// failed because the server could not be reached, lines go to a spool file
// instead (at most LogSpoolBytes, see spool), shipped in order once the
// server is back. Only a line that finds the server unreachable and the
// spool full is dropped; the dropped lines are counted, and one marker line
// saying exactly how many takes their place in the log.
//
// Every line gets its index within the attempt (its sequence) when add
// takes it, that is in the order the runner read it: the batch's Offset is
// the index of its first line. A batch that fails is retried unchanged, with
// the same Offset, until the server stores it, so the server's dedup by
// offset makes retries harmless. Dropped lines never get an index, so the
// indices the server sees stay contiguous.
//
// Up to pushesInFlight batches are pushed at once, so a chatty step's next
// batch is encoded, sent and decoded while the server stores the previous
// one. They are sent Ordered: the server holds back one that arrives before
// the batches ahead of it until they are stored (actors/logorder.go); one
// that still finds them missing after a bounded wait stores nothing and is
// answered Ahead, and is sent again once those are answered — lines are
// stored exactly once, in order, and normally sent once. Pushes
// overlap only once the server has shown it honours Ordered (by echoing
// it): an older server would store an early push and then skip the one
// before it as already stored.
type shipper struct {
	w        *Worker
	ctx      context.Context // ends when the worker gives up reporting
	workerID string
	ref      stroem.StepRef
	stop     func(error) // cancels the step

	mu           sync.Mutex
	room         *sync.Cond // signalled when add may proceed
	pending      []stroem.PushLine
	pendingBytes int
	spool        *spool    // created at the first line that needs it
	spoolErr     bool      // the spool could not be created: treat it as full
	dropped      int       // lines dropped since the last marker
	down         bool      // the latest push attempt found the server unreachable
	lastPush     time.Time // when the latest batch was taken
	next         int64     // index of the next line to be taken into a batch
	closed       bool
	stale        bool
	done         bool // the loop has ended (or is ending): nothing more is shipped
	inFlight     int  // batches being pushed
	flyLines     int  // lines of the batches being pushed
	flyBytes     int  // and their bytes (as pendingBytes counts them)
	ordered      bool // the server answered an Ordered push as one: pushes may overlap

	wake chan struct{}
	// The loop is started by the first line (startLoop): a step that
	// prints nothing costs no goroutine, no context hook and no wake-up
	// (most steps of a fan-out of small steps print nothing).
	started bool
	loops   sync.WaitGroup
}

func newShipper(w *Worker, ctx context.Context, workerID string, ref stroem.StepRef, stop func(error)) *shipper {
	s := &shipper{w: w, ctx: ctx, workerID: workerID, ref: ref, stop: stop, wake: make(chan struct{}, 1)}
	s.room = sync.NewCond(&s.mu)
	return s
}

// add takes one line. It blocks while the server is reachable and the
// shipper is behind (backpressure); it never blocks while the server is
// unreachable.
func (s *shipper) add(l stroem.PushLine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.stale || s.closed || s.done {
			return
		}
		spooling := s.spool != nil && s.spool.len() > 0
		if !spooling && s.memoryRoom() {
			s.placeMarker(false)
			s.toMemory(l)
			return
		}
		if s.down || spooling {
			if s.placeMarker(true) && s.toSpool(l) {
				return
			}
			if s.down {
				s.dropped++
				return
			}
		}
		s.room.Wait() // the server answers: wait for the shipper to catch up
	}
}

// memoryRoom reports whether memory may take another line: the lines
// waiting and those being pushed stay within LogBufferLines and
// LogBufferBytes. Counting the lines in flight bounds how far the worker
// reads ahead of what the server has stored, so a step printing faster than
// its log is shipped waits in its pipe, and a line's latency stays about
// the time to ship LogBufferLines.
func (s *shipper) memoryRoom() bool {
	cfg := &s.w.cfg
	return len(s.pending)+s.flyLines < cfg.LogBufferLines && s.pendingBytes+s.flyBytes < cfg.LogBufferBytes
}

// startLoop starts the loop at the first line. Called with mu held.
func (s *shipper) startLoop() {
	if !s.started {
		s.started = true
		s.loops.Go(s.loop)
	}
}

// wait returns once the loop (if a line started it) has ended: after
// close, once everything is delivered or given up on.
func (s *shipper) wait() { s.loops.Wait() }

func (s *shipper) toMemory(l stroem.PushLine) {
	s.startLoop()
	s.pending = append(s.pending, l)
	s.pendingBytes += len(l.Text) + lineOverhead
	s.signal()
}

// toSpool appends l to the spool file and reports whether it fit.
func (s *shipper) toSpool(l stroem.PushLine) bool {
	if s.spool == nil && !s.spoolErr {
		dir := filepath.Join(s.w.cfg.WorkDir, "spool")
		name := fmt.Sprintf("%s-%d-%s.jsonl", s.ref.JobID, s.ref.Attempt, hex.EncodeToString([]byte(s.ref.Step)))
		sp, err := func() (*spool, error) {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
			return newSpool(filepath.Join(dir, name), s.w.cfg.LogSpoolBytes)
		}()
		if err != nil {
			s.spoolErr = true
			s.w.log.Error("no log spool: lines are dropped while the server is unreachable", "job_id", s.ref.JobID, "step", s.ref.Step, "err", err)
			return false
		}
		s.spool = sp
	}
	if s.spool == nil {
		return false
	}
	s.startLoop()
	if err := s.spool.put(l); err != nil {
		if !errors.Is(err, errSpoolFull) {
			s.w.log.Error("log spool", "job_id", s.ref.JobID, "step", s.ref.Step, "err", err)
		}
		return false
	}
	s.signal()
	return true
}

// placeMarker puts the marker for the lines dropped so far where the next
// line goes (the spool, or memory), and reports whether there was room.
// Called with mu held.
func (s *shipper) placeMarker(spool bool) bool {
	if s.dropped == 0 {
		return true
	}
	m := s.marker()
	if spool {
		if !s.toSpool(m) {
			return false
		}
	} else {
		s.toMemory(m)
	}
	s.dropped = 0
	return true
}

func (s *shipper) marker() stroem.PushLine {
	return stroem.PushLine{
		TS:     time.Now().UTC(),
		Stream: stroem.Stderr,
		Text: fmt.Sprintf("[stroem] %d log lines dropped: the server could not be reached and the worker's log spool (%d bytes) was full",
			s.dropped, s.w.cfg.LogSpoolBytes),
	}
}

// waiting is the number of lines (and the marker) not yet taken into a
// batch. Called with mu held.
func (s *shipper) waiting() int {
	n := len(s.pending)
	if s.spool != nil {
		n += s.spool.len()
	}
	if s.dropped > 0 {
		n++
	}
	return n
}

// setDown records whether the latest push attempt found the server
// unreachable; add stops blocking while it is.
func (s *shipper) setDown(down bool) {
	s.mu.Lock()
	if s.down != down {
		s.down = down
		s.room.Broadcast()
	}
	s.mu.Unlock()
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
	s.room.Broadcast()
	s.mu.Unlock()
	s.signal()
}

func (s *shipper) isStale() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stale
}

// pushesInFlight is how many batches of one step are pushed at once.
const pushesInFlight = 2

// loop pushes batches until the step has ended and everything is delivered,
// the attempt turned out stale, or the worker gave up reporting.
func (s *shipper) loop() {
	defer s.finish()
	stopWake := context.AfterFunc(s.ctx, func() {
		s.mu.Lock()
		s.done = true
		s.room.Broadcast()
		s.mu.Unlock()
	})
	defer stopWake()
	var pushes sync.WaitGroup
	defer pushes.Wait() // before finish: the spool goes when nothing is in flight
	cfg := &s.w.cfg
	var prev *flight
	for {
		s.mu.Lock()
		limit := 1
		if s.ordered {
			limit = pushesInFlight
		}
		n, closed, due, busy, done := s.waiting(), s.closed, s.lastPush.Add(cfg.LogBatchDelay), s.inFlight >= limit, s.done
		full := len(s.pending) > 0 && !s.memoryRoom() // add waits: ship what it waits behind
		s.mu.Unlock()
		switch {
		case done:
			return
		case n == 0 && closed:
			return // what is in flight is waited for
		case n == 0 || busy:
			select {
			case <-s.wake: // lines, closed, or a push ended
			case <-s.ctx.Done():
				return
			}
			continue
		case n < cfg.LogBatchLines && !closed && !full:
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
		b := s.takeBatch()
		if len(b.lines) == 0 {
			continue
		}
		f := &flight{done: make(chan struct{}), lines: len(b.lines), bytes: linesBytes(b.lines)}
		s.mu.Lock()
		s.inFlight++
		s.flyLines += f.lines
		s.flyBytes += f.bytes
		s.mu.Unlock()
		before := prev
		prev = f
		pushes.Go(func() { s.pushInFlight(b, before, f) })
	}
}

// flight is one batch being pushed. done is closed when it and every batch
// before it have been stored, refused or given up on; refused is set before.
type flight struct {
	done    chan struct{}
	refused bool
	lines   int // the batch's lines and bytes, counted in flyLines and flyBytes
	bytes   int
}

// pushInFlight pushes b, Ordered, after prev (the batch before it, nil for
// none). A batch answered Ahead is sent again once prev is done — unordered
// when prev was refused (its lines will never come), or when it is somehow
// still ahead then, so it cannot wait forever.
func (s *shipper) pushInFlight(b batch, prev *flight, f *flight) {
	defer func() {
		if prev != nil {
			<-prev.done // done means "this and everything before it"
		}
		s.mu.Lock()
		s.inFlight--
		s.flyLines -= f.lines
		s.flyBytes -= f.bytes
		s.room.Broadcast() // memory has room again
		s.mu.Unlock()
		close(f.done)
		s.signal()
	}()
	ordered := true
	wait := prev
	for {
		resp, res := s.push(b, ordered)
		switch {
		case res == pushStop:
			s.mu.Lock()
			s.done = true
			s.room.Broadcast()
			s.mu.Unlock()
			return
		case res == pushRefused:
			f.refused = true
			return
		case !resp.Ahead:
			return
		}
		if wait == nil {
			ordered = false
			continue
		}
		select {
		case <-wait.done:
		case <-s.ctx.Done():
			return
		}
		ordered = !wait.refused
		wait = nil
	}
}

// batch is lines with their fixed offset.
type batch struct {
	offset int64
	lines  []stroem.PushLine
}

// finish ends shipping: add stops blocking and the spool file goes.
func (s *shipper) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	s.room.Broadcast()
	if s.spool != nil {
		s.spool.remove()
		s.spool = nil
	}
}

// takeBatch moves the oldest waiting lines into a batch and gives them
// their indices: memory first (it only takes lines while the spool is
// empty, so its lines are older than the spool's), then the spool, then
// the marker of lines dropped after everything else.
func (s *shipper) takeBatch() batch {
	cfg := &s.w.cfg
	s.mu.Lock()
	defer s.mu.Unlock()
	var lines []stroem.PushLine
	switch {
	case len(s.pending) > 0:
		n, size := 0, 0
		for n < len(s.pending) && n < cfg.LogBatchLines && (n == 0 || size+len(s.pending[n].Text) <= cfg.LogBatchBytes) {
			size += len(s.pending[n].Text)
			n++
		}
		lines = append([]stroem.PushLine(nil), s.pending[:n]...)
		s.pending = append(s.pending[:0:0], s.pending[n:]...)
		s.recount()
	case s.spool != nil && s.spool.len() > 0:
		var err error
		lines, err = s.spool.take(cfg.LogBatchLines, cfg.LogBatchBytes)
		if err != nil {
			// The file is unreadable: what is left of it is lost, and
			// counted as dropped.
			s.w.log.Error("log spool unreadable", "job_id", s.ref.JobID, "step", s.ref.Step, "err", err)
			s.dropped += s.spool.len()
			s.spool.remove()
			s.spool, s.spoolErr = nil, true
		}
	case s.dropped > 0:
		lines = []stroem.PushLine{s.marker()}
		s.dropped = 0
	}
	b := batch{offset: s.next, lines: lines}
	s.next += int64(len(lines))
	s.lastPush = time.Now() // the rest waits at most one more delay
	s.room.Broadcast()
	return b
}

// recount recomputes pendingBytes exactly.
func (s *shipper) recount() {
	s.pendingBytes = linesBytes(s.pending)
}

// linesBytes is what lines count against LogBufferBytes.
func linesBytes(lines []stroem.PushLine) int {
	b := 0
	for _, l := range lines {
		b += len(l.Text) + lineOverhead
	}
	return b
}

// pushResult is how a push ended.
type pushResult int

const (
	pushDone    pushResult = iota // stored (or answered Ahead)
	pushRefused                   // refused (400, 413, 401): skipped
	pushStop                      // stale attempt, or the worker gave up: stop shipping
)

// push delivers one batch, retrying with backoff while the server is
// unreachable.
func (s *shipper) push(b batch, ordered bool) (stroem.LogPushResponse, pushResult) {
	first := true
	resp, err := backoff.Retry(s.ctx, func() (stroem.LogPushResponse, error) {
		resp, err := s.w.c.PushLogs(s.ctx, s.ref.JobID, s.ref.Step, stroem.LogPush{
			WorkerID: s.workerID, Attempt: s.ref.Attempt, Offset: b.offset, Lines: b.lines, Ordered: ordered,
		})
		s.w.down.observe(err, "push logs")
		s.setDown(err != nil && client.Retryable(err))
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
		if resp.Ordered && ordered {
			s.mu.Lock()
			s.ordered = true
			s.mu.Unlock()
		}
		return resp, pushDone
	case errors.Is(err, stroem.ErrConflict) || errors.Is(err, stroem.ErrNotFound):
		s.mu.Lock()
		s.stale = true
		s.pending, s.pendingBytes = nil, 0
		s.room.Broadcast()
		s.mu.Unlock()
		s.stop(ErrStale)
		return resp, pushStop
	case s.ctx.Err() != nil:
		s.w.log.Error("giving up log delivery", "job_id", s.ref.JobID, "step", s.ref.Step, "undelivered_from", b.offset)
		return resp, pushStop
	default: // refused (400, 413, 401): skip this batch, keep the rest
		s.w.log.Error("log batch refused, skipped", "job_id", s.ref.JobID, "step", s.ref.Step,
			"offset", b.offset, "lines", len(b.lines), "err", err)
		return resp, pushRefused
	}
}
