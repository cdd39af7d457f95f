package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

func testJobUpdate(t *testing.T, open func(t *testing.T) persistence.Store) {
	type testBundle struct {
		store persistence.Store
		job   persistence.NewJob
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		s := open(t)
		return &testBundle{store: s, job: InsertJob(t, s, Step{Name: "a"}, Step{Name: "b", Deps: []string{"a"}})}
	}

	testCopyOnWrite(t, open)

	t.Run("CallbackErrorRollsBackAndIsReturnedUnchanged", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		before := jobState(t, b.store, b.job.Job.ID)
		sentinel := errors.New("no thanks")
		_, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			st.Mut("a").Status = stroem.StepCancelled
			st.Mut("b").Input = map[string]any{"x": 1}
			st.Job.Status = stroem.JobCancelled
			return sentinel
		})
		require.Same(t, sentinel, err, "the callback's error, not wrapped")
		coded := stroem.Errorf(stroem.CodeConflict, "stale")
		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, func(*persistence.JobState) error { return coded })
		require.Same(t, coded, err)
		sameStored(t, before, jobState(t, b.store, b.job.Job.ID), "nothing written")
	})

	t.Run("SeesEveryWriteSinceItsLastUpdate", func(t *testing.T) {
		// A store may keep a job's steps between updates and read only the
		// rows written since: whatever wrote them, the next update must see
		// the steps as a full read does.
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		w := registerWorker(t, s, "w1").ID
		nj := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b"}, Step{Name: "c"}, Step{Name: "d"},
			Step{Name: "e"}, Step{Name: "f", Deps: []string{"a"}})
		id := nj.Job.ID
		seen := func(what string) *persistence.JobState {
			t.Helper()
			st := update(t, s, id, func(*persistence.JobState) {})
			sameStored(t, jobState(t, s, id), st, "after %s, the update sees what a full read does", what)
			return st
		}
		seen("the job's insert")
		seen("an update that changed nothing")

		a := ClaimOne(t, s, w)
		require.Equal(t, stroem.StepRunning, seen("a claim").Find(a.StepName).Status)
		_, err := s.StepStart(ctx, id, a.StepName, a.Attempt, w)
		require.NoError(t, err)
		require.Equal(t, a.Attempt, seen("an acknowledgement").Find(a.StepName).StartedAttempt)
		lease := *seen("nothing").Find(a.StepName).LeaseExpiresAt
		time.Sleep(2 * time.Millisecond) // a renewal moves the lease on
		_, err = s.LeasesRenew(ctx, w, []stroem.StepRef{{JobID: id, Step: a.StepName, Attempt: a.Attempt}}, time.Hour)
		require.NoError(t, err)
		require.True(t, seen("a lease renewal").Find(a.StepName).LeaseExpiresAt.After(lease))
		_, err = s.LeasesExtendAll(ctx, 2*time.Hour)
		require.NoError(t, err)
		seen("every lease extended")

		b := ClaimOne(t, s, w)
		require.NoError(t, s.StepUnclaim(ctx, id, b.StepName, b.Attempt, w))
		require.Equal(t, stroem.StepReady, seen("an unclaim").Find(b.StepName).Status)

		c := claimExpired(t, s, w)
		require.NotEmpty(t, giveBack(t, s))
		require.Equal(t, stroem.StepReady, seen("a give-back").Find(c.StepName).Status)

		link := persistence.HandedLink(id, a.StepName, a.Attempt)
		handed, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: w, Capabilities: []string{"shell"}, Limit: 1,
			Lease: time.Minute, Handed: []string{link}})
		require.NoError(t, err)
		require.Len(t, handed, 1)
		require.Equal(t, handed[0].Attempt, seen("a handed claim").Find(handed[0].StepName).StartedAttempt)
		found, err := s.StepsHandedFor(ctx, w, link)
		require.NoError(t, err)
		require.Len(t, found, 1)
		seen("a repeat's lookup")

		report(t, s, id, Report{Step: a.StepName, Worker: w, Attempt: a.Attempt})
		require.Equal(t, stroem.StepReady, seen("a completion").Find("f").Status)
		update(t, s, id, func(st *persistence.JobState) {
			st.Append(&persistence.StepState{Name: "f[0]", Position: st.Len(), ActionName: "act-f", ActionType: "shell",
				MaxAttempts: 1, Status: stroem.StepReady, Input: map[string]any{"item": 0}})
		})
		require.Equal(t, 7, seen("an appended step").Len())
		for range 3 { // the rest: f, f[0] and whatever the give-backs left ready
			ClaimOne(t, s, w)
		}
		seen("more claims")
	})

	t.Run("NoChangeChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		before := jobState(t, b.store, b.job.Job.ID)
		st := update(t, b.store, b.job.Job.ID, func(st *persistence.JobState) {
			st.Mut("b").Input = map[string]any{} // changed, then put back
			st.Mut("b").Input = nil
		})
		require.False(t, st.Now.IsZero(), "Now is the store's clock")
		require.False(t, st.Now.Before(before.Now), "and does not go back")
		sameStored(t, before, st)
		sameStored(t, before, jobState(t, b.store, b.job.Job.ID))
	})

	t.Run("WritesWhatChangedAndReturnsIt", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		st := update(t, b.store, b.job.Job.ID, func(st *persistence.JobState) {
			st.Mut("b").Input = map[string]any{"k": "v", "n": 2.5, "list": []any{"x", true}}
			st.CancelRequested = true
			st.Mut("a").CancelRequested = true
		})
		after := jobState(t, b.store, b.job.Job.ID)
		sameStored(t, st, after, "the returned state is the state as stored")
		require.Equal(t, map[string]any{"k": "v", "n": 2.5, "list": []any{"x", true}}, after.Find("b").Input)
		require.True(t, after.CancelRequested)
		require.True(t, after.Find("a").CancelRequested)
		require.False(t, after.Find("b").CancelRequested)
	})

	t.Run("InvalidTransitionIsRefusedAndRolledBack", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		before := jobState(t, b.store, b.job.Job.ID)
		_, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			st.Mut("b").Input = map[string]any{"x": 1} // would be written if the update went through
			st.Mut("a").Status = stroem.StepCompleted  // ready → completed skips running
			return nil
		})
		require.ErrorContains(t, err, "invalid transition ready → completed")
		sameStored(t, before, jobState(t, b.store, b.job.Job.ID), "rolled back")

		for name, fn := range map[string]func(st *persistence.JobState){
			"a running step needs a worker and a lease": func(st *persistence.JobState) {
				st.Mut("a").Status = stroem.StepRunning
			},
			"an attempt status needs an attempt": func(st *persistence.JobState) {
				st.Mut("a").AttemptStatus = stroem.AttemptFailed
			},
			"an added step needs the next position": func(st *persistence.JobState) {
				st.Append(&persistence.StepState{Name: "c", Position: 5, Status: stroem.StepPending})
			},
			"step pending → completed": func(st *persistence.JobState) {
				st.Mut("b").Status = stroem.StepCompleted
			},
		} {
			_, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
				st.Mut("b").Input = map[string]any{"x": 1}
				fn(st)
				return nil
			})
			require.Error(t, err, name)
			require.NotErrorIs(t, err, stroem.ErrNotFound, name)
			sameStored(t, before, jobState(t, b.store, b.job.Job.ID), "%s: rolled back", name)
		}

		update(t, b.store, b.job.Job.ID, func(st *persistence.JobState) {
			st.MutAt(0).Status, st.MutAt(1).Status = stroem.StepCancelled, stroem.StepCancelled
			st.Job.Status = stroem.JobCancelled
		})
		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			st.Job.Status = stroem.JobRunning // cancelled → running
			return nil
		})
		require.ErrorContains(t, err, "invalid transition cancelled → running")
		j := jobGet(t, b.store, b.job.Job.ID)
		require.Equal(t, stroem.JobCancelled, j.Status)
		require.NotNil(t, j.CompletedAt)
		require.Nil(t, j.StartedAt, "cancelled before it ever ran")
	})

	t.Run("TimestampsAndAttempts", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		c := ClaimOne(t, b.store, "w1")
		require.Equal(t, "a", c.StepName)
		require.Equal(t, 1, c.Attempt)

		// Attempt 1 fails and is retried: back to ready, completed_at cleared.
		st := update(t, b.store, b.job.Job.ID, func(st *persistence.JobState) {
			a := st.Mut("a")
			code := 2
			a.AttemptStatus, a.ExitCode, a.ErrorMessage = stroem.AttemptFailed, &code, "exit 2"
			a.Status = stroem.StepReady
		})
		a := st.Find("a")
		require.Nil(t, a.CompletedAt)
		require.Nil(t, a.LeaseExpiresAt, "the lease ends with the run")
		require.NotNil(t, a.ReadyAt)
		require.Equal(t, st.Now, *a.ReadyAt, "ready again now")
		sameStored(t, st, jobState(t, b.store, b.job.Job.ID))

		c2 := ClaimOne(t, b.store, "w2")
		require.Equal(t, 2, c2.Attempt)
		st = report(t, b.store, b.job.Job.ID, Report{
			Step: "a", Worker: "w2", Attempt: 2, Output: map[string]any{"greeting": "hi"},
		})
		require.Equal(t, stroem.StepCompleted, st.Find("a").Status)
		require.Equal(t, st.Now, *st.Find("a").CompletedAt)
		require.Nil(t, st.Find("a").LeaseExpiresAt)
		require.Equal(t, stroem.StepReady, st.Find("b").Status)
		require.Equal(t, st.Now, *st.Find("b").ReadyAt)
		require.Equal(t, stroem.JobRunning, st.Job.Status)
		sameStored(t, st, jobState(t, b.store, b.job.Job.ID))

		// Any JSON value is a step's output (a list feeds a for_each);
		// nil is none, stored as NULL.
		for _, out := range []any{[]any{"svc-a", 2.0}, "text", 42.0, true, nil} {
			st = update(t, b.store, b.job.Job.ID, func(st *persistence.JobState) { st.Mut("a").Output = out })
			require.Equal(t, out, st.Find("a").Output)
			sameStored(t, st, jobState(t, b.store, b.job.Job.ID))
			require.Equal(t, out, jobGet(t, b.store, b.job.Job.ID).Steps[0].Output, "%v", out)
		}
		st = update(t, b.store, b.job.Job.ID, func(st *persistence.JobState) { st.Mut("a").Output = map[string]any(nil) })
		require.Nil(t, st.Find("a").Output, "a nil map is no output, as stored")
		sameStored(t, st, jobState(t, b.store, b.job.Job.ID))
		st = update(t, b.store, b.job.Job.ID, func(st *persistence.JobState) { st.Mut("a").Output = map[string]any{"greeting": "hi"} })

		j := jobGet(t, b.store, b.job.Job.ID)
		atts := j.Steps[0].Attempts
		require.Len(t, atts, 2)
		require.Equal(t, 1, atts[0].Attempt)
		require.Equal(t, "w1", atts[0].WorkerID)
		require.Equal(t, stroem.AttemptFailed, atts[0].Status)
		require.Equal(t, 2, *atts[0].ExitCode)
		require.Equal(t, "exit 2", atts[0].ErrorMessage)
		require.NotNil(t, atts[0].CompletedAt)
		require.False(t, atts[0].StartedAt.IsZero())
		require.Equal(t, 2, atts[1].Attempt)
		require.Equal(t, "w2", atts[1].WorkerID)
		require.Equal(t, stroem.AttemptCompleted, atts[1].Status)
		require.Equal(t, 0, *atts[1].ExitCode)
		require.Empty(t, atts[1].ErrorMessage)
		require.Equal(t, *st.Find("a").CompletedAt, *atts[1].CompletedAt)
		require.False(t, atts[1].StartedAt.Before(atts[0].StartedAt))
		require.Equal(t, map[string]any{"greeting": "hi"}, j.Steps[0].Output)
		require.Equal(t, "w2", *j.Steps[0].WorkerID)
		require.Equal(t, 2, j.Steps[0].Attempt)
		require.Equal(t, stroem.JobRunning, j.Status)
		require.NotNil(t, j.StartedAt)
		require.Nil(t, j.CompletedAt)
		require.Empty(t, j.Steps[1].Attempts)

		c3 := ClaimOne(t, b.store, "w1")
		require.Equal(t, "b", c3.StepName)
		st, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			if err := Complete(Report{Step: "b", Worker: "w1", Attempt: 1})(st); err != nil {
				return err
			}
			st.Job.Output = map[string]any{"b": map[string]any{}}
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, stroem.JobCompleted, st.Job.Status)
		require.Equal(t, st.Now, *st.Job.CompletedAt)
		j = jobGet(t, b.store, b.job.Job.ID)
		require.Equal(t, stroem.JobCompleted, j.Status)
		require.Equal(t, st.Now, *j.CompletedAt)
		require.Equal(t, map[string]any{"b": map[string]any{}}, j.Output)
		require.False(t, j.CompletedAt.Before(*j.StartedAt))
		require.Len(t, j.Steps[1].Attempts, 1)
	})

	t.Run("ChosenTimesAreKept", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ClaimOne(t, b.store, "w1")
		var later time.Time
		st := update(t, b.store, b.job.Job.ID, func(st *persistence.JobState) {
			later = st.Now.Add(90 * time.Second)
			a := st.Mut("a")
			a.AttemptStatus, a.Status, a.ReadyAt = stroem.AttemptFailed, stroem.StepReady, &later // a retry backoff
		})
		require.Equal(t, later, *st.Find("a").ReadyAt)
		require.Equal(t, later, *jobState(t, b.store, b.job.Job.ID).Find("a").ReadyAt)
	})

	t.Run("ConcurrentUpdatesSerialize", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		const n = 20
		errs := make(chan error, n)
		for i := range n {
			go func() {
				_, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
					in := st.Mut("b").Input
					if in == nil {
						in = map[string]any{}
					}
					count, _ := in["count"].(float64)
					in["count"] = count + 1
					in[fmt.Sprintf("w%d", i)] = true
					st.Mut("b").Input = in
					return nil
				})
				errs <- err
			}()
		}
		for range n {
			require.NoError(t, <-errs)
		}
		in := jobState(t, b.store, b.job.Job.ID).Find("b").Input
		require.Equal(t, float64(n), in["count"], "no lost update")
		require.Len(t, in, n+1)
	})
}

func testTransitions(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Run("FailureSkipsExactlyTheTransitiveDependentsInOneUpdate", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		// a → b → c → f, a → d, e alone, g after (d, c).
		nj := InsertJob(t, s,
			Step{Name: "a"},
			Step{Name: "b", Deps: []string{"a"}},
			Step{Name: "c", Deps: []string{"b"}},
			Step{Name: "d", Deps: []string{"a"}},
			Step{Name: "e"},
			Step{Name: "f", Deps: []string{"c"}},
			Step{Name: "g", Deps: []string{"d", "c"}},
		)
		id := nj.Job.ID
		claimed := map[string]bool{}
		claimAll := func() {
			for _, c := range claim(t, s, "w1", 10, Lease) {
				claimed[c.StepName] = true
			}
		}
		claimAll()
		require.Equal(t, map[string]bool{"a": true, "e": true}, claimed)
		report(t, s, id, Report{Step: "a", Worker: "w1", Attempt: 1})
		claimAll()
		require.True(t, claimed["b"] && claimed["d"])

		st := report(t, s, id, Report{Step: "b", Worker: "w1", Attempt: 1, ExitCode: 1, Err: "exit 1"})
		require.Equal(t, map[string]stroem.StepStatus{
			"a": stroem.StepCompleted, "b": stroem.StepFailed, "c": stroem.StepSkipped, "d": stroem.StepRunning,
			"e": stroem.StepRunning, "f": stroem.StepSkipped, "g": stroem.StepSkipped,
		}, StepStatuses(t, s, id))
		require.Equal(t, stroem.JobRunning, st.Job.Status, "independent branches still run")
		for _, n := range []string{"c", "f", "g"} {
			require.Equal(t, st.Now, *st.Find(n).CompletedAt, n)
			require.Equal(t, 0, st.Find(n).Attempt, "%s never ran", n)
			require.Equal(t, "an upstream step failed", st.Find(n).ErrorMessage)
		}
		require.Equal(t, "exit 1", jobGet(t, s, id).Steps[1].Attempts[0].ErrorMessage)

		report(t, s, id, Report{Step: "d", Worker: "w1", Attempt: 1})
		j := jobGet(t, s, id)
		require.Equal(t, stroem.JobRunning, j.Status, "e is still running")
		require.Nil(t, j.CompletedAt)

		st = report(t, s, id, Report{Step: "e", Worker: "w1", Attempt: 1})
		require.Equal(t, stroem.JobFailed, st.Job.Status, "every step terminal, one failed")
		require.NotNil(t, st.Job.CompletedAt)
		unfinished, err := s.JobsUnfinished(ctx)
		require.NoError(t, err)
		require.NotContains(t, unfinished, id)
		failed, err := s.JobList(ctx, persistence.JobFilter{Status: stroem.JobFailed})
		require.NoError(t, err)
		require.Equal(t, []string{id}, jobIDs(failed))
	})

	t.Run("ContinueOnFailureRunsDependents", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nj := InsertJob(t, s, Step{Name: "a", ContinueOnFailure: true}, Step{Name: "b", Deps: []string{"a"}})
		ClaimOne(t, s, "w1")
		st := report(t, s, nj.Job.ID, Report{Step: "a", Worker: "w1", Attempt: 1, ExitCode: 1})
		require.Equal(t, stroem.StepReady, st.Find("b").Status)
		ClaimOne(t, s, "w1")
		st = report(t, s, nj.Job.ID, Report{Step: "b", Worker: "w1", Attempt: 1})
		require.Equal(t, stroem.JobCompleted, st.Job.Status)
	})

	t.Run("CancelledJobEndsWithoutRunning", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nj := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b", Deps: []string{"a"}})
		st := update(t, s, nj.Job.ID, func(st *persistence.JobState) {
			st.CancelRequested = true
			for i := range st.Len() {
				st.MutAt(i).Status = stroem.StepCancelled
			}
			st.Job.Status = stroem.JobCancelled
		})
		require.Equal(t, st.Now, *st.Job.CompletedAt)
		require.Empty(t, claim(t, s, "w1", 10, Lease), "nothing left to claim")
		j := jobGet(t, s, nj.Job.ID)
		require.Equal(t, stroem.JobCancelled, j.Status)
		for _, step := range j.Steps {
			require.Equal(t, stroem.StepCancelled, step.Status)
			require.NotNil(t, step.CompletedAt)
		}
	})
}
