package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// SnapshotPut stores a task snapshot under its id; storing the same id again
// is a no-op (the id is a hash of the body).
func (s *Store) SnapshotPut(ctx context.Context, id string, body []byte) error {
	return s.snapshots.Put(errs, id, body, func(body []byte) error {
		return s.writeTx(ctx, func(tx *txn, now time.Time) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO task_snapshots (id, body, created_at) VALUES (?, ?, ?)
				ON CONFLICT (id) DO NOTHING`, id, string(body), nanos(now))
			return err
		})
	})
}

// SnapshotGet returns the body of a stored task snapshot.
func (s *Store) SnapshotGet(ctx context.Context, id string) ([]byte, error) {
	return s.snapshots.Get(errs, id, func() (body []byte, err error) {
		err = s.queryRow(ctx, `SELECT body FROM task_snapshots WHERE id = ?`, id).Scan(&body)
		return body, err
	})
}

// JobInsert writes a job with all its steps in one transaction: step
// positions follow NewJob.Steps and ready steps become claimable at once.
// The snapshot body is written only when this process has not stored that
// id yet. A duplicate job id (or step name) is a CodeConflict error and
// writes nothing. With a Tick, the tick is checked and recorded first, in
// the same transaction (see persistence.TriggerTick):
// persistence.ErrTickFired or ErrTriggerBusy mean nothing was written.
func (s *Store) JobInsert(ctx context.Context, nj persistence.NewJob) error {
	return s.snapshots.InsertJob(errs, nj, func(p persistence.PreparedJob) error {
		j := p.Job
		return s.writeTx(ctx, func(tx *txn, now time.Time) error {
			if nj.Tick != nil {
				if err := insertTick(ctx, tx, j.Workspace, j.ID, nj.Tick, now); err != nil {
					return err
				}
			}
			if p.SnapshotBody != nil {
				if _, err := tx.ExecContext(ctx, `INSERT INTO task_snapshots (id, body, created_at) VALUES (?, ?, ?)
					ON CONFLICT (id) DO NOTHING`, nj.SnapshotID, string(p.SnapshotBody), nanos(now)); err != nil {
					return err
				}
			}
			// The times PostgreSQL's INSERT sets with CASE WHEN … THEN now().
			at := func(set bool) any {
				if set {
					return nanos(now)
				}
				return nil
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO jobs (id, workspace, task_name, mode, input, output, status,
					source_type, source_id, revision, snapshot_id, context, created_at, started_at, completed_at, created_by)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				j.ID, j.Workspace, j.TaskName, j.Mode, jsonText(p.Input), jsonText(p.Output), string(j.Status),
				string(j.SourceType), j.SourceID, j.Revision, nullIfEmpty(nj.SnapshotID), jsonText(p.Context), nanos(now),
				at(j.Status == stroem.JobRunning), at(j.Status.Terminal()), j.CreatedBy); err != nil {
				return err
			}
			for i, st := range p.Steps {
				if _, err := tx.ExecContext(ctx, `INSERT INTO job_steps (job_id, step_name, position, action_name,
						action_type, image, depends_on, continue_on_failure, max_attempts, status, input, error_message,
						ready_at, completed_at, output, started_at, revision, required_tags, version)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, `+clockTick+`)`,
					j.ID, st.Name, i, st.ActionName, st.ActionType, st.Image, encodeStrings(st.DependsOn),
					st.ContinueOnFailure, st.MaxAttempts, string(st.Status), jsonText(st.Input), st.ErrorMessage,
					at(st.Status == stroem.StepReady), at(st.Status.Terminal()), jsonText(st.Output),
					at(st.Status == stroem.StepSuspended), nullIfEmpty(st.Revision), encodeStrings(st.Tags)); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// scanJob reads one row selected with persistence.JobColumns (plus extra destinations).
func scanJob(row rowScanner, extra ...any) (stroem.Job, string, bool, error) {
	var r persistence.JobRow
	j := &r.Job
	dest := append([]any{&j.ID, &j.Workspace, &j.TaskName, &j.Mode, &r.Input, &r.Output, &r.Status,
		&r.SourceType, &j.SourceID, &j.Revision, &r.SnapshotID, &r.CancelRequested, timeVal{&j.CreatedAt},
		timeCol{&j.StartedAt}, timeCol{&j.CompletedAt}, &j.CreatedBy, &j.CancelledBy}, extra...)
	if err := row.Scan(dest...); err != nil {
		return r.Job, "", false, err
	}
	job, err := r.Decode()
	return job, r.SnapshotID, r.CancelRequested, err
}

// scanStep reads one row selected with persistence.StepColumns; depends_on
// and required_tags are JSON arrays (SQLite has no arrays).
func scanStep(row rowScanner) (*persistence.StepState, error) {
	var (
		r               persistence.StepRow
		dependsOn, tags string
	)
	st := &r.Step
	if err := row.Scan(&st.Name, &st.Position, &st.ActionName, &st.ActionType, &st.Image, &dependsOn,
		&st.ContinueOnFailure, &st.MaxAttempts, &r.Status, &r.Input, &r.Output, &st.ErrorMessage, &st.WorkerID,
		&st.Attempt, &r.AttemptStatus, &st.ExitCode, timeCol{&st.LeaseExpiresAt}, timeCol{&st.ReadyAt},
		&st.CancelRequested, timeCol{&st.StartedAt}, timeCol{&st.CompletedAt}, &st.StartedAttempt, &tags); err != nil {
		return nil, err
	}
	var err error
	if st.DependsOn, err = decodeStrings(dependsOn); err != nil {
		return nil, err
	}
	if tags != "[]" { // most steps have none: no decoding
		if st.Tags, err = decodeStrings(tags); err != nil {
			return nil, err
		}
	}
	return r.Decode()
}

// JobGet returns a job with its steps in position order, each with its
// attempts, read from one snapshot. An id that is not a UUID, or names no
// job, is CodeNotFound.
func (s *Store) JobGet(ctx context.Context, id string) (*stroem.Job, error) {
	return readJobTx(ctx, s, id, "get", func(tx *txn, cid string) (*stroem.Job, error) {
		return readJob(ctx, tx, cid)
	})
}

// JobStatus returns a job's status from its row alone. An id that is not a
// UUID, or names no job, is CodeNotFound.
func (s *Store) JobStatus(ctx context.Context, id string) (stroem.JobStatus, error) {
	return readJobTx(ctx, s, id, "get status of", func(tx *txn, cid string) (stroem.JobStatus, error) {
		var status string
		if err := tx.QueryRowContext(ctx, `SELECT status FROM jobs WHERE id = ?`, cid).Scan(&status); err != nil {
			return "", errs.Row(err, notFound("job %s not found", id), "")
		}
		return stroem.JobStatus(status), nil
	})
}

// readJobTx reads, with read, what a method needs of job id in one read
// transaction (one snapshot). An id that is not a UUID names no job
// (CodeNotFound); read gets it in canonical form. An error is wrapped as
// "<verb> job <id>".
func readJobTx[T any](ctx context.Context, s *Store, id, verb string, read func(tx *txn, cid string) (T, error)) (T, error) {
	var v T
	cid, ok := canonicalUUID(id)
	if !ok {
		return v, notFound("job %s not found", id)
	}
	err := s.readTx(ctx, func(tx *txn) error {
		var err error
		v, err = read(tx, cid)
		return err
	})
	return v, errs.Wrap(err, "%s job %s", verb, id)
}

func readJob(ctx context.Context, tx *txn, id string) (*stroem.Job, error) {
	job, _, _, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+persistence.JobColumns+` FROM jobs WHERE id = ?`, id))
	if err != nil {
		return nil, errs.Row(err, notFound("job %s not found", id), "")
	}
	states, err := loadSteps(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	attempts := map[string][]stroem.Attempt{}
	rows, err := tx.QueryContext(ctx, `SELECT step_name, attempt, worker_id, status, exit_code, error_message,
			started_at, completed_at
		FROM step_attempts WHERE job_id = ? ORDER BY step_name, attempt`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			step     string
			a        stroem.Attempt
			status   string
			exitCode sql.NullInt64
		)
		if err := rows.Scan(&step, &a.Attempt, &a.WorkerID, &status, &exitCode, &a.ErrorMessage,
			timeVal{&a.StartedAt}, timeCol{&a.CompletedAt}); err != nil {
			return nil, err
		}
		a.Status = stroem.AttemptStatus(status)
		if exitCode.Valid {
			c := int(exitCode.Int64)
			a.ExitCode = &c
		}
		attempts[step] = append(attempts[step], a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	job.Steps = persistence.StepViews(states, attempts)
	return &job, nil
}

// loadSteps reads a job's steps in position order.
func loadSteps(ctx context.Context, q querier, id string) ([]*persistence.StepState, error) {
	rows, err := q.QueryContext(ctx, readStepsSQL, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var steps []*persistence.StepState
	for rows.Next() {
		st, err := scanStep(rows)
		if err != nil {
			return nil, err
		}
		steps = append(steps, st)
	}
	return steps, rows.Err()
}

// JobList returns jobs newest first (created_at, then id, descending),
// without their steps. Limit defaults to 50 and is capped at 1000.
func (s *Store) JobList(ctx context.Context, f persistence.JobFilter) ([]stroem.Job, error) {
	var args params
	q := `SELECT ` + persistence.JobColumns + ` FROM jobs` + f.Where(args.add) + f.ListPage(args.add)
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", interpretError(err))
	}
	defer rows.Close()
	jobs, err := persistence.CollectRows(rows, func() (stroem.Job, error) {
		j, _, _, err := scanJob(rows)
		return j, err
	})
	return jobs, errs.Wrap(err, "list jobs")
}

// JobCount counts the jobs JobList would page through (Limit and Offset
// are ignored): the total of a paginated list.
func (s *Store) JobCount(ctx context.Context, f persistence.JobFilter) (int, error) {
	var args params
	q := `SELECT count(*) FROM jobs` + f.Where(args.add)
	var n int
	if err := s.queryRow(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count jobs: %w", interpretError(err))
	}
	return n, nil
}

// params collects a statement's arguments for a neutral builder such as
// persistence.JobFilter.Where; times become the columns' Unix nanoseconds.
type params []any

// add records v and returns its placeholder.
func (p *params) add(v any) string {
	if t, ok := v.(time.Time); ok {
		v = nanos(t)
	}
	*p = append(*p, v)
	return "?"
}

// JobsUnfinished returns the ids of every pending or running job, oldest
// first: the jobs a starting server must resume.
func (s *Store) JobsUnfinished(ctx context.Context) ([]string, error) {
	ids, err := column(s.query(ctx, `SELECT id FROM jobs WHERE status IN ('pending', 'running') ORDER BY created_at, id`))
	if err != nil {
		return nil, fmt.Errorf("list unfinished jobs: %w", interpretError(err))
	}
	return ids, nil
}

// JobState returns the same state JobUpdate builds, read from one
// consistent snapshot without taking the write lock, for rebuilding an
// actor's view of a job. Now is the store's clock at the time of reading.
func (s *Store) JobState(ctx context.Context, id string) (*persistence.JobState, error) {
	return readJobTx(ctx, s, id, "read", func(tx *txn, cid string) (*persistence.JobState, error) {
		return loadState(ctx, tx, cid, s.now())
	})
}

// loadState reads a job and its steps in tx. In a write transaction the
// whole database is already locked against other writers.
func loadState(ctx context.Context, tx *txn, id string, now time.Time) (*persistence.JobState, error) {
	st, err := loadJob(ctx, tx, id, now)
	if err != nil {
		return nil, err
	}
	steps, err := loadSteps(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	st.SetSteps(steps, nil)
	return st, nil
}

// loadStateSince is loadState for a JobUpdate, in its write transaction:
// it moves step_clock on and returns, with the state, the horizon of this
// read (the counter's new value; migration 00210). With cached (the steps
// as the job's last JobUpdate left them, and its horizon) it reads only
// the step rows written since, and the state shares cached's other steps,
// which must not be modified. A row cached does not account for (never
// expected: steps are never removed, and only a JobUpdate appends them) is
// persistence.StaleCacheError.
func loadStateSince(ctx context.Context, tx *txn, id string, now time.Time, cached *persistence.CachedSteps) (*persistence.JobState, int64, error) {
	var horizon int64
	if err := tx.QueryRowContext(ctx, `UPDATE step_clock SET tick = tick + 1 RETURNING tick`).Scan(&horizon); err != nil {
		return nil, 0, err
	}
	st, err := loadJob(ctx, tx, id, now)
	if err != nil {
		return nil, 0, err
	}
	if cached == nil {
		steps, err := loadSteps(ctx, tx, id)
		if err != nil {
			return nil, 0, err
		}
		st.SetSteps(steps, nil)
		return st, horizon, nil
	}
	rows, err := tx.QueryContext(ctx, readStepsSinceSQL, id, cached.Since)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	steps, own := cached.Steps, false // cached.Steps is copied before its first change
	for rows.Next() {
		step, err := scanStep(rows)
		if err != nil {
			return nil, 0, err
		}
		if step.Position < 0 || step.Position > len(steps) {
			return nil, 0, persistence.StaleCacheError{Job: id}
		}
		if !own {
			steps, own = slices.Clone(steps), true
		}
		if step.Position == len(steps) {
			steps = append(steps, step) // appended by a JobUpdate whose steps were not kept
		} else {
			steps[step.Position] = step
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	st.SetSteps(steps, cached.Index)
	return st, horizon, nil
}

// readStepsSQL reads every step of a job (?), in position order.
const readStepsSQL = `SELECT ` + persistence.StepColumns + ` FROM job_steps WHERE job_id = ? ORDER BY position`

// readStepsSinceSQL reads the steps of a job (?1) whose version is at least
// ?2 (a read's horizon), in position order: job_steps_version_idx finds
// them among the job's steps.
const readStepsSinceSQL = `SELECT ` + persistence.StepColumns + ` FROM job_steps
	WHERE job_id = ? AND version >= ? ORDER BY position`

// loadJob reads a job's row into a state without steps.
func loadJob(ctx context.Context, tx *txn, id string, now time.Time) (*persistence.JobState, error) {
	var (
		jobContext []byte
		scopes     stroem.AssignmentState
	)
	job, snapshotID, cancelRequested, err := scanJob(tx.QueryRowContext(ctx,
		`SELECT `+persistence.JobColumns+`, context, `+stateScopesColumns+` FROM jobs WHERE id = ?`, id),
		&jobContext, &scopes.Task, &scopes.Global)
	if err != nil {
		return nil, errs.Row(err, notFound("job %s not found", id), "")
	}
	extra, err := persistence.DecodeJSON(jobContext)
	if err != nil {
		return nil, err
	}
	return &persistence.JobState{
		Job: job, SnapshotID: snapshotID, CancelRequested: cancelRequested, Now: now, Context: extra,
		StateScopes: &scopes,
	}, nil
}

// stateScopesColumns reads, with a row of jobs, whether its task and its
// workspace's global state have a snapshot (see Store.StateScopes).
const stateScopesColumns = `EXISTS (SELECT 1 FROM state_snapshots ss
		WHERE ss.workspace = jobs.workspace AND ss.task_name = jobs.task_name),
	EXISTS (SELECT 1 FROM state_snapshots ss WHERE ss.workspace = jobs.workspace AND ss.task_name = '')`
