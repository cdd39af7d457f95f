package postgres_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
	"github.com/stroem/stroem/persistence/storetest"
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

	t.Run("SnapshotStoredOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		storetest.InsertJob(t, b.store, storetest.Step{Name: "a"})
		second := storetest.NewJob(storetest.Step{Name: "a"})
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

	t.Run("NotifiesWhenAStepIsReady", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		payloads := listen(t, b.store)
		<-payloads // the initial "" after connecting
		nj := storetest.InsertJob(t, b.store, storetest.Step{Name: "a"})
		require.Equal(t, b.store.Origin()+":"+nj.Job.ID, waitPayload(t, payloads))
	})
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
		return &testBundle{store: s, job: storetest.InsertJob(t, s, storetest.Step{Name: "a"}, storetest.Step{Name: "b", Deps: []string{"a"}})}
	}

	t.Run("NoChangeWritesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a, bx := stepXmin(t, b.store, b.job.Job.ID, "a"), stepXmin(t, b.store, b.job.Job.ID, "b")
		st, err := b.store.JobUpdate(context.Background(), b.job.Job.ID, func(st *persistence.JobState) error {
			st.Mut("b").Input = map[string]any{} // read, then put back the same
			st.Mut("b").Input = nil
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
			st.Mut("b").Input = map[string]any{"k": "v"}
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, a, stepXmin(t, b.store, b.job.Job.ID, "a"))
		st, err := b.store.JobState(context.Background(), b.job.Job.ID)
		require.NoError(t, err)
		require.Equal(t, map[string]any{"k": "v"}, st.Find("b").Input)
	})

	t.Run("NotifiesWhenAStepBecomesReady", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		c := storetest.ClaimOne(t, b.store, "w1")
		payloads := listen(t, b.store)
		require.Equal(t, "", waitPayload(t, payloads))
		_, err := b.store.JobUpdate(ctx, b.job.Job.ID, storetest.Complete(storetest.Report{Step: "a", Worker: "w1", Attempt: c.Attempt}))
		require.NoError(t, err)
		require.Equal(t, b.store.Origin()+":"+b.job.Job.ID, waitPayload(t, payloads))
	})
}
