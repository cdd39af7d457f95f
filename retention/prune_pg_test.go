package retention_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/retention"
)

// TestPruneWhileClaiming prunes a backlog of old jobs (3,000 by default;
// STROEM_PRUNE_JOBS=100000 for the figure in docs/operations/retention.md)
// while a worker claims ready steps one at a time, and logs the claim
// latencies measured during the prune. It asserts what must hold however
// slow the machine: every old job is gone, every claim succeeded, the live
// jobs were untouched. Latency is reported, not asserted (STYLE: tests
// never assert wall-clock speed).
func TestPruneWhileClaiming(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a database")
	}
	t.Parallel()
	old := 3000
	if v := os.Getenv("STROEM_PRUNE_JOBS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "STROEM_PRUNE_JOBS")
		old = n
	}
	const live = 4000
	s := dbtest.Store(t)
	ctx := context.Background()
	pool := s.Pool()

	// The backlog: old terminal jobs with a step and an attempt each,
	// written in bulk (the API would take far longer).
	_, err := pool.Exec(ctx, `INSERT INTO task_snapshots (id, body) VALUES ('snap', '{}')`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `
		WITH j AS (
			INSERT INTO jobs (id, workspace, task_name, status, source_type, snapshot_id, created_at, started_at, completed_at)
			SELECT gen_random_uuid(), 'default', 'old', 'completed', 'api', 'snap',
				now() - interval '61 days', now() - interval '61 days', now() - interval '60 days' - g * interval '1 ms'
			FROM generate_series(1, $1) g RETURNING id, completed_at
		), st AS (
			INSERT INTO job_steps (job_id, step_name, position, action_name, action_type, status, attempt, attempt_status, started_at, completed_at)
			SELECT id, 'a', 0, 'a', 'shell', 'completed', 1, 'completed', completed_at, completed_at FROM j RETURNING job_id, completed_at
		)
		INSERT INTO step_attempts (job_id, step_name, attempt, worker_id, status, exit_code, started_at, completed_at)
		SELECT job_id, 'a', 1, 'w', 'completed', 0, completed_at, completed_at FROM st`, old)
	require.NoError(t, err)
	// Live jobs, each with one ready step to claim.
	_, err = pool.Exec(ctx, `
		WITH j AS (
			INSERT INTO jobs (id, workspace, task_name, status, source_type, snapshot_id)
			SELECT gen_random_uuid(), 'default', 'live', 'pending', 'api', 'snap' FROM generate_series(1, $1) RETURNING id
		)
		INSERT INTO job_steps (job_id, step_name, position, action_name, action_type, status, input, ready_at)
		SELECT id, 'a', 0, 'a', 'shell', 'ready', '{}', now() FROM j`, live)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `ANALYZE`)
	require.NoError(t, err)

	rc := retention.Config{JobDays: 30}
	if v := os.Getenv("STROEM_PRUNE_BATCH"); v != "" {
		rc.BatchSize, err = strconv.Atoi(v)
		require.NoError(t, err, "STROEM_PRUNE_BATCH")
	}
	svc := retention.New(rc, s, nil, nil, nil)
	dry, err := svc.Run(ctx, true)
	require.NoError(t, err)
	require.Equal(t, int64(old), dry.Jobs)

	// Claims, one step each, until stop is closed: first without a prune
	// (the baseline on this machine), then during the prune.
	claimUntil := func(stop <-chan struct{}, max int) ([]time.Duration, error) {
		var lat []time.Duration
		for len(lat) < max {
			select {
			case <-stop:
				return lat, nil
			default:
			}
			start := time.Now()
			got, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w1", Capabilities: []string{"shell"}, Limit: 1, Lease: time.Minute})
			if err != nil {
				return lat, err
			}
			if len(got) == 0 {
				return lat, nil
			}
			lat = append(lat, time.Since(start))
		}
		return lat, nil
	}
	baseline, err := claimUntil(nil, 300)
	require.NoError(t, err)

	pruned := make(chan struct{})
	var (
		latencies []time.Duration
		claimErr  error
		wg        sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		latencies, claimErr = claimUntil(pruned, live)
	}()
	start := time.Now()
	r, err := svc.Run(ctx, false)
	took := time.Since(start)
	close(pruned)
	wg.Wait()
	require.NoError(t, err)
	require.NoError(t, claimErr)
	require.Equal(t, int64(old), r.Jobs)
	require.Equal(t, int64(old), r.Steps)

	var left, liveLeft int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE task_name = 'old'), count(*) FILTER (WHERE task_name = 'live') FROM jobs`).Scan(&left, &liveLeft))
	require.Zero(t, left, "every old job is gone")
	require.Equal(t, live, liveLeft, "live jobs stay")
	var attempts int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM step_attempts WHERE worker_id = 'w'`).Scan(&attempts))
	require.Zero(t, attempts, "attempts went with their steps")

	require.NotEmpty(t, latencies, "claims ran during the prune")
	t.Logf("baseline (no prune): %d claims: %s", len(baseline), summary(baseline))
	t.Logf("pruned %d jobs in %s (%.0f jobs/s) while %d claims ran: %s",
		old, took.Round(time.Millisecond), float64(old)/took.Seconds(), len(latencies), summary(latencies))
}

// summary gives the p50, p99 and max of latencies.
func summary(lat []time.Duration) string {
	lat = slices.Clone(lat)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(10 * time.Microsecond)
	}
	return "claim p50 " + pct(0.50).String() + ", p99 " + pct(0.99).String() + ", max " + pct(1).String()
}
