package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// testRetention checks the pruning methods and the metrics sample.
func testRetention(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Run("JobsPruneTerminalOnlyInBatches", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		var ended []string
		for range 5 {
			nj := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b", Deps: []string{"a"}})
			EndJob(t, s, nj.Job.ID)
			ended = append(ended, nj.Job.ID)
		}
		running := InsertJob(t, s, Step{Name: "a"})
		pending := InsertJob(t, s, Step{Name: "a"})
		require.Equal(t, running.Job.ID, ClaimOne(t, s, "w1").JobID, "the oldest ready step is claimed")
		cutoff := time.Now().Add(time.Hour)

		// Nothing ended before a cutoff in the past.
		dry, err := s.JobsPrune(ctx, persistence.PruneParams{Before: time.Now().Add(-time.Hour), DryRun: true})
		require.NoError(t, err)
		require.Equal(t, persistence.PruneResult{}, dry)

		dry, err = s.JobsPrune(ctx, persistence.PruneParams{Before: cutoff, Limit: 2, DryRun: true})
		require.NoError(t, err)
		require.Equal(t, int64(5), dry.Jobs, "a dry run counts every match, not one batch")
		require.Equal(t, int64(10), dry.Steps)
		require.Empty(t, dry.JobIDs)
		for _, id := range ended {
			jobGet(t, s, id) // a dry run deleted nothing
		}

		var deleted []string
		for {
			res, err := s.JobsPrune(ctx, persistence.PruneParams{Before: cutoff, Limit: 2})
			require.NoError(t, err)
			require.LessOrEqual(t, res.Jobs, int64(2), "one batch at most Limit jobs")
			require.Len(t, res.JobIDs, int(res.Jobs))
			require.Equal(t, 2*res.Jobs, res.Steps)
			if res.Jobs == 0 {
				break
			}
			deleted = append(deleted, res.JobIDs...)
		}
		require.ElementsMatch(t, ended, deleted, "oldest first, every terminal job once")
		for _, id := range ended {
			_, err := s.JobGet(ctx, id)
			require.ErrorIs(t, err, stroem.ErrNotFound)
			_, err = s.JobState(ctx, id)
			require.ErrorIs(t, err, stroem.ErrNotFound)
		}
		require.Equal(t, stroem.JobRunning, jobGet(t, s, running.Job.ID).Status, "running jobs stay")
		require.Equal(t, stroem.JobPending, jobGet(t, s, pending.Job.ID).Status, "pending jobs stay")
	})

	t.Run("TriggerTicksPruneKeepsLatest", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		t0 := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)
		for i := range 4 {
			nj := TickJob("default", "cron", t0.Add(time.Duration(i)*time.Hour), false)
			require.NoError(t, s.JobInsert(ctx, nj))
		}
		require.NoError(t, s.JobInsert(ctx, TickJob("default", "other", t0, false)))
		before := t0.Add(24 * time.Hour)

		n, err := s.TriggerTicksPrune(ctx, before, 0, true)
		require.NoError(t, err)
		require.Equal(t, int64(3), n, "every tick but each trigger's latest")
		n, err = s.TriggerTicksPrune(ctx, before, 2, false)
		require.NoError(t, err)
		require.Equal(t, int64(2), n, "a batch is at most limit ticks")
		n, err = s.TriggerTicksPrune(ctx, before, 2, false)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		n, err = s.TriggerTicksPrune(ctx, before, 2, false)
		require.NoError(t, err)
		require.Zero(t, n)

		last, err := s.TriggerLastTick(ctx, "default", "cron")
		require.NoError(t, err)
		require.True(t, last.Equal(t0.Add(3*time.Hour)), "the latest tick stays: %s", last)
		last, err = s.TriggerLastTick(ctx, "default", "other")
		require.NoError(t, err)
		require.True(t, last.Equal(t0))
		require.ErrorIs(t, s.JobInsert(ctx, TickJob("default", "cron", t0.Add(time.Hour), false)), persistence.ErrTickFired,
			"a pruned tick older than the latest still counts as fired")
	})

	t.Run("WorkersPruneKeepsBusyAndRecent", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		idle := registerWorker(t, s, "idle")
		busy := registerWorker(t, s, "busy")
		InsertJob(t, s, Step{Name: "a"})
		ClaimOne(t, s, busy.ID)

		n, err := s.WorkersPrune(ctx, time.Now().Add(-time.Hour), false)
		require.NoError(t, err)
		require.Zero(t, n, "workers seen recently stay")
		n, err = s.WorkersPrune(ctx, time.Now().Add(time.Hour), true)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		n, err = s.WorkersPrune(ctx, time.Now().Add(time.Hour), false)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		workers, err := s.WorkerList(ctx)
		require.NoError(t, err)
		require.Len(t, workers, 1)
		require.Equal(t, busy.ID, workers[0].ID, "a worker holding a running step stays; %s went", idle.ID)
	})

	t.Run("MetricsSample", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		m, err := s.MetricsSample(ctx)
		require.NoError(t, err)
		require.Equal(t, persistence.MetricsSample{
			JobsInFlight: map[string]int64{"pending": 0, "running": 0}, StepsReady: map[string]int64{},
		}, m, "both in-flight statuses are present when zero")

		registerWorker(t, s, "w")
		InsertJob(t, s, Step{Name: "a"}, Step{Name: "b"}, Step{Name: "c", ActionType: "docker"})
		InsertJob(t, s, Step{Name: "a"})
		ended := InsertJob(t, s, Step{Name: "a"})
		EndJob(t, s, ended.Job.ID)
		ClaimOne(t, s, "w1")

		m, err = s.MetricsSample(ctx)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"pending": 1, "running": 1}, m.JobsInFlight)
		require.Equal(t, map[string]int64{"shell": 2, "docker": 1}, m.StepsReady)
		require.Equal(t, int64(1), m.StepsRunning)
		require.Equal(t, int64(1), m.WorkersActive)
	})
}
