package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// testGates covers what approval gates, `type: task` steps and hooks (issue
// 19 part B) need of a store: the `suspended` step status (never claimed,
// ends completed, failed or cancelled, kept across reads with its output and
// start time), the `hook` and `task` source types, and a second JobInsert
// of the same job id — how a child or hook job is created exactly once —
// refused as a conflict that changes nothing.
func testGates(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Run("SuspendedStepsWaitWithoutAWorker", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		nj := NewJob(Step{Name: "gate", ActionType: "approval"}, Step{Name: "after", Deps: []string{"gate"}})
		nj.Steps[0].Status, nj.Steps[0].Input = stroem.StepSuspended, map[string]any{"v": "1"}
		nj.Steps[0].Output = map[string]any{"message": "ship it?\x00"}
		require.NoError(t, s.JobInsert(ctx, nj))

		st := jobState(t, s, nj.Job.ID)
		require.Equal(t, stroem.StepSuspended, st.Find("gate").Status, "a root gate is suspended from the start")
		require.Nil(t, st.Find("gate").ReadyAt)
		require.NotNil(t, st.Find("gate").StartedAt, "its wait begins at the insert")
		require.Equal(t, map[string]any{"message": `ship it?\0`}, st.Find("gate").Output, "its output is stored, sanitized")
		require.Nil(t, st.Find("after").StartedAt)
		require.Nil(t, st.Find("after").Output)
		require.Empty(t, claim(t, s, "w1", 10, Lease, "shell", "approval"), "a suspended step is never claimed, whatever the worker runs")
		ids, err := s.JobsUnfinished(ctx)
		require.NoError(t, err)
		require.Contains(t, ids, nj.Job.ID, "a job waiting at a gate is unfinished: a starting server resumes it")

		_, err = s.JobUpdate(ctx, nj.Job.ID, func(js *persistence.JobState) error {
			g := js.Mut("gate")
			g.Status = stroem.StepCompleted
			g.Output = map[string]any{"approved": true, "approved_by": "ann@example.com"}
			Advance(js)
			return nil
		})
		require.NoError(t, err)
		j := jobGet(t, s, nj.Job.ID)
		require.Equal(t, stroem.StepCompleted, j.Steps[0].Status)
		require.Equal(t, map[string]any{"approved": true, "approved_by": "ann@example.com"}, j.Steps[0].Output)
		require.NotNil(t, j.Steps[0].CompletedAt)
		require.Equal(t, stroem.StepReady, j.Steps[1].Status)
	})

	t.Run("StepsBecomeSuspendedAndEnd", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		nj := InsertJob(t, s, Step{Name: "a", ActionType: "task"}, Step{Name: "b", ActionType: "approval"}, Step{Name: "c", Deps: []string{"a"}, ActionType: "approval"})
		st, err := s.JobUpdate(ctx, nj.Job.ID, func(js *persistence.JobState) error {
			for _, n := range []string{"a", "b"} {
				js.Mut(n).Status = stroem.StepSuspended // from ready
				js.Mut(n).StartedAt = &js.Now
			}
			js.Mut("c").Status = stroem.StepSuspended // from pending
			js.Job.Status = stroem.JobRunning
			return nil
		})
		require.NoError(t, err)
		got := jobState(t, s, nj.Job.ID)
		sameStored(t, st, got)
		require.Equal(t, stroem.JobRunning, got.Job.Status)
		require.NotNil(t, got.Find("a").StartedAt, "the time the wait began is kept (approval timeouts count from it)")
		require.Equal(t, 0, got.Find("a").Attempt, "a wait is no attempt of a worker")

		_, err = s.JobUpdate(ctx, nj.Job.ID, func(js *persistence.JobState) error {
			js.Mut("a").Status, js.Mut("a").ErrorMessage = stroem.StepFailed, "child job failed"
			js.Mut("b").Status, js.Mut("b").ErrorMessage = stroem.StepCancelled, "cancelled"
			js.Mut("c").Status = stroem.StepCancelled
			js.Job.Status = stroem.JobCancelled
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, map[string]stroem.StepStatus{"a": stroem.StepFailed, "b": stroem.StepCancelled, "c": stroem.StepCancelled}, StepStatuses(t, s, nj.Job.ID))

		_, err = s.JobUpdate(ctx, nj.Job.ID, func(js *persistence.JobState) error {
			js.Mut("a").Status = stroem.StepSuspended
			return nil
		})
		require.Error(t, err, "a finished step never waits again")
	})

	t.Run("HookAndTaskSources", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		parent := InsertJob(t, s, Step{Name: "a"})
		child := NewJob(Step{Name: "x"})
		child.Job.SourceType, child.Job.SourceID = stroem.SourceTask, stroem.TaskSourceID(parent.Job.ID, "a")
		child.Context = map[string]any{"parent": map[string]any{"job_id": parent.Job.ID, "step_name": "a", "depth": float64(1)}}
		require.NoError(t, s.JobInsert(ctx, child))
		hook := NewJob(Step{Name: "notify"})
		hook.Job.SourceType, hook.Job.SourceID, hook.Job.TaskName = stroem.SourceHook, parent.Job.ID, "_hook:notify"
		require.NoError(t, s.JobInsert(ctx, hook))

		require.Equal(t, stroem.SourceTask, jobGet(t, s, child.Job.ID).SourceType)
		require.Equal(t, parent.Job.ID+"/a", jobGet(t, s, child.Job.ID).SourceID)
		require.Equal(t, child.Context, jobState(t, s, child.Job.ID).Context, "the parent link is kept with the child")
		hooks, err := s.JobList(ctx, persistence.JobFilter{SourceType: stroem.SourceHook, SourceID: parent.Job.ID})
		require.NoError(t, err)
		require.Len(t, hooks, 1)
		require.Equal(t, hook.Job.ID, hooks[0].ID)
		require.Equal(t, "_hook:notify", hooks[0].TaskName)
	})

	t.Run("SameJobIDTwiceIsAConflict", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		nj := InsertJob(t, s, Step{Name: "a"})
		again := NewJob(Step{Name: "other"})
		again.Job.ID, again.Job.TaskName = nj.Job.ID, "other-task"
		err := s.JobInsert(ctx, again)
		require.Error(t, err)
		require.True(t, errors.Is(err, stroem.ErrConflict), "a conflict (the job exists), got %v", err)
		j := jobGet(t, s, nj.Job.ID)
		require.Equal(t, "hello", j.TaskName, "the first insert stands")
		require.Len(t, j.Steps, 1)
		require.Equal(t, "a", j.Steps[0].StepName)
	})
}
