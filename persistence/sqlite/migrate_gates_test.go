package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"
)

// migrateTo applies the embedded migrations up to version on a new
// database file and returns its path and an open connection to it.
func migrateTo(t *testing.T, version int64) (string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stroem.db")
	db, err := sql.Open("sqlite", dsn(path, true))
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	sub, err := fs.Sub(migrationFiles, "migrations")
	require.NoError(t, err)
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub)
	require.NoError(t, err)
	_, err = p.UpTo(context.Background(), version)
	require.NoError(t, err)
	return path, db
}

// TestGatesMigrationWidensChecks: 00120 edits the CHECK constraints of the
// tables the earlier migrations made; when its text replacement does not
// match (a schema written differently), the migration fails instead of
// leaving a schema that refuses suspended steps at their first insert.
func TestGatesMigrationWidensChecks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("Applies", func(t *testing.T) {
		t.Parallel()
		path, db := migrateTo(t, 70)
		require.NoError(t, db.Close())
		s, err := Open(ctx, path, nil)
		require.NoError(t, err)
		defer s.Close()
		var steps, jobs string
		require.NoError(t, s.read.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'job_steps'`).Scan(&steps))
		require.NoError(t, s.read.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'jobs'`).Scan(&jobs))
		require.Contains(t, steps, `'cancelled', 'suspended')`)
		require.Contains(t, jobs, `'webhook', 'hook', 'task')`)
	})

	t.Run("FailsWhenTheReplacementDoesNotMatch", func(t *testing.T) {
		t.Parallel()
		path, db := migrateTo(t, 70)
		// The same constraint, written without the spaces 00120 looks for.
		_, err := db.ExecContext(ctx, `PRAGMA writable_schema = ON;
			UPDATE sqlite_schema SET sql = replace(sql, '''skipped'', ''cancelled'')),', '''skipped'',''cancelled'')),')
			WHERE type = 'table' AND name = 'job_steps';
			PRAGMA writable_schema = RESET;`)
		require.NoError(t, err)
		require.NoError(t, db.Close())
		s, err := Open(ctx, path, nil)
		if err == nil {
			s.Close()
		}
		require.Error(t, err, "a migration that widened nothing must not pass")
		require.Contains(t, err.Error(), "version:120")
		require.Contains(t, err.Error(), "job_steps_and_jobs_checks_widened")
	})
}
