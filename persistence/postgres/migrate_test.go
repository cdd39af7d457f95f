package postgres_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
	"github.com/stroem/stroem/stroemtest"
)

func TestMigrate(t *testing.T) {
	t.Parallel()

	t.Run("UpFromEmptyTwiceInParallel", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		url := dbtest.EmptyURL(t)

		// Two servers starting at once, each with its own pool.
		errs := stroemtest.Concurrently(2, func(int) error {
			s, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			defer s.Close()
			return s.Migrate(ctx)
		})
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])

		s, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		defer s.Close()
		require.NoError(t, s.Migrate(ctx), "a second run is a no-op")

		status, err := s.MigrationStatus(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, status)
		require.Equal(t, int64(1), status[0].Version)
		require.Equal(t, "00001_init.sql", status[0].Name)
		for _, m := range status {
			require.True(t, m.Applied, "migration %s", m.Name)
			require.False(t, m.AppliedAt.IsZero())
		}
		pending, err := s.MigrationsPending(ctx)
		require.NoError(t, err)
		require.False(t, pending)

		var tables int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
			WHERE table_schema = 'public' AND table_name IN
			('workers', 'jobs', 'task_snapshots', 'job_steps', 'step_attempts', 'workspace_archives')`).Scan(&tables))
		require.Equal(t, 6, tables)
	})

	t.Run("StatusOfEmptyDatabaseIsPending", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s, err := postgres.Open(ctx, dbtest.EmptyURL(t), slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		defer s.Close()
		status, err := s.MigrationStatus(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, status)
		for _, m := range status {
			require.False(t, m.Applied)
		}
		pending, err := s.MigrationsPending(ctx)
		require.NoError(t, err)
		require.True(t, pending)
	})
}
