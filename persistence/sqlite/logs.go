package sqlite

import (
	"context"
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
	jobID, lines, err := persistence.PrepareLogAppend(a)
	if err != nil {
		return out, err
	}
	err = s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		out = persistence.LogAppended{}
		var r persistence.FenceRead
		err := tx.QueryRowContext(ctx, `SELECT `+persistence.FenceColumns+`
			FROM job_steps WHERE job_id = ? AND step_name = ?`, jobID, a.Step).Scan(r.Dest()...)
		out.Cancel = r.Cancel
		f := persistence.AttemptFence{JobID: jobID, Step: a.Step, Attempt: a.Attempt, WorkerID: a.WorkerID}
		if err := errs.Fence(err, r.Holder, f, "log lines"); err != nil {
			return err
		}
		if len(lines) == 0 {
			return nil
		}
		var st persistence.StepLogState
		st.Seen, err = errs.Found(tx.QueryRowContext(ctx, `SELECT `+persistence.StepLogColumns+` FROM step_logs
			WHERE job_id = ? AND step_name = ?`, jobID, a.Step).Scan(st.Dest()...))
		if err != nil {
			return err
		}
		plan := persistence.PlanLogAppend(a, lines, st)
		out.Ahead = plan.Ahead // earlier lines of the attempt are still on their way
		if !plan.Write {
			return nil
		}
		store, next := plan.Store, plan.State
		if next.Seen {
			_, err = tx.ExecContext(ctx, `UPDATE step_logs SET attempt = ?, next_offset = ?, bytes = ?, truncated = ?
				WHERE job_id = ? AND step_name = ?`, next.Attempt, next.Next, next.Bytes, next.Truncated, jobID, a.Step)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO step_logs (job_id, step_name, attempt, next_offset, bytes, truncated)
				VALUES (?, ?, ?, ?, ?, ?)`, jobID, a.Step, next.Attempt, next.Next, next.Bytes, next.Truncated)
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
		out.Lines = persistence.StoredLines(a, store, first)
		for _, l := range out.Lines {
			if _, err := ins.ExecContext(ctx, jobID, l.Seq, a.Step, a.Attempt, nanos(l.TS), string(l.Stream), l.Text); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		out.Lines = nil
		return out, errs.Coded(err, "append logs of step %s of job %s", a.Step, a.JobID)
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
	return persistence.ScanLogPages(afterSeq, fn, func(after int64) ([]stroem.LogLine, error) {
		var args params
		q := persistence.LogPageQuery(id, step, after, args.add, true)
		rows, err := s.query(ctx, q, args...)
		if err != nil {
			return nil, errs.Wrap(err, "read logs of job %s", id)
		}
		defer rows.Close()
		page, err := persistence.CollectRows(rows, func() (stroem.LogLine, error) {
			var r persistence.LogRow
			err := rows.Scan(r.Dest(timeVal{&r.Line.TS})...)
			return r.Decode(), err
		})
		return page, errs.Wrap(err, "read logs of job %s", id)
	})
}

// LogTruncatedSteps names the job's steps whose log reached the limit.
func (s *Store) LogTruncatedSteps(ctx context.Context, jobID string) ([]string, error) {
	id, ok := canonicalUUID(jobID)
	if !ok {
		return nil, nil
	}
	names, err := column(s.query(ctx, `SELECT step_name FROM step_logs WHERE job_id = ? AND truncated ORDER BY step_name`, id))
	if err != nil {
		return nil, fmt.Errorf("read truncated logs of job %s: %w", id, interpretError(err))
	}
	return names, nil
}
