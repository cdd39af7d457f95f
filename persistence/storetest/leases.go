package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

func testLeases(t *testing.T, open func(t *testing.T) persistence.Store) {
	type testBundle struct {
		store  persistence.Store
		worker stroem.Worker
		job    persistence.NewJob
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		s := open(t)
		w := registerWorker(t, s, "w")
		return &testBundle{store: s, worker: w, job: InsertJob(t, s, Step{Name: "a"}, Step{Name: "b"}, Step{Name: "c"})}
	}

	t.Run("RenewHeldCancelTheRest", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		id := b.job.Job.ID
		a := ClaimOne(t, b.store, b.worker.ID)
		bb := ClaimOne(t, b.store, b.worker.ID)
		other := ClaimOne(t, b.store, "someone-else")
		// a: held; b: cancel requested; other: another worker's; plus an old
		// attempt, an unknown job and a malformed id.
		update(t, b.store, id, func(st *persistence.JobState) {
			st.Mut(bb.StepName).CancelRequested = true
		})
		stale := stroem.StepRef{JobID: id, Step: a.StepName, Attempt: 0}
		gone := stroem.StepRef{JobID: uuid.NewString(), Step: "a", Attempt: 1}
		bad := stroem.StepRef{JobID: "bad", Step: "a", Attempt: 1}
		before := stepLease(t, b.store, id, a.StepName)
		time.Sleep(10 * time.Millisecond)

		cancel, err := b.store.LeasesRenew(ctx, b.worker.ID, []stroem.StepRef{ref(a), ref(bb), ref(other), stale, gone, bad}, time.Hour)
		require.NoError(t, err)
		require.ElementsMatch(t, []stroem.StepRef{bad, ref(bb), ref(other), stale, gone}, cancel)

		after := stepLease(t, b.store, id, a.StepName)
		require.Equal(t, 1, after.Attempt)
		require.Equal(t, stroem.StepRunning, after.Status)
		require.True(t, after.LeaseExpiresAt.After(*before.LeaseExpiresAt))
		require.WithinDuration(t, after.Now.Add(time.Hour), *after.LeaseExpiresAt, 5*time.Second)
		otherLease := stepLease(t, b.store, id, other.StepName)
		require.Equal(t, other.LeaseExpiresAt, *otherLease.LeaseExpiresAt, "another worker's lease is untouched")

		workers, err := b.store.WorkerList(ctx)
		require.NoError(t, err)
		require.Len(t, workers, 1)
		require.True(t, workers[0].LastHeartbeatAt.After(workers[0].RegisteredAt), "the heartbeat is recorded")

		// A renewal never shortens a lease.
		_, err = b.store.LeasesRenew(ctx, b.worker.ID, []stroem.StepRef{ref(a)}, time.Second)
		require.NoError(t, err)
		kept := stepLease(t, b.store, id, a.StepName)
		require.Equal(t, after.LeaseExpiresAt, kept.LeaseExpiresAt)

		// Upper-case ids are the same UUIDs.
		upper := ref(a)
		upper.JobID = strings.ToUpper(upper.JobID)
		cancel, err = b.store.LeasesRenew(ctx, strings.ToUpper(b.worker.ID), []stroem.StepRef{upper}, time.Hour)
		require.NoError(t, err)
		require.Empty(t, cancel)
	})

	// An attempt is fenced by its whole number: a heartbeat listing one that
	// only equals the held attempt in its low 32 bits renews nothing, and
	// the worker is told to stop it.
	t.Run("RenewOfAnAttemptBeyond32BitsIsRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a := ClaimOne(t, b.store, b.worker.ID)
		require.Equal(t, 1, a.Attempt)
		wide := ref(a)
		wide.Attempt = int(int64(1)<<32 + 1)
		before := stepLease(t, b.store, a.JobID, a.StepName)

		cancel, err := b.store.LeasesRenew(context.Background(), b.worker.ID, []stroem.StepRef{wide}, time.Hour)
		require.NoError(t, err)
		require.Equal(t, []stroem.StepRef{wide}, cancel)
		require.Equal(t, *before.LeaseExpiresAt, *stepLease(t, b.store, a.JobID, a.StepName).LeaseExpiresAt,
			"attempt 1's lease is not renewed")
	})

	t.Run("ExpiredLeaseIsVisibleAndExtendedAtStart", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		c := claimExpired(t, b.store, b.worker.ID)
		l := stepLease(t, b.store, c.JobID, c.StepName)
		require.Equal(t, stroem.StepRunning, l.Status, "an expired lease does not end the step by itself")
		require.Equal(t, 1, l.Attempt)

		r := ref(c)
		expired, err := b.store.LeasesExpired(ctx, 10)
		require.NoError(t, err)
		require.Equal(t, []stroem.StepRef{r}, expired)

		// A restarting server extends every running lease.
		n, err := b.store.LeasesExtendAll(ctx, time.Minute)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		expired, err = b.store.LeasesExpired(ctx, 10)
		require.NoError(t, err)
		require.Empty(t, expired)
		l = stepLease(t, b.store, c.JobID, c.StepName)
		require.WithinDuration(t, l.Now.Add(time.Minute), *l.LeaseExpiresAt, 5*time.Second)
		// It never shortens a lease.
		_, err = b.store.LeasesExtendAll(ctx, time.Second)
		require.NoError(t, err)
		l2 := stepLease(t, b.store, c.JobID, c.StepName)
		require.Equal(t, l.LeaseExpiresAt, l2.LeaseExpiresAt)
	})

	t.Run("ExpiredLeaseIsRenewedUntilDeclaredLost", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		c := claimExpired(t, b.store, b.worker.ID)
		r := ref(c)
		cancel, err := b.store.LeasesRenew(ctx, b.worker.ID, []stroem.StepRef{r}, time.Hour)
		require.NoError(t, err)
		require.Empty(t, cancel, "the worker is alive and the attempt was not declared lost: keep it")
		l := stepLease(t, b.store, c.JobID, c.StepName)
		require.WithinDuration(t, l.Now.Add(time.Hour), *l.LeaseExpiresAt, 5*time.Second)

		update(t, b.store, c.JobID, func(st *persistence.JobState) {
			s := st.Mut(c.StepName)
			s.Status, s.AttemptStatus, s.ErrorMessage = stroem.StepFailed, stroem.AttemptLost, "worker lost (lease expired)"
		})
		cancel, err = b.store.LeasesRenew(ctx, b.worker.ID, []stroem.StepRef{r}, time.Hour)
		require.NoError(t, err)
		require.Equal(t, []stroem.StepRef{r}, cancel, "declared lost: stop it")
	})

	t.Run("LeasesExpiredLongestFirst", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		first := claim(t, b.store, b.worker.ID, 1, time.Millisecond)[0]
		time.Sleep(2 * time.Millisecond)
		second := claim(t, b.store, b.worker.ID, 1, time.Millisecond)[0]
		ClaimOne(t, b.store, b.worker.ID) // a live lease
		require.Eventually(t, func() bool {
			refs, err := b.store.LeasesExpired(ctx, 10)
			return err == nil && len(refs) == 2
		}, 10*time.Second, 5*time.Millisecond)
		refs, err := b.store.LeasesExpired(ctx, 10)
		require.NoError(t, err)
		require.Equal(t, []stroem.StepRef{ref(first), ref(second)}, refs)
		refs, err = b.store.LeasesExpired(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, []stroem.StepRef{ref(first)}, refs, "the limit holds")
	})

	t.Run("UnknownWorkerMustRegisterAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		for _, w := range []string{uuid.NewString(), "not-a-uuid", ""} {
			_, err := b.store.LeasesRenew(ctx, w, nil, time.Minute)
			require.ErrorIs(t, err, stroem.ErrNotFound, w)
		}
		cancel, err := b.store.LeasesRenew(ctx, b.worker.ID, nil, time.Minute)
		require.NoError(t, err)
		require.Empty(t, cancel)
		_, err = b.store.LeasesRenew(ctx, b.worker.ID, nil, 0)
		require.ErrorIs(t, err, stroem.ErrInvalid, "a renewal without a lease is a bug")
	})

	t.Run("StepLeaseOfUnknownStep", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		_, err := b.store.StepLease(ctx, b.job.Job.ID, "nope")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		_, err = b.store.StepLease(ctx, "bad", "a")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		_, err = b.store.StepLease(ctx, uuid.NewString(), "a")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		l := stepLease(t, b.store, b.job.Job.ID, "a")
		require.Equal(t, stroem.StepReady, l.Status)
		require.Equal(t, 0, l.Attempt)
		require.Nil(t, l.LeaseExpiresAt)
		require.WithinDuration(t, time.Now(), l.Now, time.Minute)
	})
}
