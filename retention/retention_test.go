package retention_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/sqlite/sqlitetest"
	"github.com/stroem/stroem/retention"
)

// endedJob inserts a job with one step and cancels it, which ends it now.
func endedJob(t *testing.T, s persistence.Store) string {
	t.Helper()
	ctx := context.Background()
	nj := persistence.NewJob{
		Job: stroem.Job{ID: uuid.NewString(), Workspace: "default", TaskName: "t", Status: stroem.JobPending,
			SourceType: stroem.SourceAPI},
		SnapshotID: "snap", SnapshotBody: []byte(`{}`),
		Steps: []persistence.NewStep{{Name: "a", ActionName: "a", ActionType: "shell", Status: stroem.StepReady,
			Input: map[string]any{}}},
	}
	require.NoError(t, s.JobInsert(ctx, nj))
	_, err := s.JobUpdate(ctx, nj.Job.ID, func(st *persistence.JobState) error {
		st.MutAt(0).Status = stroem.StepCancelled
		st.Job.Status = stroem.JobCancelled
		return nil
	})
	require.NoError(t, err)
	return nj.Job.ID
}

func TestRunDeletesOldJobsInBatchesAndCallsHooks(t *testing.T) {
	t.Parallel()
	s := sqlitetest.Store(t)
	var ids []string
	for range 7 {
		ids = append(ids, endedJob(t, s))
	}
	var mu sync.Mutex
	var hooked []string
	deleted := map[string]int64{}
	svc := retention.New(retention.Config{JobDays: 30, BatchSize: 3, BatchPauseMS: 1}, s,
		[]retention.Hook{func(_ context.Context, ids []string) error {
			mu.Lock()
			defer mu.Unlock()
			require.LessOrEqual(t, len(ids), 3, "hooks get one batch at a time")
			hooked = append(hooked, ids...)
			return nil
		}},
		func(kind string, n int64) { deleted[kind] += n }, nil)

	// Jobs that ended now are younger than 30 days: nothing goes.
	r, err := svc.Run(context.Background(), false)
	require.NoError(t, err)
	require.Zero(t, r.Jobs)

	// 31 days later they are old enough. A dry run first.
	retention.SetNow(svc, func() time.Time { return time.Now().Add(31 * 24 * time.Hour) })
	r, err = svc.Run(context.Background(), true)
	require.NoError(t, err)
	require.Equal(t, int64(7), r.Jobs)
	require.Equal(t, int64(7), r.Steps)
	require.True(t, r.DryRun)
	require.Empty(t, hooked, "a dry run deletes nothing")
	_, err = s.JobGet(context.Background(), ids[0])
	require.NoError(t, err)

	r, err = svc.Run(context.Background(), false)
	require.NoError(t, err)
	require.Equal(t, int64(7), r.Jobs)
	require.ElementsMatch(t, ids, hooked)
	require.Equal(t, int64(7), deleted["jobs"])
	require.Equal(t, int64(7), deleted["steps"])
	for _, id := range ids {
		_, err := s.JobGet(context.Background(), id)
		require.ErrorIs(t, err, stroem.ErrNotFound)
	}
}

func TestRunPrunesWorkers(t *testing.T) {
	t.Parallel()
	s := sqlitetest.Store(t)
	_, err := s.WorkerRegister(context.Background(), stroem.WorkerRegistration{Name: "gone", Capabilities: []string{"shell"}})
	require.NoError(t, err)
	svc := retention.New(retention.Config{WorkerHours: 2}, s, nil, nil, nil)
	r, err := svc.Run(context.Background(), false)
	require.NoError(t, err)
	require.Zero(t, r.Workers, "seen just now")
	retention.SetNow(svc, func() time.Time { return time.Now().Add(3 * time.Hour) })
	r, err = svc.Run(context.Background(), false)
	require.NoError(t, err)
	require.Equal(t, int64(1), r.Workers)
	require.True(t, r.JobsBefore.IsZero(), "job retention is off")
}

func TestConfig(t *testing.T) {
	t.Parallel()
	require.False(t, retention.Config{}.Enabled(), "off by default")
	c := retention.Config{JobDays: 30}.WithDefaults()
	require.True(t, c.Enabled())
	require.Equal(t, 3600, c.IntervalSecs)
	require.NoError(t, c.Validate())
	for _, bad := range []retention.Config{
		{JobDays: -1}, {WorkerHours: -1}, {IntervalSecs: -5}, {BatchSize: 100000}, {BatchPauseMS: -1},
	} {
		err := bad.WithDefaults().Validate()
		require.Error(t, err, "%+v", bad)
		require.Contains(t, err.Error(), "key retention.")
	}
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	s := sqlitetest.Store(t)
	id := endedJob(t, s)
	svc := retention.New(retention.Config{JobDays: 1, IntervalSecs: 3600}, s, nil, nil, nil)
	retention.SetNow(svc, func() time.Time { return time.Now().Add(48 * time.Hour) })
	svc.Start()
	svc.Start() // twice is fine
	require.Eventually(t, func() bool {
		_, err := s.JobGet(context.Background(), id)
		return err != nil
	}, 10*time.Second, 10*time.Millisecond, "the first pass runs at start")
	svc.Stop()
	svc.Stop()

	off := retention.New(retention.Config{}, s, nil, nil, nil)
	off.Start() // disabled: nothing starts
	off.Stop()
}
