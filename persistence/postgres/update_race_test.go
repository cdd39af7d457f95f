package postgres_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
	"github.com/stroem/stroem/persistence/storetest"
)

// A transition holds only the job row: a claim of one of the job's ready
// steps goes through while it runs, and the transition, finding the step
// moved when it writes, runs again on fresh state instead of overwriting
// the claim.
func TestJobUpdateRacingAClaimRunsAgain(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	nj := storetest.InsertJob(t, s, storetest.Step{Name: "a"}, storetest.Step{Name: "b"})

	var calls atomic.Int32
	inFn := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := s.JobUpdate(ctx, nj.Job.ID, func(st *persistence.JobState) error {
			if calls.Add(1) == 1 {
				close(inFn)
				<-release
			}
			// Cancel-like: a ready step is cancelled, a running one flagged.
			switch b := st.Mut("b"); b.Status {
			case stroem.StepReady:
				b.Status = stroem.StepCancelled
			case stroem.StepRunning:
				b.CancelRequested = true
			}
			return nil
		})
		done <- err
	}()
	<-inFn

	// The claim is not blocked by the transition in flight and does not skip
	// the job's steps.
	claimCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got, err := openPool(t, s).StepsClaim(claimCtx, persistence.ClaimParams{WorkerID: "w1", Capabilities: []string{"shell"}, Limit: 2, Lease: storetest.Lease})
	require.NoError(t, err)
	require.Len(t, got, 2, "both ready steps are claimable while a transition of their job runs")

	close(release)
	require.NoError(t, <-done)
	require.Equal(t, int32(2), calls.Load(), "the transition ran again after the claim moved step b")
	st, err := s.JobState(ctx, nj.Job.ID)
	require.NoError(t, err)
	b := st.Find("b")
	require.Equal(t, stroem.StepRunning, b.Status, "the claim was not overwritten")
	require.Equal(t, "w1", b.WorkerID)
	require.True(t, b.CancelRequested, "the transition applied to the fresh state")
}

// A transition writes all the steps it changed in one statement: when a
// claim moved one of them (here the second of four) between the read and
// the write, the whole transition runs again on fresh state — none of the
// other steps keeps what the first run wrote, and the moved one is not
// overwritten.
func TestJobUpdateWritingManyStepsRunsAgainWhenOneMoved(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	nj := storetest.InsertJob(t, s, storetest.Step{Name: "a"}, storetest.Step{Name: "b"},
		storetest.Step{Name: "c"}, storetest.Step{Name: "d"})
	require.Equal(t, "a", storetest.ClaimOne(t, s, "w1").StepName)
	other := openPool(t, s)

	var calls atomic.Int32
	returned, err := s.JobUpdate(ctx, nj.Job.ID, func(st *persistence.JobState) error {
		if calls.Add(1) == 1 {
			require.Equal(t, "b", storetest.ClaimOne(t, other, "w2").StepName)
		}
		for _, name := range []string{"a", "b", "c", "d"} {
			switch step := st.Mut(name); step.Status {
			case stroem.StepReady:
				step.Status = stroem.StepCancelled
			case stroem.StepRunning:
				step.CancelRequested = true
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, int32(2), calls.Load(), "the transition ran again after the claim moved step b")
	st, err := s.JobState(ctx, nj.Job.ID)
	require.NoError(t, err)
	for _, got := range []*persistence.JobState{st, returned} {
		a, b := got.Find("a"), got.Find("b")
		require.Equal(t, stroem.StepRunning, a.Status)
		require.True(t, a.CancelRequested)
		require.Equal(t, stroem.StepRunning, b.Status, "the claim was not overwritten")
		require.Equal(t, "w2", b.WorkerID)
		require.True(t, b.CancelRequested, "the transition applied to the fresh state")
		require.Equal(t, stroem.StepCancelled, got.Find("c").Status)
		require.Equal(t, stroem.StepCancelled, got.Find("d").Status)
	}
}

// JobUpdate keeps a job's steps between updates and re-reads only the rows
// whose xmin moved: whatever changed a row meanwhile (a claim, a heartbeat,
// a plain UPDATE) is seen by the next update.
func TestJobUpdateSeesRowsChangedSinceTheLastUpdate(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	nj := storetest.InsertJob(t, s, storetest.Step{Name: "a"}, storetest.Step{Name: "b"}, storetest.Step{Name: "c", Deps: []string{"a"}})
	seen := func() *persistence.JobState { return updateSees(t, s, nj.Job.ID) }
	first := seen()
	require.Equal(t, stroem.StepReady, first.Find("b").Status)

	c := storetest.ClaimOne(t, s, "w1")
	after := seen()
	require.Equal(t, stroem.StepRunning, after.Find(c.StepName).Status, "the claim is seen")
	require.Equal(t, 1, after.Find(c.StepName).Attempt)

	_, err := s.LeasesRenew(ctx, "w1", []stroem.StepRef{{JobID: nj.Job.ID, Step: c.StepName, Attempt: 1}}, time.Hour)
	require.ErrorIs(t, err, stroem.ErrNotFound, "w1 is not a registered worker")
	_, err = s.Pool().Exec(ctx, `UPDATE job_steps SET error_message = 'poked', lease_expires_at = now() + interval '1 hour'
		WHERE job_id = $1 AND step_name = $2`, nj.Job.ID, c.StepName)
	require.NoError(t, err)
	poked := seen()
	require.Equal(t, "poked", poked.Find(c.StepName).ErrorMessage, "a plain UPDATE is seen")
	require.WithinDuration(t, time.Now().Add(time.Hour), *poked.Find(c.StepName).LeaseExpiresAt, time.Minute)

	// Changing the returned state does not change what the next update reads.
	poked.Mut("c").ErrorMessage = "scribbled"
	require.Empty(t, seen().Find("c").ErrorMessage)

	// Steps another server appended (a loop's instances): beyond the steps
	// this store knows, and read all the same.
	other := openPool(t, s)
	_, err = other.JobUpdate(ctx, nj.Job.ID, func(st *persistence.JobState) error {
		for _, name := range []string{"c[0]", "c[1]"} {
			st.Append(&persistence.StepState{Name: name, Position: st.Len(), ActionName: "noop", ActionType: "shell",
				MaxAttempts: 1, Status: stroem.StepPending})
		}
		return nil
	})
	require.NoError(t, err)
	grown := seen()
	require.Equal(t, 5, grown.Len(), "the appended steps are seen")
	require.Equal(t, stroem.StepPending, grown.Find("c[1]").Status)
}

// A transition reads the step rows written since the horizon of its last
// read, not since its last read: a write by a transaction that began
// before that read, and committed after it, is seen by the next one (its
// id is below every id assigned since the last read, but not below the
// horizon). So is an acknowledgement, which sets nothing but
// started_attempt.
func TestJobUpdateSeesAWriteCommittedAfterItsLastRead(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	nj := storetest.InsertJob(t, s, storetest.Step{Name: "a"}, storetest.Step{Name: "b"}, storetest.Step{Name: "c"})
	was := updateSees(t, s, nj.Job.ID).Find("b").Input

	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `UPDATE job_steps SET input = '{"late": true}' WHERE job_id = $1 AND step_name = 'b'`, nj.Job.ID)
	require.NoError(t, err)
	// Transactions that begin and end meanwhile take newer ids.
	for range 3 {
		_, err := s.Pool().Exec(ctx, `UPDATE job_steps SET error_message = 'x' WHERE job_id = $1 AND step_name = 'c'`, nj.Job.ID)
		require.NoError(t, err)
	}
	between := updateSees(t, s, nj.Job.ID)
	require.Equal(t, was, between.Find("b").Input, "not committed yet")
	require.Equal(t, "x", between.Find("c").ErrorMessage)
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, map[string]any{"late": true}, updateSees(t, s, nj.Job.ID).Find("b").Input,
		"the write committed after the last read is seen")

	c := storetest.ClaimOne(t, s, "w1")
	require.Equal(t, 0, updateSees(t, s, nj.Job.ID).Find(c.StepName).StartedAttempt)
	_, err = s.StepStart(ctx, c.JobID, c.StepName, c.Attempt, "w1")
	require.NoError(t, err)
	require.Equal(t, c.Attempt, updateSees(t, s, nj.Job.ID).Find(c.StepName).StartedAttempt, "the acknowledgement is seen")
}

// A transition that read a running step must not overwrite it when, before
// its write, the claim was given back and the step claimed again by another
// worker (same status, same attempt number, different holder): the write
// finds the step moved and the transition runs again on fresh state.
func TestJobUpdateRacingUnclaimAndReclaimRunsAgain(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	nj, c := storetest.ClaimedJob(t, s, "w1")
	other := openPool(t, s)

	var calls atomic.Int32
	_, err := s.JobUpdate(ctx, nj.Job.ID, func(st *persistence.JobState) error {
		if calls.Add(1) == 1 {
			// Meanwhile: w1 never got the step; it is given back and w2 claims it.
			require.NoError(t, other.StepUnclaim(ctx, nj.Job.ID, "a", c.Attempt, "w1"))
			got := storetest.ClaimOne(t, other, "w2")
			require.Equal(t, c.Attempt, got.Attempt)
		}
		st.Mut("a").CancelRequested = true
		return nil
	})
	require.NoError(t, err)
	st, err := s.JobState(ctx, nj.Job.ID)
	require.NoError(t, err)
	a := st.Find("a")
	require.Equal(t, stroem.StepRunning, a.Status)
	require.Equal(t, "w2", a.WorkerID, "the transition overwrote w2's claim with what it had read (w1)")
	require.True(t, a.CancelRequested)
	require.Equal(t, int32(2), calls.Load())
}

// A job whose step was claimed while a transition held the job row (the
// claim could not mark it running) and that then ends in one update still
// gets a start time: it ran.
func TestJobEndingStraightFromPendingHasAStartTime(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	nj := storetest.InsertJob(t, s, storetest.Step{Name: "a"})

	// The job row as a transition holds it (readState).
	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT 1 FROM jobs WHERE id = $1 FOR NO KEY UPDATE`, nj.Job.ID)
	require.NoError(t, err)
	c := storetest.ClaimOne(t, s, "w1")
	require.NoError(t, tx.Rollback(ctx))
	j, err := s.JobGet(ctx, nj.Job.ID)
	require.NoError(t, err)
	require.Equal(t, stroem.JobPending, j.Status, "the claim skipped the locked job row")

	_, err = s.JobUpdate(ctx, nj.Job.ID, func(st *persistence.JobState) error {
		a := st.Mut(c.StepName)
		zero := 0
		a.Status, a.AttemptStatus, a.ExitCode = stroem.StepCompleted, stroem.AttemptCompleted, &zero
		a.LeaseExpiresAt = nil
		st.Job.Status = stroem.JobCompleted
		return nil
	})
	require.NoError(t, err)
	j, err = s.JobGet(ctx, nj.Job.ID)
	require.NoError(t, err)
	require.Equal(t, stroem.JobCompleted, j.Status)
	require.NotNil(t, j.StartedAt, "a job that ran has a start time")
	require.Equal(t, *j.Steps[0].StartedAt, *j.StartedAt, "the start of its first step")
}

// openPool opens a second Store (its own connection pool) on s's database.
// A transition that writes a running step without changing its lease
// keeps a lease a heartbeat renewed between its read and its write — and
// so must what it returns and what it caches: a stale lease there would
// make a later update (a lease-expiry check) see the attempt's lease run
// out while the database holds it renewed.
func TestJobUpdateKeepsTheLeaseRenewedMeanwhile(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	nj, _ := storetest.ClaimedJob(t, s, "w1")
	other := openPool(t, s)
	updateSees(t, s, nj.Job.ID) // the job's steps are cached

	var calls atomic.Int32
	returned, err := s.JobUpdate(ctx, nj.Job.ID, func(st *persistence.JobState) error {
		if calls.Add(1) == 1 {
			// Meanwhile a heartbeat renews the lease (step rows are read
			// unlocked, so it is not blocked).
			_, err := other.Pool().Exec(ctx, `UPDATE job_steps SET lease_expires_at = now() + interval '1 hour'
				WHERE job_id = $1 AND step_name = 'a'`, nj.Job.ID)
			require.NoError(t, err)
		}
		st.Mut("a").CancelRequested = true // a cancel: the lease is not touched
		return nil
	})
	require.NoError(t, err)
	renewed := func(st *persistence.JobState, what string) {
		t.Helper()
		a := st.Find("a")
		require.NotNil(t, a.LeaseExpiresAt, what)
		require.WithinDuration(t, time.Now().Add(time.Hour), *a.LeaseExpiresAt, time.Minute, what)
	}
	db, err := s.JobState(ctx, nj.Job.ID)
	require.NoError(t, err)
	renewed(db, "the database keeps the renewed lease")
	renewed(returned, "the returned state has the lease the database holds")
	renewed(updateSees(t, s, nj.Job.ID), "the next update reads the lease the database holds")
}

// updateSees runs a JobUpdate that changes nothing and returns the state
// its callback was given: what an update reads (through the step cache).
func updateSees(t *testing.T, s *postgres.Store, jobID string) *persistence.JobState {
	t.Helper()
	var got *persistence.JobState
	_, err := s.JobUpdate(context.Background(), jobID, func(st *persistence.JobState) error {
		got = st
		return nil
	})
	require.NoError(t, err)
	return got
}

func openPool(t *testing.T, s *postgres.Store) *postgres.Store {
	t.Helper()
	other, err := postgres.Open(context.Background(), s.Pool().Config().ConnString(), nil)
	require.NoError(t, err)
	t.Cleanup(other.Close)
	return other
}

// A start acknowledged while a transition of its job runs (it read the step
// unacknowledged) survives the transition's write of that step: the write
// records a start only when it brings one (StepState.StartedAttempt).
func TestJobUpdateKeepsAnAcknowledgementThatCameInMeanwhile(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	id := storetest.InsertJob(t, s, storetest.Step{Name: "a"}).Job.ID
	c := storetest.ClaimOne(t, s, "w1")
	require.Equal(t, id, c.JobID)
	st, err := s.JobUpdate(ctx, id, func(st *persistence.JobState) error {
		if st.Find("a").StartedAttempt == 0 {
			if _, err := s.StepStart(ctx, id, "a", 1, "w1"); err != nil {
				return err
			}
		}
		st.Mut("a").ErrorMessage = "touched"
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 1, st.Find("a").StartedAttempt, "the state returned has the stored value")
	got, err := s.JobState(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "touched", got.Find("a").ErrorMessage)
	require.Equal(t, 1, got.Find("a").StartedAttempt, "the acknowledgement was not undone")
	given, err := s.StepsGiveBackUnstarted(ctx, 0, 0)
	require.NoError(t, err)
	require.Empty(t, given)
}

// offerB completes a (held by w1 at attempt 1) and offers the ready step b
// to w1's claim (storetest.OfferNext); calls counts its runs, and before
// runs on the first.
func offerB(calls *atomic.Int32, before func()) func(*persistence.JobState) error {
	offer := storetest.OfferNext("a", "b", "w1", "shell")
	return func(st *persistence.JobState) error {
		if calls.Add(1) == 1 && before != nil {
			before()
		}
		return offer(st)
	}
}

// offerJob inserts a job of two ready steps, a and b, and claims a for w1.
func offerJob(t *testing.T, s *postgres.Store) string {
	t.Helper()
	nj := storetest.InsertJob(t, s, storetest.Step{Name: "a"}, storetest.Step{Name: "b"})
	require.Equal(t, "a", storetest.ClaimOne(t, s, "w1").StepName)
	return nj.Job.ID
}

// An offered step a claim took between the transition's read and its
// write is not taken, and, unlike any other step that moved, is no
// conflict: the transition runs once and writes the rest.
func TestJobUpdateOfferClaimedMeanwhileIsNotTaken(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	id := offerJob(t, s)
	other := openPool(t, s)

	var calls atomic.Int32
	returned, err := s.JobUpdate(ctx, id, offerB(&calls, func() {
		require.Equal(t, "b", storetest.ClaimOne(t, other, "w2").StepName)
	}))
	require.NoError(t, err)
	require.Equal(t, int32(1), calls.Load(), "no conflict: the transition ran once")
	require.Equal(t, stroem.StepCompleted, returned.Find("a").Status)
	require.Equal(t, stroem.StepReady, returned.Find("b").Status, "b as read")
	st, err := s.JobState(ctx, id)
	require.NoError(t, err)
	require.Equal(t, stroem.StepCompleted, st.Find("a").Status)
	b := st.Find("b")
	require.Equal(t, [3]any{stroem.StepRunning, "w2", 1}, [3]any{b.Status, b.WorkerID, b.Attempt}, "the claim's, not overwritten")
	require.NotEqual(t, 1, b.StartedAttempt, "not recorded as started by the offer")
}

// An offered step a claim holds locked at the write (the claim has not
// committed) is skipped at once, not waited for: the transition commits
// without it while the claim still runs.
func TestJobUpdateOfferLockedByAClaimIsSkipped(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	id := offerJob(t, s)
	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `SELECT 1 FROM job_steps WHERE job_id = $1 AND step_name = 'b' FOR UPDATE`, id)
	require.NoError(t, err)

	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var calls atomic.Int32
	returned, err := s.JobUpdate(c, id, offerB(&calls, nil))
	require.NoError(t, err, "not waiting for the lock")
	require.Equal(t, int32(1), calls.Load())
	require.Equal(t, stroem.StepReady, returned.Find("b").Status)
	require.NoError(t, tx.Rollback(ctx))
	st, err := s.JobState(ctx, id)
	require.NoError(t, err)
	require.Equal(t, [2]any{stroem.StepCompleted, stroem.StepReady}, [2]any{st.Find("a").Status, st.Find("b").Status})
	require.Equal(t, "b", storetest.ClaimOne(t, s, "w2").StepName, "b is still the Dispatcher's")
}

// A transition's read never changes the steps the store keeps from the
// last transition (they are shared, not copied, until a step read anew
// must go in): the steps kept before are as they were after a read that
// found a step changed by another writer.
func TestJobUpdateLeavesTheKeptStepsAsTheyWere(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	nj := storetest.InsertJob(t, s, storetest.Step{Name: "a"}, storetest.Step{Name: "b"}, storetest.Step{Name: "c"})
	noop := func(*persistence.JobState) error { return nil }
	_, err := s.JobUpdate(ctx, nj.Job.ID, noop)
	require.NoError(t, err)
	kept := postgres.CachedSteps(s, nj.Job.ID)
	require.Len(t, kept, 3)
	was := slices.Clone(kept)
	wasB := *was[1]

	_, err = s.Pool().Exec(ctx, `UPDATE job_steps SET input = '{"x": 1}' WHERE job_id = $1 AND step_name = 'b'`, nj.Job.ID)
	require.NoError(t, err)
	st, err := s.JobUpdate(ctx, nj.Job.ID, noop)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"x": float64(1)}, st.Find("b").Input, "the read found b changed")
	require.Equal(t, was, kept, "the steps kept before still hold the steps they held")
	require.Equal(t, wasB, *kept[1], "and those steps are unchanged")
	require.Equal(t, map[string]any{"x": float64(1)}, postgres.CachedSteps(s, nj.Job.ID)[1].Input, "the store keeps the new read")
}
