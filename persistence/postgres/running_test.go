package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
)

// StepsRunning lists exactly the running steps, with their holders: what a
// starting server inherits from the process before it.
func TestStepsRunning(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	insertJob(t, s, step{name: "a"}, step{name: "b", deps: []string{"a"}})
	held, err := s.StepsRunning(ctx)
	require.NoError(t, err)
	require.Empty(t, held, "ready and pending steps are not running")

	w := uuid.NewString()
	c := claimOne(t, s, w)
	held, err = s.StepsRunning(ctx)
	require.NoError(t, err)
	require.Equal(t, []persistence.HeldStep{{
		StepRef: stroem.StepRef{JobID: c.JobID, Step: c.StepName, Attempt: 1}, WorkerID: w,
	}}, held)

	require.NoError(t, s.StepUnclaim(ctx, c.JobID, c.StepName, 1, w))
	held, err = s.StepsRunning(ctx)
	require.NoError(t, err)
	require.Empty(t, held)
}
