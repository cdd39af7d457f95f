package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// claimSQL claims up to $3 ready steps whose action type the worker runs
// and whose tags match the worker's ($6, exclusive $7: stroem.TagsMatch —
// the step's tags are a subset of the worker's, and an exclusive worker's
// a subset of the step's; for a worker without tags and steps without
// them, two comparisons of empty arrays on rows read anyway), oldest
// ready first, in one statement: lock the candidates (skipping rows
// another claim or a JobUpdate holds), start a new attempt on each under a
// lease, record the attempt, and mark their jobs running. The claim is the
// start of the step. It runs under keyedPlans: planned for its parameters
// on a table without statistics (a new database), PostgreSQL read every
// ready step through a bitmap scan and sorted them to take one (400 rows
// per claim in the bench's fan-out, and a fresh plan per claim); the
// ready-order index gives the oldest first and stops at the limit. The
// claimed rows are found by their position as well as their name: either
// unique index then finds the row by its full key. Found by name alone, a
// generic plan made while the table's statistics described one-step jobs
// used the (job_id, position) index on job_id alone, reading every step of
// a 400-step job (and their dead versions) per claimed step.
const claimSQL = `
WITH picked AS MATERIALIZED (
	SELECT job_id, step_name, position, ready_at
	FROM job_steps
	WHERE status = 'ready' AND ready_at <= now() AND action_type = ANY($2::text[])
		AND required_tags <@ $6::text[] AND (NOT $7::bool OR $6::text[] <@ required_tags)
	ORDER BY ready_at, position, job_id
	LIMIT $3
	FOR UPDATE SKIP LOCKED
), numbered AS (
	-- FOR UPDATE takes no window function: the claim order is numbered
	-- here, for the completions' links ($5, see ClaimParams.Handed).
	SELECT job_id, step_name, position, row_number() OVER (ORDER BY ready_at, position, job_id) AS n
	FROM picked
), claimed AS (
	UPDATE job_steps s SET
		status = 'running', worker_id = $1, attempt = s.attempt + 1, attempt_status = 'running',
		exit_code = NULL, error_message = '', lease_expires_at = now() + $4 * interval '1 millisecond',
		started_at = now(), completed_at = NULL,
		started_attempt = CASE WHEN p.n <= cardinality($5::text[]) THEN s.attempt + 1 ELSE s.started_attempt END,
		handed_for = coalesce(($5::text[])[p.n], '')
	FROM numbered p
	WHERE s.job_id = p.job_id AND s.position = p.position AND s.step_name = p.step_name
	RETURNING s.job_id, s.step_name, s.attempt, s.action_name, s.action_type, s.image, s.input,
		s.lease_expires_at, s.ready_at, s.position, s.handed_for
), attempts AS (
	INSERT INTO step_attempts (job_id, step_name, attempt, worker_id, status, started_at)
	SELECT job_id, step_name, attempt, $1, 'running', now() FROM claimed
	ON CONFLICT (job_id, step_name, attempt) DO UPDATE SET
		worker_id = excluded.worker_id, status = 'running', exit_code = NULL, error_message = '',
		started_at = excluded.started_at, completed_at = NULL
), started AS (
	-- SKIP LOCKED: a JobUpdate holds the job row while it waits for a step
	-- row this claim holds; waiting here would deadlock. That job's next
	-- transition marks it running instead. The status test is not
	-- "status = 'pending'": the planner could serve that from
	-- jobs_status_created_idx, and a generic plan made on a young table did
	-- (every pending job's entry read per claim, ~400 in the bench's 1,000
	-- jobs); the claimed steps' job ids find their rows. NO KEY UPDATE, as
	-- a transition locks it: the attempt rows of other claims check their
	-- key against the job row (FOR KEY SHARE) without waiting for this one.
	UPDATE jobs SET status = 'running', started_at = coalesce(started_at, now())
	WHERE id IN (SELECT id FROM jobs WHERE id IN (SELECT job_id FROM claimed) AND (status = 'pending') IS TRUE
		FOR NO KEY UPDATE SKIP LOCKED)
)
SELECT ` + claimedColumns + `
FROM claimed c JOIN jobs ON jobs.id = c.job_id
ORDER BY c.ready_at, c.position, c.job_id`

// claimedColumns are what a claim returns of each step it claimed (c) and
// its job, in scanClaimed's order.
const claimedColumns = `c.job_id::text, c.step_name, c.attempt, c.action_name, c.action_type, c.image, c.input,
	c.lease_expires_at, jobs.workspace, jobs.task_name, jobs.revision, coalesce(jobs.snapshot_id, ''),
	` + stateScopesColumns + `, c.handed_for`

// handedForSQL finds the running steps a claim recorded as started for a
// completion ($2) and worker ($1), and marks them redelivered ('!' before
// the link), so that StepUnclaimHanded, which needs the bare link, never
// undoes a step a repeat was given: the two lock the same row, and
// whichever comes second finds it changed. It reads the running steps
// through job_steps_lease_idx (every running step, bounded by the fleet's
// slots): it runs only when a worker repeats a completion.
const handedForSQL = `
WITH found AS (
	UPDATE job_steps c SET handed_for = '!' || $2
	WHERE c.status = 'running' AND c.lease_expires_at IS NOT NULL AND c.worker_id = $1
		AND c.handed_for IN ($2, '!' || $2) AND c.started_attempt = c.attempt
	RETURNING c.job_id, c.step_name, c.attempt, c.action_name, c.action_type, c.image, c.input,
		c.lease_expires_at, $2::text AS handed_for, c.ready_at, c.position
)
SELECT ` + claimedColumns + `
FROM found c JOIN jobs ON jobs.id = c.job_id
ORDER BY c.ready_at, c.position, c.job_id`

// StepsClaim moves up to p.Limit ready steps whose action type is among
// p.Capabilities and whose tags match p.Tags and p.Exclusive
// (stroem.TagsMatch) to running for p.WorkerID, each with a new attempt number
// and a lease of p.Lease, in one round trip. It never returns a step twice,
// whatever the number of concurrent claimers. Finding nothing is not an
// error: the result is empty.
func (s *Store) StepsClaim(ctx context.Context, p persistence.ClaimParams) ([]persistence.ClaimedStep, error) {
	limit, err := p.Batch()
	if err != nil || limit == 0 {
		return nil, err
	}
	p.WorkerID = canonicalUUID(p.WorkerID)
	tags := persistence.NormalTags(p.Tags)
	if tags == nil {
		tags = []string{} // '{}', never NULL: NULL <@ fails every row
	}
	if len(p.Handed) > limit {
		p.Handed = p.Handed[:limit]
	}
	var claimed []persistence.ClaimedStep
	err = s.retry(ctx, func() error {
		claimed = claimed[:0]
		return s.queryKeyed(ctx, func(rows pgx.Rows) error {
			c, err := scanClaimed(rows)
			if err != nil {
				return err
			}
			claimed = append(claimed, c)
			return nil
		}, claimSQL, p.WorkerID, p.Capabilities, limit, p.Lease.Milliseconds(), handedLinks(p.Handed),
			tags, p.Exclusive)
	})
	if err != nil {
		return nil, fmt.Errorf("claim steps for worker %s: %w", p.WorkerID, interpretError(err))
	}
	return claimed, nil
}

// handedLinks is links as a text[] parameter: never NULL (cardinality of a
// NULL array is NULL).
func handedLinks(links []string) []string {
	if links == nil {
		return []string{}
	}
	return links
}

// scanClaimed reads a row of claimedColumns.
func scanClaimed(rows pgx.Rows) (persistence.ClaimedStep, error) {
	var (
		c      persistence.ClaimedStep
		input  []byte
		scopes stroem.AssignmentState
		err    error
	)
	if err := rows.Scan(&c.JobID, &c.StepName, &c.Attempt, &c.ActionName, &c.ActionType, &c.Image,
		&input, &c.LeaseExpiresAt, &c.Workspace, &c.TaskName, &c.Revision, &c.SnapshotID,
		&scopes.Task, &scopes.Global, &c.HandedFor); err != nil {
		return c, err
	}
	c.StateScopes = &scopes
	if c.Input, err = persistence.DecodeJSON(input); err != nil {
		return c, err
	}
	c.LeaseExpiresAt = c.LeaseExpiresAt.UTC()
	return c, nil
}

// StepsHandedFor returns the steps a claim recorded as started for the
// completion link (ClaimParams.Handed) that workerID still runs at that
// attempt, as StepsClaim returned them, and marks them redelivered: from
// then on StepUnclaimHanded leaves them alone. None is not an error.
func (s *Store) StepsHandedFor(ctx context.Context, workerID, link string) ([]persistence.ClaimedStep, error) {
	if workerID == "" || !persistence.ValidHandedLink(link) {
		return nil, nil
	}
	var out []persistence.ClaimedStep
	err := s.queryKeyed(ctx, func(rows pgx.Rows) error {
		c, err := scanClaimed(rows)
		if err != nil {
			return err
		}
		out = append(out, c)
		return nil
	}, handedForSQL, canonicalUUID(workerID), link)
	if err != nil {
		return nil, fmt.Errorf("find the steps claimed for completion %s: %w", link, interpretError(err))
	}
	return out, nil
}

// unclaimSQL puts a step back to ready when its claim never reached the
// worker: the attempt is forgotten and the step's current-attempt fields
// return to the previous attempt's (if any). The step keeps its ready_at, so
// it is first in line again.
const unclaimSQL = `
WITH prev AS (
	SELECT worker_id, status, exit_code, error_message, started_at
	FROM step_attempts WHERE job_id = $1 AND step_name = $2 AND attempt = $3 - 1
), undone AS (
	UPDATE job_steps SET
		status = 'ready', attempt = attempt - 1,
		worker_id = (SELECT worker_id FROM prev),
		attempt_status = coalesce((SELECT status FROM prev), ''),
		exit_code = (SELECT exit_code FROM prev),
		error_message = coalesce((SELECT error_message FROM prev), ''),
		started_at = (SELECT started_at FROM prev),
		lease_expires_at = NULL, completed_at = NULL,
		-- a started mark of the forgotten attempt (StepUnclaimHanded) goes
		-- with it: the next claim reuses its number
		started_attempt = least(started_attempt, attempt - 1)
	WHERE job_id = $1 AND step_name = $2 AND status = 'running' AND attempt = $3 AND worker_id = $4
		AND (started_attempt <> attempt OR ($6 <> '' AND handed_for = $6)) AND NOT cancel_requested
	RETURNING job_id
), forgotten AS (
	DELETE FROM step_attempts
	WHERE job_id = $1 AND step_name = $2 AND attempt = $3 AND EXISTS (SELECT 1 FROM undone)
)
SELECT pg_notify('` + persistence.ChannelStepsReady + `', $5 || ':' || job_id::text) FROM undone`

// StepUnclaim undoes a claim whose answer never reached the worker: only if
// the step is still running that attempt for that worker and the worker has
// not acknowledged it (StepStart), it goes back to ready with the attempt
// forgotten. Otherwise it does nothing: an acknowledged attempt did reach
// its worker, which may be running it. The acknowledgement and the unclaim
// lock the same row, so exactly one of them wins. The job stays
// running. A step whose job was cancelled meanwhile (cancel requested on the
// running step) is not made claimable again: it ends cancelled when its
// lease runs out.
func (s *Store) StepUnclaim(ctx context.Context, jobID, step string, attempt int, workerID string) error {
	return s.unclaim(ctx, jobID, step, attempt, workerID, "")
}

// StepUnclaimHanded undoes, as StepUnclaim does, a claim recorded as
// started for the completion link (ClaimParams.Handed) whose answer was
// never sent: the started mark is the server's own, not the worker's.
func (s *Store) StepUnclaimHanded(ctx context.Context, jobID, step string, attempt int, workerID, link string) error {
	if !persistence.ValidHandedLink(link) {
		return nil
	}
	return s.unclaim(ctx, jobID, step, attempt, workerID, link)
}

func (s *Store) unclaim(ctx context.Context, jobID, step string, attempt int, workerID, link string) error {
	if !validUUID(jobID) {
		return nil
	}
	err := s.retry(ctx, func() error {
		_, err := s.pool.Exec(ctx, unclaimSQL, jobID, step, attempt, canonicalUUID(workerID), s.origin, link)
		return err
	})
	if err != nil {
		return fmt.Errorf("unclaim step %s of job %s: %w", step, jobID, interpretError(err))
	}
	return nil
}

// renewSQL records a worker's heartbeat and renews the leases it still
// holds, in one statement. Rows are locked in (job, position) order, the
// order JobUpdate uses, so a heartbeat and a job update never deadlock.
const renewSQL = `
WITH w AS (
	UPDATE workers SET last_heartbeat_at = now() WHERE id = $1::uuid RETURNING id
), refs AS (
	SELECT * FROM unnest($2::uuid[], $3::text[], $4::int[]) AS r(job_id, step_name, attempt)
), held AS MATERIALIZED (
	SELECT s.job_id, s.step_name
	FROM job_steps s JOIN refs r ON r.job_id = s.job_id AND r.step_name = s.step_name AND r.attempt = s.attempt
	WHERE EXISTS (SELECT 1 FROM w) AND s.status = 'running' AND s.worker_id = $6
	ORDER BY s.job_id, s.position
	FOR UPDATE OF s
), renewed AS (
	UPDATE job_steps s SET lease_expires_at = greatest(s.lease_expires_at, now() + $5 * interval '1 millisecond')
	FROM held h WHERE s.job_id = h.job_id AND s.step_name = h.step_name
	RETURNING s.job_id::text, s.step_name, s.attempt, s.cancel_requested
)
SELECT EXISTS (SELECT 1 FROM w), r.job_id, r.step_name, r.attempt, r.cancel_requested
FROM (SELECT 1) AS one LEFT JOIN renewed r ON true`

// LeasesRenew records a heartbeat of workerID and renews, to now+lease, the
// lease of each listed step the worker still holds (running, that attempt,
// that worker) — also a lease that ran out but whose attempt the server has
// not declared lost yet: the worker is demonstrably alive. It returns the
// steps the worker must stop: those not renewed, and renewed ones whose
// cancellation was requested. An unknown worker is CodeNotFound: it must
// register again.
func (s *Store) LeasesRenew(ctx context.Context, workerID string, running []stroem.StepRef, lease time.Duration) ([]stroem.StepRef, error) {
	wid, err := persistence.CheckRenew(workerID, lease)
	if err != nil {
		return nil, err
	}
	var (
		jobIDs, steps []string
		attempts      []int32
		renewed       map[stroem.StepRef]bool // → cancel requested
	)
	for _, ref := range running {
		if !validUUID(ref.JobID) {
			continue // RenewedLeases tells the worker to stop it
		}
		if ref.Attempt < 1 || ref.Attempt > math.MaxInt32 {
			// No stored attempt (an int column), and int4[] would hold it
			// truncated: 2³²+1 would renew attempt 1. RenewedLeases tells
			// the worker to stop it.
			continue
		}
		jobIDs = append(jobIDs, canonicalUUID(ref.JobID))
		steps = append(steps, ref.Step)
		attempts = append(attempts, int32(ref.Attempt))
	}
	err = s.retry(ctx, func() error {
		renewed = map[stroem.StepRef]bool{}
		rows, err := s.pool.Query(ctx, renewSQL, workerID, jobIDs, steps, attempts, lease.Milliseconds(), wid)
		if err != nil {
			return err
		}
		defer rows.Close()
		known := false
		for rows.Next() {
			var (
				jobID, step *string
				attempt     *int
				cancelReq   *bool
			)
			if err := rows.Scan(&known, &jobID, &step, &attempt, &cancelReq); err != nil {
				return err
			}
			if jobID != nil {
				renewed[stroem.StepRef{JobID: *jobID, Step: *step, Attempt: *attempt}] = *cancelReq
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if !known {
			return notFound("worker %s not found", workerID)
		}
		return nil
	})
	return errs.RenewedLeases(err, workerID, running, renewed)
}

// LeasesExtendAll gives every running step at least lease more time. A
// starting server calls it: no heartbeat could arrive while it was down, so
// leases that ran out meanwhile are not the workers' fault.
func (s *Store) LeasesExtendAll(ctx context.Context, lease time.Duration) (int64, error) {
	var n int64
	err := s.retry(ctx, func() error {
		tag, err := s.pool.Exec(ctx, `UPDATE job_steps
			SET lease_expires_at = greatest(lease_expires_at, now() + $1 * interval '1 millisecond')
			WHERE status = 'running'`, lease.Milliseconds())
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("extend leases: %w", interpretError(err))
	}
	return n, nil
}

// StepsRunning lists every running step with the worker holding it. A
// starting server reads it before it serves workers: these are the claims
// an earlier server process made, some of which it may not have delivered.
func (s *Store) StepsRunning(ctx context.Context) ([]persistence.HeldStep, error) {
	rows, err := s.pool.Query(ctx, `SELECT job_id::text, step_name, attempt, coalesce(worker_id, '')
		FROM job_steps WHERE status = 'running' ORDER BY job_id, position`)
	if err != nil {
		return nil, fmt.Errorf("list running steps: %w", interpretError(err))
	}
	held, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (persistence.HeldStep, error) {
		var h persistence.HeldStep
		err := row.Scan(&h.JobID, &h.Step, &h.Attempt, &h.WorkerID)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("list running steps: %w", interpretError(err))
	}
	return held, nil
}

// LeasesExpired returns up to limit running steps whose lease has expired,
// longest expired first.
func (s *Store) LeasesExpired(ctx context.Context, limit int) ([]stroem.StepRef, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.pool.Query(ctx, `SELECT job_id::text, step_name, attempt FROM job_steps
		WHERE status = 'running' AND lease_expires_at <= now()
		ORDER BY lease_expires_at LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("find expired leases: %w", interpretError(err))
	}
	refs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (stroem.StepRef, error) {
		var r stroem.StepRef
		err := row.Scan(&r.JobID, &r.Step, &r.Attempt)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("find expired leases: %w", interpretError(err))
	}
	return refs, nil
}

// StepLease reads a step's current attempt, status and lease expiry together
// with the database clock, for the lease timer: compare LeaseExpiresAt with
// Now, never with the server's clock. An unknown job or step is CodeNotFound.
func (s *Store) StepLease(ctx context.Context, jobID, step string) (persistence.StepLease, error) {
	if !validUUID(jobID) {
		return persistence.StepLease{}, notFound("job %s not found", jobID)
	}
	var (
		l      persistence.StepLease
		status string
	)
	err := s.pool.QueryRow(ctx, `SELECT attempt, status, lease_expires_at, now() FROM job_steps
		WHERE job_id = $1 AND step_name = $2`, jobID, step).Scan(&l.Attempt, &status, &l.LeaseExpiresAt, &l.Now)
	if err != nil {
		return persistence.StepLease{}, errs.Row(err, notFound("step %s of job %s not found", step, jobID), "read lease of step %s of job %s", step, jobID)
	}
	l.Status, l.LeaseExpiresAt, l.Now = stroem.StepStatus(status), utc(l.LeaseExpiresAt), l.Now.UTC()
	return l, nil
}

// StepFence checks that attempt is the step's current running attempt held
// by workerID, as every log push must: it returns nil and whether a cancel
// was requested, a CodeConflict error when the worker no longer holds that
// attempt, and CodeNotFound for an unknown job or step.
func (s *Store) StepFence(ctx context.Context, jobID, step string, attempt int, workerID string) (bool, error) {
	if !validUUID(jobID) {
		return false, notFound("job %s not found", jobID)
	}
	var r persistence.FenceRead
	err := s.pool.QueryRow(ctx, `SELECT `+persistence.FenceColumns+`
		FROM job_steps WHERE job_id = $1 AND step_name = $2`, jobID, step).Scan(r.Dest()...)
	return errs.StepFence(err, r, persistence.AttemptFence{JobID: jobID, Step: step, Attempt: attempt, WorkerID: workerID})
}
