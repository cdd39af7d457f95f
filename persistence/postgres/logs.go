package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// LogAppend stores one push of log lines in one transaction: fence (the
// step row is read FOR SHARE, so a transition that declares the attempt
// lost waits for this append or makes it fail — never both), dedup by
// offset, size limit, seqs from the job's counter row, COPY of the lines,
// and a NOTIFY on persistence.ChannelLogs delivered at commit.
func (s *Store) LogAppend(ctx context.Context, a persistence.LogAppend) (persistence.LogAppended, error) {
	var out persistence.LogAppended
	if err := persistence.LogCheck(a); err != nil {
		return out, err
	}
	if !validUUID(a.JobID) {
		return out, notFound("job %s not found", a.JobID)
	}
	jobID := canonicalUUID(a.JobID)
	lines, err := persistence.PrepareLogLines(a.Lines, nil)
	if err != nil {
		return out, err
	}
	err = s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		out = persistence.LogAppended{}
		var (
			status, holder string
			current        int
		)
		err := tx.QueryRow(ctx, `SELECT status, attempt, coalesce(worker_id, ''), cancel_requested
			FROM job_steps WHERE job_id = $1 AND step_name = $2 FOR SHARE`, jobID, a.Step).
			Scan(&status, &current, &holder, &out.Cancel)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("step %s of job %s not found", a.Step, jobID)
		}
		if err != nil {
			return err
		}
		if status != string(stroem.StepRunning) || current != a.Attempt || holder != canonicalUUID(a.WorkerID) {
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
		err = tx.QueryRow(ctx, `SELECT attempt, next_offset, bytes, truncated FROM step_logs
			WHERE job_id = $1 AND step_name = $2 FOR UPDATE`, jobID, a.Step).Scan(&attempt, &next, &bytes, &truncated)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
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
			next = 0 // a new attempt: its offsets start over
		}
		fresh := lines
		if skip := next - a.Offset; skip > 0 {
			if skip >= int64(len(fresh)) {
				return nil // all stored already: a retried push
			}
			fresh = fresh[skip:]
		}
		end := a.Offset + int64(len(lines))
		store, newBytes, newTrunc := persistence.LogLimit(fresh, bytes, truncated, a.MaxStepBytes, a.Step)
		if seen {
			_, err = tx.Exec(ctx, `UPDATE step_logs SET attempt = $3, next_offset = $4, bytes = $5, truncated = $6
				WHERE job_id = $1 AND step_name = $2`, jobID, a.Step, a.Attempt, max(end, next), newBytes, newTrunc)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO step_logs (job_id, step_name, attempt, next_offset, bytes, truncated)
				VALUES ($1, $2, $3, $4, $5, $6)`, jobID, a.Step, a.Attempt, end, newBytes, newTrunc)
		}
		if err != nil {
			return err
		}
		if len(store) == 0 {
			return nil
		}
		var last int64
		if err := tx.QueryRow(ctx, `INSERT INTO job_log_heads (job_id, last_seq) VALUES ($1, $2)
			ON CONFLICT (job_id) DO UPDATE SET last_seq = job_log_heads.last_seq + excluded.last_seq
			RETURNING last_seq`, jobID, len(store)).Scan(&last); err != nil {
			return err
		}
		first := last - int64(len(store)) + 1
		// The id as a pgtype.UUID: a string would be parsed for every row,
		// and uuid.UUID is a driver.Valuer, which pgx encodes by first
		// trying (and failing, building an error each time) its other
		// plans — a third of the server's CPU in a log flood.
		uid := pgtype.UUID{Bytes: uuid.MustParse(jobID), Valid: true}
		attempt32 := int32(a.Attempt)
		out.Lines = make([]stroem.LogLine, len(store))
		rows := make([][]any, len(store))
		for i, l := range store {
			seq := first + int64(i)
			out.Lines[i] = stroem.LogLine{Seq: seq, Step: a.Step, Attempt: a.Attempt, TS: l.TS, Stream: l.Stream, Text: l.Text}
			rows[i] = []any{uid, seq, a.Step, attempt32, l.TS, string(l.Stream), l.Text}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"job_logs"},
			[]string{"job_id", "seq", "step_name", "attempt", "ts", "stream", "text"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, persistence.ChannelLogs,
			s.origin+":"+jobID+":"+strconv.FormatInt(last, 10))
		return err
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
// query, by the primary key or the step index), calling fn between queries,
// so neither memory nor an open transaction grows with the log.
func (s *Store) LogScan(ctx context.Context, jobID string, afterSeq int64, step string, fn func(stroem.LogLine) error) error {
	if !validUUID(jobID) {
		return nil
	}
	id := canonicalUUID(jobID)
	page := make([]stroem.LogLine, 0, persistence.LogPageSize)
	for {
		page = page[:0]
		var rows pgx.Rows
		var err error
		if step == "" {
			rows, err = s.pool.Query(ctx, `SELECT seq, step_name, attempt, ts, stream, text FROM job_logs
				WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, id, afterSeq, persistence.LogPageSize)
		} else {
			rows, err = s.pool.Query(ctx, `SELECT seq, step_name, attempt, ts, stream, text FROM job_logs
				WHERE job_id = $1 AND step_name = $3 AND seq > $2 ORDER BY seq LIMIT $4`, id, afterSeq, step, persistence.LogPageSize)
		}
		if err != nil {
			return fmt.Errorf("read logs of job %s: %w", id, interpretError(err))
		}
		for rows.Next() {
			var l stroem.LogLine
			var stream string
			var ts time.Time
			if err := rows.Scan(&l.Seq, &l.Step, &l.Attempt, &ts, &stream, &l.Text); err != nil {
				rows.Close()
				return fmt.Errorf("read logs of job %s: %w", id, interpretError(err))
			}
			l.TS, l.Stream = ts.UTC(), stroem.Stream(stream)
			page = append(page, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
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
	if !validUUID(jobID) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT step_name FROM step_logs WHERE job_id = $1 AND truncated ORDER BY step_name`, canonicalUUID(jobID))
	if err != nil {
		return nil, fmt.Errorf("read truncated logs of job %s: %w", jobID, interpretError(err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read truncated logs of job %s: %w", jobID, interpretError(err))
	}
	return names, nil
}

// Notify sends payload on channel to every listening server.
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		return fmt.Errorf("notify %s: %w", channel, interpretError(err))
	}
	return nil
}
