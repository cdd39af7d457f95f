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

// StepStart records the worker's acknowledgement of a step handed to it:
// the attempt is started, and is no longer given back for want of one. It
// is fenced like StepFence, idempotent, and returns whether a cancel was
// requested (the PostgreSQL store's rules).
func (s *Store) StepStart(ctx context.Context, jobID, step string, attempt int, workerID string) (bool, error) {
	id, ok := canonicalUUID(jobID)
	if !ok {
		return false, notFound("job %s not found", jobID)
	}
	var cancel, held bool
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		err := tx.QueryRowContext(ctx, `UPDATE job_steps SET started_attempt = attempt, `+stampVersion+`
			WHERE job_id = ? AND step_name = ? AND status = 'running' AND attempt = ? AND worker_id = ?
			RETURNING cancel_requested`, id, step, attempt, canonicalWorker(workerID)).Scan(&cancel)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		held = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("start step %s of job %s: %w", step, jobID, interpretError(err))
	}
	if !held {
		// Not held: StepFence says why (unknown step, or another attempt).
		if _, err := s.StepFence(ctx, jobID, step, attempt, workerID); err != nil {
			return false, err
		}
		return false, stroem.Errorf(stroem.CodeConflict, "step %s of job %s: attempt %d is no longer running", step, jobID, attempt)
	}
	return cancel, nil
}

// StepsGiveBackUnstarted gives back up to limit running steps handed to a
// worker at least unackedFor ago that the worker never acknowledged
// (StepStart), as StepUnclaim does, and returns them with the attempt and
// worker they had. A step whose job is being cancelled is left to its lease.
func (s *Store) StepsGiveBackUnstarted(ctx context.Context, unackedFor time.Duration, limit int) ([]persistence.HeldStep, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []persistence.HeldStep
	err := s.writeTx(ctx, func(tx *txn, now time.Time) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `SELECT job_id, step_name, attempt, coalesce(worker_id, '')
			FROM job_steps
			WHERE status = 'running' AND started_attempt <> attempt AND NOT cancel_requested AND started_at <= ?
			ORDER BY started_at, job_id, position LIMIT ?`, nanos(now.Add(-unackedFor)), limit)
		picked, err := collect(rows, err, scanHeld)
		if err != nil {
			return err
		}
		for _, h := range picked {
			undone, err := unclaimTx(ctx, tx, h.JobID, h.Step, h.Attempt, h.WorkerID, "")
			if err != nil {
				return err
			}
			if undone {
				out = append(out, h)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("give back unstarted steps: %w", interpretError(err))
	}
	return out, nil
}
