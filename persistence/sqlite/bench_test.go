package sqlite

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// seedReady inserts n ready shell steps, four per job, in one transaction
// (the PostgreSQL benchmark's seed, persistence/bench_test.go).
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

// benchComplete is the benchmark's "complete": the step completes, and the
// job with it once every step is terminal.
func benchComplete(c persistence.ClaimedStep) func(*persistence.JobState) error {
	return func(st *persistence.JobState) error {
		s := st.Step(c.StepName)
		if s.Attempt != c.Attempt || s.AttemptStatus != stroem.AttemptRunning {
			return stroem.Errorf(stroem.CodeConflict, "stale")
		}
		code := 0
		s.Status, s.AttemptStatus, s.ExitCode, s.Output = stroem.StepCompleted, stroem.AttemptCompleted, &code, map[string]any{"ok": true}
		for _, o := range st.Steps {
			if !o.Status.Terminal() {
				return nil
			}
		}
		st.Job.Status = stroem.JobCompleted
		return nil
	}
}

// BenchmarkClaimComplete measures claim+complete pairs, as the PostgreSQL
// benchmark does: each of N claimers (own goroutine) claims one step at a
// time and completes it with a JobUpdate, until b.N steps are done. Every
// pair is two write transactions, each fsynced (synchronous=FULL).
//
//	go test -bench ClaimComplete -run xxx ./persistence/sqlite/
func BenchmarkClaimComplete(b *testing.B) {
	s := openTemp(b)
	ctx := context.Background()
	for _, claimers := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("claimers=%d", claimers), func(b *testing.B) {
			seedReady(b, s, b.N)
			b.ResetTimer()
			var (
				wg   sync.WaitGroup
				errs = make(chan error, claimers)
			)
			for w := range claimers {
				wg.Go(func() {
					p := persistence.ClaimParams{WorkerID: fmt.Sprintf("w%d", w), Capabilities: []string{"shell"}, Limit: 1, Lease: time.Minute}
					for {
						got, err := s.StepsClaim(ctx, p)
						if err != nil {
							errs <- err
							return
						}
						if len(got) == 0 {
							return
						}
						if _, err := s.JobUpdate(ctx, got[0].JobID, benchComplete(got[0])); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
		})
	}
}
