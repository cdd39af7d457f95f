package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// claimSQL moves up to ? ready steps whose action type the worker runs
// and whose tags match the worker's (?6, a JSON list, exclusive ?7:
// stroem.TagsMatch; a step without tags is '[]', taken without looking
// into the list), oldest ready first, to running under a new attempt and a lease. It runs
// in a write transaction, which holds SQLite's only write lock from BEGIN
// IMMEDIATE on: no other claim or update can interleave, which is what
// FOR UPDATE SKIP LOCKED achieves in PostgreSQL.
const claimSQL = `
UPDATE job_steps SET
	status = 'running', worker_id = ?1, attempt = attempt + 1, attempt_status = 'running',
	exit_code = NULL, error_message = '', lease_expires_at = ?2 + ?3, started_at = ?2, completed_at = NULL,
	handed_for = '', ` + stampVersion + `
WHERE (job_id, step_name) IN (
	SELECT job_id, step_name FROM job_steps
	WHERE status = 'ready' AND ready_at <= ?2 AND action_type IN (SELECT value FROM json_each(?4))
		AND ` + tagsMatchSQL + `
	ORDER BY ready_at, position, job_id
	LIMIT ?5
)
RETURNING job_id, step_name, attempt, action_name, action_type, image, input, lease_expires_at, ready_at, position`

// tagsMatchSQL is stroem.TagsMatch of a job_steps row's required_tags and a
// worker's tags (?6, a JSON list) and exclusive flag (?7).
const tagsMatchSQL = `(required_tags = '[]' OR NOT EXISTS (SELECT 1 FROM json_each(required_tags) t
		WHERE t.value NOT IN (SELECT value FROM json_each(?6))))
	AND (NOT ?7 OR NOT EXISTS (SELECT 1 FROM json_each(?6) w
		WHERE w.value NOT IN (SELECT value FROM json_each(required_tags))))`

// StepsClaim moves up to p.Limit ready steps whose action type is among
// p.Capabilities and whose tags match p.Tags and p.Exclusive
// (stroem.TagsMatch) to running for p.WorkerID, each with a new attempt number
// and a lease of p.Lease, in one transaction, and marks their jobs running.
// It never returns a step twice, whatever the number of concurrent
// claimers. Finding nothing is not an error: the result is empty.
func (s *Store) StepsClaim(ctx context.Context, p persistence.ClaimParams) ([]persistence.ClaimedStep, error) {
	limit, err := p.Batch()
	if err != nil || limit == 0 {
		return nil, err
	}
	worker := canonicalWorker(p.WorkerID)
	caps := encodeStrings(p.Capabilities)
	type claimed struct {
		persistence.ClaimedStep
		readyAt  int64
		position int
	}
	var out []claimed
	err = s.writeTx(ctx, func(tx *txn, now time.Time) error {
		rows, err := tx.QueryContext(ctx, claimSQL, worker, nanos(now), p.Lease.Nanoseconds(), caps, limit,
			encodeStrings(persistence.NormalTags(p.Tags)), p.Exclusive)
		out, err = collect(rows, err, func(row rowScanner) (c claimed, err error) {
			var input []byte
			if err := row.Scan(&c.JobID, &c.StepName, &c.Attempt, &c.ActionName, &c.ActionType, &c.Image,
				&input, timeVal{&c.LeaseExpiresAt}, &c.readyAt, &c.position); err != nil {
				return c, err
			}
			c.Input, err = persistence.DecodeJSON(input)
			return c, err
		})
		if err != nil || len(out) == 0 {
			return err
		}
		// RETURNING has no order: sort as the claim picked them, which
		// the completions' links (p.Handed) follow.
		slices.SortFunc(out, func(a, b claimed) int {
			if a.readyAt != b.readyAt {
				return cmp.Compare(a.readyAt, b.readyAt)
			}
			if a.position != b.position {
				return a.position - b.position
			}
			return strings.Compare(a.JobID, b.JobID)
		})
		for i := range min(len(p.Handed), len(out)) {
			if _, err := tx.ExecContext(ctx, `UPDATE job_steps SET started_attempt = attempt, handed_for = ?, `+stampVersion+`
				WHERE job_id = ? AND step_name = ?`, p.Handed[i], out[i].JobID, out[i].StepName); err != nil {
				return err
			}
			out[i].HandedFor = p.Handed[i]
		}
		jobs := map[string]bool{}
		for _, c := range out {
			if _, err := tx.ExecContext(ctx, `INSERT INTO step_attempts (job_id, step_name, attempt, worker_id, status, started_at)
				VALUES (?1, ?2, ?3, ?4, 'running', ?5)
				ON CONFLICT (job_id, step_name, attempt) DO UPDATE SET
					worker_id = excluded.worker_id, status = 'running', exit_code = NULL, error_message = '',
					started_at = excluded.started_at, completed_at = NULL`,
				c.JobID, c.StepName, c.Attempt, worker, nanos(now)); err != nil {
				return err
			}
			jobs[c.JobID] = true
		}
		for id := range jobs {
			var (
				ws, task, rev, snap string
				scopes              stroem.AssignmentState
			)
			if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = 'running', started_at = coalesce(started_at, ?2)
				WHERE id = ?1 AND status = 'pending'`, id, nanos(now)); err != nil {
				return err
			}
			if err := tx.QueryRowContext(ctx, `SELECT workspace, task_name, revision, coalesce(snapshot_id, ''),
				`+stateScopesColumns+` FROM jobs WHERE id = ?`, id).Scan(&ws, &task, &rev, &snap, &scopes.Task, &scopes.Global); err != nil {
				return err
			}
			for i := range out {
				if out[i].JobID == id {
					out[i].Workspace, out[i].TaskName, out[i].Revision, out[i].SnapshotID = ws, task, rev, snap
					sc := scopes
					out[i].StateScopes = &sc
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim steps for worker %s: %w", worker, interpretError(err))
	}
	steps := make([]persistence.ClaimedStep, len(out))
	for i, c := range out {
		steps[i] = c.ClaimedStep
	}
	return steps, nil
}

// StepsHandedFor returns the steps a claim recorded as started for the
// completion link (ClaimParams.Handed) that workerID still runs at that
// attempt, as StepsClaim returned them, and marks them redelivered ('!'
// before the link): from then on StepUnclaimHanded, which needs the bare
// link, leaves them alone. None is not an error.
func (s *Store) StepsHandedFor(ctx context.Context, workerID, link string) ([]persistence.ClaimedStep, error) {
	if workerID == "" || !persistence.ValidHandedLink(link) {
		return nil, nil
	}
	var out []persistence.ClaimedStep
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		rows, err := tx.QueryContext(ctx, `UPDATE job_steps SET handed_for = '!' || ?2
			WHERE status = 'running' AND worker_id = ?1 AND handed_for IN (?2, '!' || ?2) AND started_attempt = attempt
			RETURNING job_id, step_name`, canonicalWorker(workerID), link)
		keys, err := collect(rows, err, func(row rowScanner) (k [2]string, err error) {
			return k, row.Scan(&k[0], &k[1])
		})
		if err != nil || len(keys) == 0 {
			out = nil
			return err
		}
		rows, err = tx.QueryContext(ctx, `SELECT s.job_id, s.step_name, s.attempt, s.action_name, s.action_type, s.image,
				s.input, s.lease_expires_at, jobs.workspace, jobs.task_name, jobs.revision, coalesce(jobs.snapshot_id, ''),
				`+stateScopesColumns+`
			FROM job_steps s JOIN jobs ON jobs.id = s.job_id
			WHERE s.status = 'running' AND s.worker_id = ? AND s.handed_for = '!' || ? AND s.started_attempt = s.attempt
			ORDER BY s.ready_at, s.position, s.job_id`, canonicalWorker(workerID), link)
		out, err = collect(rows, err, func(row rowScanner) (c persistence.ClaimedStep, err error) {
			var (
				input  []byte
				scopes stroem.AssignmentState
			)
			if err := row.Scan(&c.JobID, &c.StepName, &c.Attempt, &c.ActionName, &c.ActionType, &c.Image,
				&input, timeVal{&c.LeaseExpiresAt}, &c.Workspace, &c.TaskName, &c.Revision, &c.SnapshotID,
				&scopes.Task, &scopes.Global); err != nil {
				return c, err
			}
			c.StateScopes, c.HandedFor = &scopes, link
			c.Input, err = persistence.DecodeJSON(input)
			return c, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find the steps claimed for completion %s: %w", link, interpretError(err))
	}
	return out, nil
}

// StepUnclaim undoes a claim whose answer never reached the worker: only if
// the step is still running that attempt for that worker and the worker has
// not acknowledged it (StepStart: it did reach the worker then), it goes back to
// ready with the attempt forgotten and the previous attempt's fields
// restored. It keeps its ready_at, so it is first in line again. Otherwise
// it does nothing. The job stays running. A step whose job was cancelled
// meanwhile is not made claimable again: it ends when its lease runs out.
func (s *Store) StepUnclaim(ctx context.Context, jobID, step string, attempt int, workerID string) error {
	id, ok := canonicalUUID(jobID)
	if !ok {
		return nil
	}
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		_, err := unclaimTx(ctx, tx, id, step, attempt, canonicalWorker(workerID), "")
		return err
	})
	if err != nil {
		return fmt.Errorf("unclaim step %s of job %s: %w", step, jobID, interpretError(err))
	}
	return nil
}

// StepUnclaimHanded undoes, as StepUnclaim does, a claim recorded as
// started for the completion link (ClaimParams.Handed) whose answer was
// never sent: the started mark is the server's own, not the worker's.
func (s *Store) StepUnclaimHanded(ctx context.Context, jobID, step string, attempt int, workerID, link string) error {
	id, ok := canonicalUUID(jobID)
	if !ok || !persistence.ValidHandedLink(link) {
		return nil
	}
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		_, err := unclaimTx(ctx, tx, id, step, attempt, canonicalWorker(workerID), link)
		return err
	})
	if err != nil {
		return fmt.Errorf("unclaim step %s of job %s: %w", step, jobID, interpretError(err))
	}
	return nil
}

// unclaimTx is StepUnclaim inside a write transaction, for a canonical job
// and worker id; it reports whether the step went back to ready. With a
// link, a step recorded as started for that link goes back too
// (StepUnclaimHanded).
func unclaimTx(ctx context.Context, tx *txn, id, step string, attempt int, workerID, link string) (bool, error) {
	// The previous attempt's record, if any, becomes current again.
	var (
		prevWorker, prevStatus, prevError sql.NullString
		prevExit, prevStarted             sql.NullInt64
	)
	err := tx.QueryRowContext(ctx, `SELECT worker_id, status, exit_code, error_message, started_at
		FROM step_attempts WHERE job_id = ? AND step_name = ? AND attempt = ?`, id, step, attempt-1).
		Scan(&prevWorker, &prevStatus, &prevExit, &prevError, &prevStarted)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE job_steps SET
			status = 'ready', attempt = attempt - 1, worker_id = ?, attempt_status = ?, exit_code = ?,
			error_message = ?, started_at = ?, lease_expires_at = NULL, completed_at = NULL,
			started_attempt = min(started_attempt, attempt - 1)
		WHERE job_id = ? AND step_name = ? AND status = 'running' AND attempt = ? AND worker_id = ?
			AND (started_attempt <> attempt OR (? <> '' AND handed_for = ?)) AND NOT cancel_requested`,
		prevWorker, prevStatus.String, prevExit, prevError.String, prevStarted,
		id, step, attempt, workerID, link, link)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM step_attempts WHERE job_id = ? AND step_name = ? AND attempt = ?`,
		id, step, attempt)
	return err == nil, err
}

// LeasesRenew records a heartbeat of workerID and renews, to now+lease, the
// lease of each listed step the worker still holds (running, that attempt,
// that worker) — also a lease that ran out but whose attempt the server has
// not declared lost yet (the PostgreSQL store's rule). It returns the steps the worker must
// stop: those not renewed, and renewed ones whose cancellation was
// requested. An unknown worker is CodeNotFound: it must register again.
func (s *Store) LeasesRenew(ctx context.Context, workerID string, running []stroem.StepRef, lease time.Duration) ([]stroem.StepRef, error) {
	wid, err := persistence.CheckRenew(workerID, lease)
	if err != nil {
		return nil, err
	}
	renewed := map[stroem.StepRef]bool{} // → cancel requested
	err = s.writeTx(ctx, func(tx *txn, now time.Time) error {
		clear(renewed)
		res, err := tx.ExecContext(ctx, `UPDATE workers SET last_heartbeat_at = ? WHERE id = ?`, nanos(now), wid)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return notFound("worker %s not found", workerID)
		}
		for _, ref := range running {
			jid, ok := canonicalUUID(ref.JobID)
			if !ok {
				continue // RenewedLeases tells the worker to stop it
			}
			var cancelRequested bool
			err := tx.QueryRowContext(ctx, `UPDATE job_steps SET lease_expires_at = max(lease_expires_at, ?1), `+stampVersion+`
				WHERE job_id = ?2 AND step_name = ?3 AND attempt = ?4 AND status = 'running' AND worker_id = ?5
				RETURNING cancel_requested`,
				nanos(now.Add(lease)), jid, ref.Step, ref.Attempt, wid).Scan(&cancelRequested)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return err
			default:
				renewed[stroem.StepRef{JobID: jid, Step: ref.Step, Attempt: ref.Attempt}] = cancelRequested
			}
		}
		return nil
	})
	return errs.RenewedLeases(err, workerID, running, renewed)
}

// LeasesExtendAll gives every running step at least lease more time. A
// starting server calls it: no heartbeat could arrive while it was down, so
// leases that ran out meanwhile are not the workers' fault.
func (s *Store) LeasesExtendAll(ctx context.Context, lease time.Duration) (int64, error) {
	n, err := s.writeCount(ctx, func(tx *txn, now time.Time) (sql.Result, error) {
		return tx.ExecContext(ctx, `UPDATE job_steps SET lease_expires_at = max(lease_expires_at, ?)
			WHERE status = 'running'`, nanos(now.Add(lease)))
	})
	if err != nil {
		return 0, fmt.Errorf("extend leases: %w", interpretError(err))
	}
	return n, nil
}

// LeasesExpired returns up to limit running steps whose lease has expired,
// longest expired first.
func (s *Store) LeasesExpired(ctx context.Context, limit int) ([]stroem.StepRef, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.query(ctx, `SELECT job_id, step_name, attempt FROM job_steps
		WHERE status = 'running' AND lease_expires_at <= ?
		ORDER BY lease_expires_at LIMIT ?`, nanos(s.now()), limit)
	refs, err := collect(rows, err, func(row rowScanner) (r stroem.StepRef, err error) {
		return r, row.Scan(&r.JobID, &r.Step, &r.Attempt)
	})
	if err != nil {
		return nil, fmt.Errorf("find expired leases: %w", interpretError(err))
	}
	return refs, nil
}

// StepsRunning lists every running step with the worker holding it: the
// claims a starting server inherits from an earlier process.
func (s *Store) StepsRunning(ctx context.Context) ([]persistence.HeldStep, error) {
	rows, err := s.query(ctx, `SELECT job_id, step_name, attempt, coalesce(worker_id, '')
		FROM job_steps WHERE status = 'running' ORDER BY job_id, position`)
	held, err := collect(rows, err, scanHeld)
	if err != nil {
		return nil, fmt.Errorf("list running steps: %w", interpretError(err))
	}
	return held, nil
}

// scanHeld reads a running step and its worker: job_id, step_name, attempt
// and the worker id (empty for none).
func scanHeld(row rowScanner) (h persistence.HeldStep, err error) {
	return h, row.Scan(&h.JobID, &h.Step, &h.Attempt, &h.WorkerID)
}

// StepLease reads a step's current attempt, status and lease expiry together
// with the store's clock, for the lease timer: compare LeaseExpiresAt with
// Now. An unknown job or step is CodeNotFound.
func (s *Store) StepLease(ctx context.Context, jobID, step string) (persistence.StepLease, error) {
	id, ok := canonicalUUID(jobID)
	if !ok {
		return persistence.StepLease{}, notFound("job %s not found", jobID)
	}
	var (
		l      persistence.StepLease
		status string
	)
	err := s.queryRow(ctx, `SELECT attempt, status, lease_expires_at FROM job_steps
		WHERE job_id = ? AND step_name = ?`, id, step).Scan(&l.Attempt, &status, timeCol{&l.LeaseExpiresAt})
	if err != nil {
		return persistence.StepLease{}, errs.Row(err, notFound("step %s of job %s not found", step, jobID), "read lease of step %s of job %s", step, jobID)
	}
	l.Status, l.Now = stroem.StepStatus(status), s.now()
	return l, nil
}

// StepFence checks that attempt is the step's current running attempt held
// by workerID, as every log push must: it returns nil and whether a cancel
// was requested, a CodeConflict error when the worker no longer holds that
// attempt, and CodeNotFound for an unknown job or step.
func (s *Store) StepFence(ctx context.Context, jobID, step string, attempt int, workerID string) (bool, error) {
	id, ok := canonicalUUID(jobID)
	if !ok {
		return false, notFound("job %s not found", jobID)
	}
	var r persistence.FenceRead
	err := s.queryRow(ctx, `SELECT `+persistence.FenceColumns+`
		FROM job_steps WHERE job_id = ? AND step_name = ?`, id, step).Scan(r.Dest()...)
	return errs.StepFence(err, r, persistence.AttemptFence{JobID: jobID, Step: step, Attempt: attempt, WorkerID: workerID})
}
