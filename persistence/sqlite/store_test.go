package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openTemp opens a store on a fresh file in t's temporary directory,
// closed when t ends.
func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "stroem.db"), nil)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// TestConformance runs the behaviour every store shares (the PostgreSQL
// store runs the same suite).
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) persistence.Store { return openTemp(t) })
}

func TestOpenConfiguresConnections(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := context.Background()
	var mode string
	require.NoError(t, s.write.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode))
	require.Equal(t, "wal", mode)
	var n int
	require.NoError(t, s.write.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n))
	require.Equal(t, 2, n, "FULL: every commit is fsynced")
	require.NoError(t, s.write.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&n))
	require.Equal(t, 1, n)
	require.NoError(t, s.write.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&n))
	require.Equal(t, int(busyTimeout.Milliseconds()), n)
	require.Equal(t, 1, s.write.Stats().MaxOpenConnections, "one writer")

	require.NoError(t, s.read.QueryRowContext(ctx, `PRAGMA query_only`).Scan(&n))
	require.Equal(t, 1, n, "readers cannot write")
	require.NoError(t, s.read.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&n))
	require.Equal(t, 1, n)
	_, err := s.read.ExecContext(ctx, `DELETE FROM jobs`)
	require.Error(t, err)
}

func TestStateSurvivesReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data dir?#", "stroem.db") // characters a URI must escape
	ctx := context.Background()
	s, err := Open(ctx, path, nil)
	require.NoError(t, err)
	nj := persistence.NewJob{
		Job:   stroem.Job{ID: "6F9619FF-8B86-D011-B42D-00C04FC964FF", Workspace: "default", TaskName: "t"},
		Steps: []persistence.NewStep{{Name: "a", ActionName: "a", ActionType: "shell", Status: stroem.StepReady}},
	}
	require.NoError(t, s.JobInsert(ctx, nj))
	claimed, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w", Capabilities: []string{"shell"}, Lease: time.Minute})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	before, err := s.JobGet(ctx, "6f9619ff-8b86-d011-b42d-00c04fc964ff")
	require.NoError(t, err)

	// A second process cannot open the file while the first has it.
	_, err = Open(ctx, path, nil)
	require.ErrorIs(t, err, stroem.ErrUnavailable)
	require.ErrorContains(t, err, "in use by another process")

	s.Close()
	s.Close() // twice is fine
	require.ErrorIs(t, s.Ping(ctx), stroem.ErrUnavailable, "a closed store is unavailable")
	_, err = s.JobGet(ctx, before.ID)
	require.ErrorIs(t, err, stroem.ErrUnavailable)
	_, err = s.JobUpdate(ctx, before.ID, func(*persistence.JobState) error { return nil })
	require.ErrorIs(t, err, stroem.ErrUnavailable)

	again, err := Open(ctx, path, nil) // migrations: nothing left to do
	require.NoError(t, err)
	defer again.Close()
	after, err := again.JobGet(ctx, before.ID)
	require.NoError(t, err)
	require.Equal(t, before, after, "every field survives, times to the nanosecond")
	unfinished, err := again.JobsUnfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{before.ID}, unfinished)
}

func TestWorkerGoesStale(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := context.Background()
	w, err := s.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "w"})
	require.NoError(t, err)
	_, err = s.write.ExecContext(ctx, `UPDATE workers SET last_heartbeat_at = ? WHERE id = ?`,
		nanos(s.now().Add(-persistence.WorkerStaleAfter-time.Second)), w.ID)
	require.NoError(t, err)
	list, err := s.WorkerList(ctx)
	require.NoError(t, err)
	require.Equal(t, "stale", list[0].Status)
	_, err = s.LeasesRenew(ctx, w.ID, nil, time.Minute)
	require.NoError(t, err)
	list, err = s.WorkerList(ctx)
	require.NoError(t, err)
	require.Equal(t, "active", list[0].Status, "a heartbeat makes it active again")
}

func TestLeasesFollowTheStoreClock(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := context.Background()
	now := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	s.now = func() time.Time { return now }
	require.NoError(t, s.JobInsert(ctx, persistence.NewJob{
		Job:   stroem.Job{ID: "6f9619ff-8b86-d011-b42d-00c04fc964ff", Workspace: "default", TaskName: "t"},
		Steps: []persistence.NewStep{{Name: "a", ActionName: "a", ActionType: "shell", Status: stroem.StepReady}},
	}))
	c, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w", Capabilities: []string{"shell"}, Lease: 10 * time.Second})
	require.NoError(t, err)
	require.Equal(t, now.Add(10*time.Second), c[0].LeaseExpiresAt, "nanosecond precision")
	now = now.Add(10 * time.Second)
	expired, err := s.LeasesExpired(ctx, 0)
	require.NoError(t, err)
	require.Len(t, expired, 1, "expired exactly at its deadline")
	l, err := s.StepLease(ctx, c[0].JobID, "a")
	require.NoError(t, err)
	require.Equal(t, now, l.Now)
}
