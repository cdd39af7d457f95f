package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// JobUpdate is the one mechanism for every state change of a job. In one
// transaction it locks the job's step rows (in position order) and then the
// job row, reads the database clock into JobState.Now, calls fn on the
// state, and writes exactly what fn changed: each changed step, the attempt
// record of each step whose current attempt changed, and the job.
//
// fn must be pure: it only mutates the state it is given, because it runs
// again on fresh state when PostgreSQL aborts the transaction with a
// deadlock or a serialization failure. If fn returns an error, nothing is
// written and that error is returned unchanged (callers use it for 409s).
//
// The store fills in timestamps: a step's CompletedAt when it becomes
// terminal (cleared when it goes back to ready for a retry), its ReadyAt when
// it becomes ready without fn choosing one, its LeaseExpiresAt cleared when
// it stops running; the job's StartedAt when it becomes running and
// CompletedAt when it ends; an attempt's completion time when its status
// becomes terminal. Every status change is checked with CanTransition; an
// invalid one is a bug and rolls everything back. ChannelStepsReady is
// notified when a step became ready. Strings in inputs, outputs and error
// messages are sanitized (see stroem.SanitizeText), and the returned state is
// the state as written. An unknown job is CodeNotFound.
func (s *Store) JobUpdate(ctx context.Context, jobID string, fn func(*persistence.JobState) error) (*persistence.JobState, error) {
	if !validUUID(jobID) {
		return nil, notFound("job %s not found", jobID)
	}
	for attempt := 1; ; attempt++ {
		// A run after a conflict reads everything again.
		cached := s.steps.get(jobID)
		if attempt > 1 {
			cached = nil
		}
		result, keep, xmins, err := s.jobUpdateOnce(ctx, jobID, fn, cached)
		if err == nil {
			if result.Job.Status.Terminal() {
				s.steps.drop(jobID) // a finished job is not updated again
			} else {
				s.steps.put(jobID, keep, xmins, result.StepIndex())
			}
			return result, nil
		}
		if cbErr, ok := persistence.CallbackErr(err); ok {
			return nil, cbErr
		}
		s.steps.drop(jobID)
		if !retryable(err) || attempt >= maxTxAttempts || ctx.Err() != nil {
			return nil, fmt.Errorf("update job %s: %w", jobID, interpretError(err))
		}
		s.log.Debug("job update runs again", "job_id", jobID, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("update job %s: %w", jobID, interpretError(err))
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		}
	}
}

// jobUpdateOnce runs one JobUpdate transaction in two round trips: BEGIN,
// the job row's lock and the step rows the cache does not have (or all of
// them) in one pipeline; then the writes and COMMIT in another. It returns
// the state as written (sealed: a later change copies a step first), the
// steps for the cache (the unchanged ones shared with what was read, which
// nobody modifies; copies of the written ones, whose maps fn may still
// hold) and every step row's xmin.
func (s *Store) jobUpdateOnce(ctx context.Context, jobID string, fn func(*persistence.JobState) error, cached *cachedSteps) (*persistence.JobState, []*persistence.StepState, []int64, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	defer pc.Release()
	conn := pc.Conn()
	committed := false
	defer func() {
		if !committed {
			// Whatever failed, leave no transaction open on a pooled
			// connection; one that cannot even roll back is not reused.
			if _, err := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
				_ = conn.Close(context.WithoutCancel(ctx))
			}
		}
	}()
	before, xmins, err := readState(ctx, conn, jobID, cached)
	if err != nil {
		return nil, nil, nil, err
	}
	// before may share the cache's steps: st shares them too, copying one
	// the first time fn changes it (persistence.JobState.MutAt), so that
	// neither fn nor Diff costs what the job holds.
	st := before.Share()
	if err := fn(st); err != nil {
		return nil, nil, nil, persistence.CallbackError{Err: err}
	}
	b, steps, err := writeBatch(before, st, s.notifyPayload(jobID))
	if err != nil {
		return nil, nil, nil, err
	}
	for len(xmins) < st.Len() {
		xmins = append(xmins, 0) // appended steps: set from their writes below
	}
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	for _, step := range steps {
		if step == nil {
			if _, err := br.Exec(); err != nil {
				return nil, nil, nil, err
			}
			continue
		}
		var (
			x     int64
			lease *time.Time
		)
		if err := br.QueryRow().Scan(&x, &lease); err != nil {
			return nil, nil, nil, err
		}
		xmins[step.Position] = x
		// The lease as written: a heartbeat may have renewed it since the
		// read, and the write keeps that unless fn changed the lease. What
		// is returned and cached must say what the row holds.
		if lease != nil {
			*lease = lease.UTC()
		}
		step.LeaseExpiresAt = lease
	}
	if _, err := br.Exec(); err != nil { // COMMIT
		return nil, nil, nil, err
	}
	if err := br.Close(); err != nil {
		return nil, nil, nil, err
	}
	committed = true
	st.Seal()
	keep := st.StepsShared() // the steps fn did not take are before's
	if changed := st.Changed(); len(changed) > 0 {
		read := before.StepsShared()
		for _, i := range changed {
			if i < len(read) {
				keep[i] = read[i] // taken, maybe unchanged; if written, replaced below
			}
		}
	}
	for _, step := range steps {
		if step != nil {
			keep[step.Position] = step.Clone()
		}
	}
	return st, keep, xmins, nil
}

// readState begins a transaction on conn, locks the job row (the per-job
// mutex every JobUpdate takes) and reads the job and its steps, in one
// round trip. Step rows are read without locks, so claims (SKIP LOCKED on
// step rows) never skip a job's ready steps while one of its transitions
// runs; writeBatch instead writes each step only if it is still as it was
// read. With a cache entry (the steps as the last JobUpdate wrote them, and
// each row's xmin) only the rows whose xmin moved since — a claim, a
// heartbeat, another server — are read; the returned steps then share the
// entry's structs and must not be modified.
func readState(ctx context.Context, conn *pgx.Conn, id string, cached *cachedSteps) (*persistence.JobState, []int64, error) {
	var known []int64 // nil: read every step
	if cached != nil {
		known = cached.xmins
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(`SELECT `+persistence.JobColumns+`, now(), context, `+stateScopesColumns+`
		FROM jobs WHERE id = $1 FOR UPDATE OF jobs`, id)
	b.Queue(`SELECT `+persistence.StepColumns+`, xmin::text::bigint FROM job_steps
		WHERE job_id = $1 AND ($2::bigint[] IS NULL OR xmin::text::bigint IS DISTINCT FROM ($2::bigint[])[position + 1])
		ORDER BY position`, id, known)
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, nil, err
	}
	st := &persistence.JobState{}
	var jobContext []byte
	var scopes stroem.AssignmentState
	job, snapshotID, cancelRequested, err := scanJob(br.QueryRow(), &st.Now, &jobContext, &scopes.Task, &scopes.Global)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, notFound("job %s not found", id)
	}
	if err != nil {
		return nil, nil, err
	}
	if st.Context, err = persistence.DecodeJSON(jobContext); err != nil {
		return nil, nil, err
	}
	st.Job, st.SnapshotID, st.CancelRequested, st.StateScopes = job, snapshotID, cancelRequested, &scopes
	st.Now = st.Now.UTC()
	var xmins []int64
	var steps []*persistence.StepState
	if cached != nil {
		steps = slices.Clone(cached.steps)
		xmins = slices.Clone(cached.xmins)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var x int64
		step, err := scanStep(rows, &x)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case cached == nil && step.Position == len(steps):
			steps = append(steps, step)
			xmins = append(xmins, x)
		case cached != nil && step.Position >= 0 && step.Position < len(steps):
			steps[step.Position], xmins[step.Position] = step, x
		default:
			return nil, nil, errStaleCache{id}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	var idx *persistence.StepIndex
	if cached != nil {
		idx = cached.index
	}
	st.SetSteps(steps, idx)
	return st, xmins, nil
}

// writeBatch queues the writes of what fn changed (see Diff). steps holds,
// per queued statement, the step it writes (nil for other statements); a
// step's statement returns the row's new xmin and lease.
func writeBatch(before, after *persistence.JobState, payload string) (b *pgx.Batch, steps []*persistence.StepState, err error) {
	changed, jobChanged, err := persistence.Diff(before, after)
	if err != nil {
		return nil, nil, err
	}
	now := after.Now
	b = &pgx.Batch{}
	notify := false
	queue := func(step *persistence.StepState, sql string, args ...any) {
		b.Queue(sql, args...)
		steps = append(steps, step)
	}
	for _, w := range changed {
		old, cur := w.Old, w.Cur
		if w.Insert {
			queue(nil, insertStepSQL, after.Job.ID, old.Name, old.Position, old.ActionName, old.ActionType,
				old.Image, old.DependsOn, old.ContinueOnFailure, old.MaxAttempts)
		}
		input, err := persistence.EncodeJSON(cur.Input)
		if err != nil {
			return nil, nil, err
		}
		output, err := persistence.EncodeJSON(cur.Output)
		if err != nil {
			return nil, nil, err
		}
		// Step rows were read unlocked: write only if the step is still in
		// the status, attempt and holder it was read in (an unclaim and a
		// claim by another worker restore status and attempt, not the
		// holder). If a claim or an unclaim moved it meanwhile,
		// stroem_step_moved raises (before the COMMIT queued after these
		// writes can run) and the whole update runs again on fresh state. A
		// lease a heartbeat renewed meanwhile is kept unless fn changed the
		// lease itself.
		args := []any{after.Job.ID, cur.Name, string(cur.Status), input, output, cur.ErrorMessage,
			cur.WorkerID, cur.Attempt, string(cur.AttemptStatus), cur.ExitCode,
			cur.LeaseExpiresAt, cur.ReadyAt, cur.CancelRequested, cur.StartedAt, cur.CompletedAt,
			string(old.Status), old.Attempt, !persistence.TimesEqual(old.LeaseExpiresAt, cur.LeaseExpiresAt), old.WorkerID,
			old.Position}
		if !w.Attempt {
			queue(cur, updateStepSQL, args...)
		} else {
			started := cur.StartedAt
			if started == nil {
				started = &now
			}
			queue(cur, updateStepAttemptSQL, append(args, started, now)...)
		}
		notify = notify || w.Ready
	}
	if jobChanged {
		output, err := persistence.EncodeJSON(after.Job.Output)
		if err != nil {
			return nil, nil, err
		}
		queue(nil, `UPDATE jobs SET status = $2, output = $3, cancel_requested = $4, started_at = $5, completed_at = $6
			WHERE id = $1`,
			after.Job.ID, string(after.Job.Status), output, after.CancelRequested,
			after.Job.StartedAt, after.Job.CompletedAt)
	}
	if notify {
		queue(nil, `SELECT pg_notify($1, $2)`, persistence.ChannelStepsReady, payload)
	}
	return b, steps, nil
}

// updateStepSQL writes a step a JobUpdate changed, only if it is still in
// the status, attempt and holder it was read in (see writeBatch), and
// returns the row's new xmin and its lease (kept if a heartbeat renewed it
// meanwhile and fn did not change it). Otherwise stroem_step_moved raises.
const updateStepSQL = `WITH u AS (` + updateStepCTE + `)
	SELECT coalesce((SELECT x FROM u), stroem_step_moved($1, $2)), (SELECT l FROM u)`

// updateStepAttemptSQL is updateStepSQL for a step whose current attempt
// changed: the attempt's record ($21: its start, $22: the transaction's
// time) is written by the same statement, only when the step was, so a
// transition costs one statement per step written.
const updateStepAttemptSQL = `WITH u AS (` + updateStepCTE + `), a AS (
		INSERT INTO step_attempts AS a (job_id, step_name, attempt, worker_id, status, exit_code,
			error_message, started_at, completed_at)
		SELECT $1, $2, $8, $7, $9, $10, $6, $21::timestamptz, CASE WHEN $9 <> 'running' THEN $22::timestamptz END FROM u
		ON CONFLICT (job_id, step_name, attempt) DO UPDATE SET
			worker_id = excluded.worker_id, status = excluded.status, exit_code = excluded.exit_code,
			error_message = excluded.error_message,
			completed_at = CASE WHEN excluded.status = 'running' THEN NULL
				ELSE coalesce(a.completed_at, excluded.completed_at) END)
	SELECT coalesce((SELECT x FROM u), stroem_step_moved($1, $2)), (SELECT l FROM u)`

// updateStepCTE finds the step by job and position as well as by name
// ($20): either unique index then finds exactly one row. By name alone, a
// plan made before the table's first ANALYZE (a young database) chose the
// smaller (job_id, position) index and read every step of the job for
// each write.
const updateStepCTE = `
		UPDATE job_steps SET status = $3, input = $4, output = $5, error_message = $6,
			worker_id = nullif($7, ''), attempt = $8, attempt_status = $9, exit_code = $10,
			lease_expires_at = CASE WHEN $18 THEN $11 ELSE lease_expires_at END,
			ready_at = $12, cancel_requested = $13, started_at = $14, completed_at = $15
		WHERE job_id = $1 AND position = $20 AND step_name = $2 AND status = $16 AND attempt = $17
			AND worker_id IS NOT DISTINCT FROM nullif($19, '')
		RETURNING xmin::text::bigint AS x, lease_expires_at AS l`

// stateScopesColumns reads, with a row of jobs, whether its task and its
// workspace's global state have a snapshot (see Store.StateScopes).
const stateScopesColumns = `EXISTS (SELECT 1 FROM state_snapshots ss
		WHERE ss.workspace = jobs.workspace AND ss.task_name = jobs.task_name),
	EXISTS (SELECT 1 FROM state_snapshots ss WHERE ss.workspace = jobs.workspace AND ss.task_name = '')`

// insertStepSQL inserts the pending skeleton of a step a JobUpdate appended
// (a loop instance); the step's own write follows it in the same batch.
const insertStepSQL = `INSERT INTO job_steps (job_id, step_name, position, action_name, action_type, image,
		depends_on, continue_on_failure, max_attempts, status, input)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', NULL)`
