package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// JobUpdate is the one mechanism for every state change of a job. In one
// transaction it locks the job row, reads the job (and the database clock
// into JobState.Now), calls fn on the state, and writes exactly what fn
// changed: each changed step, the attempt record of each step whose current
// attempt changed, and the job. When this store's last update of the job
// left it kept, it skips the read: fn runs on the kept job, and the
// transaction checks that the job is still so before it writes
// (jobUpdateUnread).
//
// fn must be pure: it only mutates the state it is given, because it runs
// again on fresh state when PostgreSQL aborts the transaction with a
// deadlock or a serialization failure, or when the kept job was out of
// date. If fn returns an error, nothing is
// written and that error is returned unchanged (callers use it for 409s).
//
// The store fills in timestamps: a step's CompletedAt when it becomes
// terminal (cleared when it goes back to ready for a retry), its ReadyAt when
// it becomes ready without fn choosing one, its LeaseExpiresAt cleared when
// it stops running; the job's StartedAt when it becomes running and
// CompletedAt when it ends; an attempt's completion time when its status
// becomes terminal. Every status change is checked with CanTransition; an
// invalid one is a bug and rolls everything back. ChannelStepsReady is
// notified when a step became ready, and ChannelLogs ("<origin>:<job
// id>:done:<status>") when the job ended. Strings in inputs, outputs and
// error messages are sanitized (see stroem.SanitizeText), and the returned
// state is the state as written. An unknown job is CodeNotFound.
func (s *Store) JobUpdate(ctx context.Context, jobID string, fn func(*persistence.JobState) error) (*persistence.JobState, error) {
	if !validUUID(jobID) {
		return nil, notFound("job %s not found", jobID)
	}
	for attempt := 1; ; attempt++ {
		// A run after a conflict reads everything again.
		cached := s.steps.Get(jobID)
		if attempt > 1 {
			cached = nil
		}
		var (
			result *persistence.JobState
			k      kept
			err    error
		)
		if cached != nil && cached.Head != nil {
			result, k, err = s.jobUpdateUnread(ctx, jobID, fn, cached)
			if err != nil && unreadStale(err) {
				// Something changed since the job was kept, or fn said no
				// to what may be an old state: read it, and run fn again.
				s.unread.stale.Add(1)
				if clockStale(err) {
					s.clock.forget()
				}
				result, k, err = s.jobUpdateOnce(ctx, jobID, fn, cached)
			} else if err == nil {
				s.unread.hits.Add(1)
			}
		} else {
			result, k, err = s.jobUpdateOnce(ctx, jobID, fn, cached)
		}
		if err == nil {
			s.steps.KeepHead(jobID, result, k.steps, k.since, k.head)
			return result, nil
		}
		if cbErr, ok := persistence.CallbackErr(err); ok {
			return nil, cbErr
		}
		s.steps.Drop(jobID)
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

// kept is what a JobUpdate transaction leaves in the cache for the job's
// next one (see persistence.StepCache).
type kept struct {
	steps []*persistence.StepState
	since int64
	head  *persistence.CachedHead // nil: the next update reads first
}

// jobUpdateOnce runs one JobUpdate transaction in two round trips: BEGIN,
// the job row's lock and the step rows the cache does not have (or all of
// them) in one pipeline; then the writes and COMMIT in another. It returns
// the state as written (sealed: a later change copies a step first) and
// what the cache keeps: the steps (the unchanged ones shared with what was
// read, which nobody modifies; copies of the written ones, whose maps fn
// may still hold), the horizon of the read (persistence.CachedSteps.Since)
// and the job's head.
func (s *Store) jobUpdateOnce(ctx context.Context, jobID string, fn func(*persistence.JobState) error, cached *persistence.CachedSteps) (*persistence.JobState, kept, error) {
	conn, done, err := s.txConn(ctx)
	if err != nil {
		return nil, kept{}, err
	}
	committed := false
	defer func() { done(committed) }()
	before, r, err := readState(ctx, conn, jobID, cached)
	if err != nil {
		return nil, kept{}, err
	}
	s.clock.sample(before.Now, r.received)
	// before may share the cache's steps: st shares them too, copying one
	// the first time fn changes it (persistence.JobState.MutAt), so that
	// neither fn nor Diff costs what the job holds.
	st := before.Share()
	if err := fn(st); err != nil {
		return nil, kept{}, persistence.CallbackError{Err: err}
	}
	b := &pgx.Batch{}
	w, err := writeBatch(b, before, st, s.notifyPayload(jobID))
	if err != nil {
		return nil, kept{}, err
	}
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	k, err := readWrites(br, w, before, st, r)
	if err != nil {
		return nil, kept{}, err
	}
	committed = true
	return st, k, nil
}

// txConn acquires a pooled connection for a JobUpdate's transaction. Call
// done once, with whether the transaction committed: whatever failed, it
// leaves no transaction open on the connection (one that cannot even roll
// back is closed, not reused) and releases it.
func (s *Store) txConn(ctx context.Context) (conn *pgx.Conn, done func(committed bool), err error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	conn = pc.Conn()
	return conn, func(committed bool) {
		if !committed {
			if _, err := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
				_ = conn.Close(context.WithoutCancel(ctx))
			}
		}
		pc.Release()
	}, nil
}

// jobUpdateUnread runs one JobUpdate transaction in one round trip, from
// the job as the cache kept it (the steps and the head of its last
// update): fn runs on that, with the database's time estimated from the
// server's clock (dbClock), and BEGIN, the job row's lock, a check that
// nothing changed, the writes and COMMIT go in one pipeline. The check
// raises ST410 (stroem_job_unread_stale) before any write runs when the
// job row was written since it was kept (its xmin), when a step row was
// written by anyone else (a version at least the horizon that is not the
// one kept), when a state scope of the job's task got or lost a snapshot,
// and ST411 when the estimated time is ahead of the transaction's now() or
// more than the slack (unreadClockSlack) behind it. A refusal by fn is returned as
// ST410 too: it may come from an old state. Either way JobUpdate runs the
// update again after reading.
//
// Why this is as safe as reading: the job row's lock is the per-job mutex
// every JobUpdate and claim takes, and the check runs in a statement after
// it, with a snapshot taken once it is held (a statement's snapshot is
// taken when it starts, so the lock's own statement cannot check the
// steps); every row the read would have returned that differs from the
// kept state has a version at least the kept horizon (see readState) and
// not the kept one. What can still change between that check and the
// write (a claim, a heartbeat, an acknowledgement: they do not all take
// the job's lock) is what the write already guards against when it
// follows a read. The time used is never ahead of the database's, so a
// lease or a deadline is never judged passed early.
func (s *Store) jobUpdateUnread(ctx context.Context, jobID string, fn func(*persistence.JobState) error, cached *persistence.CachedSteps) (*persistence.JobState, kept, error) {
	head := cached.Head
	now, ok := s.clock.now()
	if !ok || now.Sub(head.State.Now) > unreadMaxAge {
		return nil, kept{}, errUnreadClock
	}
	if now.Before(head.State.Now) {
		now = head.State.Now // the job's time does not go back
	}
	before := &persistence.JobState{Job: head.State.Job, SnapshotID: head.State.SnapshotID,
		CancelRequested: head.State.CancelRequested, Now: now, Context: head.State.Context,
		StateScopes: head.State.StateScopes}
	before.SetSteps(cached.Steps, cached.Index)
	st := before.Share()
	if err := fn(st); err != nil {
		return nil, kept{}, errUnreadRefused
	}
	pos := make([]int, len(head.Known))
	ver := make([]int64, len(head.Known))
	for i, k := range head.Known {
		pos[i], ver[i] = k.Position, k.Version
	}
	var scopes stroem.AssignmentState
	if head.State.StateScopes != nil {
		scopes = *head.State.StateScopes
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(unreadLockSQL, jobID, head.Version, now, s.clock.slack)
	b.Queue(unreadCheckSQL, jobID, cached.Since, pos, ver, scopes.Task, scopes.Global)
	w, err := writeBatch(b, before, st, s.notifyPayload(jobID))
	if err != nil {
		return nil, kept{}, err
	}
	b.Queue("COMMIT")

	conn, done, err := s.txConn(ctx)
	if err != nil {
		return nil, kept{}, err
	}
	committed := false
	defer func() { done(committed) }()
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil { // BEGIN
		return nil, kept{}, err
	}
	r := readResult{jobVersion: head.Version, complete: true}
	var (
		dbNow time.Time
		check *int64
		plans string
	)
	if err := br.QueryRow().Scan(&check, &dbNow, &r.horizon, &plans); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, kept{}, notFound("job %s not found", jobID)
		}
		return nil, kept{}, err
	}
	r.received = time.Now()
	if _, err := br.Exec(); err != nil { // the check
		return nil, kept{}, err
	}
	for _, k := range head.Known {
		if k.Version >= r.horizon {
			r.known = append(r.known, k)
		}
	}
	k, err := readWrites(br, w, before, st, r)
	if err != nil {
		return nil, kept{}, err
	}
	committed = true
	s.clock.sample(dbNow, r.received)
	return st, k, nil
}

// unreadClockSlack is how far behind the database's now() a time estimated
// for an unread update may be (jobUpdateUnread): the time stored with what
// it writes is at most this much earlier than the transaction's start, and
// a retry's delay at most this much shorter. A read's own now() is its
// transaction's start, itself earlier than the write by a round trip, and
// by any wait for the job's lock. Wide enough that a busy server's delay
// between estimating and sending seldom sends the update to a read.
const unreadClockSlack = 100 * time.Millisecond

// unreadMaxAge bounds how long ago the kept job's last update may have
// been for an update that does not read: the job row's version is a 32-bit
// transaction id, which comes round again after some billions of
// transactions (an hour of them is far beyond any server's rate).
const unreadMaxAge = time.Hour

// unreadLockSQL locks the job row ($1) as readState does, and raises
// unless the row is the version kept ($2, its xmin; the lock's recheck of
// a row updated while it waited sees the new one) and the estimated time
// ($3) is not after now() nor more than $4 before it. It returns now() and
// the horizon of the check that follows (see readState), and sets
// keyedPlans.
const unreadLockSQL = `SELECT CASE WHEN xmin::text::bigint <> $2 THEN stroem_job_unread_stale(id, 'job')
		WHEN $3::timestamptz > now() OR now() - $3::timestamptz > $4::interval THEN stroem_job_unread_stale(id, 'clock')
		END, now(), pg_snapshot_xmin(pg_current_snapshot())::text::bigint, ` + keyedPlansColumn + `
	FROM jobs WHERE id = $1 FOR NO KEY UPDATE OF jobs`

// unreadCheckSQL raises (in a statement after the job row's lock, so with
// a snapshot that sees every write committed before it was held) when a
// step row of the job ($1) has a version at least the kept horizon ($2)
// that is not the one kept for its position ($3, $4), or when the job's
// task or workspace got or lost a state snapshot ($5, $6: what was kept).
// job_steps_version_idx finds the rows.
const unreadCheckSQL = `SELECT stroem_job_unread_stale($1::uuid, 'steps') FROM job_steps s
	WHERE s.job_id = $1::uuid AND s.version >= $2
		AND NOT EXISTS (SELECT 1 FROM unnest($3::int[], $4::bigint[]) AS k(position, version)
			WHERE k.position = s.position AND k.version = s.version)
	UNION ALL
	SELECT stroem_job_unread_stale($1::uuid, 'state') FROM jobs
	WHERE jobs.id = $1::uuid AND ROW(` + stateScopesColumns + `) IS DISTINCT FROM ROW($5::bool, $6::bool)`

// errUnreadClock and errUnreadRefused send an unread update to the read
// (see unreadStale): the clock has no estimate yet (or the kept job is too
// old), or fn refused.
var (
	errUnreadClock   = &pgconn.PgError{Code: "ST411", Message: "no estimate of the database's clock yet"}
	errUnreadRefused = &pgconn.PgError{Code: "ST410", Message: "the update refused the kept state"}
)

// unreadStale says an unread update found the kept job out of date (or
// could not tell): run it again after reading.
func unreadStale(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "ST410" || pgErr.Code == "ST411")
}

// clockStale says the estimate of the database's clock was off.
func clockStale(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "ST411"
}

// readWrites reads the results of a transition's writes and COMMIT (w,
// queued after what r came from) and returns what the cache keeps.
func readWrites(br pgx.BatchResults, w *stepsWrite, before, st *persistence.JobState, r readResult) (kept, error) {
	for range w.pre {
		if _, err := br.Exec(); err != nil {
			return kept{}, err
		}
	}
	var (
		untaken []int
		written []persistence.RowVersion
		err     error
	)
	if len(w.steps) > 0 {
		if untaken, written, err = readWritten(br, w.steps); err != nil {
			return kept{}, err
		}
	}
	jobVersion := r.jobVersion
	for i := range w.post {
		if i == 0 && w.job {
			if err := br.QueryRow().Scan(&jobVersion); err != nil {
				return kept{}, err
			}
			continue
		}
		if _, err := br.Exec(); err != nil {
			return kept{}, err
		}
	}
	if _, err := br.Exec(); err != nil { // COMMIT
		return kept{}, err
	}
	if err := br.Close(); err != nil {
		return kept{}, err
	}
	st.Seal()
	keep := st.StepsShared() // the steps fn did not take are before's
	for _, i := range st.Changed() {
		if i < before.Len() {
			keep[i] = before.SharedAt(i) // taken, maybe unchanged; if written, replaced below
		}
	}
	for i, step := range w.steps {
		if !slices.Contains(untaken, step.Position) {
			// As a read would find it: the next update may not read it.
			if keep[step.Position], err = asStored(step, w.input[i], w.output[i]); err != nil {
				return kept{}, err
			}
		}
	}
	for _, i := range untaken {
		st.Untake(i, before) // keep[i] is before's already (above)
	}
	k := kept{steps: keep, since: r.horizon}
	if r.known != nil || r.complete {
		known := make([]persistence.RowVersion, 0, len(r.known)+len(written))
		for _, kv := range r.known {
			if !slices.ContainsFunc(written, func(w persistence.RowVersion) bool { return w.Position == kv.Position }) {
				known = append(known, kv)
			}
		}
		job := st.Job
		if w.job {
			if job.Output, err = persistence.DecodeJSON(w.jobOutput); err != nil {
				return kept{}, err
			}
			job.StartedAt, job.CompletedAt = storedTime(job.StartedAt), storedTime(job.CompletedAt)
		}
		k.head = &persistence.CachedHead{Version: jobVersion, Known: append(known, written...),
			State: &persistence.JobState{Job: job, SnapshotID: st.SnapshotID, CancelRequested: st.CancelRequested,
				Now: st.Now, Context: st.Context, StateScopes: st.StateScopes}}
	}
	return k, nil
}

// asStored returns a copy of a step written with input and output (its
// JSON) as a read of its row returns it: JSON values decoded as JSON
// (numbers are float64), times in UTC and in microseconds.
func asStored(step *persistence.StepState, input, output []byte) (*persistence.StepState, error) {
	c := *step
	var err error
	if c.Input, err = persistence.DecodeJSON(input); err != nil {
		return nil, err
	}
	if c.Output, err = persistence.DecodeJSONValue(output); err != nil {
		return nil, err
	}
	c.DependsOn = slices.Clone(step.DependsOn)
	if c.DependsOn == nil {
		c.DependsOn = []string{}
	}
	if step.ExitCode != nil {
		v := *step.ExitCode
		c.ExitCode = &v
	}
	c.LeaseExpiresAt, c.ReadyAt = storedTime(step.LeaseExpiresAt), storedTime(step.ReadyAt)
	c.StartedAt, c.CompletedAt = storedTime(step.StartedAt), storedTime(step.CompletedAt)
	return &c, nil
}

// storedTime is t as a timestamptz column returns it.
func storedTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}

// readResult is what readState (or the lock of an unread update) learned
// beside the state: the horizon of the read, the job row's version, and
// the steps with a version at least the horizon (known; complete says the
// list is whole even if empty: known is nil and complete false when the
// versions of some such rows are not known, and the next update reads).
type readResult struct {
	horizon    int64
	jobVersion int64
	known      []persistence.RowVersion
	complete   bool
	received   time.Time // when the read's answer came: a sample of the clocks
}

// readState begins a transaction on conn (under keyedPlans), locks the job row (the per-job
// mutex every JobUpdate takes; FOR NO KEY UPDATE, so that the foreign-key
// checks of rows inserted for the job, which lock it FOR KEY SHARE, do not
// wait for it) and reads the job and its steps, in one round trip. Step rows are read without locks, so claims (SKIP LOCKED on
// step rows) never skip a job's ready steps while one of its transitions
// runs; writeBatch instead writes each step only if it is still as it was
// read. With a cache entry (the steps as the last JobUpdate wrote them,
// and the horizon of its read) only the rows written since — a claim, a
// heartbeat, another server, the last JobUpdate itself — are read; the
// returned steps then share the entry's structs and must not be modified.
//
// It also returns the horizon of this read: the xmin of the job row's
// snapshot, taken before the steps' own. Every transaction still running
// when the steps were read, or begun since, has an id at least that, and
// the trigger of migration 00210 gives each row it writes that id
// (version): the next read's rows with version >= horizon are every row
// this one could not see, and some it did.
func readState(ctx context.Context, conn *pgx.Conn, id string, cached *persistence.CachedSteps) (*persistence.JobState, readResult, error) {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	// The job's row also sets keyedPlans for what follows (the step write
	// unnests arrays), without a statement of its own.
	b.Queue(`SELECT `+persistence.JobColumns+`, now(), context, `+stateScopesColumns+`, `+keyedPlansColumn+`,
		pg_snapshot_xmin(pg_current_snapshot())::text::bigint, xmin::text::bigint
		FROM jobs WHERE id = $1 FOR NO KEY UPDATE OF jobs`, id)
	if cached == nil {
		b.Queue(readStepsSQL, id)
	} else {
		b.Queue(readStepsSinceSQL, id, cached.Since)
	}
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	var r readResult
	if _, err := br.Exec(); err != nil { // BEGIN
		return nil, r, err
	}
	st := &persistence.JobState{}
	var jobContext []byte
	var scopes stroem.AssignmentState
	var plans string
	job, snapshotID, cancelRequested, err := scanJob(br.QueryRow(), &st.Now, &jobContext, &scopes.Task, &scopes.Global, &plans, &r.horizon, &r.jobVersion)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, r, notFound("job %s not found", id)
	}
	if err != nil {
		return nil, r, err
	}
	r.received = time.Now()
	if st.Context, err = persistence.DecodeJSON(jobContext); err != nil {
		return nil, r, err
	}
	st.Job, st.SnapshotID, st.CancelRequested, st.StateScopes = job, snapshotID, cancelRequested, &scopes
	st.Now = st.Now.UTC()
	var steps []*persistence.StepState
	own := cached == nil // steps is this read's own: cached.Steps is copied before its first change
	if cached != nil {
		steps = cached.Steps
	}
	// The versions of the rows at least the horizon: every one read, for a
	// full read; else the re-read ones and the rest of those kept.
	r.complete = cached == nil || cached.Head != nil
	var reread []int
	rows, err := br.Query()
	if err != nil {
		return nil, r, err
	}
	defer rows.Close()
	for rows.Next() {
		var version *int64
		step, err := scanStep(rows, &version)
		if err != nil {
			return nil, r, err
		}
		switch {
		case cached == nil && step.Position == len(steps):
			steps = append(steps, step)
		case cached != nil && step.Position >= 0 && step.Position < len(steps):
			if !own {
				steps, own = slices.Clone(steps), true
			}
			steps[step.Position] = step
			reread = append(reread, step.Position)
		default:
			return nil, r, persistence.StaleCacheError{Job: id}
		}
		if version != nil && *version >= r.horizon {
			r.known = append(r.known, persistence.RowVersion{Position: step.Position, Version: *version})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, r, err
	}
	if cached != nil && cached.Head != nil {
		for _, k := range cached.Head.Known {
			if k.Version >= r.horizon && !slices.Contains(reread, k.Position) {
				r.known = append(r.known, k)
			}
		}
	}
	var idx *persistence.StepIndex
	if cached != nil {
		idx = cached.Index
	}
	st.SetSteps(steps, idx)
	return st, r, nil
}

// readStepsSQL reads every step of a job ($1), in position order.
const readStepsSQL = `SELECT ` + persistence.StepColumns + `, version FROM job_steps
	WHERE job_id = $1 ORDER BY position`

// readStepsSinceSQL reads the steps of a job ($1) written by transactions
// with an id at least $2 (a read's horizon, see readState), in no order:
// job_steps_version_idx finds them among the job's steps.
const readStepsSinceSQL = `SELECT ` + persistence.StepColumns + `, version FROM job_steps
	WHERE job_id = $1 AND version >= $2`

// stepsWrite is the batch of one transition's writes: pre statements
// (the skeletons of appended steps), then, when steps is not empty, the one
// statement writing them (writeStepsSQL, one row per step), then post
// statements (the job, the notification).
type stepsWrite struct {
	pre, post int
	job       bool                     // the first post statement is the job's, returning its new version
	steps     []*persistence.StepState // in position order, as writeStepsSQL returns them
	// The JSON written: each step's input and output (as steps), and the
	// job's output when job.
	input, output [][]byte
	jobOutput     []byte
}

// writeBatch queues the writes of what fn changed (see Diff): every
// changed step, and the records of their attempts, in one statement
// however many there are.
func writeBatch(b *pgx.Batch, before, after *persistence.JobState, payload string) (*stepsWrite, error) {
	changed, jobChanged, err := persistence.Diff(before, after)
	if err != nil {
		return nil, err
	}
	w := &stepsWrite{}
	notify := false
	var (
		skeletons []persistence.PreparedStep
		first     int // the position of the first skeleton
		cols      stepColumns
	)
	for _, c := range changed {
		old, cur := c.Old, c.Cur
		if c.Insert {
			// Appended steps come last, at consecutive positions (Diff).
			if len(skeletons) == 0 {
				first = old.Position
			} else if old.Position != first+len(skeletons) {
				return nil, fmt.Errorf("job %s: appended step %s is not at position %d", after.Job.ID, old.Name, first+len(skeletons))
			}
			skeletons = append(skeletons, persistence.PreparedStep{NewStep: persistence.NewStep{
				Name: old.Name, ActionName: old.ActionName, ActionType: old.ActionType, Image: old.Image,
				Tags: old.Tags, DependsOn: old.DependsOn, ContinueOnFailure: old.ContinueOnFailure, MaxAttempts: old.MaxAttempts,
				Status: stroem.StepPending}})
		}
		if err := cols.add(c, after.Now); err != nil {
			return nil, err
		}
		w.steps = append(w.steps, cur)
		w.input, w.output = append(w.input, cols.input[len(cols.input)-1]), append(w.output, cols.output[len(cols.output)-1])
		notify = notify || c.Ready
	}
	if len(skeletons) > 0 {
		sql, args := insertStepsSQL(after.Job.ID, skeletons, first)
		b.Queue(sql, args...)
		w.pre++
	}
	if len(w.steps) > 0 {
		b.Queue(writeStepsSQL, cols.args(after.Job.ID, after.Now)...)
	}
	if jobChanged {
		output, err := persistence.EncodeJSON(after.Job.Output)
		if err != nil {
			return nil, err
		}
		w.jobOutput = output
		b.Queue(`UPDATE jobs SET status = $2, output = $3, cancel_requested = $4, started_at = $5, completed_at = $6
			WHERE id = $1 RETURNING xmin::text::bigint`,
			after.Job.ID, string(after.Job.Status), output, after.CancelRequested,
			after.Job.StartedAt, after.Job.CompletedAt)
		w.post++
		w.job = true
	}
	if notify {
		b.Queue(`SELECT pg_notify($1, $2)`, persistence.ChannelStepsReady, payload)
		w.post++
	}
	if jobChanged && after.Job.Status.Terminal() && !before.Job.Status.Terminal() {
		// Other servers end their streams of the job and answer their
		// waiting sync webhooks; sent at commit, with no round trip of its
		// own (it was a statement after the commit, one per job).
		b.Queue(`SELECT pg_notify($1, $2)`, persistence.ChannelLogs, payload+":done:"+string(after.Job.Status))
		w.post++
	}
	return w, nil
}

// readWritten reads writeStepsSQL's rows: each written step's lease (its
// new xmin says it was written). Their writes left the rows in the state
// the transition returns, except the lease, which a heartbeat may have
// renewed since the read: the write keeps that unless fn changed the
// lease, and what is returned and cached must say what the row holds. It returns the
// positions of the offered steps the write did not take (no xmin), and
// the versions of the rows it wrote.
func readWritten(br pgx.BatchResults, steps []*persistence.StepState) (untaken []int, written []persistence.RowVersion, err error) {
	rows, err := br.Query()
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			pos   int
			x     *int64
			lease *time.Time
			sa    *int
			v     int64
		)
		if err := rows.Scan(&pos, &x, &lease, &sa, &v); err != nil {
			return nil, nil, err
		}
		if n >= len(steps) || steps[n].Position != pos {
			return nil, nil, fmt.Errorf("step write returned position %d out of order", pos)
		}
		n++
		if x == nil { // an offer not taken (only those come back without)
			untaken = append(untaken, pos)
			continue
		}
		written = append(written, persistence.RowVersion{Position: pos, Version: v})
		if lease != nil {
			*lease = lease.UTC()
		}
		steps[n-1].LeaseExpiresAt = lease
		if sa != nil { // the stored one: an acknowledgement may have come in meanwhile
			steps[n-1].StartedAttempt = *sa
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if n != len(steps) {
		return nil, nil, fmt.Errorf("step write returned %d of %d steps", n, len(steps))
	}
	return untaken, written, nil
}

// stepColumns holds the changed steps of one transition column by column,
// the arrays writeStepsSQL unnests.
type stepColumns struct {
	names, status, errMsg, worker, attemptStatus, oldStatus, oldWorker, handed []string
	position, attempt, oldAttempt, startedAttempt                              []int
	input, output                                                              [][]byte
	exitCode                                                                   []*int
	lease, readyAt, startedAt, completedAt, attemptStarted                     []*time.Time
	leaseSet, cancel, writeAttempt, offer                                      []bool
	// offerRoutes are the routes of the offers' claims (Offer), and
	// offerReady the latest time an offered step became ready.
	offerRoutes []persistence.Route
	offerReady  *time.Time
}

func (c *stepColumns) add(w persistence.StepWrite, now time.Time) error {
	old, cur := w.Old, w.Cur
	input, err := persistence.EncodeJSON(cur.Input)
	if err != nil {
		return err
	}
	output, err := persistence.EncodeJSONValue(cur.Output)
	if err != nil {
		return err
	}
	c.names = append(c.names, cur.Name)
	c.position = append(c.position, cur.Position)
	c.status = append(c.status, string(cur.Status))
	c.input = append(c.input, input)
	c.output = append(c.output, output)
	c.errMsg = append(c.errMsg, cur.ErrorMessage)
	c.worker = append(c.worker, cur.WorkerID)
	c.attempt = append(c.attempt, cur.Attempt)
	c.startedAttempt = append(c.startedAttempt, cur.StartedAttempt)
	c.attemptStatus = append(c.attemptStatus, string(cur.AttemptStatus))
	c.exitCode = append(c.exitCode, cur.ExitCode)
	c.lease = append(c.lease, cur.LeaseExpiresAt)
	c.leaseSet = append(c.leaseSet, !persistence.TimesEqual(old.LeaseExpiresAt, cur.LeaseExpiresAt))
	c.readyAt = append(c.readyAt, cur.ReadyAt)
	c.cancel = append(c.cancel, cur.CancelRequested)
	c.startedAt = append(c.startedAt, cur.StartedAt)
	c.completedAt = append(c.completedAt, cur.CompletedAt)
	c.oldStatus = append(c.oldStatus, string(old.Status))
	c.oldAttempt = append(c.oldAttempt, old.Attempt)
	c.oldWorker = append(c.oldWorker, old.WorkerID)
	c.writeAttempt = append(c.writeAttempt, w.Attempt)
	c.offer = append(c.offer, w.Offer != nil)
	c.handed = append(c.handed, w.HandedFor)
	if w.Offer != nil && old.ReadyAt != nil && (c.offerReady == nil || old.ReadyAt.After(*c.offerReady)) {
		c.offerReady = old.ReadyAt
	}
	if w.Offer != nil {
		c.offerRoutes = append(c.offerRoutes, *w.Offer)
	}
	started := cur.StartedAt
	if started == nil {
		started = &now
	}
	c.attemptStarted = append(c.attemptStarted, started)
	return nil
}

// args returns writeStepsSQL's arguments.
func (c *stepColumns) args(jobID string, now time.Time) []any {
	bound := persistence.OfferBound(c.offerRoutes)
	return []any{jobID, c.names, c.position, c.status, c.input, c.output, c.errMsg, c.worker, c.attempt,
		c.attemptStatus, c.exitCode, c.lease, c.leaseSet, c.readyAt, c.cancel, c.startedAt, c.completedAt,
		c.oldStatus, c.oldAttempt, c.oldWorker, c.writeAttempt, c.attemptStarted, now, c.startedAttempt,
		c.offer, bound.Capabilities, c.offerReady, c.handed, bound.Tags, bound.Exclusive}
}

// writeStepsSQL writes every step a JobUpdate changed, and the record of
// each one whose current attempt changed, in one statement (one row of the
// arrays per step, in position order). Step rows were read unlocked: a step
// is written only if it is still in the status, attempt and holder it was
// read in (an unclaim and a claim by another worker restore status and
// attempt, not the holder). If a claim or an unclaim moved one meanwhile,
// its row is not hit and stroem_step_moved raises (before the COMMIT
// queued after this statement can run): the whole update runs again on
// fresh state. A lease a heartbeat renewed meanwhile is kept unless fn
// changed the lease itself. A new attempt sets the link of the completion
// it is handed to ($28, JobState.HandFor; handed_for), or drops the link an
// earlier attempt had (""). The statement
// returns, per step, the row's new xmin, its lease, its started attempt and
// its version (0 when not written).
//
// Each step is found by a lookup of its job and position in v (a
// subquery per row: the (job_id, position) index, both columns), then by
// that row version's TID. A scan of the job's rows filtered by position,
// which is what a generic plan made on a young job_steps chose (it expects
// one row per job), read every step of the job at every transition: a
// 10,000-step fan-out spent most of its PostgreSQL time there. The TID join
// has no other plan (no condition on job_steps but the TID), and it follows
// v, which is in position order: the rows are met — locked — in position
// order, the order claims, acknowledgements and heartbeats lock in. A row
// another transaction updates between this statement's snapshot and its
// write (a heartbeat or an acknowledgement that commits while the write
// runs, or while it waits for that row) is not hit by the TID of the
// version read, so it counts as moved and the update runs again (checked:
// a lease renewal holding the row makes the function run twice), where a
// scan by key rechecked the newer version and wrote it. An attempt
// record ($22: its start, $23: the transaction's time) is written only for
// a step that was written.
//
// An offered step ($25, persistence.JobState.Offer: a ready step made
// running for a completion's claim) is written only if free finds it still
// ready and locks it at once — SKIP LOCKED: a claim holding it has it, and
// waiting for that claim would only find it gone — and no other job has a
// step the claims could take — of their action types ($26) and matching
// their tags ($29, $30: persistence.OfferBound, the test the claim makes)
// — ready since before the newest offered step became ready ($27; one
// bound for all of them, so that the check is a range of
// job_steps_ready_order_idx, not a scan of every ready step per offer: an
// offer that a claim might not have made is refused, never one it would
// have made). One not taken is no conflict: its row comes back without an xmin, and the update
// commits without it (readWritten). Without offers, free is never read.
const writeStepsSQL = `
WITH v AS (
	SELECT x.*, (SELECT k.ctid FROM job_steps k WHERE k.job_id = $1::uuid AND k.position = x.position) AS tid
	FROM unnest($2::text[], $3::int[], $4::text[], $5::jsonb[], $6::jsonb[], $7::text[], $8::text[],
		$9::int[], $10::text[], $11::int[], $12::timestamptz[], $13::bool[], $14::timestamptz[], $15::bool[],
		$16::timestamptz[], $17::timestamptz[], $18::text[], $19::int[], $20::text[], $21::bool[], $22::timestamptz[],
		$24::int[], $25::bool[], $28::text[])
		WITH ORDINALITY AS x(step_name, position, status, input, output, error_message, worker_id,
			attempt, attempt_status, exit_code, lease_expires_at, lease_set, ready_at, cancel_requested,
			started_at, completed_at, old_status, old_attempt, old_worker_id, write_attempt, attempt_started_at,
			started_attempt, offer, handed_for, ord)
), free AS MATERIALIZED (
	SELECT s.position FROM v JOIN job_steps s ON s.ctid = v.tid
	WHERE v.offer AND s.position = v.position AND s.step_name = v.step_name
		AND s.status = v.old_status AND s.attempt = v.old_attempt
		AND NOT EXISTS (SELECT 1 FROM job_steps o WHERE o.status = 'ready' AND o.ready_at < $27::timestamptz
			AND o.action_type = ANY($26::text[]) AND o.job_id <> $1::uuid
			AND o.required_tags <@ $29::text[] AND (NOT $30::bool OR $29::text[] <@ o.required_tags))
	FOR UPDATE OF s SKIP LOCKED
), u AS (
	UPDATE job_steps s SET status = v.status, input = v.input, output = v.output, error_message = v.error_message,
		worker_id = nullif(v.worker_id, ''), attempt = v.attempt, attempt_status = v.attempt_status,
		exit_code = v.exit_code,
		lease_expires_at = CASE WHEN v.lease_set THEN v.lease_expires_at ELSE s.lease_expires_at END,
		ready_at = v.ready_at, cancel_requested = v.cancel_requested, started_at = v.started_at,
		completed_at = v.completed_at,
		started_attempt = CASE WHEN v.status = 'running' AND v.started_attempt = v.attempt THEN v.attempt
			ELSE s.started_attempt END,
		handed_for = CASE WHEN v.attempt <> v.old_attempt THEN v.handed_for ELSE s.handed_for END
	FROM v
	WHERE s.ctid = v.tid AND s.position = v.position
		AND s.step_name = v.step_name AND s.status = v.old_status AND s.attempt = v.old_attempt
		AND s.worker_id IS NOT DISTINCT FROM nullif(v.old_worker_id, '')
		AND (NOT v.offer OR s.position IN (SELECT position FROM free))
	RETURNING s.position, s.xmin::text::bigint AS x, s.lease_expires_at AS l, s.started_attempt AS sa, s.version AS v
), a AS (
	INSERT INTO step_attempts AS a (job_id, step_name, attempt, worker_id, status, exit_code,
		error_message, started_at, completed_at)
	SELECT $1::uuid, v.step_name, v.attempt, v.worker_id, v.attempt_status, v.exit_code, v.error_message,
		v.attempt_started_at, CASE WHEN v.attempt_status <> 'running' THEN $23::timestamptz END
	FROM v JOIN u ON u.position = v.position
	WHERE v.write_attempt
	ON CONFLICT (job_id, step_name, attempt) DO UPDATE SET
		worker_id = excluded.worker_id, status = excluded.status, exit_code = excluded.exit_code,
		error_message = excluded.error_message,
		completed_at = CASE WHEN excluded.status = 'running' THEN NULL
			ELSE coalesce(a.completed_at, excluded.completed_at) END
)
SELECT v.position, CASE WHEN u.x IS NOT NULL THEN u.x WHEN v.offer THEN NULL
		ELSE stroem_step_moved($1::uuid, v.step_name) END,
	u.l, u.sa, coalesce(u.v, 0)
FROM v LEFT JOIN u ON u.position = v.position
ORDER BY v.ord`

// stateScopesColumns reads, with a row of jobs, whether its task and its
// workspace's global state have a snapshot (see Store.StateScopes).
const stateScopesColumns = `EXISTS (SELECT 1 FROM state_snapshots ss
		WHERE ss.workspace = jobs.workspace AND ss.task_name = jobs.task_name),
	EXISTS (SELECT 1 FROM state_snapshots ss WHERE ss.workspace = jobs.workspace AND ss.task_name = '')`
