package actors

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

const gatesEngineWorkflow = `
actions:
  noop:
    type: shell
    cmd: "true"
  gate:
    type: approval
    message: "go?"
  sub:
    type: task
    task: child
tasks:
  child:
    flow:
      only: { action: noop }
  parent:
    flow:
      approve: { action: gate }
      run: { action: sub, depends_on: [approve] }
    on_success:
      - action: noop
`

// The whole path in one process, under the race detector: a root gate is
// suspended at creation and decided, the sub-task step creates its child
// once (a second creation finds it), the child's end completes the parent,
// and the parent's on_success hook becomes a job.
func TestGateSubJobAndHookInProcess(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, gatesEngineWorkflow, Config{}, nil)
	ctx := context.Background()
	id := e.create(t, "parent", nil)
	st, err := e.store.JobState(ctx, id)
	require.NoError(t, err)
	require.Equal(t, stroem.StepSuspended, st.Find("approve").Status)
	require.Equal(t, map[string]any{"message": "go?"}, st.Find("approve").Output, "the insert keeps the gate's message")
	require.NotNil(t, st.Find("approve").StartedAt)
	require.Equal(t, stroem.JobRunning, st.Job.Status)

	require.NoError(t, e.o.Approve(ctx, id, "approve", Decision{Approved: true, By: "ann"}))
	childID := ChildJobID(id, "run")
	require.Eventually(t, func() bool {
		_, err := e.store.JobState(ctx, childID)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "the child job is created")
	// Creating it again (a restarted server) finds it: no second child.
	done, err := e.o.childEnsureOnce(st.Job, parentLink{JobID: id, Depth: 1}, e.o.plans.get(st.SnapshotID).steps["run"], "run", nil)
	require.NoError(t, err)
	require.Nil(t, done, "the child runs: nothing ends the step yet")
	kids, err := e.store.JobList(ctx, persistence.JobFilter{SourceType: stroem.SourceTask, SourceID: id + "/run"})
	require.NoError(t, err)
	require.Len(t, kids, 1)
	require.Equal(t, childID, kids[0].ID, "the child's source_id names its parent and step, as upstream's")

	w := uuid.NewString()
	a := e.claimed(t, w)
	require.Equal(t, childID, a.JobID)
	e.complete(t, a, w, stroem.Completion{Output: map[string]any{"v": 1.0}})

	e.waitStatus(t, id, stroem.JobCompleted)
	j := e.job(t, id)
	require.Equal(t, map[string]any{"only": map[string]any{"v": 1.0}}, j.Steps[1].Output)

	hookID := HookJobID(id, "on_success", 0, "")
	require.Eventually(t, func() bool {
		h, err := e.store.JobGet(ctx, hookID)
		return err == nil && h.SourceType == stroem.SourceHook && h.SourceID == id && h.TaskName == "_hook:noop"
	}, 10*time.Second, 10*time.Millisecond, "the hook job is created")
	require.Equal(t, stroem.JobCompleted, e.job(t, id).Status, "the hook changes nothing of the job")
}

const loopSubJobWorkflow = `
actions:
  noop:
    type: shell
    cmd: "true"
  sub:
    type: task
    task: child
tasks:
  child:
    flow:
      only: { action: noop }
  parent:
    flow:
      fan: { action: sub, for_each: [a, b] }
`

// Each instance of a for_each task step has its own child job, whose
// source_id names the instance as upstream's does: "parent/fan[1]".
func TestLoopSubJobSourceIDs(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, loopSubJobWorkflow, Config{}, nil)
	ctx := context.Background()
	id := e.create(t, "parent", nil)
	for i := range 2 {
		step := stroem.LoopInstanceName("fan", i)
		childID := ChildJobID(id, step)
		require.Eventually(t, func() bool {
			_, err := e.store.JobState(ctx, childID)
			return err == nil
		}, 10*time.Second, 10*time.Millisecond, "the child job of %s is created", step)
		c := e.job(t, childID)
		require.Equal(t, stroem.SourceTask, c.SourceType)
		require.Equal(t, id+"/"+step, c.SourceID)
		parent, got := stroem.ParseTaskSourceID(c.SourceID)
		require.Equal(t, id, parent)
		require.Equal(t, step, got)
	}
	w := uuid.NewString()
	for range 2 {
		a := e.claimed(t, w)
		e.complete(t, a, w, stroem.Completion{})
	}
	e.waitStatus(t, id, stroem.JobCompleted)
}
