package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/metrics"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
)

// A PostgreSQL store's transitions that ran without reading their job
// first, and those that found the job changed and read it, are counted.
func TestUnreadJobUpdatesAreCounted(t *testing.T) {
	t.Parallel()
	pg := dbtest.Store(t)
	m := metrics.NewServer("replica-1", pg)
	s := metrics.WrapStore(pg, m)
	ctx := context.Background()
	id := insert(t, s, stroem.SourceAPI)
	noop := func(*persistence.JobState) error { return nil }
	tried := func() float64 {
		return count(t, m, "stroem_job_updates_unread_total") + count(t, m, "stroem_job_updates_unread_stale_total")
	}

	_, err := s.JobUpdate(ctx, id, noop) // reads the job, and keeps it
	require.NoError(t, err)
	require.Zero(t, tried())
	_, err = s.JobUpdate(ctx, id, noop) // on the kept job (or, on a loaded machine, refused for its clock)
	require.NoError(t, err)
	require.Equal(t, 1.0, tried())

	stale := count(t, m, "stroem_job_updates_unread_stale_total")
	got, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w", Capabilities: []string{"shell"}, Limit: 1, Lease: time.Minute})
	require.NoError(t, err)
	require.Len(t, got, 1)
	_, err = s.JobUpdate(ctx, id, noop) // the claim changed a step since
	require.NoError(t, err)
	require.Equal(t, stale+1, count(t, m, "stroem_job_updates_unread_stale_total"))
}
