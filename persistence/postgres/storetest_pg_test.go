package postgres_test

import (
	"testing"

	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/storetest"
)

// TestConformance runs the behaviour every store shares against
// PostgreSQL, each subtest on a fresh database (the embedded SQLite store
// runs the same suite).
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) persistence.Store { return dbtest.Store(t) })
}
