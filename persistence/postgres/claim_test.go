package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
)

func TestStepsClaim(t *testing.T) {
	t.Parallel()

	t.Run("EachStepClaimedExactlyOnceByConcurrentClaimers", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		ctx := context.Background()

		// 2,000 ready steps over 200 jobs, action types mixed: shell, docker, pod.
		types := []string{"shell", "docker", "pod"}
		wantType := map[string]string{}
		for j := range 200 {
			var steps []step
			for i := range 10 {
				typ := types[(j*10+i)%3]
				steps = append(steps, step{name: fmt.Sprintf("s%d", i), actionType: typ})
			}
			nj := insertJob(t, s, steps...)
			for _, st := range nj.Steps {
				wantType[nj.Job.ID+"/"+st.Name] = st.ActionType
			}
		}

		// 8 claimers, each on its own pool (separate connections), with
		// different capabilities: together they cover every type.
		caps := [][]string{{"shell"}, {"docker"}, {"pod"}, {"shell", "docker"}, {"docker", "pod"}, {"shell", "pod"}, {"shell", "docker", "pod"}, {"shell"}}
		var (
			mu      sync.Mutex
			claimed = map[string]string{} // step → worker
			dups    []string
			wg      sync.WaitGroup
			errs    = make(chan error, len(caps))
		)
		for w, c := range caps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pool := openPool(t, s)
				worker := fmt.Sprintf("w%d", w)
				for {
					got, err := pool.StepsClaim(ctx, persistence.ClaimParams{WorkerID: worker, Capabilities: c, Limit: 7, Lease: testLease})
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
						if !contains(c, g.ActionType) || wantType[key] != g.ActionType {
							errs <- fmt.Errorf("worker %s with %v got a %s step", worker, c, g.ActionType)
						}
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Empty(t, dups, "claimed twice")
		require.Len(t, claimed, 2000, "every step claimed")

		var ready, running, attempts int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'ready'),
			count(*) FILTER (WHERE status = 'running' AND attempt = 1) FROM job_steps`).Scan(&ready, &running))
		require.Equal(t, 0, ready)
		require.Equal(t, 2000, running)
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM step_attempts WHERE status = 'running'`).Scan(&attempts))
		require.Equal(t, 2000, attempts)
		var jobsRunning int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM jobs WHERE status = 'running' AND started_at IS NOT NULL`).Scan(&jobsRunning))
		require.Equal(t, 200, jobsRunning)
	})

	t.Run("ClaimStartsAnAttemptUnderALease", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		ctx := context.Background()
		nj := insertJob(t, s, step{name: "a", actionType: "docker"}, step{name: "b", deps: []string{"a"}})

		none, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w1", Capabilities: []string{"shell"}, Limit: 5, Lease: testLease})
		require.NoError(t, err)
		require.Empty(t, none, "no shell step is ready: b waits for a")
		none, err = s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w1", Limit: 5, Lease: testLease})
		require.NoError(t, err)
		require.Empty(t, none, "no capabilities, nothing to run")
		_, err = s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w1", Capabilities: []string{"docker"}, Limit: 1})
		require.ErrorIs(t, err, stroem.ErrInvalid, "a claim without a lease is a bug")

		c := claimOne(t, s, "w1", "docker", "shell")
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
		require.WithinDuration(t, time.Now().Add(testLease), c.LeaseExpiresAt, 5*time.Second)

		st, err := s.JobState(ctx, nj.Job.ID)
		require.NoError(t, err)
		a := st.Step("a")
		require.Equal(t, stroem.StepRunning, a.Status)
		require.Equal(t, "w1", a.WorkerID)
		require.Equal(t, stroem.AttemptRunning, a.AttemptStatus)
		require.NotNil(t, a.StartedAt)
		require.Equal(t, c.LeaseExpiresAt, *a.LeaseExpiresAt)
		require.Equal(t, stroem.JobRunning, st.Job.Status)
		require.NotNil(t, st.Job.StartedAt)
	})

	t.Run("OldestReadyFirstAndBackoffRespected", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		ctx := context.Background()
		first := insertJob(t, s, step{name: "a"})
		second := insertJob(t, s, step{name: "a"})
		// The first job's step backs off for an hour: not claimable.
		_, err := s.JobUpdate(ctx, first.Job.ID, func(st *persistence.JobState) error {
			later := st.Now.Add(time.Hour)
			st.Step("a").ReadyAt = &later
			return nil
		})
		require.NoError(t, err)
		c := claimOne(t, s, "w1")
		require.Equal(t, second.Job.ID, c.JobID)
		none, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w1", Capabilities: []string{"shell"}, Limit: 1, Lease: testLease})
		require.NoError(t, err)
		require.Empty(t, none)
	})
}

// openPool opens a second Store (its own connection pool) on s's database.
func openPool(t *testing.T, s *postgres.Store) *postgres.Store {
	t.Helper()
	other, err := postgres.Open(context.Background(), s.Pool().Config().ConnString(), nil)
	require.NoError(t, err)
	t.Cleanup(other.Close)
	return other
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func TestFencing(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		store *postgres.Store
		job   persistence.NewJob
		claim persistence.ClaimedStep
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		s := dbtest.Store(t)
		nj := insertJob(t, s, step{name: "a"}, step{name: "b", deps: []string{"a"}})
		return &testBundle{store: s, job: nj, claim: claimOne(t, s, "w1")}
	}

	t.Run("StaleCompletionIsRefusedAndChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		before := stepXmin(t, b.store, b.job.Job.ID, "a")

		for _, r := range []report{
			{step: "a", worker: "w1", attempt: 2}, // an attempt that does not exist
			{step: "a", worker: "w2", attempt: 1}, // another worker
			{step: "a", worker: "w1", attempt: 0}, // an old attempt
			{step: "a", worker: "w2", attempt: 1, exitCode: 1},
		} {
			_, err := b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(r))
			require.ErrorIs(t, err, stroem.ErrConflict, "%+v", r)
		}
		require.Equal(t, before, stepXmin(t, b.store, b.job.Job.ID, "a"))
		st, err := b.store.JobState(ctx, b.job.Job.ID)
		require.NoError(t, err)
		require.Equal(t, stroem.StepRunning, st.Step("a").Status)
		require.Equal(t, stroem.StepPending, st.Step("b").Status)

		// After a retry, a report of the first attempt is stale too.
		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			a := st.Step("a")
			a.AttemptStatus, a.ErrorMessage, a.Status = stroem.AttemptLost, "worker lost (lease expired)", stroem.StepReady
			return nil
		})
		require.NoError(t, err)
		c2 := claimOne(t, b.store, "w2")
		require.Equal(t, 2, c2.Attempt)
		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(report{step: "a", worker: "w1", attempt: 1}))
		require.ErrorIs(t, err, stroem.ErrConflict)
		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(report{step: "a", worker: "w2", attempt: 2}))
		require.NoError(t, err)
	})

	t.Run("SameCompletionTwiceIsAppliedOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		r := report{step: "a", worker: "w1", attempt: b.claim.Attempt, output: map[string]any{"n": 1}}

		first, err := b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(r))
		require.NoError(t, err)
		require.Equal(t, stroem.StepCompleted, first.Step("a").Status)
		require.Equal(t, stroem.StepReady, first.Step("b").Status)
		a, bx := stepXmin(t, b.store, b.job.Job.ID, "a"), stepXmin(t, b.store, b.job.Job.ID, "b")
		var attemptXmin string
		require.NoError(t, b.store.Pool().QueryRow(ctx, `SELECT xmin::text FROM step_attempts WHERE job_id = $1`, b.job.Job.ID).Scan(&attemptXmin))

		second, err := b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(r))
		require.NoError(t, err, "a duplicate is accepted")
		require.Equal(t, stroem.StepCompleted, second.Step("a").Status)
		require.Equal(t, first.Step("a").CompletedAt, second.Step("a").CompletedAt)
		require.Equal(t, a, stepXmin(t, b.store, b.job.Job.ID, "a"), "and writes nothing")
		require.Equal(t, bx, stepXmin(t, b.store, b.job.Job.ID, "b"))
		var attemptXmin2 string
		require.NoError(t, b.store.Pool().QueryRow(ctx, `SELECT xmin::text FROM step_attempts WHERE job_id = $1`, b.job.Job.ID).Scan(&attemptXmin2))
		require.Equal(t, attemptXmin, attemptXmin2)

		// A different outcome for the same attempt is a conflict.
		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(report{step: "a", worker: "w1", attempt: 1, exitCode: 3}))
		require.ErrorIs(t, err, stroem.ErrConflict)
	})

	t.Run("StepFenceForLogPushes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		cancel, err := b.store.StepFence(ctx, b.job.Job.ID, "a", 1, "w1")
		require.NoError(t, err)
		require.False(t, cancel)

		_, err = b.store.StepFence(ctx, b.job.Job.ID, "a", 1, "w2")
		require.ErrorIs(t, err, stroem.ErrConflict)
		require.ErrorContains(t, err, "not the running attempt")
		_, err = b.store.StepFence(ctx, b.job.Job.ID, "a", 2, "w1")
		require.ErrorIs(t, err, stroem.ErrConflict)
		_, err = b.store.StepFence(ctx, b.job.Job.ID, "b", 0, "w1")
		require.ErrorIs(t, err, stroem.ErrConflict, "a pending step has no running attempt")
		_, err = b.store.StepFence(ctx, b.job.Job.ID, "zzz", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		_, err = b.store.StepFence(ctx, uuid.NewString(), "a", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		_, err = b.store.StepFence(ctx, "bad", "a", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrNotFound)

		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			st.CancelRequested = true
			st.Step("a").CancelRequested = true
			st.Step("b").Status = stroem.StepCancelled
			return nil
		})
		require.NoError(t, err)
		cancel, err = b.store.StepFence(ctx, b.job.Job.ID, "a", 1, "w1")
		require.NoError(t, err)
		require.True(t, cancel)

		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(report{step: "a", worker: "w1", attempt: 1}))
		require.NoError(t, err)
		_, err = b.store.StepFence(ctx, b.job.Job.ID, "a", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrConflict, "the attempt is over")
	})
}

func TestTransition(t *testing.T) {
	t.Parallel()

	t.Run("FailureSkipsExactlyTheTransitiveDependents", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		ctx := context.Background()
		// a → b → c → f, a → d, e alone, g after (d, c).
		nj := insertJob(t, s,
			step{name: "a"},
			step{name: "b", deps: []string{"a"}},
			step{name: "c", deps: []string{"b"}},
			step{name: "d", deps: []string{"a"}},
			step{name: "e"},
			step{name: "f", deps: []string{"c"}},
			step{name: "g", deps: []string{"d", "c"}},
		)
		id := nj.Job.ID
		claims := map[string]persistence.ClaimedStep{}
		claimAll := func() {
			got, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w1", Capabilities: []string{"shell"}, Limit: 10, Lease: testLease})
			require.NoError(t, err)
			for _, c := range got {
				claims[c.StepName] = c
			}
		}
		claimAll() // a, e
		require.Len(t, claims, 2)
		_, err := s.JobUpdate(ctx, id, completeFn(report{step: "a", worker: "w1", attempt: 1}))
		require.NoError(t, err)
		claimAll() // b, d
		require.Contains(t, claims, "b")
		require.Contains(t, claims, "d")

		before := map[string]string{}
		for _, n := range []string{"c", "f", "g"} {
			before[n] = stepXmin(t, s, id, n)
		}
		st, err := s.JobUpdate(ctx, id, completeFn(report{step: "b", worker: "w1", attempt: 1, exitCode: 1, err: "exit 1"}))
		require.NoError(t, err)
		require.Equal(t, map[string]stroem.StepStatus{
			"a": stroem.StepCompleted, "b": stroem.StepFailed, "c": stroem.StepSkipped, "d": stroem.StepRunning,
			"e": stroem.StepRunning, "f": stroem.StepSkipped, "g": stroem.StepSkipped,
		}, stepStatuses(t, s, id))
		require.Equal(t, stroem.JobRunning, st.Job.Status, "independent branches still run")
		// The whole chain was skipped by one transaction: the same xid wrote them.
		var xids int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(DISTINCT xmin::text) FROM job_steps
			WHERE job_id = $1 AND step_name IN ('b', 'c', 'f', 'g')`, id).Scan(&xids))
		require.Equal(t, 1, xids)
		for n, x := range before {
			require.NotEqual(t, x, stepXmin(t, s, id, n), n)
		}
		for _, n := range []string{"c", "f", "g"} {
			require.NotNil(t, st.Step(n).CompletedAt, n)
			require.Equal(t, 0, st.Step(n).Attempt, "%s never ran", n)
		}

		_, err = s.JobUpdate(ctx, id, completeFn(report{step: "d", worker: "w1", attempt: 1}))
		require.NoError(t, err)
		j, err := s.JobGet(ctx, id)
		require.NoError(t, err)
		require.Equal(t, stroem.JobRunning, j.Status, "e is still running")
		require.Nil(t, j.CompletedAt)

		st, err = s.JobUpdate(ctx, id, completeFn(report{step: "e", worker: "w1", attempt: 1}))
		require.NoError(t, err)
		require.Equal(t, stroem.JobFailed, st.Job.Status, "every step terminal, one failed")
		require.NotNil(t, st.Job.CompletedAt)
		unfinished, err := s.JobsUnfinished(ctx)
		require.NoError(t, err)
		require.NotContains(t, unfinished, id)
	})

	t.Run("ContinueOnFailureRunsDependents", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		ctx := context.Background()
		nj := insertJob(t, s, step{name: "a", contOnFail: true}, step{name: "b", deps: []string{"a"}})
		claimOne(t, s, "w1")
		st, err := s.JobUpdate(ctx, nj.Job.ID, completeFn(report{step: "a", worker: "w1", attempt: 1, exitCode: 1}))
		require.NoError(t, err)
		require.Equal(t, stroem.StepReady, st.Step("b").Status)
		claimOne(t, s, "w1")
		st, err = s.JobUpdate(ctx, nj.Job.ID, completeFn(report{step: "b", worker: "w1", attempt: 1}))
		require.NoError(t, err)
		require.Equal(t, stroem.JobCompleted, st.Job.Status)
	})
}

func TestStepUnclaim(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	nj := insertJob(t, s, step{name: "a"})
	id := nj.Job.ID

	// Attempt 1 fails and is retried; attempt 2's claim is then undone.
	claimOne(t, s, "w1")
	_, err := s.JobUpdate(ctx, id, func(st *persistence.JobState) error {
		a := st.Step("a")
		code := 7
		a.AttemptStatus, a.ExitCode, a.ErrorMessage, a.Status = stroem.AttemptFailed, &code, "exit 7", stroem.StepReady
		return nil
	})
	require.NoError(t, err)
	before, err := s.JobState(ctx, id)
	require.NoError(t, err)
	c := claimOne(t, s, "w2")
	require.Equal(t, 2, c.Attempt)

	payloads := listen(t, s)
	require.Equal(t, "", waitPayload(t, payloads))

	require.NoError(t, s.StepUnclaim(ctx, id, "a", 2, "w1"), "another worker: no-op")
	require.NoError(t, s.StepUnclaim(ctx, id, "a", 1, "w2"), "another attempt: no-op")
	require.NoError(t, s.StepUnclaim(ctx, "bad", "a", 1, "w2"))
	st, err := s.JobState(ctx, id)
	require.NoError(t, err)
	require.Equal(t, stroem.StepRunning, st.Step("a").Status)

	require.NoError(t, s.StepUnclaim(ctx, id, "a", 2, "w2"))
	require.Equal(t, s.Origin()+":"+id, waitPayload(t, payloads), "ready again: wake the claimers")
	st, err = s.JobState(ctx, id)
	require.NoError(t, err)
	a, old := st.Step("a"), before.Step("a")
	require.Equal(t, stroem.StepReady, a.Status)
	require.Equal(t, 1, a.Attempt)
	require.Equal(t, "w1", a.WorkerID)
	require.Equal(t, stroem.AttemptFailed, a.AttemptStatus)
	require.Equal(t, 7, *a.ExitCode)
	require.Equal(t, "exit 7", a.ErrorMessage)
	require.Equal(t, old.ReadyAt, a.ReadyAt, "first in line again")
	require.Nil(t, a.LeaseExpiresAt)
	require.Equal(t, stroem.JobRunning, st.Job.Status)
	j, err := s.JobGet(ctx, id)
	require.NoError(t, err)
	require.Len(t, j.Steps[0].Attempts, 1)

	require.NoError(t, s.StepUnclaim(ctx, id, "a", 2, "w2"), "twice: no-op")
	c = claimOne(t, s, "w3")
	require.Equal(t, 2, c.Attempt, "the attempt number is reused")
}

func TestLeases(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		store  *postgres.Store
		worker stroem.Worker
		job    persistence.NewJob
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		s := dbtest.Store(t)
		w, err := s.WorkerRegister(context.Background(), stroem.WorkerRegistration{Name: "w", Capabilities: []string{"shell"}})
		require.NoError(t, err)
		return &testBundle{store: s, worker: w, job: insertJob(t, s, step{name: "a"}, step{name: "b"}, step{name: "c"})}
	}
	expire := func(t *testing.T, s *postgres.Store, jobID, step string) {
		t.Helper()
		_, err := s.Pool().Exec(context.Background(), `UPDATE job_steps SET lease_expires_at = now() - interval '1 second'
			WHERE job_id = $1 AND step_name = $2`, jobID, step)
		require.NoError(t, err)
	}

	t.Run("RenewHeldCancelTheRest", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		id := b.job.Job.ID
		a := claimOne(t, b.store, b.worker.ID)
		bb := claimOne(t, b.store, b.worker.ID)
		other := claimOne(t, b.store, "someone-else")
		ref := func(c persistence.ClaimedStep) stroem.StepRef {
			return stroem.StepRef{JobID: c.JobID, Step: c.StepName, Attempt: c.Attempt}
		}
		// a: held; b: cancel requested; other: another worker's; plus an old
		// attempt, an unknown job and a malformed id.
		_, err := b.store.JobUpdate(ctx, id, func(st *persistence.JobState) error {
			st.Step(bb.StepName).CancelRequested = true
			return nil
		})
		require.NoError(t, err)
		stale := stroem.StepRef{JobID: id, Step: a.StepName, Attempt: 0}
		gone := stroem.StepRef{JobID: uuid.NewString(), Step: "a", Attempt: 1}
		bad := stroem.StepRef{JobID: "bad", Step: "a", Attempt: 1}
		before, err := b.store.StepLease(ctx, id, a.StepName)
		require.NoError(t, err)
		time.Sleep(10 * time.Millisecond)

		cancel, err := b.store.LeasesRenew(ctx, b.worker.ID, []stroem.StepRef{ref(a), ref(bb), ref(other), stale, gone, bad}, time.Hour)
		require.NoError(t, err)
		require.ElementsMatch(t, []stroem.StepRef{bad, ref(bb), ref(other), stale, gone}, cancel)

		after, err := b.store.StepLease(ctx, id, a.StepName)
		require.NoError(t, err)
		require.Equal(t, 1, after.Attempt)
		require.Equal(t, stroem.StepRunning, after.Status)
		require.True(t, after.LeaseExpiresAt.After(*before.LeaseExpiresAt))
		require.WithinDuration(t, after.Now.Add(time.Hour), *after.LeaseExpiresAt, 5*time.Second)
		otherLease, err := b.store.StepLease(ctx, id, other.StepName)
		require.NoError(t, err)
		require.Equal(t, other.LeaseExpiresAt, *otherLease.LeaseExpiresAt, "another worker's lease is untouched")

		workers, err := b.store.WorkerList(ctx)
		require.NoError(t, err)
		require.Len(t, workers, 1)
		require.True(t, workers[0].LastHeartbeatAt.After(workers[0].RegisteredAt), "the heartbeat is recorded")

		// Upper-case ids are the same UUIDs.
		upper := ref(a)
		upper.JobID = strings.ToUpper(upper.JobID)
		cancel, err = b.store.LeasesRenew(ctx, strings.ToUpper(b.worker.ID), []stroem.StepRef{upper}, time.Hour)
		require.NoError(t, err)
		require.Empty(t, cancel)
	})

	t.Run("ExpiredLeaseIsVisibleAndExtendedAtStart", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		c := claimOne(t, b.store, b.worker.ID)
		expire(t, b.store, c.JobID, c.StepName)
		ref := stroem.StepRef{JobID: c.JobID, Step: c.StepName, Attempt: 1}

		expired, err := b.store.LeasesExpired(ctx, 10)
		require.NoError(t, err)
		require.Equal(t, []stroem.StepRef{ref}, expired)
		l, err := b.store.StepLease(ctx, c.JobID, c.StepName)
		require.NoError(t, err)
		require.True(t, l.LeaseExpiresAt.Before(l.Now))

		// A restarting server extends every running lease.
		n, err := b.store.LeasesExtendAll(ctx, time.Minute)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		expired, err = b.store.LeasesExpired(ctx, 10)
		require.NoError(t, err)
		require.Empty(t, expired)
		l, err = b.store.StepLease(ctx, c.JobID, c.StepName)
		require.NoError(t, err)
		require.WithinDuration(t, l.Now.Add(time.Minute), *l.LeaseExpiresAt, 5*time.Second)
		// It never shortens a lease.
		_, err = b.store.LeasesExtendAll(ctx, time.Second)
		require.NoError(t, err)
		l2, err := b.store.StepLease(ctx, c.JobID, c.StepName)
		require.NoError(t, err)
		require.Equal(t, l.LeaseExpiresAt, l2.LeaseExpiresAt)
	})

	t.Run("UnknownWorkerMustRegisterAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, w := range []string{uuid.NewString(), "not-a-uuid"} {
			_, err := b.store.LeasesRenew(context.Background(), w, nil, time.Minute)
			require.ErrorIs(t, err, stroem.ErrNotFound, w)
		}
		cancel, err := b.store.LeasesRenew(context.Background(), b.worker.ID, nil, time.Minute)
		require.NoError(t, err)
		require.Empty(t, cancel)
	})

	t.Run("StepLeaseOfUnknownStep", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.store.StepLease(context.Background(), b.job.Job.ID, "nope")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		_, err = b.store.StepLease(context.Background(), "bad", "a")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		l, err := b.store.StepLease(context.Background(), b.job.Job.ID, "a")
		require.NoError(t, err)
		require.Equal(t, stroem.StepReady, l.Status)
		require.Nil(t, l.LeaseExpiresAt)
	})
}
