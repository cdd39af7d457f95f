package sqlite

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/storetest"
)

// JobUpdate keeps a job's steps and reads only the rows written since its
// last read: the steps nobody wrote are the very structs kept before, and a
// row written by a statement that does not stamp it (the triggers of
// migration 00210 do) is read anew.
func TestJobUpdateReadsOnlyTheRowsWrittenSince(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := context.Background()
	nj := storetest.InsertJob(t, s, storetest.Step{Name: "a"}, storetest.Step{Name: "b"}, storetest.Step{Name: "c"})
	id := nj.Job.ID
	noop := func(*persistence.JobState) error { return nil }
	_, err := s.JobUpdate(ctx, id, noop)
	require.NoError(t, err)
	kept := s.steps.Get(id).Steps
	require.Len(t, kept, 3)

	_, err = s.write.ExecContext(ctx, `UPDATE job_steps SET error_message = 'poked' WHERE job_id = ? AND step_name = 'b'`, id)
	require.NoError(t, err)
	st, err := s.JobUpdate(ctx, id, noop)
	require.NoError(t, err)
	require.Equal(t, "poked", st.Find("b").ErrorMessage, "a write the store did not stamp is read")
	now := s.steps.Get(id).Steps
	require.Same(t, kept[0], now[0], "a step nobody wrote is not read again")
	require.Same(t, kept[2], now[2])
	require.NotSame(t, kept[1], now[1])
	require.Empty(t, kept[1].ErrorMessage, "the steps kept before are unchanged")

	// A step the next update changes is read again after it, as written.
	st, err = s.JobUpdate(ctx, id, func(st *persistence.JobState) error {
		st.Mut("c").Input = map[string]any{"x": 1}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"x": 1}, st.Find("c").Input)
	st, err = s.JobUpdate(ctx, id, noop)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"x": float64(1)}, st.Find("c").Input, "read back from the row")

	// A finished job's steps are not kept.
	_, err = s.JobUpdate(ctx, id, func(st *persistence.JobState) error {
		for _, name := range []string{"a", "b", "c"} {
			st.Mut(name).Status = "cancelled"
		}
		st.Job.Status = "cancelled"
		return nil
	})
	require.NoError(t, err)
	require.Nil(t, s.steps.Get(id))
}

// The read of the rows written since finds them through
// job_steps_version_idx, and no other statement of a job's steps can use
// that index (it is partial for that): the full read keeps its own.
func TestStepReadsUseTheirIndexes(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	require.Contains(t, queryPlan(t, s, readStepsSinceSQL, "j", 1), "USING INDEX job_steps_version_idx")
	require.NotContains(t, queryPlan(t, s, readStepsSQL, "j"), "job_steps_version_idx")
}

// queryPlan is SQLite's EXPLAIN QUERY PLAN of query, one detail a line.
func queryPlan(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.write.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &notUsed, &detail))
		b.WriteString(detail + "\n")
	}
	require.NoError(t, rows.Err())
	return b.String()
}

// A database from before migration 00210 holds step rows without a
// version: after the upgrade a store reads them all once (its cache is
// empty), and from their next write on they are read when written.
func TestJobStepsWithoutVersionAfterTheUpgrade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, db := migrateTo(t, 200)
	job := "5f0b8c1e-8d2a-4c55-9a51-0c9b2a6f3e10"
	_, err := db.ExecContext(ctx, `INSERT INTO jobs (id, workspace, task_name, status, source_type, created_at)
		VALUES (?, 'default', 'old', 'pending', 'api', 1)`, job)
	require.NoError(t, err)
	for i, name := range []string{"a", "b"} {
		_, err := db.ExecContext(ctx, `INSERT INTO job_steps (job_id, step_name, position, action_name, action_type,
				status, input, ready_at)
			VALUES (?, ?, ?, 'act', 'shell', 'ready', '{}', 1)`, job, name, i)
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())
	s, err := Open(ctx, path, nil)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	var unversioned int
	require.NoError(t, s.read.QueryRowContext(ctx, `SELECT count(*) FROM job_steps WHERE version IS NULL`).Scan(&unversioned))
	require.Equal(t, 2, unversioned, "the upgrade leaves the rows as they are")

	noop := func(*persistence.JobState) error { return nil }
	st, err := s.JobUpdate(ctx, job, noop)
	require.NoError(t, err)
	require.Equal(t, 2, st.Len(), "the first update reads every row")
	c := storetest.ClaimOne(t, s, "w1")
	st, err = s.JobUpdate(ctx, job, noop)
	require.NoError(t, err)
	require.Equal(t, "running", string(st.Find(c.StepName).Status), "the claim stamped the row")
	_, err = s.write.ExecContext(ctx, `UPDATE job_steps SET error_message = 'poked' WHERE job_id = ? AND status = 'ready'`, job)
	require.NoError(t, err)
	st, err = s.JobUpdate(ctx, job, noop)
	require.NoError(t, err)
	for _, step := range st.All() {
		if step.Status == "ready" {
			require.Equal(t, "poked", step.ErrorMessage, "the trigger stamped the unversioned row")
		}
	}
}
