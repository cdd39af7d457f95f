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
	jobID, lines, err := persistence.PrepareLogAppend(a)
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
		return out, errs.Coded(err, "append logs of step %s of job %s", a.Step, a.JobID)
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
		r  persistence.FenceRead
		st persistence.StepLogState
	)
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(`SELECT `+persistence.FenceColumns+`
		FROM job_steps WHERE job_id = $1 AND step_name = $2 FOR SHARE`, uid, a.Step)
	b.Queue(`SELECT `+persistence.StepLogColumns+` FROM step_logs
		WHERE job_id = $1 AND step_name = $2 FOR UPDATE`, uid, a.Step)
	open = true
	err = func() error {
		br := conn.SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		err := br.QueryRow().Scan(r.Dest()...)
		out.Cancel = r.Cancel
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("step %s of job %s not found", a.Step, jobID)
		}
		if err != nil {
			return err
		}
		if st.Seen, err = errs.Found(br.QueryRow().Scan(st.Dest()...)); err != nil {
			return err
		}
		return br.Close()
	}()
	if err != nil {
		return out, err
	}
	if err := r.Holder.Fence(persistence.AttemptFence{JobID: jobID, Step: a.Step, Attempt: a.Attempt, WorkerID: a.WorkerID}, "log lines"); err != nil {
		return out, err
	}
	// Nothing to write: ROLLBACK, not COMMIT. The locking reads gave the
	// transaction an id, so a COMMIT would write and flush (fsync) a
	// commit record for nothing; a rollback releases the locks the same.
	plan := persistence.PlanLogAppend(a, lines, st)
	if !plan.Write {
		out.Ahead = plan.Ahead // earlier lines of the attempt are still on their way
		_, err := conn.Exec(ctx, "ROLLBACK")
		open = err != nil
		return out, err
	}
	store, next := plan.Store, plan.State

	// Round trip 2: the step's log state, the lines with their seqs and
	// the NOTIFY, COMMIT.
	b = &pgx.Batch{}
	if next.Seen {
		b.Queue(`UPDATE step_logs SET attempt = $3, next_offset = $4, bytes = $5, truncated = $6
			WHERE job_id = $1 AND step_name = $2`, uid, a.Step, next.Attempt, next.Next, next.Bytes, next.Truncated)
	} else {
		b.Queue(`INSERT INTO step_logs (job_id, step_name, attempt, next_offset, bytes, truncated)
			VALUES ($1, $2, $3, $4, $5, $6)`, uid, a.Step, next.Attempt, next.Next, next.Bytes, next.Truncated)
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
	out.Lines = persistence.StoredLines(a, store, last-int64(len(store))+1)
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
	return persistence.ScanLogPages(afterSeq, fn, func(after int64) ([]stroem.LogLine, error) {
		var args params
		q := persistence.LogPageQuery(id, step, after, args.add, false)
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return nil, errs.Wrap(err, "read logs of job %s", id)
		}
		defer rows.Close()
		page, err := persistence.CollectRows(rows, func() (stroem.LogLine, error) {
			var r persistence.LogRow
			err := rows.Scan(r.Dest(&r.Line.TS)...)
			return r.Decode(), err
		})
		return page, errs.Wrap(err, "read logs of job %s", id)
	})
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
