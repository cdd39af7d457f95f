// Package sqlitetest gives tests a fresh SQLite store in a file of the
// test's temporary directory, closed when the test ends. It is for tests
// only (the PostgreSQL counterpart is persistence/dbtest).
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence/sqlite"
)

// Store opens a store in a fresh SQLite file; the test closes it.
func Store(tb testing.TB) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "stroem.db"), nil)
	require.NoError(tb, err)
	tb.Cleanup(s.Close)
	return s
}
