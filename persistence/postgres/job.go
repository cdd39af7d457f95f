package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// SnapshotPut stores a task snapshot under its id; storing the same id again
// is a no-op (the id is a hash of the body).
func (s *Store) SnapshotPut(ctx context.Context, id string, body []byte) error {
	return s.snapshots.Put(errs, id, body, func(body []byte) error {
		_, err := s.pool.Exec(ctx,
			`INSERT INTO task_snapshots (id, body) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, id, body)
		return err
	})
}

// SnapshotGet returns the body of a stored task snapshot.
func (s *Store) SnapshotGet(ctx context.Context, id string) ([]byte, error) {
	return s.snapshots.Get(errs, id, func() (body []byte, err error) {
		err = s.pool.QueryRow(ctx, `SELECT body FROM task_snapshots WHERE id = $1`, id).Scan(&body)
		return body, err
	})
}

// JobInsert writes a job with all its steps in one transaction: step
// positions follow NewJob.Steps, ready steps become claimable at once, and
// the transaction notifies ChannelStepsReady when any step is ready. The
// snapshot body is sent only when this process has not stored that id yet.
// A duplicate job id is a CodeConflict error. With a Tick, the tick is
// recorded first, in the same transaction (see TriggerTick): ErrTickFired or
// ErrTriggerBusy mean nothing was written.
func (s *Store) JobInsert(ctx context.Context, nj persistence.NewJob) error {
	return s.snapshots.InsertJob(errs, nj, func(p persistence.PreparedJob) error {
		j := p.Job
		return s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
			if nj.Tick != nil {
				if err := insertTick(ctx, tx, j.Workspace, j.ID, nj.Tick); err != nil {
					return err
				}
			}
			b := &pgx.Batch{}
			b.Queue(genericPlans) // the steps' insert unnests arrays
			if p.SnapshotBody != nil {
				b.Queue(`INSERT INTO task_snapshots (id, body) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`,
					nj.SnapshotID, p.SnapshotBody)
			}
			b.Queue(`INSERT INTO jobs (id, workspace, task_name, mode, input, output, status, source_type,
					source_id, revision, snapshot_id, context, created_at, started_at, completed_at, created_by)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, nullif($11, ''), $12, now(),
					CASE WHEN $7 = 'running' THEN now() END,
					CASE WHEN $7 IN ('completed', 'failed', 'cancelled', 'skipped') THEN now() END, $13)`,
				j.ID, j.Workspace, j.TaskName, j.Mode, p.Input, p.Output, string(j.Status), string(j.SourceType),
				j.SourceID, j.Revision, nj.SnapshotID, p.Context, j.CreatedBy)
			if len(p.Steps) > 0 {
				sql, args := insertStepsSQL(j.ID, p.Steps, 0)
				b.Queue(sql, args...)
			}
			if p.AnyReady {
				b.Queue(`SELECT pg_notify($1, $2)`, persistence.ChannelStepsReady, s.notifyPayload(j.ID))
			}
			return tx.SendBatch(ctx, b).Close()
		})
	})
}

// insertStepsSQL returns the statement inserting steps, at positions
// first, first+1, …, into job jobID, with its arguments: one statement
// however many steps there are (a statement per step cost each step a
// parse, a bind and a plan). A ready step is claimable at once (ready_at is
// the transaction's time), a terminal one completed, a suspended one
// started. The steps' dependency lists are sent as one array, each step
// taking its slice of it, and so are their tags.
func insertStepsSQL(jobID string, steps []persistence.PreparedStep, first int) (string, []any) {
	n := len(steps)
	var (
		names, actions, types, images, status, errMsg, revisions = make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		positions, maxAttempts, depsFrom, depsTo = make([]int, n), make([]int, n), make([]int, n), make([]int, n)
		tagsFrom, tagsTo                         = make([]int, n), make([]int, n)
		cont                                     = make([]bool, n)
		input, output                            = make([][]byte, n), make([][]byte, n)
		deps                                     []string
		tags                                     = []string{}
	)
	for i, st := range steps {
		names[i], actions[i], types[i], images[i] = st.Name, st.ActionName, st.ActionType, st.Image
		status[i], errMsg[i], revisions[i] = string(st.Status), st.ErrorMessage, st.Revision
		positions[i], maxAttempts[i], cont[i] = first+i, st.MaxAttempts, st.ContinueOnFailure
		input[i], output[i] = st.Input, st.Output
		depsFrom[i] = len(deps) + 1
		deps = append(deps, st.DependsOn...)
		depsTo[i] = len(deps)
		tagsFrom[i] = len(tags) + 1
		tags = append(tags, st.Tags...)
		tagsTo[i] = len(tags)
	}
	if deps == nil {
		deps = []string{}
	}
	return insertStepsStatement, []any{jobID, names, positions, actions, types, images, deps, depsFrom, depsTo,
		cont, maxAttempts, status, input, errMsg, output, revisions, tags, tagsFrom, tagsTo}
}

// insertStepsStatement is insertStepsSQL's statement. A step's
// dependencies are the slice $7[from ($8) : to ($9)]: empty ('{}', never
// NULL) when to < from; its tags likewise $17[$18 : $19].
const insertStepsStatement = `
INSERT INTO job_steps (job_id, step_name, position, action_name, action_type, image, depends_on,
	continue_on_failure, max_attempts, status, input, error_message, ready_at, completed_at, output,
	started_at, revision, required_tags)
SELECT $1::uuid, v.step_name, v.position, v.action_name, v.action_type, v.image,
	($7::text[])[v.deps_from : v.deps_to],
	v.continue_on_failure, v.max_attempts, v.status, v.input, v.error_message,
	CASE WHEN v.status = 'ready' THEN now() END,
	CASE WHEN v.status IN ('completed', 'failed', 'skipped', 'cancelled') THEN now() END,
	v.output, CASE WHEN v.status = 'suspended' THEN now() END, nullif(v.revision, ''),
	($17::text[])[v.tags_from : v.tags_to]
FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $8::int[], $9::int[], $10::bool[],
	$11::int[], $12::text[], $13::jsonb[], $14::text[], $15::jsonb[], $16::text[], $18::int[], $19::int[])
	AS v(step_name, position, action_name, action_type, image, deps_from, deps_to, continue_on_failure,
		max_attempts, status, input, error_message, output, revision, tags_from, tags_to)`

// scanJob reads one row selected with persistence.JobColumns (plus extra destinations).
func scanJob(row pgx.Row, extra ...any) (stroem.Job, string, bool, error) {
	var r persistence.JobRow
	j := &r.Job
	err := row.Scan(append([]any{&j.ID, &j.Workspace, &j.TaskName, &j.Mode, &r.Input, &r.Output, &r.Status,
		&r.SourceType, &j.SourceID, &j.Revision, &r.SnapshotID, &r.CancelRequested, &j.CreatedAt, &j.StartedAt,
		&j.CompletedAt, &j.CreatedBy, &j.CancelledBy}, extra...)...)
	if err != nil {
		return r.Job, "", false, err
	}
	job, err := r.Decode()
	return job, r.SnapshotID, r.CancelRequested, err
}

// scanStep reads one row selected with persistence.StepColumns.
func scanStep(row pgx.Row, extra ...any) (*persistence.StepState, error) {
	var r persistence.StepRow
	st := &r.Step
	err := row.Scan(append([]any{&st.Name, &st.Position, &st.ActionName, &st.ActionType, &st.Image, &st.DependsOn,
		&st.ContinueOnFailure, &st.MaxAttempts, &r.Status, &r.Input, &r.Output, &st.ErrorMessage, &st.WorkerID,
		&st.Attempt, &r.AttemptStatus, &st.ExitCode, &st.LeaseExpiresAt, &st.ReadyAt, &st.CancelRequested,
		&st.StartedAt, &st.CompletedAt, &st.StartedAttempt, &st.Tags}, extra...)...)
	if err != nil {
		return nil, err
	}
	return r.Decode()
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// JobGet returns a job with its steps in position order, each with its
// attempts. An id that is not a UUID, or names no job, is CodeNotFound.
func (s *Store) JobGet(ctx context.Context, id string) (*stroem.Job, error) {
	if !validUUID(id) {
		return nil, notFound("job %s not found", id)
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+persistence.JobColumns+` FROM jobs WHERE id = $1`, id)
	b.Queue(`SELECT `+persistence.StepColumns+` FROM job_steps WHERE job_id = $1 ORDER BY position`, id)
	b.Queue(`SELECT step_name, attempt, worker_id, status, exit_code, error_message, started_at, completed_at
		FROM step_attempts WHERE job_id = $1 ORDER BY step_name, attempt`, id)
	br := s.pool.SendBatch(ctx, b)
	job, err := readJob(br, id)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return job, errs.Wrap(err, "get job %s", id)
}

// JobStatus returns a job's status from its row alone. An id that is not a
// UUID, or names no job, is CodeNotFound.
func (s *Store) JobStatus(ctx context.Context, id string) (stroem.JobStatus, error) {
	if !validUUID(id) {
		return "", notFound("job %s not found", id)
	}
	var status string
	err := s.pool.QueryRow(ctx, `SELECT status FROM jobs WHERE id = $1`, id).Scan(&status)
	if err != nil {
		return "", errs.Wrap(errs.Row(err, notFound("job %s not found", id), ""), "get status of job %s", id)
	}
	return stroem.JobStatus(status), nil
}

func readJob(br pgx.BatchResults, id string) (*stroem.Job, error) {
	job, _, _, err := scanJob(br.QueryRow())
	if err != nil {
		return nil, errs.Row(err, notFound("job %s not found", id), "")
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	var states []*persistence.StepState
	for rows.Next() {
		st, err := scanStep(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		states = append(states, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	attempts := map[string][]stroem.Attempt{}
	rows, err = br.Query()
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var (
			step   string
			a      stroem.Attempt
			status string
		)
		if err := rows.Scan(&step, &a.Attempt, &a.WorkerID, &status, &a.ExitCode, &a.ErrorMessage,
			&a.StartedAt, &a.CompletedAt); err != nil {
			rows.Close()
			return nil, err
		}
		a.Status = stroem.AttemptStatus(status)
		a.StartedAt, a.CompletedAt = a.StartedAt.UTC(), utc(a.CompletedAt)
		attempts[step] = append(attempts[step], a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	job.Steps = persistence.StepViews(states, attempts)
	return &job, nil
}

// JobList returns jobs newest first (created_at, then id, descending),
// without their steps. Limit defaults to 50 and is capped at 1000.
func (s *Store) JobList(ctx context.Context, f persistence.JobFilter) ([]stroem.Job, error) {
	q, args := jobListQuery(f)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", interpretError(err))
	}
	jobs, err := pgx.CollectRows(rows, rowToJob)
	return jobs, errs.Wrap(err, "list jobs")
}

// jobListQuery is JobList's statement (the plan tests explain it).
func jobListQuery(f persistence.JobFilter) (string, []any) {
	var args params
	q := `SELECT ` + persistence.JobColumns + ` FROM jobs` + f.Where(args.add) + f.ListPage(args.add)
	return q, args
}

func rowToJob(row pgx.CollectableRow) (stroem.Job, error) {
	j, _, _, err := scanJob(row)
	return j, err
}

// JobCount counts the jobs JobList would page through (Limit and Offset
// are ignored): the total of a paginated list.
func (s *Store) JobCount(ctx context.Context, f persistence.JobFilter) (int, error) {
	var (
		args params
		n    int
	)
	q := `SELECT count(*) FROM jobs` + f.Where(args.add)
	if err := s.pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count jobs: %w", interpretError(err))
	}
	return n, nil
}

// params collects a statement's arguments for a neutral builder such as
// persistence.JobFilter.Where.
type params []any

// add records v and returns its placeholder.
func (p *params) add(v any) string {
	*p = append(*p, v)
	return fmt.Sprintf("$%d", len(*p))
}

// JobsUnfinished returns the ids of every pending or running job, oldest
// first: the jobs a starting server must resume.
func (s *Store) JobsUnfinished(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT id::text FROM jobs WHERE status IN ('pending', 'running') ORDER BY jobs.created_at, jobs.id`)
	if err != nil {
		return nil, fmt.Errorf("list unfinished jobs: %w", interpretError(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, errs.Wrap(err, "list unfinished jobs")
}

// JobState returns the same state JobUpdate builds, read-only and without
// locks, for rebuilding an actor's view of a job.
func (s *Store) JobState(ctx context.Context, id string) (*persistence.JobState, error) {
	if !validUUID(id) {
		return nil, notFound("job %s not found", id)
	}
	var st *persistence.JobState
	err := s.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		st, err = loadState(ctx, tx, id)
		return err
	})
	return st, errs.Wrap(err, "read job %s", id)
}

// loadState reads a job and its steps in tx, for JobState (JobUpdate reads
// with readState).
func loadState(ctx context.Context, tx pgx.Tx, id string) (*persistence.JobState, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT `+persistence.JobColumns+`, now(), context FROM jobs WHERE id = $1`, id)
	b.Queue(`SELECT `+persistence.StepColumns+` FROM job_steps WHERE job_id = $1 ORDER BY position`, id)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	st := &persistence.JobState{}
	var jobContext []byte
	job, snapshotID, cancelRequested, err := scanJob(br.QueryRow(), &st.Now, &jobContext)
	if err != nil {
		return nil, errs.Row(err, notFound("job %s not found", id), "")
	}
	if st.Context, err = persistence.DecodeJSON(jobContext); err != nil {
		return nil, err
	}
	st.Job, st.SnapshotID, st.CancelRequested = job, snapshotID, cancelRequested
	st.Now = st.Now.UTC()
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	var steps []*persistence.StepState
	for rows.Next() {
		step, err := scanStep(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		steps = append(steps, step)
	}
	st.SetSteps(steps, nil)
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return st, br.Close()
}
