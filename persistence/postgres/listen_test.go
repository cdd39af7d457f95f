package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
	"github.com/stroem/stroem/persistence/storetest"
)

// listen starts s.Listen on the steps-ready channel for the rest of the
// test and returns the payloads it receives ("" after each connect).
func listen(t *testing.T, s *postgres.Store) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	payloads := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- s.Listen(ctx, persistence.ChannelStepsReady, func(p string) { payloads <- p })
	}()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	return payloads
}

func waitPayload(t *testing.T, payloads <-chan string) string {
	t.Helper()
	select {
	case p := <-payloads:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10 s")
		return ""
	}
}

func TestListen(t *testing.T) {
	t.Parallel()

	t.Run("ReconnectsAfterTheConnectionIsKilled", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		ctx := context.Background()
		payloads := listen(t, s)
		require.Equal(t, "", waitPayload(t, payloads), "a first re-scan after connecting")

		nj := storetest.InsertJob(t, s, storetest.Step{Name: "a"})
		require.Equal(t, s.Origin()+":"+nj.Job.ID, waitPayload(t, payloads))

		// Kill the listener's backend (every other backend of this database
		// is a pooled connection in this process, which is fine to lose).
		var killed int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'listen%'`).Scan(&killed))
		require.Equal(t, 1, killed)
		require.Equal(t, "", waitPayload(t, payloads), "reconnected: re-scan, notifications may have been lost")

		nj2 := storetest.InsertJob(t, s, storetest.Step{Name: "a"})
		require.Equal(t, s.Origin()+":"+nj2.Job.ID, waitPayload(t, payloads), "listening again after the reconnect")
	})

	t.Run("PendingOnlyJobDoesNotNotify", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		payloads := listen(t, s)
		require.Equal(t, "", waitPayload(t, payloads))
		nj := storetest.NewJob(storetest.Step{Name: "a"})
		nj.Steps[0].Status = "pending"
		require.NoError(t, s.JobInsert(context.Background(), nj))
		ready := storetest.InsertJob(t, s, storetest.Step{Name: "a"})
		require.Equal(t, s.Origin()+":"+ready.Job.ID, waitPayload(t, payloads), "the first notification is the ready job's")
	})

	t.Run("UnclaimNotifies", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		ctx := context.Background()
		nj, c := storetest.ClaimedJob(t, s, "w1")
		payloads := listen(t, s)
		require.Equal(t, "", waitPayload(t, payloads))
		require.NoError(t, s.StepUnclaim(ctx, c.JobID, c.StepName, c.Attempt, "w2"), "another worker: no-op")
		require.NoError(t, s.StepUnclaim(ctx, c.JobID, c.StepName, c.Attempt, "w1"))
		require.Equal(t, s.Origin()+":"+nj.Job.ID, waitPayload(t, payloads), "ready again: wake the claimers")
		select {
		case p := <-payloads:
			t.Fatalf("the no-op unclaim notified too: %q", p)
		default:
		}
	})

	t.Run("JobEndNotifiesAtCommit", func(t *testing.T) {
		// The transition that ends a job tells the other servers on
		// ChannelLogs, in its own transaction: one that does not end it, or
		// is rolled back, says nothing, and neither does a later update of
		// the ended job.
		t.Parallel()
		s := dbtest.Store(t)
		ctx, cancel := context.WithCancel(context.Background())
		payloads := make(chan string, 100)
		done := make(chan error, 1)
		go func() { done <- s.Listen(ctx, persistence.ChannelLogs, func(p string) { payloads <- p }) }()
		t.Cleanup(func() {
			cancel()
			require.ErrorIs(t, <-done, context.Canceled)
		})
		require.Equal(t, "", waitPayload(t, payloads))
		nj := storetest.InsertJob(t, s, storetest.Step{Name: "a"}, storetest.Step{Name: "b"})
		update := func(fn func(st *persistence.JobState) error) error {
			_, err := s.JobUpdate(ctx, nj.Job.ID, fn)
			return err
		}
		cancelStep := func(st *persistence.JobState, name string) {
			st.Mut(name).Status = stroem.StepCancelled
		}
		require.NoError(t, update(func(st *persistence.JobState) error { cancelStep(st, "a"); return nil }))
		refused := errors.New("refused")
		require.ErrorIs(t, update(func(st *persistence.JobState) error {
			cancelStep(st, "b")
			st.Job.Status = stroem.JobCancelled
			return refused
		}), refused)
		require.NoError(t, update(func(st *persistence.JobState) error {
			cancelStep(st, "b")
			st.Job.Status = stroem.JobCancelled
			return nil
		}))
		require.NoError(t, update(func(st *persistence.JobState) error { return nil }))
		require.Equal(t, s.Origin()+":"+nj.Job.ID+":done:cancelled", waitPayload(t, payloads),
			"the first notification is the committed end's")
		time.Sleep(100 * time.Millisecond)
		select {
		case p := <-payloads:
			t.Fatalf("a second notification: %q", p)
		default:
		}
	})

	t.Run("ReturnsWhenContextEnds", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := s.Listen(ctx, persistence.ChannelStepsReady, func(string) {})
		require.True(t, errors.Is(err, context.DeadlineExceeded))
	})
}
