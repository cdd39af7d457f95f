package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// LogAppend stores one push of log lines in one write transaction: the
// fence, the dedup by offset, the size limit and the seqs all happen under
// the single writer, so no line is stored for an attempt a concurrent
// transition declared lost.
func (s *Store) LogAppend(ctx context.Context, a persistence.LogAppend) (persistence.LogAppended, error) {
	var out persistence.LogAppended
	if err := persistence.LogCheck(a); err != nil {
		return out, err
	}
	jobID, ok := canonicalUUID(a.JobID)
	if !ok {
		return out, notFound("job %s not found", a.JobID)
	}
	lines, err := persistence.PrepareLogLines(a.Lines, nil)
	if err != nil {
		return out, err
	}
	err = s.writeTx(ctx, func(tx *sql.Tx, _ time.Time) error {
		out = persistence.LogAppended{}
		var (
			status, holder string
			current        int
		)
		err := tx.QueryRowContext(ctx, `SELECT status, attempt, coalesce(worker_id, ''), cancel_requested
			FROM job_steps WHERE job_id = ? AND step_name = ?`, jobID, a.Step).Scan(&status, &current, &holder, &out.Cancel)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("step %s of job %s not found", a.Step, jobID)
		}
		if err != nil {
			return err
		}
		if status != string(stroem.StepRunning) || current != a.Attempt || holder != canonicalWorker(a.WorkerID) {
			return stroem.Errorf(stroem.CodeConflict,
				"step %s of job %s: attempt %d of worker %s is not the running attempt (step is %s, attempt %d): its log lines are not stored",
				a.Step, jobID, a.Attempt, a.WorkerID, status, current)
		}
		if len(lines) == 0 {
			return nil
		}
		var (
			attempt         int
			next, bytes     int64
			truncated, seen bool
		)
		err = tx.QueryRowContext(ctx, `SELECT attempt, next_offset, bytes, truncated FROM step_logs
			WHERE job_id = ? AND step_name = ?`, jobID, a.Step).Scan(&attempt, &next, &bytes, &truncated)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			seen = true
		}
		if persistence.LogAhead(a, attempt, next) {
			out.Ahead = true // earlier lines of the attempt are still on their way
			return nil
		}
		if attempt != a.Attempt {
			next = 0
		}
		fresh := lines
		if skip := next - a.Offset; skip > 0 {
			if skip >= int64(len(fresh)) {
				return nil
			}
			fresh = fresh[skip:]
		}
		end := a.Offset + int64(len(lines))
		store, newBytes, newTrunc := persistence.LogLimit(fresh, bytes, truncated, a.MaxStepBytes, a.Step)
		if seen {
			_, err = tx.ExecContext(ctx, `UPDATE step_logs SET attempt = ?, next_offset = ?, bytes = ?, truncated = ?
				WHERE job_id = ? AND step_name = ?`, a.Attempt, max(end, next), newBytes, newTrunc, jobID, a.Step)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO step_logs (job_id, step_name, attempt, next_offset, bytes, truncated)
				VALUES (?, ?, ?, ?, ?, ?)`, jobID, a.Step, a.Attempt, end, newBytes, newTrunc)
		}
		if err != nil {
			return err
		}
		if len(store) == 0 {
			return nil
		}
		var last int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO job_log_heads (job_id, last_seq) VALUES (?, ?)
			ON CONFLICT (job_id) DO UPDATE SET last_seq = last_seq + excluded.last_seq
			RETURNING last_seq`, jobID, len(store)).Scan(&last); err != nil {
			return err
		}
		first := last - int64(len(store)) + 1
		ins, err := tx.PrepareContext(ctx, `INSERT INTO job_logs (job_id, seq, step_name, attempt, ts, stream, text)
			VALUES (?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		out.Lines = make([]stroem.LogLine, len(store))
		for i, l := range store {
			seq := first + int64(i)
			out.Lines[i] = stroem.LogLine{Seq: seq, Step: a.Step, Attempt: a.Attempt, TS: l.TS, Stream: l.Stream, Text: l.Text}
			if _, err := ins.ExecContext(ctx, jobID, seq, a.Step, a.Attempt, nanos(l.TS), string(l.Stream), l.Text); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		out.Lines = nil
		var coded *stroem.Error
		if errors.As(err, &coded) {
			return out, err
		}
		return out, fmt.Errorf("append logs of step %s of job %s: %w", a.Step, a.JobID, interpretError(err))
	}
	return out, nil
}

// LogScan reads the job's lines page by page (persistence.LogPageSize per
// query), calling fn between queries.
func (s *Store) LogScan(ctx context.Context, jobID string, afterSeq int64, step string, fn func(stroem.LogLine) error) error {
	id, ok := canonicalUUID(jobID)
	if !ok {
		return nil
	}
	db, err := s.reader()
	if err != nil {
		return err
	}
	page := make([]stroem.LogLine, 0, persistence.LogPageSize)
	for {
		page = page[:0]
		var rows *sql.Rows
		if step == "" {
			rows, err = db.QueryContext(ctx, `SELECT seq, step_name, attempt, ts, stream, text FROM job_logs
				WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?`, id, afterSeq, persistence.LogPageSize)
		} else {
			rows, err = db.QueryContext(ctx, `SELECT seq, step_name, attempt, ts, stream, text FROM job_logs
				WHERE job_id = ? AND step_name = ? AND seq > ? ORDER BY seq LIMIT ?`, id, step, afterSeq, persistence.LogPageSize)
		}
		if err != nil {
			return fmt.Errorf("read logs of job %s: %w", id, interpretError(err))
		}
		for rows.Next() {
			var l stroem.LogLine
			var stream string
			var ts int64
			if err := rows.Scan(&l.Seq, &l.Step, &l.Attempt, &ts, &stream, &l.Text); err != nil {
				_ = rows.Close()
				return fmt.Errorf("read logs of job %s: %w", id, interpretError(err))
			}
			l.TS, l.Stream = fromNanos(ts), stroem.Stream(stream)
			page = append(page, l)
		}
		err = rows.Err()
		_ = rows.Close()
		if err != nil {
			return fmt.Errorf("read logs of job %s: %w", id, interpretError(err))
		}
		for _, l := range page {
			if err := fn(l); err != nil {
				return err
			}
		}
		if len(page) < persistence.LogPageSize {
			return nil
		}
		afterSeq = page[len(page)-1].Seq
	}
}

// LogTruncatedSteps names the job's steps whose log reached the limit.
func (s *Store) LogTruncatedSteps(ctx context.Context, jobID string) ([]string, error) {
	id, ok := canonicalUUID(jobID)
	if !ok {
		return nil, nil
	}
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT step_name FROM step_logs WHERE job_id = ? AND truncated ORDER BY step_name`, id)
	if err != nil {
		return nil, fmt.Errorf("read truncated logs of job %s: %w", id, interpretError(err))
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("read truncated logs of job %s: %w", id, interpretError(err))
		}
		names = append(names, n)
	}
	return names, interpretError(rows.Err())
}

// Notify does nothing: an embedded store serves one process, whose own
// events are delivered in-process (as every server ignores its own
// notifications in PostgreSQL too).
func (s *Store) Notify(ctx context.Context, channel, payload string) error { return nil }
