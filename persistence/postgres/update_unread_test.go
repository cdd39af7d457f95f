package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
	"github.com/stroem/stroem/persistence/storetest"
)

// unreadBundle is a job updated once by s, so that s keeps it, and a second
// store on the same database (another server).
type unreadBundle struct {
	s, other *postgres.Store
	id       string
}

func setupUnread(t *testing.T) *unreadBundle {
	t.Helper()
	s := dbtest.Store(t)
	// What these tests count must not depend on the machine's load; the
	// wrong clocks they try are an hour off.
	postgres.WidenClockSlack(s, time.Minute)
	id := storetest.InsertJob(t, s, storetest.Step{Name: "a"}, storetest.Step{Name: "b"},
		storetest.Step{Name: "c", Deps: []string{"a"}}).Job.ID
	b := &unreadBundle{s: s, other: openPool(t, s), id: id}
	b.update(t, func(st *persistence.JobState) error { st.Job.Status = stroem.JobRunning; return nil })
	return b
}

func (b *unreadBundle) update(t *testing.T, fn func(*persistence.JobState) error) *persistence.JobState {
	t.Helper()
	st, err := b.s.JobUpdate(context.Background(), b.id, fn)
	require.NoError(t, err)
	return st
}

// same requires st to be what a store that keeps nothing reads now.
func (b *unreadBundle) same(t *testing.T, st *persistence.JobState, what string) {
	t.Helper()
	fresh, err := b.other.JobState(context.Background(), b.id)
	require.NoError(t, err)
	require.Equal(t, fresh.Len(), st.Len())
	for i := range st.Len() {
		got, want := st.At(i), fresh.At(i)
		require.Equal(t, want.Status, got.Status, "%s: step %s", what, want.Name)
		require.Equal(t, fmt.Sprint(want.Output), fmt.Sprint(got.Output), "%s: step %s", what, want.Name)
		require.Equal(t, want.WorkerID, got.WorkerID, "%s: step %s", what, want.Name)
		require.Equal(t, want.CancelRequested, got.CancelRequested, "%s: step %s", what, want.Name)
		require.True(t, persistence.TimesEqual(want.LeaseExpiresAt, got.LeaseExpiresAt), "%s: step %s lease", what, want.Name)
	}
	require.Equal(t, fresh.Job.Status, st.Job.Status, what)
	require.Equal(t, fresh.CancelRequested, st.CancelRequested, what)
	hasTask, hasGlobal, err := b.other.StateScopes(context.Background(), "default", "hello")
	require.NoError(t, err)
	require.Equal(t, stroem.AssignmentState{Task: hasTask, Global: hasGlobal}, *st.StateScopes, what)
}

// A transition on a job this server updated last runs in one round trip,
// without reading the job: what it was given is the job as stored, and what
// it wrote is stored.
func TestJobUpdateUnreadRunsOnTheKeptJob(t *testing.T) {
	t.Parallel()
	b := setupUnread(t)
	hits0, _ := postgres.UnreadStats(b.s)

	var seen *persistence.JobState
	st := b.update(t, func(st *persistence.JobState) error {
		seen = st
		a := st.Mut("a")
		a.Status, a.Output = stroem.StepCancelled, map[string]any{"n": 1}
		st.Mut("c").Status = stroem.StepReady
		return nil
	})
	hits, stale := postgres.UnreadStats(b.s)
	require.Equal(t, hits0+1, hits, "the update did not read the job first")
	require.Zero(t, stale)
	b.same(t, st, "the unread update's result")
	b.same(t, b.update(t, func(*persistence.JobState) error { return nil }), "the next one")
	hits, _ = postgres.UnreadStats(b.s)
	require.Equal(t, hits0+2, hits)

	// Its time is the database's, estimated: never ahead of it, and what
	// it stored (a's completion) is the time it used.
	var dbNow time.Time
	require.NoError(t, b.s.Pool().QueryRow(context.Background(), "SELECT now()").Scan(&dbNow))
	require.False(t, seen.Now.After(dbNow))
	fresh, err := b.other.JobState(context.Background(), b.id)
	require.NoError(t, err)
	require.Equal(t, seen.Now, *fresh.Find("a").CompletedAt)
	require.Equal(t, map[string]any{"n": float64(1)}, fresh.Find("a").Output)
}

// Whatever changed the job since this server kept it — a claim, an
// acknowledgement, a lease renewal, another server's transition, the job
// row, a state snapshot of its task — the next transition is given the job
// as it is now, not as kept.
func TestJobUpdateUnreadSeesEveryChangeSinceItKeptTheJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, b *unreadBundle)
	}{
		{"a claim", func(t *testing.T, b *unreadBundle) {
			storetest.ClaimOne(t, b.other, registerWorker(t, b.other))
		}},
		{"an acknowledgement and a lease renewal", func(t *testing.T, b *unreadBundle) {
			w := registerWorker(t, b.other)
			c := storetest.ClaimOne(t, b.s, w)
			b.update(t, func(*persistence.JobState) error { return nil }) // kept after the claim
			_, err := b.other.StepStart(ctx, b.id, c.StepName, c.Attempt, w)
			require.NoError(t, err)
			_, err = b.other.LeasesRenew(ctx, w, []stroem.StepRef{{JobID: b.id, Step: c.StepName, Attempt: c.Attempt}}, time.Hour)
			require.NoError(t, err)
		}},
		{"another server's transition", func(t *testing.T, b *unreadBundle) {
			_, err := b.other.JobUpdate(ctx, b.id, func(st *persistence.JobState) error {
				st.Mut("b").Status = stroem.StepCancelled
				return nil
			})
			require.NoError(t, err)
		}},
		{"the job row alone", func(t *testing.T, b *unreadBundle) {
			_, err := b.other.JobUpdate(ctx, b.id, func(st *persistence.JobState) error {
				st.CancelRequested = true
				return nil
			})
			require.NoError(t, err)
		}},
		{"a state snapshot of its task", func(t *testing.T, b *unreadBundle) {
			_, err := b.other.Pool().Exec(ctx, `INSERT INTO state_snapshots
				(id, workspace, task_name, source, state, blob_id, size_bytes, sha256)
				VALUES (gen_random_uuid(), 'default', 'hello', 'upload', '{}', gen_random_uuid(), 0, '')`)
			require.NoError(t, err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupUnread(t)
			tc.change(t, b)
			_, stale0 := postgres.UnreadStats(b.s)
			calls := 0
			st := b.update(t, func(st *persistence.JobState) error {
				calls++
				return nil
			})
			_, stale := postgres.UnreadStats(b.s)
			require.Equal(t, stale0+1, stale, "the kept job was found out of date")
			require.Equal(t, 2, calls, "run on the kept job, then on the job read")
			b.same(t, st, tc.name)
			// Kept again: the next transition needs no read.
			hits0, _ := postgres.UnreadStats(b.s)
			b.same(t, b.update(t, func(*persistence.JobState) error { return nil }), tc.name+", then nothing")
			hits, _ := postgres.UnreadStats(b.s)
			require.Equal(t, hits0+1, hits)
		})
	}
}

// A transition that refuses the job as kept (a completion of a step it
// thinks is not running, say) is run again on the job as stored: it may
// only have been out of date.
func TestJobUpdateUnreadRefusalIsDecidedOnTheStoredJob(t *testing.T) {
	t.Parallel()
	b := setupUnread(t)
	_, err := b.other.JobUpdate(context.Background(), b.id, func(st *persistence.JobState) error {
		st.Mut("b").Status = stroem.StepCancelled
		return nil
	})
	require.NoError(t, err)
	notCancelled := errors.New("b is not cancelled")
	st := b.update(t, func(st *persistence.JobState) error {
		if st.Find("b").Status != stroem.StepCancelled {
			return notCancelled
		}
		return nil
	})
	require.Equal(t, stroem.StepCancelled, st.Find("b").Status)

	// A refusal of the stored job is returned as it is.
	_, err = b.s.JobUpdate(context.Background(), b.id, func(*persistence.JobState) error { return notCancelled })
	require.Same(t, notCancelled, err)
}

// The database refuses an estimate of its clock that is ahead of it, or too
// far behind: the transition then reads the job (and the database's time),
// and the estimate starts again from there.
func TestJobUpdateUnreadRefusesAWrongClock(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{time.Hour, -time.Hour} {
		b := setupUnread(t)
		postgres.SkewClock(b.s, skew)
		if skew < 0 {
			// An estimate never goes back from the job's last time: kept a
			// while ago, that is itself too far behind now.
			time.Sleep(10 * time.Millisecond)
			postgres.WidenClockSlack(b.s, 5*time.Millisecond)
		}
		_, stale0 := postgres.UnreadStats(b.s)
		var used time.Time
		st := b.update(t, func(st *persistence.JobState) error {
			used = st.Now
			st.Mut("a").Status = stroem.StepCancelled
			return nil
		})
		_, stale := postgres.UnreadStats(b.s)
		require.Equal(t, stale0+1, stale, "skew %s refused", skew)
		var dbNow time.Time
		require.NoError(t, b.s.Pool().QueryRow(context.Background(), "SELECT now()").Scan(&dbNow))
		require.WithinDuration(t, dbNow, used, time.Minute, "skew %s: the time used is the database's", skew)
		require.Equal(t, used, *st.Find("a").CompletedAt)

		postgres.WidenClockSlack(b.s, time.Minute)
		hits0, _ := postgres.UnreadStats(b.s)
		b.update(t, func(*persistence.JobState) error { return nil })
		hits, stale := postgres.UnreadStats(b.s)
		require.Equal(t, hits0+1, hits, "skew %s: the estimate starts again from the read (stale %d)", skew, stale)
	}
}

func registerWorker(t *testing.T, s *postgres.Store) string {
	t.Helper()
	w, err := s.WorkerRegister(context.Background(), stroem.WorkerRegistration{Name: "w", Capabilities: []string{"shell"}})
	require.NoError(t, err)
	return w.ID
}
