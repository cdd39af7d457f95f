package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// testStartAck: a step handed to a worker counts as started only once the
// worker acknowledges it; unacknowledged, it is given back without using an
// attempt, and a late acknowledgement is refused.
func testStartAck(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Run("AcknowledgementIsFenced", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		nj, c := ClaimedJob(t, s, "w1")
		id := nj.Job.ID
		require.Equal(t, 1, c.Attempt)

		_, err := s.StepStart(ctx, id, "a", 1, "w2")
		require.ErrorIs(t, err, stroem.ErrConflict, "another worker")
		_, err = s.StepStart(ctx, id, "a", 2, "w1")
		require.ErrorIs(t, err, stroem.ErrConflict, "another attempt")
		_, err = s.StepStart(ctx, id, "nope", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrNotFound, "unknown step")
		_, err = s.StepStart(ctx, uuid.NewString(), "a", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrNotFound, "unknown job")
		_, err = s.StepStart(ctx, "not-a-uuid", "a", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrNotFound, "malformed job id")

		cancel, err := s.StepStart(ctx, id, "a", 1, "w1")
		require.NoError(t, err)
		require.False(t, cancel)
		_, err = s.StepStart(ctx, id, "a", 1, "w1")
		require.NoError(t, err, "a repeated acknowledgement is a no-op")

		given := giveBack(t, s)
		require.Empty(t, given, "an acknowledged step is never given back")
		require.Equal(t, stroem.StepRunning, jobState(t, s, id).Find("a").Status)

		update(t, s, id, func(st *persistence.JobState) {
			st.Mut("a").CancelRequested = true
		})
		cancel, err = s.StepStart(ctx, id, "a", 1, "w1")
		require.NoError(t, err)
		require.True(t, cancel, "the acknowledgement says a cancel was requested")
	})

	// An attempt is fenced by its whole number: one that only equals the
	// running attempt in its low 32 bits is another attempt, and does not
	// start the running one.
	t.Run("AcknowledgementOfAnAttemptBeyond32BitsIsFenced", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		nj, c := ClaimedJob(t, s, "w1")
		id := nj.Job.ID
		require.Equal(t, 1, c.Attempt)
		wide := int64(1)<<32 + 1
		_, err := s.StepStart(ctx, id, "a", int(wide), "w1")
		require.ErrorIs(t, err, stroem.ErrConflict, "another attempt")

		given := giveBack(t, s)
		require.Len(t, given, 1, "attempt 1 was never acknowledged: it is given back")
		require.Equal(t, stroem.StepReady, jobState(t, s, id).Find("a").Status)
	})

	// Unclaim (an answer that never reached its worker, or a claim a
	// restarted server inherited) is refused once the worker acknowledged
	// the step: it did get it and may be running it. Undoing it then would
	// let another claim run the same attempt a second time.
	t.Run("AcknowledgedIsNeverUnclaimed", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		id := startedJob(t, s, "w1", Step{Name: "a"})

		require.NoError(t, s.StepUnclaim(ctx, id, "a", 1, "w1"))
		a := jobState(t, s, id).Find("a")
		require.Equal(t, stroem.StepRunning, a.Status, "the acknowledged attempt stays running")
		require.Equal(t, 1, a.Attempt)
		require.Equal(t, "w1", a.WorkerID)
		require.Len(t, jobGet(t, s, id).Steps[0].Attempts, 1)
		_, err := s.StepStart(ctx, id, "a", 1, "w1")
		require.NoError(t, err, "still the worker's")

		// Unacknowledged, the same unclaim goes through, and the late
		// acknowledgement is refused.
		other := InsertJob(t, s, Step{Name: "a"}).Job.ID
		c := ClaimOne(t, s, "w2")
		require.Equal(t, other, c.JobID)
		require.NoError(t, s.StepUnclaim(ctx, other, "a", 1, "w2"))
		require.Equal(t, stroem.StepReady, jobState(t, s, other).Find("a").Status)
		_, err = s.StepStart(ctx, other, "a", 1, "w2")
		require.ErrorIs(t, err, stroem.ErrConflict)
	})

	t.Run("UnacknowledgedIsGivenBackWithoutAnAttempt", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		acked := startedJob(t, s, "w1", Step{Name: "a"})
		time.Sleep(time.Millisecond) // the next job is younger: claimed second
		id := InsertJob(t, s, Step{Name: "a"}).Job.ID
		before := jobState(t, s, id)
		c := ClaimOne(t, s, "w2")
		require.Equal(t, id, c.JobID)

		given, err := s.StepsGiveBackUnstarted(ctx, time.Hour, 0)
		require.NoError(t, err)
		require.Empty(t, given, "not before its time")

		given = giveBack(t, s)
		require.Equal(t, []persistence.HeldStep{{StepRef: stroem.StepRef{JobID: id, Step: "a", Attempt: 1}, WorkerID: "w2"}}, given)
		st := jobState(t, s, id)
		a := st.Find("a")
		require.Equal(t, stroem.StepReady, a.Status)
		require.Equal(t, 0, a.Attempt, "no attempt used")
		require.Empty(t, a.WorkerID)
		require.Nil(t, a.LeaseExpiresAt)
		require.Equal(t, before.Find("a").ReadyAt, a.ReadyAt, "first in line again")
		require.Empty(t, jobGet(t, s, id).Steps[0].Attempts, "no attempt record")
		require.Equal(t, stroem.StepRunning, jobState(t, s, acked).Find("a").Status, "the acknowledged one stays")

		// Fencing stays: the late worker's reports are refused.
		_, err = s.StepStart(ctx, id, "a", 1, "w2")
		require.ErrorIs(t, err, stroem.ErrConflict)
		_, err = s.StepFence(ctx, id, "a", 1, "w2")
		require.ErrorIs(t, err, stroem.ErrConflict)
		// The next claim reuses the attempt number; the late worker's
		// acknowledgement is still not its.
		c = ClaimOne(t, s, "w3")
		require.Equal(t, 1, c.Attempt)
		_, err = s.StepStart(ctx, id, "a", 1, "w2")
		require.ErrorIs(t, err, stroem.ErrConflict)
		_, err = s.StepStart(ctx, id, "a", 1, "w3")
		require.NoError(t, err)
		given = giveBack(t, s)
		require.Empty(t, given)
	})

	t.Run("RetryAttemptGivenBackRestoresThePreviousOne", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		id := startedJob(t, s, "w1", Step{Name: "a", MaxAttempts: 3})
		update(t, s, id, func(st *persistence.JobState) {
			a := st.Mut("a")
			code := 3
			a.AttemptStatus, a.ExitCode, a.ErrorMessage, a.Status = stroem.AttemptFailed, &code, "exit 3", stroem.StepReady
		})
		c := ClaimOne(t, s, "w2")
		require.Equal(t, 2, c.Attempt)
		given := giveBack(t, s)
		require.Len(t, given, 1)
		a := jobState(t, s, id).Find("a")
		require.Equal(t, stroem.StepReady, a.Status)
		require.Equal(t, 1, a.Attempt)
		require.Equal(t, "w1", a.WorkerID)
		require.Equal(t, stroem.AttemptFailed, a.AttemptStatus)
		require.Equal(t, 3, *a.ExitCode)
		require.Len(t, jobGet(t, s, id).Steps[0].Attempts, 1)
	})

	t.Run("HandOffIsUnacknowledgedToo", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		id := InsertJob(t, s, Step{Name: "a"}).Job.ID
		// What a hand-off writes in a transition.
		update(t, s, id, func(st *persistence.JobState) {
			a, now := st.Mut("a"), st.Now
			lease := now.Add(Lease)
			a.Status, a.Attempt, a.WorkerID, a.AttemptStatus = stroem.StepRunning, 1, "w1", stroem.AttemptRunning
			a.LeaseExpiresAt, a.StartedAt = &lease, &now
			st.Job.Status = stroem.JobRunning
		})
		given := giveBack(t, s)
		require.Len(t, given, 1)
		require.Equal(t, stroem.StepReady, jobState(t, s, id).Find("a").Status)
	})

	t.Run("HandOffRecordedAsStarted", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		id := InsertJob(t, s, Step{Name: "a"}).Job.ID
		// What a hand-off to a completion's own claim writes: the attempt
		// is started in the transition that hands it over.
		update(t, s, id, func(st *persistence.JobState) {
			a, now := st.Mut("a"), st.Now
			lease := now.Add(Lease)
			a.Status, a.Attempt, a.WorkerID, a.AttemptStatus = stroem.StepRunning, 1, "w1", stroem.AttemptRunning
			a.LeaseExpiresAt, a.StartedAt, a.StartedAttempt = &lease, &now, 1
			st.Job.Status = stroem.JobRunning
		})
		require.Equal(t, 1, jobState(t, s, id).Find("a").StartedAttempt, "read back")
		require.Empty(t, giveBack(t, s), "started: never given back for want of a start")
		require.NoError(t, s.StepUnclaim(ctx, id, "a", 1, "w1"))
		require.Equal(t, stroem.StepRunning, jobState(t, s, id).Find("a").Status, "nor unclaimed")
		_, err := s.StepStart(ctx, id, "a", 1, "w1")
		require.NoError(t, err, "a start sent anyway is accepted")
		_, err = s.StepStart(ctx, id, "a", 1, "w2")
		require.ErrorIs(t, err, stroem.ErrConflict, "fenced as ever")
	})

	// A claim made for completions' claims (ClaimParams.Handed) records
	// its first steps as started, each under its completion's link, by
	// which the completion's repeat finds it again; only an unclaim that
	// names that link gives it back, and only until a repeat found it.
	t.Run("ClaimForACompletionIsStarted", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		id := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b"}, Step{Name: "c"}).Job.ID
		l1, l2 := persistence.HandedLink(uuid.NewString(), "x", 1), persistence.HandedLink(uuid.NewString(), "y", 3)
		got, err := s.StepsClaim(ctx, persistence.ClaimParams{
			WorkerID: "w1", Capabilities: []string{"shell"}, Limit: 3, Lease: Lease, Handed: []string{l1, l2},
		})
		require.NoError(t, err)
		require.Len(t, got, 3)
		require.Equal(t, []string{"a", "b", "c"}, []string{got[0].StepName, got[1].StepName, got[2].StepName}, "claim order")
		require.Equal(t, []string{l1, l2, ""}, []string{got[0].HandedFor, got[1].HandedFor, got[2].HandedFor})
		st := jobState(t, s, id)
		require.Equal(t, 1, st.Find("a").StartedAttempt, "started by the claim")
		require.Equal(t, 1, st.Find("b").StartedAttempt)
		require.Equal(t, 0, st.Find("c").StartedAttempt, "claimed for a long poll: unacknowledged")
		require.Equal(t, []persistence.HeldStep{{StepRef: stroem.StepRef{JobID: id, Step: "c", Attempt: 1}, WorkerID: "w1"}},
			giveBack(t, s), "only the unacknowledged one is given back")

		// b, never looked for: only an undo under its own link takes it back.
		require.NoError(t, s.StepUnclaim(ctx, id, "b", 1, "w1"))
		require.NoError(t, s.StepUnclaimHanded(ctx, id, "b", 1, "w1", l1))
		require.NoError(t, s.StepUnclaimHanded(ctx, id, "b", 1, "w1", ""))
		require.Equal(t, stroem.StepRunning, jobState(t, s, id).Find("b").Status, "started: only its own link gives it back")
		require.NoError(t, s.StepUnclaimHanded(ctx, id, "b", 1, "w2", l2))
		require.Equal(t, stroem.StepRunning, jobState(t, s, id).Find("b").Status, "fenced by worker")
		require.NoError(t, s.StepUnclaimHanded(ctx, id, "b", 1, "w1", l2))
		b := jobState(t, s, id).Find("b")
		require.Equal(t, stroem.StepReady, b.Status, "given back")
		require.Equal(t, 0, b.Attempt, "no attempt used")
		found, err := s.StepsHandedFor(ctx, "w1", l2)
		require.NoError(t, err)
		require.Empty(t, found, "not running any more")
		// Claimed again for a long poll: unacknowledged, the link gone.
		c := ClaimOne(t, s, "w1")
		require.Equal(t, "b", c.StepName)
		require.Empty(t, c.HandedFor)
		require.Equal(t, 0, jobState(t, s, id).Find("b").StartedAttempt, "the undone attempt's started mark went with it")
		found, err = s.StepsHandedFor(ctx, "w1", l2)
		require.NoError(t, err)
		require.Empty(t, found, "a new claim drops the link")

		// a, found for a repeated completion: found again as often as the
		// worker repeats, and never undone any more (the repeat may have
		// carried it to the worker).
		for range 2 {
			found, err = s.StepsHandedFor(ctx, "w1", l1)
			require.NoError(t, err)
			require.Len(t, found, 1)
			require.Equal(t, got[0], found[0], "found again as claimed")
		}
		for _, q := range [][2]string{{"w2", l1}, {"w1", "nope"}, {"w1", ""}, {"", l1}, {"w1", "!" + l1}} {
			found, err := s.StepsHandedFor(ctx, q[0], q[1])
			require.NoError(t, err)
			require.Empty(t, found, "worker %q, link %q", q[0], q[1])
		}
		require.NoError(t, s.StepUnclaimHanded(ctx, id, "a", 1, "w1", l1))
		require.NoError(t, s.StepUnclaimHanded(ctx, id, "a", 1, "w1", "!"+l1))
		require.Equal(t, stroem.StepRunning, jobState(t, s, id).Find("a").Status, "redelivered: never undone")
		require.Equal(t, []persistence.HeldStep{{StepRef: stroem.StepRef{JobID: id, Step: "b", Attempt: 1}, WorkerID: "w1"}},
			giveBack(t, s), "a is still started; b was claimed again unacknowledged")

		// Ended: not found any more.
		update(t, s, id, func(st *persistence.JobState) {
			a := st.Mut("a")
			a.Status, a.AttemptStatus = stroem.StepCompleted, stroem.AttemptCompleted
		})
		found, err = s.StepsHandedFor(ctx, "w1", l1)
		require.NoError(t, err)
		require.Empty(t, found, "ended")
	})

	// A transition that hands steps to completions' claims records each
	// one's completion (JobState.HandFor): the completion's repeat finds
	// exactly its step, two completions of one worker in one transition
	// included, and a step handed for none is not found.
	t.Run("TransitionHandsForACompletion", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		id := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b"}, Step{Name: "c"}).Job.ID
		l1, l2 := persistence.HandedLink(id, "x", 1), persistence.HandedLink(id, "y", 1)
		update(t, s, id, func(st *persistence.JobState) {
			for _, h := range []struct{ step, link string }{{"a", l1}, {"b", l2}, {"c", ""}} {
				i := st.Index(h.step)
				x := st.MutAt(i)
				lease := st.Now.Add(Lease)
				x.Status, x.Attempt, x.WorkerID, x.AttemptStatus = stroem.StepRunning, 1, "w1", stroem.AttemptRunning
				x.LeaseExpiresAt, x.StartedAt, x.StartedAttempt = &lease, &st.Now, 1
				if h.link != "" {
					st.HandFor(i, h.link)
				}
			}
		})
		for _, c := range []struct{ link, step string }{{l1, "a"}, {l2, "b"}, {l1, "a"}} {
			found, err := s.StepsHandedFor(ctx, "w1", c.link)
			require.NoError(t, err)
			require.Len(t, found, 1, c.link)
			require.Equal(t, c.step, found[0].StepName, "the step handed for %s", c.link)
			require.True(t, found[0].Attempt == 1)
		}
		found, err := s.StepsHandedFor(ctx, "w2", l1)
		require.NoError(t, err)
		require.Empty(t, found, "another worker's")

		// A later attempt of the step forgets the link.
		update(t, s, id, func(st *persistence.JobState) {
			a := st.Mut("a")
			a.Status, a.AttemptStatus, a.WorkerID, a.LeaseExpiresAt = stroem.StepReady, stroem.AttemptLost, "", nil
		})
		ClaimOne(t, s, "w1")
		found, err = s.StepsHandedFor(ctx, "w1", l1)
		require.NoError(t, err)
		require.Empty(t, found, "a new attempt drops the link")
	})

	t.Run("StartedAttemptIsOnlyTheRunningOne", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		id := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b"}).Job.ID
		// A transition cannot record as started a step that is not running,
		// nor another attempt than the running one.
		_, err := s.JobUpdate(ctx, id, func(st *persistence.JobState) error {
			st.Mut("a").StartedAttempt = 1
			return nil
		})
		require.Error(t, err)
		c := ClaimOne(t, s, "w1")
		_, err = s.JobUpdate(ctx, id, func(st *persistence.JobState) error {
			st.Mut(c.StepName).StartedAttempt = 2
			return nil
		})
		require.Error(t, err)
		require.Len(t, giveBack(t, s), 1, "nothing was recorded: still unacknowledged")
	})

	t.Run("CancelledJobIsLeftToItsLease", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		id := InsertJob(t, s, Step{Name: "a"}).Job.ID
		ClaimOne(t, s, "w1")
		update(t, s, id, func(st *persistence.JobState) {
			st.CancelRequested = true
			st.Mut("a").CancelRequested = true
		})
		given := giveBack(t, s)
		require.Empty(t, given)
		require.Equal(t, stroem.StepRunning, jobState(t, s, id).Find("a").Status)
	})

	t.Run("AcknowledgementAndGiveBackExcludeEachOther", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		for range 10 {
			id := InsertJob(t, s, Step{Name: "a"}).Job.ID
			ClaimOne(t, s, "w1")
			var (
				wg       sync.WaitGroup
				startErr error
				given    []persistence.HeldStep
				giveErr  error
			)
			wg.Go(func() { _, startErr = s.StepStart(ctx, id, "a", 1, "w1") })
			wg.Go(func() { given, giveErr = s.StepsGiveBackUnstarted(ctx, 0, 0) })
			wg.Wait()
			require.NoError(t, giveErr)
			a := jobState(t, s, id).Find("a")
			if startErr == nil {
				require.Empty(t, given, "acknowledged, then not given back")
				require.Equal(t, stroem.StepRunning, a.Status)
				// Finish it so the next round's claim finds the next job.
				update(t, s, id, func(st *persistence.JobState) {
					st.Mut("a").Status, st.Mut("a").AttemptStatus = stroem.StepCompleted, stroem.AttemptCompleted
				})
			} else {
				require.ErrorIs(t, startErr, stroem.ErrConflict)
				require.Len(t, given, 1, "given back, then the acknowledgement refused")
				require.Equal(t, stroem.StepReady, a.Status)
				update(t, s, id, func(st *persistence.JobState) {
					st.Mut("a").Status = stroem.StepSkipped
				})
			}
		}
	})
}
