package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/storetest"
)

// Acknowledgements that arrive together are written together, and each
// still gets its own answer: started (with its step's cancel flag), or a
// conflict when its worker does not hold that attempt; the same
// acknowledgement twice is started twice.
func TestStepStartsArrivingTogether(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	const n = 16
	var claimed []persistence.ClaimedStep
	for range n {
		storetest.InsertJob(t, s, storetest.Step{Name: "a"})
		claimed = append(claimed, storetest.ClaimOne(t, s, "w1"))
	}
	_, err := s.Pool().Exec(ctx, `UPDATE job_steps SET cancel_requested = true WHERE job_id = $1`, claimed[0].JobID)
	require.NoError(t, err)

	type ack struct {
		c      persistence.ClaimedStep
		worker string
	}
	var acks []ack
	for i, c := range claimed {
		worker := "w1"
		if i%3 == 2 {
			worker = "w2" // does not hold it
		}
		acks = append(acks, ack{c, worker})
	}
	acks = append(acks, ack{claimed[1], "w1"}) // twice
	results := make([]error, len(acks))
	cancels := make([]bool, len(acks))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, a := range acks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			cancels[i], results[i] = s.StepStart(ctx, a.c.JobID, a.c.StepName, a.c.Attempt, a.worker)
		}()
	}
	close(start)
	wg.Wait()

	for i, a := range acks {
		if a.worker == "w2" {
			require.Equal(t, stroem.CodeConflict, stroem.ErrorCode(results[i]), "ack %d", i)
			continue
		}
		require.NoError(t, results[i], "ack %d", i)
		require.Equal(t, a.c.JobID == claimed[0].JobID, cancels[i], "ack %d", i)
	}
	for i, c := range claimed {
		var started int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT started_attempt FROM job_steps WHERE job_id = $1`, c.JobID).Scan(&started))
		if i%3 == 2 {
			require.Zero(t, started, "step %d: not acknowledged by its worker", i)
		} else {
			require.Equal(t, c.Attempt, started, "step %d", i)
		}
	}
}
