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

// PrepareLogAppend applies LogAppend's rules both stores share before any
// SQL: the push is checked (LogCheck), its job id must be a UUID
// (CodeNotFound otherwise) and its lines are prepared (PrepareLogLines). It
// returns the job id in canonical form and the lines to store.
func PrepareLogAppend(a LogAppend) (jobID string, lines []stroem.PushLine, err error) {
	if err := LogCheck(a); err != nil {
		return "", nil, err
	}
	jobID, ok := CanonicalUUID(a.JobID)
	if !ok {
		return "", nil, stroem.Errorf(stroem.CodeNotFound, "job %s not found", a.JobID)
	}
	lines, err = PrepareLogLines(a.Lines, nil)
	return jobID, lines, err
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

// StepLogState is a step's row of step_logs as LogAppend reads it: the
// attempt whose offsets next_offset counts, the step's stored bytes and
// whether its log was truncated. Seen is false while the step has no row.
type StepLogState struct {
	Seen      bool
	Attempt   int
	Next      int64
	Bytes     int64
	Truncated bool
}

// StepLogColumns is what LogAppend selects from step_logs into
// StepLogState.Dest.
const StepLogColumns = `attempt, next_offset, bytes, truncated`

// Dest is where a row of StepLogColumns is scanned.
func (st *StepLogState) Dest() []any {
	return []any{&st.Attempt, &st.Next, &st.Bytes, &st.Truncated}
}

// LogPlan is what LogAppend writes for one push (PlanLogAppend).
type LogPlan struct {
	// Write is false when nothing is written: the push has no lines, came
	// ahead of the attempt's earlier lines (Ahead), or was stored already
	// (a retried push).
	Write bool
	Ahead bool
	// Store are the lines to store, in order (possibly none: the limit
	// was reached before).
	Store []stroem.PushLine
	// State is the step's log state to write (an update when Seen, else an
	// insert).
	State StepLogState
}

// PlanLogAppend applies LogAppend's rules to a fenced push and the step's
// log state st: an Ordered push past the stored lines waits (LogAhead),
// lines whose offset is stored already are skipped (a new attempt's
// offsets start over), and the step's size limit applies (LogLimit).
func PlanLogAppend(a LogAppend, lines []stroem.PushLine, st StepLogState) LogPlan {
	if len(lines) == 0 {
		return LogPlan{}
	}
	if LogAhead(a, st.Attempt, st.Next) {
		return LogPlan{Ahead: true}
	}
	next := st.Next
	if st.Attempt != a.Attempt {
		next = 0 // a new attempt: its offsets start over
	}
	fresh := lines
	if skip := next - a.Offset; skip > 0 {
		if skip >= int64(len(fresh)) {
			return LogPlan{} // all stored already: a retried push
		}
		fresh = fresh[skip:]
	}
	end := a.Offset + int64(len(lines))
	store, bytes, truncated := LogLimit(fresh, st.Bytes, st.Truncated, a.MaxStepBytes, a.Step)
	return LogPlan{Write: true, Store: store,
		State: StepLogState{Seen: st.Seen, Attempt: a.Attempt, Next: max(end, next), Bytes: bytes, Truncated: truncated}}
}

// StoredLines are the lines of a push as stored, the first with seq first.
func StoredLines(a LogAppend, lines []stroem.PushLine, first int64) []stroem.LogLine {
	out := make([]stroem.LogLine, len(lines))
	for i, l := range lines {
		out[i] = stroem.LogLine{Seq: first + int64(i), Step: a.Step, Attempt: a.Attempt, TS: l.TS, Stream: l.Stream, Text: l.Text}
	}
	return out
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

// LogPageQuery is the statement of one page of LogScan: the job's lines
// (only step's unless step is "", see LogScan) with a seq above after, in
// seq order, LogPageSize at most. arg records one value and returns its
// placeholder (see JobFilter.Where), so both stores run the same statement.
//
// A step's lines are read in two parts, each through an index in seq
// order, and merged: the step's own (job_logs_step_idx) and its loop
// instances' (job_logs_loop_idx, which keys an instance's lines by its
// loop). Neither reads another step's lines, and a step whose name starts
// another's ("deploy", "deploy2") does not take its lines. indexedBy names
// the indexes in the statement (SQLite's INDEXED BY): SQLite's planner,
// without statistics, reads them through the primary key in seq order,
// which is the whole job's log.
func LogPageQuery(jobID, step string, after int64, arg func(v any) string, indexedBy bool) string {
	const cols = `seq, step_name, attempt, ts, stream, text`
	if step == "" {
		return `SELECT ` + cols + ` FROM job_logs WHERE job_id = ` + arg(jobID) +
			` AND seq > ` + arg(after) + ` ORDER BY seq LIMIT ` + arg(LogPageSize)
	}
	// The placeholders are recorded in the order they appear (SQLite's
	// are positional).
	part := func(alias, index, match string, v any) string {
		q := `SELECT ` + cols + ` FROM (SELECT ` + cols + ` FROM job_logs`
		if indexedBy {
			q += ` INDEXED BY ` + index
		}
		q += ` WHERE job_id = ` + arg(jobID) + ` AND ` + match + ` = ` + arg(v)
		return q + ` AND seq > ` + arg(after) + ` ORDER BY seq LIMIT ` + arg(LogPageSize) + `) AS ` + alias
	}
	q := part("own", "job_logs_step_idx", `step_name`, step)
	q += ` UNION ALL ` + part("instances", "job_logs_loop_idx", logLoopMatch, logLoopKey(step))
	return q + ` ORDER BY seq LIMIT ` + arg(LogPageSize)
}

// logLoopMatch selects the lines of loop instances by their loop, as the
// index job_logs_loop_idx (migration 00240, in both stores) has them: the
// condition must be written as the index's predicate and expression are.
// rtrim strips the index and the closing bracket ("deploy[12]" becomes
// "deploy["); step names cannot contain brackets, so only instance names
// end in "]".
const logLoopMatch = `step_name LIKE '%]' AND rtrim(step_name, '0123456789]')`

// logLoopKey is what job_logs_loop_idx keys the lines of step's instances
// by: "deploy" → "deploy[". The bracket keeps "deploy2[0]" (key "deploy2[")
// out of "deploy"'s lines.
func logLoopKey(step string) string { return step + "[" }

// LogRow is a row of LogPageQuery as a store scans it, before Decode.
type LogRow struct {
	Line   stroem.LogLine
	Stream string
}

// Dest is where a row is scanned; ts is the destination of the ts column,
// which the store's scan must leave in Line.TS.
func (r *LogRow) Dest(ts any) []any {
	return []any{&r.Line.Seq, &r.Line.Step, &r.Line.Attempt, ts, &r.Stream, &r.Line.Text}
}

// Decode returns the line of the row, its time in UTC.
func (r *LogRow) Decode() stroem.LogLine {
	l := r.Line
	l.TS, l.Stream = l.TS.UTC(), stroem.Stream(r.Stream)
	return l
}

// ScanLogPages is the loop of a store's LogScan: read returns the next page
// (up to LogPageSize lines with a seq above after, in seq order), fn is
// called for each line of a page before the next is read (no query is open
// meanwhile), and a short page ends the scan.
func ScanLogPages(afterSeq int64, fn func(stroem.LogLine) error, read func(after int64) ([]stroem.LogLine, error)) error {
	for {
		page, err := read(afterSeq)
		if err != nil {
			return err
		}
		for _, l := range page {
			if err := fn(l); err != nil {
				return err
			}
		}
		if len(page) < LogPageSize {
			return nil
		}
		afterSeq = page[len(page)-1].Seq
	}
}
