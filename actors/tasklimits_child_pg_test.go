package actors

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// A child job (of a type: task step) whose task has a retry is not retried
// as a new job: its parent's step ended failed with it, so a retry job
// would run the task again with nobody waiting for it.
func TestTaskRetrySkipsChildJobs(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, limitsWorkflow, Config{}, nil)
	ctx := context.Background()
	id := e.create(t, "parent", nil)
	w := uuid.NewString()
	a := e.claimed(t, w)
	childID := ChildJobID(id, "call")
	require.Equal(t, childID, a.JobID)
	e.complete(t, a, w, stroem.Completion{ExitCode: 1})
	e.waitStatus(t, id, stroem.JobFailed)

	cs := e.state(t, childID)
	require.Equal(t, stroem.JobFailed, cs.Job.Status)
	p, err := e.o.planFor(ctx, cs.SnapshotID)
	require.NoError(t, err)
	require.False(t, taskRetryFollows(p, cs), "a child job is not retried as a detached job")
}
