package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// The rules of a JobUpdate (what it validates and fills in) are
// persistence.Diff, shared with the PostgreSQL store; the conformance suite
// in persistence/storetest holds both stores to them.

// JobUpdate is the one mechanism for every state change of a job. In one
// write transaction (which excludes every other writer) it loads the job
// and its steps, reads the clock into JobState.Now, calls fn on the state,
// and writes exactly what fn changed: each changed step, the attempt record
// of each step whose current attempt changed, and the job.
//
// If fn returns an error, nothing is written and that error is returned
// unchanged. The store fills in the same timestamps as the PostgreSQL
// store: a step's CompletedAt when it becomes terminal (cleared when it
// goes back to ready), its ReadyAt when it becomes ready without fn
// choosing one, its LeaseExpiresAt cleared when it stops running; the
// job's StartedAt when it becomes running and CompletedAt when it ends; an
// attempt's completion time when its status becomes terminal. Every status
// change is checked with CanTransition; an invalid one rolls everything
// back. Strings in inputs, outputs and error messages are sanitized, and
// the returned state is the state as written. An unknown job is
// CodeNotFound.
func (s *Store) JobUpdate(ctx context.Context, jobID string, fn func(*persistence.JobState) error) (*persistence.JobState, error) {
	id, ok := canonicalUUID(jobID)
	if !ok {
		return nil, notFound("job %s not found", jobID)
	}
	cached := s.steps.Get(id)
	for {
		result, keep, since, err := s.jobUpdateOnce(ctx, id, fn, cached)
		if err == nil {
			s.steps.Keep(id, result, keep, since)
			return result, nil
		}
		if cbErr, ok := persistence.CallbackErr(err); ok {
			return nil, cbErr // rolled back: the kept steps still hold
		}
		s.steps.Drop(id)
		if errors.As(err, new(persistence.StaleCacheError)) && cached != nil {
			cached = nil // never expected; read everything once more
			continue
		}
		return nil, fmt.Errorf("update job %s: %w", jobID, interpretError(err))
	}
}

// jobUpdateOnce runs one JobUpdate transaction, reading only the step rows
// written since cached was read (all of them when cached is nil). It
// returns the state as written (sealed), the steps for the cache and the
// horizon of the read. The cache's steps are the ones fn did not change,
// shared with what was read, and before's of the ones it did: those were
// written in this transaction, so the next read takes them anew.
func (s *Store) jobUpdateOnce(ctx context.Context, id string, fn func(*persistence.JobState) error, cached *persistence.CachedSteps) (*persistence.JobState, []*persistence.StepState, int64, error) {
	var (
		result *persistence.JobState
		keep   []*persistence.StepState
		since  int64
	)
	err := s.writeTx(ctx, func(tx *txn, now time.Time) error {
		before, horizon, err := loadStateSince(ctx, tx, id, now, cached)
		if err != nil {
			return err
		}
		st := before.Share() // copies a step the first time fn changes it
		if err := fn(st); err != nil {
			return persistence.CallbackError{Err: err}
		}
		if err := writeState(ctx, tx, before, st); err != nil {
			return err
		}
		st.Seal()
		keep = st.StepsShared()
		for _, i := range st.Changed() {
			if i < before.Len() {
				keep[i] = before.SharedAt(i)
			}
		}
		result, since = st, horizon
		return nil
	})
	return result, keep, since, err
}

// writeState validates the changes from before to after, completes the
// automatic fields of after, and writes the changed rows.
func writeState(ctx context.Context, tx *txn, before, after *persistence.JobState) error {
	changed, jobChanged, err := persistence.Diff(before, after)
	if err != nil {
		return err
	}
	now := after.Now
	// Everything is validated: only now write. Offers
	// (persistence.JobState.Offer): the write transaction holds the only
	// write lock since the read, so an offered step is still ready and no
	// claim holds it. The offers are taken unless another job has a step
	// their claims could take (persistence.OfferBound) ready since before
	// the newest offered step became ready (the bound PostgreSQL uses).
	var (
		offers     []persistence.Route
		offerReady *time.Time
	)
	for _, w := range changed {
		if w.Offer == nil {
			continue
		}
		if w.Old.ReadyAt != nil && (offerReady == nil || w.Old.ReadyAt.After(*offerReady)) {
			offerReady = w.Old.ReadyAt
		}
		offers = append(offers, *w.Offer)
	}
	takeOffers := true
	if offers != nil {
		older, err := olderReady(ctx, tx, after.Job.ID, offerReady, persistence.OfferBound(offers))
		if err != nil {
			return err
		}
		takeOffers = !older
	}
	for _, w := range changed {
		cur := w.Cur
		if w.Offer != nil && !takeOffers {
			after.Untake(cur.Position, before)
			continue
		}
		if w.Insert {
			if err := insertSkeleton(ctx, tx, after.Job.ID, w.Old); err != nil {
				return err
			}
		}
		input, err := encodeJSON(cur.Input)
		if err != nil {
			return err
		}
		output, err := persistence.EncodeJSONValue(cur.Output)
		if err != nil {
			return err
		}
		outputText := jsonText(output)
		var worker, exitCode any
		if cur.WorkerID != "" {
			worker = cur.WorkerID
		}
		if cur.ExitCode != nil {
			exitCode = *cur.ExitCode
		}
		if _, err := tx.ExecContext(ctx, `UPDATE job_steps SET status = ?, input = ?, output = ?, error_message = ?,
				worker_id = ?, attempt = ?, attempt_status = ?, exit_code = ?, lease_expires_at = ?, ready_at = ?,
				cancel_requested = ?, started_at = ?, completed_at = ?,
				started_attempt = CASE WHEN ? THEN ? ELSE started_attempt END,
				handed_for = CASE WHEN ? THEN ? ELSE handed_for END, `+stampVersion+`
			WHERE job_id = ? AND step_name = ?`,
			string(cur.Status), input, outputText, cur.ErrorMessage, worker, cur.Attempt, string(cur.AttemptStatus),
			exitCode, nanosPtr(cur.LeaseExpiresAt), nanosPtr(cur.ReadyAt), cur.CancelRequested,
			nanosPtr(cur.StartedAt), nanosPtr(cur.CompletedAt),
			cur.Status == stroem.StepRunning && cur.StartedAttempt == cur.Attempt, cur.Attempt,
			cur.Attempt != w.Old.Attempt, w.HandedFor, after.Job.ID, cur.Name); err != nil {
			return err
		}
		if !w.Attempt {
			continue
		}
		started := now
		if cur.StartedAt != nil {
			started = *cur.StartedAt
		}
		var completed any
		if cur.AttemptStatus != stroem.AttemptRunning {
			completed = nanos(now)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO step_attempts AS a (job_id, step_name, attempt, worker_id,
				status, exit_code, error_message, started_at, completed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (job_id, step_name, attempt) DO UPDATE SET
				worker_id = excluded.worker_id, status = excluded.status, exit_code = excluded.exit_code,
				error_message = excluded.error_message,
				completed_at = CASE WHEN excluded.status = 'running' THEN NULL
					ELSE coalesce(a.completed_at, excluded.completed_at) END`,
			after.Job.ID, cur.Name, cur.Attempt, cur.WorkerID, string(cur.AttemptStatus), exitCode,
			cur.ErrorMessage, nanos(started), completed); err != nil {
			return err
		}
	}
	if jobChanged {
		output, err := encodeJSON(after.Job.Output)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, output = ?, cancel_requested = ?,
				started_at = ?, completed_at = ?
			WHERE id = ?`,
			string(after.Job.Status), output, after.CancelRequested, nanosPtr(after.Job.StartedAt),
			nanosPtr(after.Job.CompletedAt), after.Job.ID); err != nil {
			return err
		}
	}
	return nil
}

// olderReady says whether a job other than jobID has a step that r takes
// ready since before readyAt: a claim would take that one first.
func olderReady(ctx context.Context, tx *txn, jobID string, readyAt *time.Time, r persistence.Route) (bool, error) {
	if readyAt == nil {
		return false, nil
	}
	var older bool
	err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM job_steps
		WHERE status = 'ready' AND ready_at < ?1 AND action_type IN (SELECT value FROM json_each(?2)) AND job_id <> ?3
			AND `+tagsMatchSQL+`)`,
		nanos(*readyAt), encodeStrings(r.Capabilities), jobID, nil, nil, encodeStrings(r.Tags), r.Exclusive).Scan(&older)
	return older, err
}
