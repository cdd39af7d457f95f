package dbtest_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stroem/stroem/persistence/dbtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	var first string
	t.Run("FreshMigratedDatabase", func(t *testing.T) {
		first = dbtest.URL(t)
		second := dbtest.URL(t)
		require.NotEqual(t, first, second, "one database per call")
		conn, err := pgx.Connect(ctx, first)
		require.NoError(t, err)
		defer conn.Close(ctx)
		var n int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&n))
		require.Zero(t, n)
		var version int64
		require.NoError(t, conn.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&version))
		require.Positive(t, version)
	})

	// The database is dropped when its test ends.
	u, err := url.Parse(first)
	require.NoError(t, err)
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	conn, err := pgx.Connect(ctx, u.String())
	require.NoError(t, err)
	defer conn.Close(ctx)
	var exists bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists))
	require.False(t, exists)
}

func TestEmptyURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbtest.EmptyURL(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&n))
	require.Zero(t, n)
}

func TestStore(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	require.NoError(t, s.Ping(context.Background()))
}
