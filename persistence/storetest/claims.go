package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

func testClaims(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Run("EachStepClaimedExactlyOnceByConcurrentClaimers", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()

		// 2,000 ready steps over 200 jobs, action types mixed: shell, docker, pod.
		types := []string{"shell", "docker", "pod"}
		wantType := map[string]string{}
		var jobIDs []string
		for j := range 200 {
			var steps []Step
			for i := range 10 {
				steps = append(steps, Step{Name: fmt.Sprintf("s%d", i), ActionType: types[(j*10+i)%3]})
			}
			nj := InsertJob(t, s, steps...)
			jobIDs = append(jobIDs, nj.Job.ID)
			for _, st := range nj.Steps {
				wantType[nj.Job.ID+"/"+st.Name] = st.ActionType
			}
		}

		// 8 claimers with different capabilities: together they cover every type.
		caps := [][]string{{"shell"}, {"docker"}, {"pod"}, {"shell", "docker"}, {"docker", "pod"}, {"shell", "pod"}, {"shell", "docker", "pod"}, {"shell"}}
		var (
			mu      sync.Mutex
			claimed = map[string]string{} // step → worker
			dups    []string
			wg      sync.WaitGroup
			errs    = make(chan error, 1000)
		)
		for w, c := range caps {
			wg.Go(func() {
				worker := fmt.Sprintf("w%d", w)
				for {
					got, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: worker, Capabilities: c, Limit: 7, Lease: Lease})
					if err != nil {
						errs <- err
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, g := range got {
						key := g.JobID + "/" + g.StepName
						if _, ok := claimed[key]; ok {
							dups = append(dups, key)
						}
						claimed[key] = worker
						if !slices.Contains(c, g.ActionType) || wantType[key] != g.ActionType {
							errs <- fmt.Errorf("worker %s with %v got a %s step (%s)", worker, c, g.ActionType, key)
						}
						if g.Attempt != 1 {
							errs <- fmt.Errorf("%s: attempt %d", key, g.Attempt)
						}
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Empty(t, dups, "claimed twice")
		require.Len(t, claimed, 2000, "every step claimed")

		for _, id := range jobIDs {
			j := jobGet(t, s, id)
			require.Equal(t, stroem.JobRunning, j.Status)
			require.NotNil(t, j.StartedAt)
			for _, st := range j.Steps {
				require.Equal(t, stroem.StepRunning, st.Status)
				require.Equal(t, 1, st.Attempt)
				require.Equal(t, claimed[id+"/"+st.StepName], *st.WorkerID)
				require.Len(t, st.Attempts, 1)
				require.Equal(t, stroem.AttemptRunning, st.Attempts[0].Status)
			}
		}
		none := claim(t, s, "late", 10, Lease, "shell", "docker", "pod")
		require.Empty(t, none)
	})

	t.Run("ClaimStartsAnAttemptUnderALease", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		nj := InsertJob(t, s, Step{Name: "a", ActionType: "docker"}, Step{Name: "b", Deps: []string{"a"}})

		require.Empty(t, claim(t, s, "w1", 5, Lease, "shell"), "no shell step is ready: b waits for a")
		none, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w1", Limit: 5, Lease: Lease})
		require.NoError(t, err)
		require.Empty(t, none, "no capabilities, nothing to run")
		_, err = s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w1", Capabilities: []string{"docker"}, Limit: 1})
		require.ErrorIs(t, err, stroem.ErrInvalid, "a claim without a lease is a bug")
		_, err = s.StepsClaim(ctx, persistence.ClaimParams{Capabilities: []string{"docker"}, Limit: 1, Lease: Lease})
		require.ErrorIs(t, err, stroem.ErrInvalid, "a claim without a worker is a bug")
		require.Equal(t, stroem.StepReady, jobState(t, s, nj.Job.ID).Find("a").Status, "refused claims take nothing")

		before := time.Now()
		c := ClaimOne(t, s, "w1", "docker", "shell")
		require.Equal(t, nj.Job.ID, c.JobID)
		require.Equal(t, "a", c.StepName)
		require.Equal(t, 1, c.Attempt)
		require.Equal(t, "act-a", c.ActionName)
		require.Equal(t, "docker", c.ActionType)
		require.Equal(t, map[string]any{"step": "a"}, c.Input)
		require.Equal(t, "default", c.Workspace)
		require.Equal(t, "hello", c.TaskName)
		require.Equal(t, "rev1", c.Revision)
		require.Equal(t, "snap-1", c.SnapshotID)
		require.WithinDuration(t, before.Add(Lease), c.LeaseExpiresAt, 5*time.Second)

		st := jobState(t, s, nj.Job.ID)
		a := st.Find("a")
		require.Equal(t, stroem.StepRunning, a.Status)
		require.Equal(t, "w1", a.WorkerID)
		require.Equal(t, 1, a.Attempt)
		require.Equal(t, stroem.AttemptRunning, a.AttemptStatus)
		require.NotNil(t, a.StartedAt)
		require.Nil(t, a.CompletedAt)
		require.Equal(t, c.LeaseExpiresAt, *a.LeaseExpiresAt)
		require.Equal(t, stroem.JobRunning, st.Job.Status)
		require.NotNil(t, st.Job.StartedAt)
		require.Equal(t, *a.StartedAt, *st.Job.StartedAt, "the job started with its first claim")
		l := stepLease(t, s, nj.Job.ID, "a")
		require.Equal(t, c.LeaseExpiresAt, *l.LeaseExpiresAt)
		require.Equal(t, stroem.StepRunning, l.Status)
		require.True(t, l.Now.Before(*l.LeaseExpiresAt))

		require.Empty(t, claim(t, s, "w2", 5, Lease, "docker", "shell"), "a running step is not claimable")
		j := jobGet(t, s, nj.Job.ID)
		require.Equal(t, "w1", *j.Steps[0].WorkerID)
		require.Len(t, j.Steps[0].Attempts, 1)
		require.Equal(t, "w1", j.Steps[0].Attempts[0].WorkerID)
		require.Equal(t, *a.StartedAt, j.Steps[0].Attempts[0].StartedAt)
		require.Nil(t, j.Steps[0].Attempts[0].CompletedAt)
	})

	t.Run("OldestReadyFirstAndFutureReadyAtNotClaimable", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		first := InsertJob(t, s, Step{Name: "a"})
		readyAt := *jobState(t, s, first.Job.ID).Find("a").ReadyAt
		time.Sleep(2 * time.Millisecond)
		second := InsertJob(t, s, Step{Name: "x"}, Step{Name: "y"}, Step{Name: "z", ActionType: "docker"})
		time.Sleep(2 * time.Millisecond)
		third := InsertJob(t, s, Step{Name: "a"})
		// The first job's step backs off for an hour: not claimable.
		update(t, s, first.Job.ID, func(st *persistence.JobState) {
			later := st.Now.Add(time.Hour)
			st.Mut("a").ReadyAt = &later
		})

		got := claim(t, s, "w1", 2, Lease)
		require.Len(t, got, 2, "the limit holds")
		require.Equal(t, []string{second.Job.ID + "/x", second.Job.ID + "/y"},
			[]string{got[0].JobID + "/" + got[0].StepName, got[1].JobID + "/" + got[1].StepName},
			"oldest ready first, then in position order")
		got = claim(t, s, "w1", 10, Lease)
		require.Len(t, got, 1)
		require.Equal(t, third.Job.ID, got[0].JobID)
		require.Empty(t, claim(t, s, "w1", 10, Lease), "a step backing off waits")
		require.Equal(t, stroem.StepReady, jobState(t, s, first.Job.ID).Find("a").Status)
		require.Equal(t, stroem.JobPending, jobGet(t, s, first.Job.ID).Status)

		// The back-off is called off: claimable again, first in line.
		update(t, s, first.Job.ID, func(st *persistence.JobState) {
			st.Mut("a").ReadyAt = &readyAt
		})
		got = claim(t, s, "w1", 10, Lease, "shell", "docker")
		require.Len(t, got, 2)
		require.Equal(t, first.Job.ID, got[0].JobID, "ready the longest")
		require.Equal(t, second.Job.ID+"/z", got[1].JobID+"/"+got[1].StepName)
	})
}

func testFencing(t *testing.T, open func(t *testing.T) persistence.Store) {
	type testBundle struct {
		store persistence.Store
		job   persistence.NewJob
		claim persistence.ClaimedStep
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		s := open(t)
		nj := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b", Deps: []string{"a"}})
		return &testBundle{store: s, job: nj, claim: ClaimOne(t, s, "w1")}
	}

	t.Run("StaleCompletionIsRefusedAndChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		before := jobState(t, b.store, b.job.Job.ID)
		for _, r := range []Report{
			{Step: "a", Worker: "w1", Attempt: 2}, // an attempt that does not exist
			{Step: "a", Worker: "w2", Attempt: 1}, // another worker
			{Step: "a", Worker: "w1", Attempt: 0}, // an old attempt
			{Step: "a", Worker: "w2", Attempt: 1, ExitCode: 1},
		} {
			_, err := b.store.JobUpdate(ctx, b.job.Job.ID, Complete(r))
			require.ErrorIs(t, err, stroem.ErrConflict, "%+v", r)
		}
		sameStored(t, before, jobState(t, b.store, b.job.Job.ID))

		// After a retry, a report of the first attempt is stale too.
		update(t, b.store, b.job.Job.ID, func(st *persistence.JobState) {
			a := st.Mut("a")
			a.AttemptStatus, a.ErrorMessage, a.Status = stroem.AttemptLost, "worker lost (lease expired)", stroem.StepReady
		})
		c2 := ClaimOne(t, b.store, "w2")
		require.Equal(t, 2, c2.Attempt)
		_, err := b.store.JobUpdate(ctx, b.job.Job.ID, Complete(Report{Step: "a", Worker: "w1", Attempt: 1}))
		require.ErrorIs(t, err, stroem.ErrConflict)
		st := report(t, b.store, b.job.Job.ID, Report{Step: "a", Worker: "w2", Attempt: 2})
		require.Equal(t, stroem.StepCompleted, st.Find("a").Status)
		atts := jobGet(t, b.store, b.job.Job.ID).Steps[0].Attempts
		require.Len(t, atts, 2)
		require.Equal(t, stroem.AttemptLost, atts[0].Status)
		require.Equal(t, "worker lost (lease expired)", atts[0].ErrorMessage)
		require.Equal(t, stroem.AttemptCompleted, atts[1].Status)
	})

	t.Run("SameCompletionTwiceIsAppliedOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		r := Report{Step: "a", Worker: "w1", Attempt: b.claim.Attempt, Output: map[string]any{"n": 1}}

		first, err := b.store.JobUpdate(ctx, b.job.Job.ID, Complete(r))
		require.NoError(t, err)
		require.Equal(t, stroem.StepCompleted, first.Find("a").Status)
		require.Equal(t, stroem.StepReady, first.Find("b").Status)
		stored := jobState(t, b.store, b.job.Job.ID)
		attempts := jobGet(t, b.store, b.job.Job.ID).Steps[0].Attempts

		time.Sleep(2 * time.Millisecond) // a second write would carry a later time
		second, err := b.store.JobUpdate(ctx, b.job.Job.ID, Complete(r))
		require.NoError(t, err, "a duplicate is accepted")
		require.Equal(t, stroem.StepCompleted, second.Find("a").Status)
		require.Equal(t, first.Find("a").CompletedAt, second.Find("a").CompletedAt)
		sameStored(t, stored, jobState(t, b.store, b.job.Job.ID), "and writes nothing")
		require.Equal(t, attempts, jobGet(t, b.store, b.job.Job.ID).Steps[0].Attempts)

		// A different outcome for the same attempt is a conflict.
		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, Complete(Report{Step: "a", Worker: "w1", Attempt: 1, ExitCode: 3}))
		require.ErrorIs(t, err, stroem.ErrConflict)
		sameStored(t, stored, jobState(t, b.store, b.job.Job.ID))
	})

	t.Run("StepFenceForLogPushes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		id := b.job.Job.ID
		_, err := b.store.StepFence(ctx, id, "a", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrConflict, "claimed, not acknowledged: nothing may be reported for it yet")
		require.ErrorContains(t, err, "not acknowledged")
		_, err = b.store.StepStart(ctx, id, "a", 1, "w1")
		require.NoError(t, err)
		cancel, err := b.store.StepFence(ctx, id, "a", 1, "w1")
		require.NoError(t, err)
		require.False(t, cancel)
		_, err = b.store.StepFence(ctx, strings.ToUpper(id), "a", 1, "w1")
		require.NoError(t, err, "an upper-case job id is the same job")

		_, err = b.store.StepFence(ctx, id, "a", 1, "w2")
		require.ErrorIs(t, err, stroem.ErrConflict)
		require.ErrorContains(t, err, "not the running attempt")
		_, err = b.store.StepFence(ctx, id, "a", 2, "w1")
		require.ErrorIs(t, err, stroem.ErrConflict)
		_, err = b.store.StepFence(ctx, id, "b", 0, "w1")
		require.ErrorIs(t, err, stroem.ErrConflict, "a pending step has no running attempt")
		_, err = b.store.StepFence(ctx, id, "zzz", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		_, err = b.store.StepFence(ctx, uuid.NewString(), "a", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		_, err = b.store.StepFence(ctx, "bad", "a", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrNotFound)

		update(t, b.store, id, func(st *persistence.JobState) {
			st.CancelRequested = true
			st.Mut("a").CancelRequested = true
			st.Mut("b").Status = stroem.StepCancelled
		})
		cancel, err = b.store.StepFence(ctx, id, "a", 1, "w1")
		require.NoError(t, err)
		require.True(t, cancel, "the worker learns of the cancel")

		report(t, b.store, id, Report{Step: "a", Worker: "w1", Attempt: 1})
		_, err = b.store.StepFence(ctx, id, "a", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrConflict, "the attempt is over")
	})
}

func testStepUnclaim(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()
	nj := InsertJob(t, s, Step{Name: "a"})
	id := nj.Job.ID

	// Attempt 1 fails and is retried; attempt 2's claim is then undone.
	ClaimOne(t, s, "w1")
	update(t, s, id, func(st *persistence.JobState) {
		a := st.Mut("a")
		code := 7
		a.AttemptStatus, a.ExitCode, a.ErrorMessage, a.Status = stroem.AttemptFailed, &code, "exit 7", stroem.StepReady
	})
	before := jobState(t, s, id)
	c := ClaimOne(t, s, "w2")
	require.Equal(t, 2, c.Attempt)

	require.NoError(t, s.StepUnclaim(ctx, id, "a", 2, "w1"), "another worker: no-op")
	require.NoError(t, s.StepUnclaim(ctx, id, "a", 1, "w2"), "another attempt: no-op")
	require.NoError(t, s.StepUnclaim(ctx, id, "b", 2, "w2"), "another step: no-op")
	require.NoError(t, s.StepUnclaim(ctx, "bad", "a", 2, "w2"))
	require.NoError(t, s.StepUnclaim(ctx, uuid.NewString(), "a", 2, "w2"))
	require.Equal(t, stroem.StepRunning, jobState(t, s, id).Find("a").Status)

	require.NoError(t, s.StepUnclaim(ctx, id, "a", 2, "w2"))
	st := jobState(t, s, id)
	a, old := st.Find("a"), before.Find("a")
	require.Equal(t, stroem.StepReady, a.Status)
	require.Equal(t, 1, a.Attempt)
	require.Equal(t, "w1", a.WorkerID)
	require.Equal(t, stroem.AttemptFailed, a.AttemptStatus)
	require.Equal(t, 7, *a.ExitCode)
	require.Equal(t, "exit 7", a.ErrorMessage)
	require.Equal(t, old.StartedAt, a.StartedAt)
	require.Equal(t, old.ReadyAt, a.ReadyAt, "first in line again")
	require.Nil(t, a.LeaseExpiresAt)
	require.Nil(t, a.CompletedAt)
	require.Equal(t, stroem.JobRunning, st.Job.Status)
	sameStored(t, before, st, "as before the claim")
	require.Len(t, jobGet(t, s, id).Steps[0].Attempts, 1, "the attempt is forgotten")

	require.NoError(t, s.StepUnclaim(ctx, id, "a", 2, "w2"), "twice: no-op")
	c = ClaimOne(t, s, "w3")
	require.Equal(t, 2, c.Attempt, "the attempt number is reused")
	atts := jobGet(t, s, id).Steps[0].Attempts
	require.Len(t, atts, 2)
	require.Equal(t, "w3", atts[1].WorkerID)

	// A first attempt unclaimed leaves a step that never ran.
	fresh := InsertJob(t, s, Step{Name: "x"})
	time.Sleep(time.Millisecond)
	c = ClaimOne(t, s, "w4")
	require.Equal(t, fresh.Job.ID, c.JobID)
	require.NoError(t, s.StepUnclaim(ctx, fresh.Job.ID, "x", 1, "w4"))
	x := jobState(t, s, fresh.Job.ID).Find("x")
	require.Equal(t, stroem.StepReady, x.Status)
	require.Equal(t, 0, x.Attempt)
	require.Empty(t, x.WorkerID)
	require.Empty(t, x.AttemptStatus)
	require.Nil(t, x.ExitCode)
	require.Nil(t, x.StartedAt)
	require.Empty(t, jobGet(t, s, fresh.Job.ID).Steps[0].Attempts)
}

// StepsRunning lists exactly the running steps, with their holders: what a
// starting server inherits from the process before it.
func testStepsRunning(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()
	InsertJob(t, s, Step{Name: "a"}, Step{Name: "b", Deps: []string{"a"}})
	held, err := s.StepsRunning(ctx)
	require.NoError(t, err)
	require.Empty(t, held, "ready and pending steps are not running")

	w := uuid.NewString()
	c := ClaimOne(t, s, w)
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
