package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
)

func TestJobInsert(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		store *postgres.Store
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		return &testBundle{store: dbtest.Store(t)}
	}

	t.Run("JobWithStepsInOrder", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		nj := insertJob(t, b.store, step{name: "a"}, step{name: "b", deps: []string{"a"}}, step{name: "c", actionType: "docker"})

		j, err := b.store.JobGet(ctx, nj.Job.ID)
		require.NoError(t, err)
		require.Equal(t, nj.Job.ID, j.ID)
		require.Equal(t, stroem.JobPending, j.Status)
		require.Equal(t, "default", j.Workspace)
		require.Equal(t, "hello", j.TaskName)
		require.Equal(t, "rev1", j.Revision)
		require.Equal(t, map[string]any{"name": "World"}, j.Input)
		require.Nil(t, j.StartedAt)
		require.Nil(t, j.CompletedAt)
		require.WithinDuration(t, time.Now(), j.CreatedAt, time.Minute)
		require.Len(t, j.Steps, 3)
		require.Equal(t, []string{"a", "b", "c"}, []string{j.Steps[0].StepName, j.Steps[1].StepName, j.Steps[2].StepName})
		require.Equal(t, stroem.StepReady, j.Steps[0].Status)
		require.Equal(t, stroem.StepPending, j.Steps[1].Status)
		require.Equal(t, []string{"a"}, j.Steps[1].DependsOn)
		require.Equal(t, "docker", j.Steps[2].ActionType)
		require.Equal(t, map[string]any{"step": "a"}, j.Steps[0].Input)
		require.Nil(t, j.Steps[1].Input)
		require.Equal(t, 1, j.Steps[0].MaxAttempts)

		st, err := b.store.JobState(ctx, nj.Job.ID)
		require.NoError(t, err)
		require.Equal(t, "snap-1", st.SnapshotID)
		require.NotNil(t, st.Step("a").ReadyAt, "ready steps are claimable at once")
		require.Nil(t, st.Step("b").ReadyAt)
		for i, s := range st.Steps {
			require.Equal(t, i, s.Position)
		}

		body, err := b.store.SnapshotGet(ctx, "snap-1")
		require.NoError(t, err)
		require.JSONEq(t, `{"task": "hello"}`, string(body))
	})

	t.Run("SnapshotStoredOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		insertJob(t, b.store, step{name: "a"})
		second := newJob(step{name: "a"})
		second.SnapshotBody = nil // the store knows the id: no body needed
		require.NoError(t, b.store.JobInsert(ctx, second))
		var n int
		require.NoError(t, b.store.Pool().QueryRow(ctx, `SELECT count(*) FROM task_snapshots`).Scan(&n))
		require.Equal(t, 1, n)
		require.NoError(t, b.store.SnapshotPut(ctx, "snap-1", []byte(`{"other": true}`)), "idempotent")
		body, err := b.store.SnapshotGet(ctx, "snap-1")
		require.NoError(t, err)
		require.JSONEq(t, `{"task": "hello"}`, string(body))
		_, err = b.store.SnapshotGet(ctx, "nope")
		require.ErrorIs(t, err, stroem.ErrNotFound)
	})

	t.Run("TerminalJobGetsCompletedAt", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		nj := newJob(step{name: "a"})
		nj.Job.Status = stroem.JobFailed
		nj.Steps[0].Status, nj.Steps[0].ErrorMessage = stroem.StepFailed, "input does not render"
		require.NoError(t, b.store.JobInsert(context.Background(), nj))
		j, err := b.store.JobGet(context.Background(), nj.Job.ID)
		require.NoError(t, err)
		require.Equal(t, stroem.JobFailed, j.Status)
		require.NotNil(t, j.CompletedAt)
		require.NotNil(t, j.Steps[0].CompletedAt)
		require.Equal(t, "input does not render", j.Steps[0].ErrorMessage)
	})

	t.Run("DuplicateIDIsConflict", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		nj := insertJob(t, b.store, step{name: "a"})
		err := b.store.JobInsert(context.Background(), nj)
		require.ErrorIs(t, err, stroem.ErrConflict)
	})

	t.Run("NULAndInvalidUTF8AreSanitized", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		nj := newJob(step{name: "a"})
		nj.Job.Input = map[string]any{
			"nul":         "a\u0000b",
			"bad":         "x\xffy",
			"key\u0000":   1,
			"key\xfe":     true,
			"nested":      map[string]any{"list": []any{"q\u0000", map[string]any{"k\u0000": "\xff"}}},
			"strings":     []string{"s\u0000"},
			"clean":       "ok",
			"escaped nul": `\u0000 stays literal`,
		}
		nj.Steps[0].Input = map[string]any{"in": "\u0000"}
		nj.Steps[0].ErrorMessage = "err\u0000\xff"
		require.NoError(t, b.store.JobInsert(ctx, nj))

		j, err := b.store.JobGet(ctx, nj.Job.ID)
		require.NoError(t, err)
		require.Equal(t, map[string]any{
			"nul":         `a\0b`,
			"bad":         "x\uFFFDy",
			`key\0`:       float64(1),
			"key\uFFFD":   true,
			"nested":      map[string]any{"list": []any{`q\0`, map[string]any{`k\0`: "\uFFFD"}}},
			"strings":     []any{`s\0`},
			"clean":       "ok",
			"escaped nul": `\u0000 stays literal`,
		}, j.Input)
		require.Equal(t, map[string]any{"in": `\0`}, j.Steps[0].Input)
		require.Equal(t, "err\\0\uFFFD", j.Steps[0].ErrorMessage)

		// Outputs and errors written by an update are sanitized too.
		c := claimOne(t, b.store, "w1")
		st, err := b.store.JobUpdate(ctx, nj.Job.ID, completeFn(report{
			step: "a", worker: "w1", attempt: c.Attempt, exitCode: 1,
			err: "boom\u0000\xff",
		}))
		require.NoError(t, err)
		require.Equal(t, "boom\\0\uFFFD", st.Step("a").ErrorMessage, "the returned state is the state as written")
		_, err = b.store.JobUpdate(ctx, nj.Job.ID, func(st *persistence.JobState) error {
			st.Step("a").Output = map[string]any{"out\u0000": []any{"\u0000"}}
			st.Job.Output = map[string]any{"a": map[string]any{"x": "\xff\u0000"}}
			return nil
		})
		require.NoError(t, err)
		j, err = b.store.JobGet(ctx, nj.Job.ID)
		require.NoError(t, err)
		require.Equal(t, map[string]any{`out\0`: []any{`\0`}}, j.Steps[0].Output)
		require.Equal(t, map[string]any{"a": map[string]any{"x": "\uFFFD\\0"}}, j.Output)
		require.Equal(t, "boom\\0\uFFFD", j.Steps[0].Attempts[0].ErrorMessage)
	})

	t.Run("NotifiesWhenAStepIsReady", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		payloads := listen(t, b.store)
		<-payloads // the initial "" after connecting
		nj := insertJob(t, b.store, step{name: "a"})
		require.Equal(t, b.store.Origin()+":"+nj.Job.ID, waitPayload(t, payloads))
	})
}

func TestJobGet(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()

	for _, id := range []string{"not-a-uuid", "", uuid.NewString(), "'; DROP TABLE jobs; --"} {
		_, err := s.JobGet(ctx, id)
		require.ErrorIs(t, err, stroem.ErrNotFound, "id %q", id)
		_, err = s.JobState(ctx, id)
		require.ErrorIs(t, err, stroem.ErrNotFound, "id %q", id)
		_, err = s.JobUpdate(ctx, id, func(*persistence.JobState) error { return nil })
		require.ErrorIs(t, err, stroem.ErrNotFound, "id %q", id)
	}
}

func TestJobList(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()

	var ids []string
	for i := range 7 {
		nj := newJob(step{name: "a"})
		if i%2 == 1 {
			nj.Job.TaskName = "other"
		}
		if i == 6 {
			nj.Job.Workspace, nj.Job.SourceType, nj.Job.SourceID = "ws2", stroem.SourceTrigger, "nightly"
		}
		require.NoError(t, s.JobInsert(ctx, nj))
		ids = append(ids, nj.Job.ID)
		time.Sleep(2 * time.Millisecond) // distinct created_at, so the order is the insert order
	}

	all, err := s.JobList(ctx, persistence.JobFilter{})
	require.NoError(t, err)
	require.Len(t, all, 7)
	for i, j := range all {
		require.Equal(t, ids[6-i], j.ID, "newest first")
		require.Nil(t, j.Steps, "lists leave steps out")
	}

	page, err := s.JobList(ctx, persistence.JobFilter{Limit: 2, Offset: 2})
	require.NoError(t, err)
	require.Equal(t, []string{ids[4], ids[3]}, []string{page[0].ID, page[1].ID})

	other, err := s.JobList(ctx, persistence.JobFilter{Workspace: "default", Task: "other"})
	require.NoError(t, err)
	require.Len(t, other, 3)

	trig, err := s.JobList(ctx, persistence.JobFilter{SourceType: stroem.SourceTrigger, SourceID: "nightly"})
	require.NoError(t, err)
	require.Len(t, trig, 1)
	require.Equal(t, ids[6], trig[0].ID)

	c := claimOne(t, s, "w1")
	running, err := s.JobList(ctx, persistence.JobFilter{Status: stroem.JobRunning})
	require.NoError(t, err)
	require.Len(t, running, 1)
	require.Equal(t, c.JobID, running[0].ID)
	require.NotNil(t, running[0].StartedAt)

	none, err := s.JobList(ctx, persistence.JobFilter{Workspace: "nope"})
	require.NoError(t, err)
	require.NotNil(t, none)
	require.Empty(t, none)

	unfinished, err := s.JobsUnfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, ids, unfinished, "oldest first")
}

func TestJobUpdate(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		store *postgres.Store
		job   persistence.NewJob
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		s := dbtest.Store(t)
		return &testBundle{store: s, job: insertJob(t, s, step{name: "a"}, step{name: "b", deps: []string{"a"}})}
	}

	t.Run("CallbackErrorRollsBackAndIsReturnedUnchanged", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		sentinel := errors.New("no thanks")
		before := stepXmin(t, b.store, b.job.Job.ID, "a")
		_, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			st.Step("a").Status = stroem.StepCancelled
			st.Job.Status = stroem.JobCancelled
			return sentinel
		})
		require.Same(t, sentinel, err)
		require.Equal(t, before, stepXmin(t, b.store, b.job.Job.ID, "a"))
		j, err := b.store.JobGet(ctx, b.job.Job.ID)
		require.NoError(t, err)
		require.Equal(t, stroem.JobPending, j.Status)
		require.Equal(t, stroem.StepReady, j.Steps[0].Status)
	})

	t.Run("NoChangeWritesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a, bx := stepXmin(t, b.store, b.job.Job.ID, "a"), stepXmin(t, b.store, b.job.Job.ID, "b")
		st, err := b.store.JobUpdate(context.Background(), b.job.Job.ID, func(st *persistence.JobState) error {
			st.Step("b").Input = map[string]any{} // read, then put back the same
			st.Step("b").Input = nil
			return nil
		})
		require.NoError(t, err)
		require.False(t, st.Now.IsZero(), "Now is the database clock")
		require.Equal(t, a, stepXmin(t, b.store, b.job.Job.ID, "a"))
		require.Equal(t, bx, stepXmin(t, b.store, b.job.Job.ID, "b"))
	})

	t.Run("WritesOnlyChangedSteps", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a := stepXmin(t, b.store, b.job.Job.ID, "a")
		_, err := b.store.JobUpdate(context.Background(), b.job.Job.ID, func(st *persistence.JobState) error {
			st.Step("b").Input = map[string]any{"k": "v"}
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, a, stepXmin(t, b.store, b.job.Job.ID, "a"))
		st, err := b.store.JobState(context.Background(), b.job.Job.ID)
		require.NoError(t, err)
		require.Equal(t, map[string]any{"k": "v"}, st.Step("b").Input)
	})

	t.Run("InvalidTransitionIsRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		_, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			st.Step("b").Input = map[string]any{"x": 1} // would be written if the update went through
			st.Step("a").Status = stroem.StepCompleted  // ready → completed skips running
			return nil
		})
		require.ErrorContains(t, err, "invalid transition ready → completed")
		st, err := b.store.JobState(ctx, b.job.Job.ID)
		require.NoError(t, err)
		require.Nil(t, st.Step("b").Input, "rolled back")

		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			st.Job.Status = stroem.JobPending
			st.Steps[0].Status = stroem.StepCancelled
			st.Job.Status = stroem.JobCancelled
			return nil
		})
		require.NoError(t, err)
		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			st.Job.Status = stroem.JobRunning // cancelled → running
			return nil
		})
		require.ErrorContains(t, err, "invalid transition cancelled → running")
	})

	t.Run("TimestampsAndAttempts", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		c := claimOne(t, b.store, "w1")
		require.Equal(t, "a", c.StepName)
		require.Equal(t, 1, c.Attempt)

		// Attempt 1 fails and is retried: back to ready, completed_at cleared.
		st, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			a := st.Step("a")
			code := 2
			a.AttemptStatus, a.ExitCode, a.ErrorMessage = stroem.AttemptFailed, &code, "exit 2"
			a.Status = stroem.StepReady
			return nil
		})
		require.NoError(t, err)
		a := st.Step("a")
		require.Nil(t, a.CompletedAt)
		require.Nil(t, a.LeaseExpiresAt, "the lease ends with the run")
		require.NotNil(t, a.ReadyAt)
		require.Equal(t, st.Now, *a.ReadyAt, "ready again now")

		c2 := claimOne(t, b.store, "w2")
		require.Equal(t, 2, c2.Attempt)
		st, err = b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(report{
			step: "a", worker: "w2", attempt: 2, output: map[string]any{"greeting": "hi"},
		}))
		require.NoError(t, err)
		require.Equal(t, stroem.StepCompleted, st.Step("a").Status)
		require.Equal(t, st.Now, *st.Step("a").CompletedAt)
		require.Equal(t, stroem.StepReady, st.Step("b").Status)
		require.Equal(t, st.Now, *st.Step("b").ReadyAt)
		require.Equal(t, stroem.JobRunning, st.Job.Status)

		j, err := b.store.JobGet(ctx, b.job.Job.ID)
		require.NoError(t, err)
		atts := j.Steps[0].Attempts
		require.Len(t, atts, 2)
		require.Equal(t, 1, atts[0].Attempt)
		require.Equal(t, "w1", atts[0].WorkerID)
		require.Equal(t, stroem.AttemptFailed, atts[0].Status)
		require.Equal(t, 2, *atts[0].ExitCode)
		require.Equal(t, "exit 2", atts[0].ErrorMessage)
		require.NotNil(t, atts[0].CompletedAt)
		require.Equal(t, "w2", atts[1].WorkerID)
		require.Equal(t, stroem.AttemptCompleted, atts[1].Status)
		require.Equal(t, 0, *atts[1].ExitCode)
		require.Equal(t, *st.Step("a").CompletedAt, *atts[1].CompletedAt)
		require.Equal(t, map[string]any{"greeting": "hi"}, j.Steps[0].Output)
		require.Equal(t, "w2", *j.Steps[0].WorkerID)
		require.Equal(t, 2, j.Steps[0].Attempt)
		require.NotNil(t, j.StartedAt)
		require.Nil(t, j.CompletedAt)

		c3 := claimOne(t, b.store, "w1")
		require.Equal(t, "b", c3.StepName)
		st, err = b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(report{step: "b", worker: "w1", attempt: 1}))
		require.NoError(t, err)
		require.Equal(t, stroem.JobCompleted, st.Job.Status)
		require.Equal(t, st.Now, *st.Job.CompletedAt)
		j, err = b.store.JobGet(ctx, b.job.Job.ID)
		require.NoError(t, err)
		require.Equal(t, stroem.JobCompleted, j.Status)
		require.Equal(t, st.Now, *j.CompletedAt)
	})

	t.Run("NotifiesWhenAStepBecomesReady", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		c := claimOne(t, b.store, "w1")
		payloads := listen(t, b.store)
		require.Equal(t, "", waitPayload(t, payloads))
		_, err := b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(report{step: "a", worker: "w1", attempt: c.Attempt}))
		require.NoError(t, err)
		require.Equal(t, b.store.Origin()+":"+b.job.Job.ID, waitPayload(t, payloads))
	})

	t.Run("ConcurrentUpdatesSerialize", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		const n = 20
		errs := make(chan error, n)
		for i := range n {
			go func() {
				_, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
					in := st.Step("b").Input
					if in == nil {
						in = map[string]any{}
					}
					count, _ := in["count"].(float64)
					in["count"] = count + 1
					in[names("w", n)[i]] = true
					st.Step("b").Input = in
					return nil
				})
				errs <- err
			}()
		}
		for range n {
			require.NoError(t, <-errs)
		}
		st, err := b.store.JobState(ctx, b.job.Job.ID)
		require.NoError(t, err)
		require.Equal(t, float64(n), st.Step("b").Input["count"], "no lost update")
	})
}
