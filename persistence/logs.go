package persistence

import (
	"fmt"
	"time"

	"github.com/stroem/stroem"
)

// Log storage (docs/architecture.md "Logs"). Every store keeps the job logs
// itself, so every server process reads the same durable copy:
//
//   - LogAppend stores one worker push, fenced: in the same transaction it
//     checks that the pushing worker holds the step's running attempt, so no
//     line is stored for an attempt that was declared lost, cancelled or
//     given back, whatever the timing of the two.
//   - Sequence numbers are per job (1, 2, 3 …, no gaps) and are committed in
//     order: when a line with seq n is visible, every line of the job with a
//     smaller seq is too (appends to one job are serialised on a per-job
//     counter row). SSE relies on this to resume by Last-Event-ID on any
//     server.
//   - A push is identified by (step, attempt, offset): a line whose index
//     within its attempt was already stored is skipped, so a retried push
//     stores nothing twice. An Ordered push that starts past the attempt's
//     stored lines stores nothing (LogAppended.Ahead), so a worker may have
//     several pushes in flight and still have its lines stored in order.
//   - Each step's stored text is limited (LogAppend.MaxStepBytes): the line
//     that would cross it is replaced by one marker line, later lines are
//     not stored, and the step is reported as truncated.

// DefaultMaxStepLogBytes is the default per-step log limit (100 MiB).
const DefaultMaxStepLogBytes = 100 << 20

// ChannelLogs is the NOTIFY channel that wakes other servers' SSE streams:
// payloads are "<origin>:<job id>:<seq>" after lines were stored, and
// "<origin>:<job id>:done:<status>" when a job ended. It is only a wake-up:
// lines are always read from the store.
const ChannelLogs = "stroem_logs"

// LogAppend is one push of log lines from a step attempt.
type LogAppend struct {
	JobID    string
	Step     string
	Attempt  int
	WorkerID string
	// Offset is the index of Lines[0] among the lines the attempt printed.
	Offset int64
	// Lines are stored as given (the caller masks them); PrepareLogLines
	// sanitizes them and fills defaults.
	Lines []stroem.PushLine
	// MaxStepBytes bounds the text stored for the step (all attempts);
	// 0 means DefaultMaxStepLogBytes.
	MaxStepBytes int64
	// Ordered stores the push only when no line of the attempt before
	// Offset is missing; otherwise nothing is stored and LogAppended.Ahead
	// is set. Without it a push past the stored lines is stored at once.
	Ordered bool
}

// LogAppended is what LogAppend stored.
type LogAppended struct {
	// Lines are the stored lines with their seqs (without the ones already
	// stored by an earlier copy of the push, or cut by the size limit).
	Lines []stroem.LogLine
	// Cancel is set when the job has a cancel request: the worker should
	// stop the step.
	Cancel bool
	// Ahead is set when an Ordered push came before the attempt's earlier
	// lines: nothing was stored.
	Ahead bool
}

// PrepareLogLines checks the streams, fills missing times and sanitizes the
// texts of a push, so what is stored can always be encoded as JSON.
func PrepareLogLines(lines []stroem.PushLine, mask func(string) string) ([]stroem.PushLine, error) {
	out := make([]stroem.PushLine, len(lines))
	var now time.Time
	for i, l := range lines {
		switch {
		case l.Stream == "":
			l.Stream = stroem.Stdout
		case !l.Stream.Valid():
			return nil, stroem.Errorf(stroem.CodeInvalid, "lines[%d].stream: want stdout or stderr, got %q", i, stroem.SanitizeText(string(l.Stream)))
		}
		if l.TS.IsZero() {
			if now.IsZero() {
				now = time.Now().UTC()
			}
			l.TS = now
		}
		l.TS = l.TS.UTC().Truncate(time.Microsecond) // what PostgreSQL keeps
		if mask != nil {
			l.Text = mask(l.Text)
		}
		l.Text = stroem.SanitizeText(l.Text)
		out[i] = l
	}
	return out, nil
}

// LogLimit applies the per-step size limit to a push's new lines: given
// the bytes the step has stored and whether it was already truncated, it
// returns the lines to store (with the marker line at the end when the
// limit is crossed now), the new byte count and the new truncated flag.
func LogLimit(lines []stroem.PushLine, stored int64, truncated bool, max int64, step string) ([]stroem.PushLine, int64, bool) {
	if max <= 0 {
		max = DefaultMaxStepLogBytes
	}
	if truncated {
		return nil, stored, true
	}
	for i, l := range lines {
		if stored+int64(len(l.Text)) > max {
			marker := stroem.PushLine{TS: l.TS, Stream: stroem.Stderr,
				Text: fmt.Sprintf("[stroem] the log of step %s reached its limit of %d bytes: later lines are not stored", step, max)}
			return append(lines[:i:i], marker), stored, true
		}
		stored += int64(len(l.Text))
	}
	return lines, stored, false
}

// LogAhead reports whether an Ordered push at offset must wait: the
// attempt's lines before it are not all stored. next is the stored
// next_offset of the step and nextAttempt the attempt it counts (0: no
// line of the step stored yet).
func LogAhead(a LogAppend, nextAttempt int, next int64) bool {
	if !a.Ordered {
		return false
	}
	if nextAttempt != a.Attempt {
		next = 0
	}
	return a.Offset > next
}

// LogCheck validates the parts of a LogAppend every store checks the same
// way.
func LogCheck(a LogAppend) error {
	if a.Step == "" {
		return stroem.Invalid("log push without a step name")
	}
	if a.Attempt < 1 {
		return stroem.Errorf(stroem.CodeInvalid, "attempt must be at least 1, got %d", a.Attempt)
	}
	if a.Offset < 0 {
		return stroem.Errorf(stroem.CodeInvalid, "offset must not be negative, got %d", a.Offset)
	}
	return nil
}

// LogPageSize is how many lines one query of LogScan reads: memory stays
// bounded however long the log, and no transaction stays open while a slow
// client reads.
const LogPageSize = 500
