package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/storetest"
)

func TestTriggerTicks(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

	t.Run("ConcurrentServersOneJob", func(t *testing.T) {
		t.Parallel()
		s, ctx := dbtest.Store(t), context.Background()
		storetest.FireConcurrently(t, s, 8, func() persistence.NewJob { return storetest.TickJob("default", "cron", t0, false) })
		var jobs, ticks int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&jobs))
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM trigger_ticks`).Scan(&ticks))
		require.Equal(t, 1, jobs)
		require.Equal(t, 1, ticks)
	})
}
