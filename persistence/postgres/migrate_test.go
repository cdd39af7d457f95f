package postgres_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/migrations"
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

// migrateTo applies the migrations up to version on a new, empty database
// and returns its URL and a pool on it.
func migrateTo(t *testing.T, version int64) (string, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	url := dbtest.EmptyURL(t)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS())
	require.NoError(t, err)
	_, err = p.UpTo(ctx, version)
	require.NoError(t, err)
	return url, pool
}

// TestMigrateTriggerSourceIDs: 00222 gives the jobs stored before it the
// upstream's source_id of a trigger or webhook job, "workspace/trigger";
// other jobs keep theirs.
func TestMigrateTriggerSourceIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, pool := migrateTo(t, 220)
	rows := []struct{ id, ws, source, sourceID, want string }{
		{"00000000-0000-0000-0000-000000000001", "default", "trigger", "nightly", "default/nightly"},
		{"00000000-0000-0000-0000-000000000002", "ops", "webhook", "deploy", "ops/deploy"},
		{"00000000-0000-0000-0000-000000000003", "default", "hook", "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000001"},
		{"00000000-0000-0000-0000-000000000004", "default", "api", "", ""},
	}
	for _, r := range rows {
		_, err := pool.Exec(ctx, `INSERT INTO jobs (id, workspace, task_name, status, source_type, source_id)
			VALUES ($1, $2, 't', 'pending', $3, $4)`, r.id, r.ws, r.source, r.sourceID)
		require.NoError(t, err)
	}
	want := map[string]string{}
	for _, r := range rows {
		want[r.id] = r.want
	}
	requireSourceIDsAfterMigrate(t, url, pool, want)
}

// TestMigrateTaskSourceIDs: 00241 gives the sub-jobs stored before it the
// upstream's source_id, "parent_job_id/step" (a for_each instance's step
// with its index), from the parent link their context keeps; other jobs,
// and a sub-job without that link, keep theirs.
func TestMigrateTaskSourceIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, pool := migrateTo(t, 230)
	const parent = "00000000-0000-0000-0000-00000000000a"
	link := func(step string) string {
		return `{"parent": {"job_id": "` + parent + `", "step_name": "` + step + `", "depth": 1}}`
	}
	rows := []struct{ id, source, sourceID, context, want string }{
		{parent, "api", "", "", ""},
		{"00000000-0000-0000-0000-000000000001", "task", parent, link("cleanup"), parent + "/cleanup"},
		{"00000000-0000-0000-0000-000000000002", "task", parent, link("fan[1]"), parent + "/fan[1]"},
		{"00000000-0000-0000-0000-000000000003", "task", parent, link("a/b"), parent + "/a/b"},
		{"00000000-0000-0000-0000-000000000004", "task", parent + "/done", link("done"), parent + "/done"},
		{"00000000-0000-0000-0000-000000000005", "task", parent, "", parent},
		{"00000000-0000-0000-0000-000000000006", "hook", parent, `{"hook": {"event": "on_success"}}`, parent},
		{"00000000-0000-0000-0000-000000000007", "trigger", "default/nightly", link("x"), "default/nightly"},
	}
	for _, r := range rows {
		var jctx any
		if r.context != "" {
			jctx = r.context
		}
		_, err := pool.Exec(ctx, `INSERT INTO jobs (id, workspace, task_name, status, source_type, source_id, context)
			VALUES ($1, 'default', 't', 'pending', $2, $3, $4::jsonb)`, r.id, r.source, r.sourceID, jctx)
		require.NoError(t, err)
	}
	want := map[string]string{}
	for _, r := range rows {
		want[r.id] = r.want
	}
	requireSourceIDsAfterMigrate(t, url, pool, want)
}

// requireSourceIDsAfterMigrate runs the pending migrations on url and
// requires each job's source_id to be want's.
func requireSourceIDsAfterMigrate(t *testing.T, url string, pool *pgxpool.Pool, want map[string]string) {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Migrate(ctx))
	for id, w := range want {
		var got string
		require.NoError(t, pool.QueryRow(ctx, `SELECT source_id FROM jobs WHERE id = $1`, id).Scan(&got))
		require.Equal(t, w, got, "job %s", id)
	}
}
