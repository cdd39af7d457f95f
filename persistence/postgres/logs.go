package postgres

import (
	"context"
	"errors"
	"fmt"
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
// offset, size limit, seqs from the job's counter row, the lines, and a
// NOTIFY on persistence.ChannelLogs delivered at commit.
//
// The transaction takes two round trips to the database, each a pipelined
// batch: BEGIN with the two locking reads, then the step_logs write, the
// lines (one INSERT of unnested arrays, which also takes the seqs and
// sends the NOTIFY) and COMMIT. The step's lock is held for about one
// round trip and the commit, so a worker's pushes in flight queue on it
// briefly, not for a conversation of ten statements.
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
	for attempt := 1; ; attempt++ {
		out, err = s.tryLogAppend(ctx, a, jobID, lines)
		if err == nil || !retryable(err) || attempt >= maxTxAttempts || ctx.Err() != nil {
			break
		}
		s.log.Debug("log append retried", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		}
	}
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

// tryLogAppend is one try of LogAppend's transaction, on a connection of
// its own: BEGIN and COMMIT go in the batches.
func (s *Store) tryLogAppend(ctx context.Context, a persistence.LogAppend, jobID string, lines []stroem.PushLine) (out persistence.LogAppended, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return out, err
	}
	defer conn.Release()
	open := false // a transaction is open on conn
	defer func() {
		if open {
			// Ends an aborted or unfinished transaction; should that fail,
			// the pool closes a connection it gets back inside one.
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	uid := pgtype.UUID{Bytes: uuid.MustParse(jobID), Valid: true}

	// Round trip 1: BEGIN, the fence, the step's log state.
	var (
		status, holder string
		current        int
		attempt        int
		next, bytes    int64
		truncated      bool
		seen           bool
	)
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(`SELECT status, attempt, coalesce(worker_id, ''), cancel_requested
		FROM job_steps WHERE job_id = $1 AND step_name = $2 FOR SHARE`, uid, a.Step)
	b.Queue(`SELECT attempt, next_offset, bytes, truncated FROM step_logs
		WHERE job_id = $1 AND step_name = $2 FOR UPDATE`, uid, a.Step)
	open = true
	err = func() error {
		br := conn.SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		err := br.QueryRow().Scan(&status, &current, &holder, &out.Cancel)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("step %s of job %s not found", a.Step, jobID)
		}
		if err != nil {
			return err
		}
		err = br.QueryRow().Scan(&attempt, &next, &bytes, &truncated)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			seen = true
		}
		return br.Close()
	}()
	if err != nil {
		return out, err
	}
	if status != string(stroem.StepRunning) || current != a.Attempt || holder != canonicalUUID(a.WorkerID) {
		return out, stroem.Errorf(stroem.CodeConflict,
			"step %s of job %s: attempt %d of worker %s is not the running attempt (step is %s, attempt %d): its log lines are not stored",
			a.Step, jobID, a.Attempt, a.WorkerID, status, current)
	}
	// Nothing to write: ROLLBACK, not COMMIT. The locking reads gave the
	// transaction an id, so a COMMIT would write and flush (fsync) a
	// commit record for nothing; a rollback releases the locks the same.
	if len(lines) == 0 || persistence.LogAhead(a, attempt, next) {
		out.Ahead = len(lines) > 0 // earlier lines of the attempt are still on their way
		_, err := conn.Exec(ctx, "ROLLBACK")
		open = err != nil
		return out, err
	}
	if attempt != a.Attempt {
		next = 0 // a new attempt: its offsets start over
	}
	fresh := lines
	if skip := next - a.Offset; skip > 0 {
		if skip >= int64(len(fresh)) {
			_, err := conn.Exec(ctx, "ROLLBACK") // all stored already: a retried push
			open = err != nil
			return out, err
		}
		fresh = fresh[skip:]
	}
	end := a.Offset + int64(len(lines))
	store, newBytes, newTrunc := persistence.LogLimit(fresh, bytes, truncated, a.MaxStepBytes, a.Step)

	// Round trip 2: the step's log state, the lines with their seqs and
	// the NOTIFY, COMMIT.
	b = &pgx.Batch{}
	if seen {
		b.Queue(`UPDATE step_logs SET attempt = $3, next_offset = $4, bytes = $5, truncated = $6
			WHERE job_id = $1 AND step_name = $2`, uid, a.Step, a.Attempt, max(end, next), newBytes, newTrunc)
	} else {
		b.Queue(`INSERT INTO step_logs (job_id, step_name, attempt, next_offset, bytes, truncated)
			VALUES ($1, $2, $3, $4, $5, $6)`, uid, a.Step, a.Attempt, end, newBytes, newTrunc)
	}
	if len(store) > 0 {
		ts := make([]time.Time, len(store))
		streams := make([]string, len(store))
		texts := make([]string, len(store))
		for i, l := range store {
			ts[i], streams[i], texts[i] = l.TS, string(l.Stream), l.Text
		}
		// The NOTIFY is sent at commit, after the lines are visible.
		b.Queue(`WITH head AS (
				INSERT INTO job_log_heads (job_id, last_seq) VALUES ($1, $2)
				ON CONFLICT (job_id) DO UPDATE SET last_seq = job_log_heads.last_seq + excluded.last_seq
				RETURNING last_seq
			), stored AS (
				INSERT INTO job_logs (job_id, seq, step_name, attempt, ts, stream, text)
				SELECT $1, head.last_seq - $2 + l.ord, $3, $4, l.ts, l.stream, l.text
				FROM head, unnest($5::timestamptz[], $6::text[], $7::text[]) WITH ORDINALITY AS l (ts, stream, text, ord)
			)
			SELECT head.last_seq, pg_notify($8, $9 || head.last_seq::text) FROM head`,
			uid, int64(len(store)), a.Step, int32(a.Attempt), ts, streams, texts,
			persistence.ChannelLogs, s.origin+":"+jobID+":")
	}
	b.Queue("COMMIT")
	var last int64
	err = func() error {
		br := conn.SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		if len(store) > 0 {
			if err := br.QueryRow().Scan(&last, nil); err != nil {
				return err
			}
		}
		tag, err := br.Exec()
		if err != nil {
			return err
		}
		if tag.String() != "COMMIT" {
			return fmt.Errorf("commit: the transaction was rolled back (%s)", tag)
		}
		return br.Close()
	}()
	if err != nil {
		return out, err
	}
	open = false
	first := last - int64(len(store)) + 1
	out.Lines = make([]stroem.LogLine, len(store))
	for i, l := range store {
		out.Lines[i] = stroem.LogLine{Seq: first + int64(i), Step: a.Step, Attempt: a.Attempt, TS: l.TS, Stream: l.Stream, Text: l.Text}
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
