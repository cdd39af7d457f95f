package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/stroemtest"
)

// TickJob is a job a scheduler trigger fires for the tick at.
func TickJob(workspace, trigger string, at time.Time, skip bool) persistence.NewJob {
	nj := NewJob(Step{Name: "a"})
	nj.Job.Workspace = workspace
	nj.Job.SourceType, nj.Job.SourceID = stroem.SourceTrigger, stroem.TriggerSourceID(workspace, trigger)
	nj.Tick = &persistence.TriggerTick{Trigger: trigger, At: at, SkipIfUnfinished: skip}
	return nj
}

// EndJob cancels a job's unstarted steps, which ends it.
func EndJob(t *testing.T, s persistence.Store, id string) {
	t.Helper()
	update(t, s, id, func(st *persistence.JobState) {
		for i := range st.Len() {
			st.MutAt(i).Status = stroem.StepCancelled
		}
		st.Job.Status = stroem.JobCancelled
	})
}

// FireConcurrently inserts the job of one trigger tick from that many
// servers at once (tick makes each one's job) and requires that exactly
// one insert wins and every other is refused with persistence.ErrTickFired.
func FireConcurrently(t *testing.T, s persistence.Store, servers int, tick func() persistence.NewJob) {
	t.Helper()
	errs := stroemtest.Concurrently(servers, func(int) error { return s.JobInsert(context.Background(), tick()) })
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		require.ErrorIs(t, err, persistence.ErrTickFired)
	}
	require.Equal(t, 1, won)
}

func testTriggers(t *testing.T, open func(t *testing.T) persistence.Store) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

	t.Run("EachTickOnceInOrder", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		last, err := s.TriggerLastTick(ctx, "default", "cron")
		require.NoError(t, err)
		require.True(t, last.IsZero(), "a trigger that never fired has no last tick")

		require.NoError(t, s.JobInsert(ctx, TickJob("default", "cron", t0, false)))
		again := TickJob("default", "cron", t0, false)
		again.SnapshotID, again.SnapshotBody = "snap-again", []byte(`{}`)
		err = s.JobInsert(ctx, again)
		require.ErrorIs(t, err, persistence.ErrTickFired)
		require.ErrorIs(t, err, stroem.ErrConflict, "a conflict for the API and the scheduler alike")
		_, err = s.JobGet(ctx, again.Job.ID)
		require.ErrorIs(t, err, stroem.ErrNotFound, "nothing of the refused job was written")
		_, err = s.SnapshotGet(ctx, "snap-again")
		require.ErrorIs(t, err, stroem.ErrNotFound)

		older := TickJob("default", "cron", t0.Add(-time.Second), false)
		require.ErrorIs(t, s.JobInsert(ctx, older), persistence.ErrTickFired, "ticks fire in order: an older tick is stale")

		require.NoError(t, s.JobInsert(ctx, TickJob("default", "cron", t0.Add(time.Second), false)))
		require.NoError(t, s.JobInsert(ctx, TickJob("other", "cron", t0, false)), "another workspace's trigger of the same name is independent")
		last, err = s.TriggerLastTick(ctx, "default", "cron")
		require.NoError(t, err)
		require.True(t, t0.Add(time.Second).Equal(last), "got %s", last)
		require.Equal(t, time.UTC, last.Location())

		jobs, err := s.JobList(ctx, persistence.JobFilter{SourceType: stroem.SourceTrigger, SourceID: "default/cron"})
		require.NoError(t, err)
		require.Len(t, jobs, 2, "the source id names the workspace")
	})

	t.Run("ConcurrentFiresOneJob", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		FireConcurrently(t, s, 8, func() persistence.NewJob { return TickJob("default", "cron", t0, false) })
		jobs, err := s.JobList(ctx, persistence.JobFilter{})
		require.NoError(t, err)
		require.Len(t, jobs, 1)
	})

	t.Run("SkipIfUnfinished", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		first := TickJob("default", "cron", t0, true)
		require.NoError(t, s.JobInsert(ctx, first), "nothing runs yet")
		err := s.JobInsert(ctx, TickJob("default", "cron", t0.Add(time.Second), true))
		require.ErrorIs(t, err, persistence.ErrTriggerBusy)
		require.False(t, errors.Is(err, persistence.ErrTickFired))
		last, err := s.TriggerLastTick(ctx, "default", "cron")
		require.NoError(t, err)
		require.True(t, t0.Equal(last), "a skipped tick is not recorded")

		require.NoError(t, s.JobInsert(ctx, NewJob(Step{Name: "a"})), "an API job of the same task does not count")
		EndJob(t, s, first.Job.ID)
		require.NoError(t, s.JobInsert(ctx, TickJob("default", "cron", t0.Add(2*time.Second), true)))
	})

	t.Run("UnfinishedJobsOfEarlierTicks", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		a := TickJob("default", "cron", t0, false)
		b := TickJob("default", "cron", t0.Add(time.Second), false)
		c := TickJob("default", "cron", t0.Add(2*time.Second), false)
		for _, nj := range []persistence.NewJob{a, b, c} {
			require.NoError(t, s.JobInsert(ctx, nj))
		}
		EndJob(t, s, a.Job.ID)
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

	t.Run("SkippedJob", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		first := TickJob("default", "cron", t0, true)
		require.NoError(t, s.JobInsert(ctx, first))
		// A busy tick is recorded as a skipped job, as the orchestrator does
		// it: its row only, with the tick.
		skipped := TickJob("default", "cron", t0.Add(time.Second), false)
		skipped.Steps, skipped.Job.Status = nil, stroem.JobSkipped
		require.NoError(t, s.JobInsert(ctx, skipped))
		j, err := s.JobGet(ctx, skipped.Job.ID)
		require.NoError(t, err)
		require.Equal(t, stroem.JobSkipped, j.Status)
		require.Nil(t, j.StartedAt, "a skipped job never started")
		require.NotNil(t, j.CompletedAt, "it ended when it was recorded")
		require.Zero(t, jobState(t, s, skipped.Job.ID).Len(), "no steps")
		last, err := s.TriggerLastTick(ctx, "default", "cron")
		require.NoError(t, err)
		require.True(t, t0.Add(time.Second).Equal(last), "the skipped tick is recorded")

		list, err := s.JobList(ctx, persistence.JobFilter{Status: stroem.JobSkipped})
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, skipped.Job.ID, list[0].ID)

		EndJob(t, s, first.Job.ID)
		require.NoError(t, s.JobInsert(ctx, TickJob("default", "cron", t0.Add(2*time.Second), true)),
			"a skipped job is not an unfinished one")
		ids, err := s.TriggerJobsUnfinished(ctx, "default", "cron", t0.Add(2*time.Second))
		require.NoError(t, err)
		require.Empty(t, ids, "nothing to cancel of a skipped job")

		res, err := s.JobsPrune(ctx, persistence.PruneParams{Before: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		require.Contains(t, res.JobIDs, skipped.Job.ID, "retention prunes skipped jobs as any ended job")
	})

	t.Run("BadTick", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		require.ErrorIs(t, s.JobInsert(ctx, TickJob("default", "cron", time.Time{}, false)), stroem.ErrInvalid)
		require.ErrorIs(t, s.JobInsert(ctx, TickJob("default", "", t0, false)), stroem.ErrInvalid)
	})
}

func testJobContext(t *testing.T, open func(t *testing.T) persistence.Store) {
	s, ctx := open(t), context.Background()
	nj := NewJob(Step{Name: "a"})
	nj.Context = map[string]any{"webhook": map[string]any{
		"headers": map[string]any{"x_github_event": "push"},
		"query":   map[string]any{"ref": "main\x00"},
	}}
	require.NoError(t, s.JobInsert(ctx, nj))
	want := map[string]any{"webhook": map[string]any{
		"headers": map[string]any{"x_github_event": "push"},
		"query":   map[string]any{"ref": `main\0`},
	}}
	require.Equal(t, want, jobState(t, s, nj.Job.ID).Context, "stored with the job, sanitized like every other JSON value")
	st, err := s.JobUpdate(ctx, nj.Job.ID, func(*persistence.JobState) error { return nil })
	require.NoError(t, err)
	require.Equal(t, want, st.Context)

	plain := InsertJob(t, s, Step{Name: "a"})
	require.Nil(t, jobState(t, s, plain.Job.ID).Context)
	st, err = s.JobUpdate(ctx, plain.Job.ID, func(*persistence.JobState) error { return nil })
	require.NoError(t, err)
	require.Nil(t, st.Context)
}
