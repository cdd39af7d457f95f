package storetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence"
)

// testStepRevision: a step of another workspace's action (a
// cross-workspace reference) carries that workspace's revision; the worker
// running it holds that revision (and not the job's), the worker running a
// step of the job's own action holds the job's.
func testStepRevision(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()
	w1 := registerWorker(t, s, "w1")
	w2 := registerWorker(t, s, "w2")

	nj := NewJob(Step{Name: "local"}, Step{Name: "remote"})
	nj.Steps[1].Revision = "owner-rev"
	require.NoError(t, s.JobInsert(ctx, nj))

	held := func(w, rev string) bool {
		t.Helper()
		ok, err := s.WorkerHoldsRevision(ctx, w, rev)
		require.NoError(t, err)
		return ok
	}
	first := ClaimOne(t, s, w1.ID)
	second := ClaimOne(t, s, w2.ID)
	byStep := map[string]string{first.StepName: w1.ID, second.StepName: w2.ID}
	require.Len(t, byStep, 2)
	require.True(t, held(byStep["remote"], "owner-rev"), "the remote step's worker holds the owner's revision")
	require.False(t, held(byStep["remote"], nj.Job.Revision), "and not the job's")
	require.True(t, held(byStep["local"], nj.Job.Revision))
	require.False(t, held(byStep["local"], "owner-rev"), "a step of the job's own action does not entitle to the owner's revision")
}
