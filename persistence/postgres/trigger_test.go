package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
)

// tickJob is a job a scheduler trigger fires for tick at.
func tickJob(workspace, trigger string, at time.Time, skip bool) persistence.NewJob {
	nj := newJob(step{name: "a"})
	nj.Job.Workspace = workspace
	nj.Job.SourceType, nj.Job.SourceID = stroem.SourceTrigger, trigger
	nj.Tick = &persistence.TriggerTick{Trigger: trigger, At: at, SkipIfUnfinished: skip}
	return nj
}

// endJob cancels a job's unstarted steps, which ends it.
func endJob(t *testing.T, s *postgres.Store, id string) {
	t.Helper()
	_, err := s.JobUpdate(context.Background(), id, func(st *persistence.JobState) error {
		for _, step := range st.Steps {
			step.Status = stroem.StepCancelled
		}
		st.Job.Status = stroem.JobCancelled
		return nil
	})
	require.NoError(t, err)
}

func TestTriggerTicks(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

	t.Run("EachTickOnce", func(t *testing.T) {
		t.Parallel()
		s, ctx := dbtest.Store(t), context.Background()
		last, err := s.TriggerLastTick(ctx, "default", "cron")
		require.NoError(t, err)
		require.True(t, last.IsZero(), "a trigger that never fired has no last tick")

		first := tickJob("default", "cron", t0, false)
		require.NoError(t, s.JobInsert(ctx, first))
		again := tickJob("default", "cron", t0, false)
		err = s.JobInsert(ctx, again)
		require.ErrorIs(t, err, persistence.ErrTickFired)
		require.ErrorIs(t, err, stroem.ErrConflict, "a conflict for the API and the scheduler alike")
		_, err = s.JobGet(ctx, again.Job.ID)
		require.ErrorIs(t, err, stroem.ErrNotFound, "nothing of the refused job was written")

		older := tickJob("default", "cron", t0.Add(-time.Second), false)
		require.ErrorIs(t, s.JobInsert(ctx, older), persistence.ErrTickFired, "ticks fire in order: an older tick is stale")

		require.NoError(t, s.JobInsert(ctx, tickJob("default", "cron", t0.Add(time.Second), false)))
		require.NoError(t, s.JobInsert(ctx, tickJob("other", "cron", t0, false)), "another workspace's trigger of the same name is independent")
		last, err = s.TriggerLastTick(ctx, "default", "cron")
		require.NoError(t, err)
		require.True(t, t0.Add(time.Second).Equal(last), "got %s", last)
		require.Equal(t, time.UTC, last.Location())

		var jobs int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM jobs WHERE source_type = 'trigger'`).Scan(&jobs))
		require.Equal(t, 3, jobs)
	})

	t.Run("ConcurrentServersOneJob", func(t *testing.T) {
		t.Parallel()
		s, ctx := dbtest.Store(t), context.Background()
		const servers = 8
		errs := make([]error, servers)
		var wg sync.WaitGroup
		for i := range servers {
			wg.Go(func() { errs[i] = s.JobInsert(ctx, tickJob("default", "cron", t0, false)) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
				continue
			}
			require.ErrorIs(t, err, persistence.ErrTickFired)
		}
		require.Equal(t, 1, won)
		var jobs, ticks int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&jobs))
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM trigger_ticks`).Scan(&ticks))
		require.Equal(t, 1, jobs)
		require.Equal(t, 1, ticks)
	})

	t.Run("SkipIfUnfinished", func(t *testing.T) {
		t.Parallel()
		s, ctx := dbtest.Store(t), context.Background()
		first := tickJob("default", "cron", t0, true)
		require.NoError(t, s.JobInsert(ctx, first), "nothing runs yet")
		err := s.JobInsert(ctx, tickJob("default", "cron", t0.Add(time.Second), true))
		require.ErrorIs(t, err, persistence.ErrTriggerBusy)
		require.False(t, errors.Is(err, persistence.ErrTickFired))
		last, err := s.TriggerLastTick(ctx, "default", "cron")
		require.NoError(t, err)
		require.True(t, t0.Equal(last), "a skipped tick is not recorded")

		other := newJob(step{name: "a"}) // an API job of the same task does not count
		require.NoError(t, s.JobInsert(ctx, other))
		endJob(t, s, first.Job.ID)
		require.NoError(t, s.JobInsert(ctx, tickJob("default", "cron", t0.Add(2*time.Second), true)))
	})

	t.Run("UnfinishedJobsOfEarlierTicks", func(t *testing.T) {
		t.Parallel()
		s, ctx := dbtest.Store(t), context.Background()
		a := tickJob("default", "cron", t0, false)
		b := tickJob("default", "cron", t0.Add(time.Second), false)
		c := tickJob("default", "cron", t0.Add(2*time.Second), false)
		for _, nj := range []persistence.NewJob{a, b, c} {
			require.NoError(t, s.JobInsert(ctx, nj))
		}
		endJob(t, s, a.Job.ID)
		ids, err := s.TriggerJobsUnfinished(ctx, "default", "cron", t0.Add(2*time.Second))
		require.NoError(t, err)
		require.Equal(t, []string{b.Job.ID}, ids, "finished jobs and jobs of the tick itself or later are left out")
		ids, err = s.TriggerJobsUnfinished(ctx, "default", "cron", t0.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, []string{b.Job.ID, c.Job.ID}, ids, "oldest first")
		ids, err = s.TriggerJobsUnfinished(ctx, "other", "cron", t0.Add(time.Hour))
		require.NoError(t, err)
		require.Empty(t, ids)
	})

	t.Run("BadTick", func(t *testing.T) {
		t.Parallel()
		s, ctx := dbtest.Store(t), context.Background()
		nj := tickJob("default", "cron", time.Time{}, false)
		require.ErrorIs(t, s.JobInsert(ctx, nj), stroem.ErrInvalid)
	})
}

func TestJobContext(t *testing.T) {
	t.Parallel()
	s, ctx := dbtest.Store(t), context.Background()
	nj := newJob(step{name: "a"})
	nj.Context = map[string]any{"webhook": map[string]any{
		"headers": map[string]any{"x_github_event": "push"},
		"query":   map[string]any{"ref": "main\x00"},
	}}
	require.NoError(t, s.JobInsert(ctx, nj))
	st, err := s.JobState(ctx, nj.Job.ID)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"webhook": map[string]any{
		"headers": map[string]any{"x_github_event": "push"},
		"query":   map[string]any{"ref": `main\0`},
	}}, st.Context, "stored with the job, sanitized like every other JSON value")

	plain := insertJob(t, s, step{name: "a"})
	st, err = s.JobState(ctx, plain.Job.ID)
	require.NoError(t, err)
	require.Nil(t, st.Context)
	st, err = s.JobUpdate(ctx, plain.Job.ID, func(*persistence.JobState) error { return nil })
	require.NoError(t, err)
	require.Nil(t, st.Context)
}
