package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// OfferNext is what the orchestrator's transition does for a completion's
// claim in a fan-out (actors/handoff.go, offer): it completes done (held by
// worker at attempt 1) and offers the ready step next to the worker's
// claim for action types caps, recorded as started.
func OfferNext(done, next, worker string, caps ...string) func(*persistence.JobState) error {
	return OfferNextTo(done, next, worker, persistence.Route{Capabilities: caps})
}

// OfferNextTo is OfferNext for a claim of route r (action types and tags).
func OfferNextTo(done, next, worker string, r persistence.Route) func(*persistence.JobState) error {
	complete := Complete(Report{Step: done, Worker: worker, Attempt: 1})
	return func(st *persistence.JobState) error {
		if err := complete(st); err != nil {
			return err
		}
		i := st.Index(next)
		n, now := st.MutAt(i), st.Now
		lease := now.Add(Lease)
		n.Status, n.Attempt, n.WorkerID, n.AttemptStatus = stroem.StepRunning, n.Attempt+1, worker, stroem.AttemptRunning
		n.LeaseExpiresAt, n.StartedAt, n.CompletedAt, n.StartedAttempt = &lease, &now, nil, n.Attempt
		st.Offer(i, r)
		return nil
	}
}

// testOffers: a step offered in a transition (persistence.JobState.Offer)
// is written like any step made running, unless another job has a step of
// the claim's types ready since earlier; one not taken is left as read,
// and the rest of the update is written all the same.
func testOffers(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Run("Taken", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		id := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b"}, Step{Name: "c"}).Job.ID
		a := ClaimOne(t, s, "w1")
		require.Equal(t, "a", a.StepName)

		got, err := s.JobUpdate(ctx, id, OfferNext("a", "b", "w1", "shell"))
		require.NoError(t, err)
		b := got.Find("b")
		require.Equal(t, [4]any{stroem.StepRunning, 1, "w1", 1}, [4]any{b.Status, b.Attempt, b.WorkerID, b.StartedAttempt}, "returned as written")
		stored := jobState(t, s, id)
		sameStored(t, got, stored)
		require.Equal(t, stroem.StepCompleted, stored.Find("a").Status)
		attempts := jobGet(t, s, id).Steps[1].Attempts
		require.Len(t, attempts, 1, "b's attempt is recorded")
		require.Equal(t, stroem.AttemptRunning, attempts[0].Status)
		require.Empty(t, giveBack(t, s), "started: never given back for want of a start")

		c := ClaimOne(t, s, "w2")
		require.Equal(t, "c", c.StepName, "b is not claimed again")
	})

	t.Run("NotTakenBehindAnOlderStepOfAnotherJob", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		older := InsertJob(t, s, Step{Name: "x", ActionType: "python"}).Job.ID
		time.Sleep(2 * time.Millisecond) // the stores' clocks: a later ready_at
		id := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b"}).Job.ID
		a := ClaimOne(t, s, "w1", "shell")
		require.Equal(t, id, a.JobID)

		// The older step is not of the claim's types: the offer is taken.
		got, err := s.JobUpdate(ctx, id, OfferNext("a", "b", "w1", "shell"))
		require.NoError(t, err)
		require.Equal(t, stroem.StepRunning, got.Find("b").Status)

		// It is now: the offer is not taken, the completion is written.
		id2 := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b"}).Job.ID
		a2 := ClaimOne(t, s, "w1", "shell")
		require.Equal(t, id2, a2.JobID)
		got, err = s.JobUpdate(ctx, id2, OfferNext("a", "b", "w1", "shell", "python"))
		require.NoError(t, err, "an offer not taken is no conflict")
		require.Equal(t, stroem.StepCompleted, got.Find("a").Status)
		b := got.Find("b")
		require.Equal(t, [3]any{stroem.StepReady, 0, ""}, [3]any{b.Status, b.Attempt, b.WorkerID}, "returned as read")
		stored := jobState(t, s, id2)
		sameStored(t, got, stored)
		require.Empty(t, jobGet(t, s, id2).Steps[1].Attempts, "no attempt recorded")

		// The older step goes first, then the one not taken.
		c := ClaimOne(t, s, "w2", "shell", "python")
		require.Equal(t, [2]string{older, "x"}, [2]string{c.JobID, c.StepName})
		c = ClaimOne(t, s, "w2", "shell", "python")
		require.Equal(t, [2]string{id2, "b"}, [2]string{c.JobID, c.StepName})

		// A later update of the job works on what is stored (a store that
		// keeps the job's steps kept b as read, not as offered).
		got, err = s.JobUpdate(ctx, id2, Complete(Report{Step: "b", Worker: "w2", Attempt: 1}))
		require.NoError(t, err)
		require.Equal(t, stroem.JobCompleted, got.Job.Status)
	})

	t.Run("OnlyAReadyStep", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		id := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b", Deps: []string{"a"}}).Job.ID
		ClaimOne(t, s, "w1")
		_, err := s.JobUpdate(context.Background(), id, func(st *persistence.JobState) error {
			b := st.Mut("b")
			now := st.Now
			lease := now.Add(Lease)
			b.Status, b.Attempt, b.WorkerID, b.AttemptStatus = stroem.StepRunning, 1, "w1", stroem.AttemptRunning
			b.LeaseExpiresAt, b.StartedAt = &lease, &now
			st.Offer(st.Index("b"), persistence.Route{Capabilities: []string{"shell"}})
			return nil
		})
		require.Error(t, err, "a pending step cannot be offered")
		require.Equal(t, stroem.StepPending, jobState(t, s, id).Find("b").Status)
	})
}
