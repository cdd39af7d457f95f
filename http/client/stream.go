package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	segjson "github.com/segmentio/encoding/json"

	"github.com/stroem/stroem"
)

// The log stream is parsed here rather than with r3labs/sse's client: that
// client reads events with a bufio.Scanner capped at 64 KiB by default
// (a 64 KiB log line grows past that once JSON-escaped), treats every
// disconnect with its own backoff v1 policy that gives up after 15 minutes,
// and hides the `event: done` frame's end-of-stream meaning. The SSE wire
// format is a dozen lines of parsing; owning it lets StreamLogs resume by
// sequence number, drop duplicates and stop exactly at `done`.

// maxEventBytes bounds one SSE line or JSON log line; a longer one is a
// protocol error, not a reason to grow memory without limit.
const maxEventBytes = 16 << 20

// Defaults of StreamOptions.
const (
	DefaultStreamIdleTimeout = 45 * time.Second // three missed 15 s keep-alives
	DefaultStreamGiveUp      = 2 * time.Minute
)

// StreamOptions tunes StreamLogs.
type StreamOptions struct {
	// Step limits the stream to one step's lines.
	Step string
	// AfterSeq skips the lines with a sequence number at or below it: the
	// stream resumes right after that line.
	AfterSeq int64
	// IdleTimeout reconnects when nothing, not even a keep-alive comment,
	// arrived for this long (default DefaultStreamIdleTimeout).
	IdleTimeout time.Duration
	// GiveUp stops reconnecting after this long without getting a single
	// event through (default DefaultStreamGiveUp).
	GiveUp time.Duration
	// OnReconnect, when set, is told about each reconnection and its cause.
	OnReconnect func(err error, wait time.Duration)
}

// StreamLogs follows the live log of a job over SSE, calling fn for each line
// in order, and returns the job's final status once the server sends
// `event: done`. It replays the stored lines first (those after
// opts.AfterSeq). When the connection drops — the server restarted, or cut a
// slow client — it reconnects with backoff and `Last-Event-ID` = the last
// sequence number seen, and drops any line at or below it, so fn sees every
// line exactly once. Failing to connect the first time, and any 4xx answer
// (unknown job), are returned at once. An error returned by fn stops the
// stream and is returned as is.
func (c *Client) StreamLogs(ctx context.Context, jobID string, opts StreamOptions, fn func(stroem.LogLine) error) (stroem.JobStatus, error) {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultStreamIdleTimeout
	}
	if opts.GiveUp <= 0 {
		opts.GiveUp = DefaultStreamGiveUp
	}
	s := &logStream{c: c, jobID: jobID, opts: opts, fn: fn, last: opts.AfterSeq}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 200 * time.Millisecond
	bo.MaxInterval = 5 * time.Second
	var failingSince time.Time
	for {
		progressed, err := s.once(ctx)
		switch {
		case s.done:
			return s.status, nil
		case s.fnErr != nil:
			return "", s.fnErr
		case ctx.Err() != nil:
			return "", fmt.Errorf("log stream of job %s: %w", jobID, context.Cause(ctx))
		case !s.connected:
			return "", err // the first connection failed: tell the user now
		case err != nil && !Retryable(err) && !errors.Is(err, errStreamBroken):
			return "", err
		}
		if progressed {
			bo.Reset()
			failingSince = time.Time{}
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		if time.Since(failingSince) > opts.GiveUp {
			return "", fmt.Errorf("log stream of job %s: gave up reconnecting after %s: %w", jobID, opts.GiveUp, err)
		}
		wait := bo.NextBackOff()
		if opts.OnReconnect != nil {
			opts.OnReconnect(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("log stream of job %s: %w", jobID, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// errStreamBroken marks a stream that ended or stalled before `done`.
var errStreamBroken = errors.New("log stream interrupted")

// logStream is the state of one StreamLogs call across connections.
type logStream struct {
	c         *Client
	jobID     string
	opts      StreamOptions
	fn        func(stroem.LogLine) error
	last      int64 // highest sequence number delivered to fn
	connected bool  // a connection was answered with 2xx at least once
	done      bool
	status    stroem.JobStatus
	fnErr     error
}

// once runs one connection until it ends. progressed reports whether any
// event arrived on it.
func (s *logStream) once(ctx context.Context) (progressed bool, err error) {
	q := url.Values{}
	if s.opts.Step != "" {
		q.Set("step", s.opts.Step)
	}
	h := http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
	if s.last > 0 {
		h.Set("Last-Event-ID", strconv.FormatInt(s.last, 10))
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	resp, rcancel, err := s.c.send(cctx, request{
		method: http.MethodGet, path: "/api/jobs/" + seg(s.jobID) + "/logs/stream",
		query: q, header: h, timeout: -1,
	})
	if err != nil {
		return false, err
	}
	defer rcancel()
	defer resp.Body.Close()
	s.connected = true

	idle := s.opts.IdleTimeout
	watchdog := time.AfterFunc(idle, func() {
		cancel(fmt.Errorf("%w: nothing received for %s", errStreamBroken, idle))
	})
	defer watchdog.Stop()

	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var ev sseEvent
	for {
		line, rerr := readLine(br, maxEventBytes)
		watchdog.Reset(idle)
		if rerr != nil && (len(line) == 0 || rerr != io.EOF) {
			if cause := context.Cause(cctx); cause != nil && ctx.Err() == nil {
				return progressed, cause
			}
			if rerr == io.EOF {
				return progressed, fmt.Errorf("%w: the server closed the stream before the job ended", errStreamBroken)
			}
			return progressed, fmt.Errorf("%w: %v", errStreamBroken, rerr)
		}
		if len(line) == 0 { // blank line: dispatch
			if ev.hasData {
				progressed = true
				if stop := s.dispatch(ev); stop {
					return progressed, nil
				}
			}
			ev = sseEvent{}
			continue
		}
		ev.field(line)
	}
}

// dispatch handles one complete event; it reports whether the stream is over.
func (s *logStream) dispatch(ev sseEvent) bool {
	data := ev.data.Bytes()
	switch ev.event {
	case "done":
		var d struct {
			Status stroem.JobStatus `json:"status"`
		}
		if err := json.Unmarshal(data, &d); err != nil || d.Status == "" {
			s.fnErr = fmt.Errorf("log stream of job %s: bad done event %q", s.jobID, data)
			return true
		}
		s.done, s.status = true, d.Status
		return true
	case "", "message", "log":
		l, err := decodeLogLine(data)
		if err != nil {
			s.fnErr = fmt.Errorf("log stream of job %s: bad event data: %w", s.jobID, err)
			return true
		}
		if l.Seq == 0 {
			l.Seq, _ = strconv.ParseInt(ev.id, 10, 64)
		}
		if l.Seq != 0 && l.Seq <= s.last {
			return false // already delivered before a reconnect
		}
		if err := s.fn(l); err != nil {
			s.fnErr = err
			return true
		}
		if l.Seq > s.last {
			s.last = l.Seq
		}
	}
	return false // unknown event types are ignored, for forward compatibility
}

// sseEvent accumulates the fields of one event.
type sseEvent struct {
	event   string
	id      string
	data    bytes.Buffer
	hasData bool
}

// field applies one "name: value" line; comments (":…") are ignored.
func (e *sseEvent) field(line []byte) {
	if line[0] == ':' {
		return
	}
	name, value, found := bytes.Cut(line, []byte(":"))
	if found && len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	switch string(name) {
	case "event":
		e.event = string(value)
	case "id":
		e.id = string(value)
	case "data":
		if e.hasData {
			e.data.WriteByte('\n')
		}
		e.data.Write(value)
		e.hasData = true
	}
}

// readLine reads one line without its "\n" or "\r\n". A last line without a
// newline is returned with io.EOF. A line longer than max is an error.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > max {
			return nil, fmt.Errorf("line longer than %d bytes", max)
		}
		if err == bufio.ErrBufferFull {
			buf = append(buf, chunk...)
			continue
		}
		if buf != nil || err != nil {
			buf = append(buf, chunk...)
		} else {
			buf = chunk
		}
		if err != nil {
			return bytes.TrimRight(buf, "\r"), err
		}
		buf = buf[:len(buf)-1]
		return bytes.TrimSuffix(buf, []byte("\r")), nil
	}
}

// decodeLogLine decodes one log event's data. It tries segmentio's drop-in
// for encoding/json first: a follower (`stroem logs -f`, the bench's logs
// part) decodes every line, and the standard decoder cost it about 2.4 µs a
// line, seven times as much, on the machine the server shares with it. What
// the fast one refuses (it parses times more strictly than time.Time does)
// goes to encoding/json, so every line decodes as it would there.
func decodeLogLine(data []byte) (stroem.LogLine, error) {
	var l stroem.LogLine
	if segjson.Unmarshal(data, &l) == nil {
		return l, nil
	}
	l = stroem.LogLine{}
	err := json.Unmarshal(data, &l)
	return l, err
}
