package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// The rules below (what JobUpdate validates and fills in) are the
// PostgreSQL store's (persistence/update.go), restated for this store's
// SQL; the conformance suite in persistence/storetest holds both to them.

// fnError carries the error of a JobUpdate callback through the transaction
// machinery untouched.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

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
	var result *persistence.JobState
	err := s.writeTx(ctx, func(tx *sql.Tx, now time.Time) error {
		st, err := loadState(ctx, tx, id, now)
		if err != nil {
			return err
		}
		before := cloneState(st)
		if err := fn(st); err != nil {
			return fnError{err}
		}
		if err := writeState(ctx, tx, before, st); err != nil {
			return err
		}
		result = st
		return nil
	})
	var fe fnError
	if errors.As(err, &fe) {
		return nil, fe.err
	}
	if err != nil {
		return nil, fmt.Errorf("update job %s: %w", jobID, interpretError(err))
	}
	return result, nil
}

// writeState validates the changes from before to after, completes the
// automatic fields of after, and writes the changed rows.
func writeState(ctx context.Context, tx *sql.Tx, before, after *persistence.JobState) error {
	if len(before.Steps) != len(after.Steps) {
		return fmt.Errorf("job %s: the update added or removed steps (%d → %d)", after.Job.ID, len(before.Steps), len(after.Steps))
	}
	now := after.Now
	type write struct {
		step    *persistence.StepState
		attempt bool
	}
	var writes []write
	for i, old := range before.Steps {
		cur := after.Steps[i]
		if cur == nil || cur.Name != old.Name || cur.Position != old.Position {
			return fmt.Errorf("job %s: the update replaced step %s", after.Job.ID, old.Name)
		}
		if err := completeStep(after.Job.ID, old, cur, now); err != nil {
			return err
		}
		if !stepEqual(old, cur) {
			writes = append(writes, write{step: cur, attempt: attemptChanged(old, cur)})
		}
	}
	if err := completeJob(before, after, now); err != nil {
		return err
	}
	// Everything is validated: only now write.
	for _, w := range writes {
		cur := w.step
		input, err := encodeJSON(cur.Input)
		if err != nil {
			return err
		}
		output, err := encodeJSON(cur.Output)
		if err != nil {
			return err
		}
		var worker, exitCode any
		if cur.WorkerID != "" {
			worker = cur.WorkerID
		}
		if cur.ExitCode != nil {
			exitCode = *cur.ExitCode
		}
		if _, err := tx.ExecContext(ctx, `UPDATE job_steps SET status = ?, input = ?, output = ?, error_message = ?,
				worker_id = ?, attempt = ?, attempt_status = ?, exit_code = ?, lease_expires_at = ?, ready_at = ?,
				cancel_requested = ?, started_at = ?, completed_at = ?
			WHERE job_id = ? AND step_name = ?`,
			string(cur.Status), input, output, cur.ErrorMessage, worker, cur.Attempt, string(cur.AttemptStatus),
			exitCode, nanosPtr(cur.LeaseExpiresAt), nanosPtr(cur.ReadyAt), cur.CancelRequested,
			nanosPtr(cur.StartedAt), nanosPtr(cur.CompletedAt), after.Job.ID, cur.Name); err != nil {
			return err
		}
		if !w.attempt {
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
	if !jobEqual(before, after) {
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

// completeStep checks a step's status change and fills in what the store
// maintains; it also sanitizes the strings fn wrote.
func completeStep(jobID string, old, cur *persistence.StepState, now time.Time) error {
	if cur.Status != old.Status {
		if !old.Status.CanTransition(cur.Status) {
			return fmt.Errorf("job %s step %s: invalid transition %s → %s", jobID, cur.Name, old.Status, cur.Status)
		}
		switch {
		case cur.Status.Terminal():
			if cur.CompletedAt == nil {
				cur.CompletedAt = &now
			}
		case cur.Status == stroem.StepReady:
			cur.CompletedAt = nil
			if timeEqual(cur.ReadyAt, old.ReadyAt) || cur.ReadyAt == nil {
				cur.ReadyAt = &now
			}
		}
		if old.Status == stroem.StepRunning && timeEqual(cur.LeaseExpiresAt, old.LeaseExpiresAt) {
			cur.LeaseExpiresAt = nil
		}
	}
	if cur.Status == stroem.StepRunning && (cur.LeaseExpiresAt == nil || cur.WorkerID == "") {
		return fmt.Errorf("job %s step %s: running without a worker and a lease", jobID, cur.Name)
	}
	if cur.AttemptStatus != "" && cur.Attempt < 1 {
		return fmt.Errorf("job %s step %s: attempt status %s without an attempt", jobID, cur.Name, cur.AttemptStatus)
	}
	cur.ErrorMessage = stroem.SanitizeText(cur.ErrorMessage)
	cur.WorkerID = stroem.SanitizeText(cur.WorkerID)
	if !reflect.DeepEqual(cur.Input, old.Input) {
		cur.Input = sanitizeMap(cur.Input)
	}
	if !reflect.DeepEqual(cur.Output, old.Output) {
		cur.Output = sanitizeMap(cur.Output)
	}
	return nil
}

// completeJob checks the job's status change and fills in its timestamps.
func completeJob(before, after *persistence.JobState, now time.Time) error {
	old, cur := before.Job.Status, after.Job.Status
	if cur != old {
		if !old.CanTransition(cur) {
			return fmt.Errorf("job %s: invalid transition %s → %s", after.Job.ID, old, cur)
		}
		if cur == stroem.JobRunning && after.Job.StartedAt == nil {
			after.Job.StartedAt = &now
		}
		if cur.Terminal() && after.Job.CompletedAt == nil {
			after.Job.CompletedAt = &now
		}
	}
	if !reflect.DeepEqual(after.Job.Output, before.Job.Output) {
		after.Job.Output = sanitizeMap(after.Job.Output)
	}
	return nil
}

// attemptChanged reports whether the record of the current attempt must be
// written: a field of the attempt changed, or the error of a live attempt.
func attemptChanged(old, cur *persistence.StepState) bool {
	if cur.Attempt < 1 || cur.AttemptStatus == "" {
		return false
	}
	return cur.Attempt != old.Attempt ||
		cur.WorkerID != old.WorkerID ||
		cur.AttemptStatus != old.AttemptStatus ||
		!intPtrEqual(cur.ExitCode, old.ExitCode) ||
		(cur.ErrorMessage != old.ErrorMessage && old.AttemptStatus == stroem.AttemptRunning)
}

func stepEqual(a, b *persistence.StepState) bool {
	return a.Status == b.Status &&
		a.ErrorMessage == b.ErrorMessage &&
		a.Attempt == b.Attempt &&
		a.WorkerID == b.WorkerID &&
		a.AttemptStatus == b.AttemptStatus &&
		intPtrEqual(a.ExitCode, b.ExitCode) &&
		timeEqual(a.LeaseExpiresAt, b.LeaseExpiresAt) &&
		timeEqual(a.ReadyAt, b.ReadyAt) &&
		a.CancelRequested == b.CancelRequested &&
		timeEqual(a.StartedAt, b.StartedAt) &&
		timeEqual(a.CompletedAt, b.CompletedAt) &&
		reflect.DeepEqual(a.Input, b.Input) &&
		reflect.DeepEqual(a.Output, b.Output)
}

func jobEqual(a, b *persistence.JobState) bool {
	return a.Job.Status == b.Job.Status &&
		a.CancelRequested == b.CancelRequested &&
		timeEqual(a.Job.StartedAt, b.Job.StartedAt) &&
		timeEqual(a.Job.CompletedAt, b.Job.CompletedAt) &&
		reflect.DeepEqual(a.Job.Output, b.Job.Output)
}

func timeEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func intPtrEqual(a, b *int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// cloneState returns a deep copy, so that whatever fn does to the state
// (maps mutated in place included) the original stays comparable.
func cloneState(s *persistence.JobState) *persistence.JobState {
	c := *s
	c.Job.Input = deepCopyMap(s.Job.Input)
	c.Job.Output = deepCopyMap(s.Job.Output)
	c.Job.StartedAt, c.Job.CompletedAt = copyTime(s.Job.StartedAt), copyTime(s.Job.CompletedAt)
	c.Steps = make([]*persistence.StepState, len(s.Steps))
	for i, st := range s.Steps {
		sc := *st
		sc.DependsOn = slices.Clone(st.DependsOn)
		sc.Input, sc.Output = deepCopyMap(st.Input), deepCopyMap(st.Output)
		if st.ExitCode != nil {
			v := *st.ExitCode
			sc.ExitCode = &v
		}
		sc.LeaseExpiresAt, sc.ReadyAt = copyTime(st.LeaseExpiresAt), copyTime(st.ReadyAt)
		sc.StartedAt, sc.CompletedAt = copyTime(st.StartedAt), copyTime(st.CompletedAt)
		c.Steps[i] = &sc
	}
	return &c
}

func copyTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

func deepCopyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return deepCopyMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopyValue(e)
		}
		return out
	case map[string]string:
		return maps.Clone(x)
	case []string:
		return slices.Clone(x)
	}
	return v
}
