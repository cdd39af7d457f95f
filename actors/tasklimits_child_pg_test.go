package actors

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

const childRetryWorkflow = `
actions:
  work:
    type: shell
    cmd: "true"
  sub:
    type: task
    task: retried
tasks:
  retried:
    retry:
      max_attempts: 2
      delay: 0s
    flow:
      only: { action: work }
  parent:
    flow:
      call: { action: sub }
`

// A child job (of a type: task step) whose task has a retry is not retried
// as a new job: its parent's step ended failed with it, so a retry job
// would run the task again with nobody waiting for it.
func TestTaskRetrySkipsChildJobs(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, childRetryWorkflow, Config{}, nil)
	ctx := context.Background()
	id, err := e.o.JobCreate(ctx, JobRequest{Workspace: "default", Task: "parent"})
	require.NoError(t, err)
	w := uuid.NewString()
	a := e.claim(t, w, 5*time.Second)
	require.NotNil(t, a)
	childID := ChildJobID(id, "call")
	require.Equal(t, childID, a.JobID)
	require.NoError(t, e.o.StepComplete(ctx, a.JobID, a.StepName, stroem.Completion{WorkerID: w, Attempt: a.Attempt, ExitCode: 1}))
	require.Eventually(t, func() bool { return e.job(t, id).Status == stroem.JobFailed }, 10*time.Second, 20*time.Millisecond)

	cs := e.state(t, childID)
	require.Equal(t, stroem.JobFailed, cs.Job.Status)
	p, err := e.o.planFor(ctx, cs.SnapshotID)
	require.NoError(t, err)
	require.False(t, taskRetryFollows(p, cs), "a child job is not retried as a detached job")
}
