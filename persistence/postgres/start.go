package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// StepStart records the worker's acknowledgement of a step handed to it: the
// attempt is started, and is no longer given back for want of one. It is
// fenced like StepFence (CodeConflict when the worker does not hold that
// running attempt — it was given back, or lost), idempotent, and returns
// whether a cancel was requested.
func (s *Store) StepStart(ctx context.Context, jobID, step string, attempt int, workerID string) (bool, error) {
	if !validUUID(jobID) {
		return false, notFound("job %s not found", jobID)
	}
	var cancel bool
	err := s.retry(ctx, func() error {
		return s.pool.QueryRow(ctx, startSQL, jobID, step, attempt, canonicalUUID(workerID), string(stroem.StepRunning)).Scan(&cancel)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		// Not held: StepFence says why (unknown step, or another attempt).
		if _, err := s.StepFence(ctx, jobID, step, attempt, workerID); err != nil {
			return false, err
		}
		return false, stroem.Errorf(stroem.CodeConflict, "step %s of job %s: attempt %d is no longer running", step, jobID, attempt)
	}
	if err != nil {
		return false, fmt.Errorf("start step %s of job %s: %w", step, jobID, interpretError(err))
	}
	return cancel, nil
}

// startSQL acknowledges an attempt (see StepStart). The status it requires
// is a parameter ($5, 'running'), not a constant: with the constant, the
// planner can prove the predicate of the partial index of running steps
// (job_steps_lease_idx) and, on a young table whose statistics call that
// index tiny, picked it over the primary key — a scan of every running
// step and of their dead versions for each acknowledgement (about 250
// index entries per call in the bench's fan-out). A generic plan cannot
// use a partial index for a parameter, so it looks the row up by key.
const startSQL = `UPDATE job_steps SET started_attempt = attempt
	WHERE job_id = $1 AND step_name = $2 AND status = $5 AND attempt = $3 AND worker_id = $4
	RETURNING cancel_requested`

// giveBackSQL puts back to ready, as unclaimSQL does, the running steps
// whose current attempt was handed over at least $1 ms ago and never
// acknowledged, in one statement: the acknowledgement (StepStart) and the
// give-back lock the same row, so exactly one of them wins.
const giveBackSQL = `
WITH picked AS MATERIALIZED (
	SELECT job_id, step_name, attempt, worker_id
	FROM job_steps
	WHERE status = 'running' AND started_attempt <> attempt AND NOT cancel_requested
		AND started_at <= now() - $1 * interval '1 millisecond'
	ORDER BY started_at, job_id, position
	LIMIT $2
	FOR UPDATE SKIP LOCKED
), undone AS (
	UPDATE job_steps s SET
		status = 'ready', attempt = s.attempt - 1,
		worker_id = prev.worker_id,
		attempt_status = coalesce(prev.status, ''),
		exit_code = prev.exit_code,
		error_message = coalesce(prev.error_message, ''),
		started_at = prev.started_at,
		lease_expires_at = NULL, completed_at = NULL
	FROM picked p LEFT JOIN step_attempts prev
		ON prev.job_id = p.job_id AND prev.step_name = p.step_name AND prev.attempt = p.attempt - 1
	WHERE s.job_id = p.job_id AND s.step_name = p.step_name
	RETURNING s.job_id, s.step_name, p.attempt, p.worker_id
), forgotten AS (
	DELETE FROM step_attempts a USING undone u
	WHERE a.job_id = u.job_id AND a.step_name = u.step_name AND a.attempt = u.attempt
)
SELECT u.job_id::text, u.step_name, u.attempt, coalesce(u.worker_id, ''),
	pg_notify('` + persistence.ChannelStepsReady + `', $3 || ':' || u.job_id::text)
FROM undone u`

// StepsGiveBackUnstarted gives back up to limit running steps handed to a
// worker at least unackedFor ago that the worker never acknowledged
// (StepStart): each is ready again, first in line, with its attempt
// forgotten, as StepUnclaim does. A step whose job is being cancelled is
// left to its lease. It returns the steps given back, with the attempt and
// worker they had.
func (s *Store) StepsGiveBackUnstarted(ctx context.Context, unackedFor time.Duration, limit int) ([]persistence.HeldStep, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []persistence.HeldStep
	err := s.retry(ctx, func() error {
		rows, err := s.pool.Query(ctx, giveBackSQL, unackedFor.Milliseconds(), limit, s.origin)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (persistence.HeldStep, error) {
			var h persistence.HeldStep
			err := row.Scan(&h.JobID, &h.Step, &h.Attempt, &h.WorkerID, nil)
			return h, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("give back unstarted steps: %w", interpretError(err))
	}
	return out, nil
}
