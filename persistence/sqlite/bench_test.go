package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence/storetest"
)

// seedReady inserts n ready shell steps, four per job, in one transaction
// (the PostgreSQL benchmark's seed, persistence/postgres/bench_test.go).
func seedReady(tb testing.TB, s *Store, n int) {
	tb.Helper()
	ctx := context.Background()
	tx, err := s.write.BeginTx(ctx, nil)
	require.NoError(tb, err)
	defer func() { _ = tx.Rollback() }()
	now := nanos(s.now())
	var job string
	for k := range n {
		if k%4 == 0 {
			job = uuid.NewString()
			_, err := tx.ExecContext(ctx, `INSERT INTO jobs (id, workspace, task_name, status, source_type, created_at)
				VALUES (?, 'default', 'bench', 'pending', 'api', ?)`, job, now)
			require.NoError(tb, err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO job_steps (job_id, step_name, position, action_name, action_type,
				status, input, ready_at)
			VALUES (?, ?, ?, 'act', 'shell', 'ready', '{"n": 1}', ?)`, job, fmt.Sprintf("s%d", k%4), k%4, now)
		require.NoError(tb, err)
	}
	require.NoError(tb, tx.Commit())
}

// BenchmarkClaimComplete measures claim+complete pairs (see
// storetest.BenchClaimComplete). Every pair is two write transactions, each
// fsynced (synchronous=FULL).
//
//	go test -bench ClaimComplete -run xxx ./persistence/sqlite/
func BenchmarkClaimComplete(b *testing.B) {
	s := openTemp(b)
	storetest.BenchClaimComplete(b, s, func(b *testing.B, n int) { seedReady(b, s, n) })
}
