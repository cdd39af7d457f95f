package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
	"github.com/stroem/stroem/persistence/storetest"
)

// seedJobs inserts n finished-or-not jobs with one SQL statement: ten
// workspaces' worth of variety (2 workspaces, 20 tasks, 5 statuses, trigger
// sources), created one second apart, then ANALYZEs.
func seedJobs(tb testing.TB, s *postgres.Store, n int) {
	tb.Helper()
	ctx := context.Background()
	_, err := s.Pool().Exec(ctx, `
		INSERT INTO jobs (id, workspace, task_name, input, status, source_type, source_id, created_at, completed_at)
		SELECT gen_random_uuid(), ws, task, '{"name": "World"}', st, src, srcid, created,
			CASE WHEN st IN ('completed', 'failed', 'cancelled') THEN created + interval '1 second' END
		FROM (
			SELECT CASE WHEN i % 10 = 0 THEN 'ws2' ELSE 'default' END AS ws,
				'task' || (i % 20) AS task,
				(ARRAY['completed', 'completed', 'completed', 'failed', 'cancelled', 'running', 'pending'])[1 + i % 7] AS st,
				CASE WHEN i % 9 = 0 THEN 'trigger' ELSE 'api' END AS src,
				CASE WHEN i % 9 = 0 THEN 'cron' || (i / 9 % 3) ELSE '' END AS srcid,
				now() - (i || ' seconds')::interval AS created
			FROM generate_series(1, $1) AS i
		) AS g`, n)
	require.NoError(tb, err)
	_, err = s.Pool().Exec(ctx, `ANALYZE jobs`)
	require.NoError(tb, err)
}

var listFilters = []persistence.JobFilter{
	{},
	{Status: stroem.JobFailed},
	{Status: stroem.JobRunning},
	{Workspace: "default"},
	{Workspace: "ws2"},
	{Workspace: "default", Task: "task3"},
	{Workspace: "default", Task: "task3", Status: stroem.JobCompleted},
	{Workspace: "ws2", Status: stroem.JobFailed},
	{SourceType: stroem.SourceTrigger, SourceID: "cron1"},
	{Task: "task7"},
	{Offset: 1000},
}

// TestJobListPlan checks, on 100,000 jobs, that every filter of the job list
// is served by an index in list order: no sequential scan, no full sort (an
// incremental sort of an index's presorted rows is fine with a LIMIT).
func TestJobListPlan(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("seeds 100,000 jobs")
	}
	s := dbtest.Store(t)
	ctx := context.Background()
	seedJobs(t, s, 100_000)

	for _, f := range listFilters {
		q, args := postgres.JobListQuery(f)
		var plan string
		require.NoError(t, s.Pool().QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+q, args...).Scan(&plan))
		require.NotContains(t, plan, `"Seq Scan"`, "filter %+v:\n%s", f, plan)
		require.NotContains(t, plan, `"Node Type": "Sort"`, "filter %+v:\n%s", f, plan)
		var parsed []struct {
			Plan struct {
				Plans []struct {
					NodeType  string `json:"Node Type"`
					IndexName string `json:"Index Name"`
				} `json:"Plans"`
			} `json:"Plan"`
			ExecutionTime float64 `json:"Execution Time"`
		}
		require.NoError(t, json.Unmarshal([]byte(plan), &parsed))
		index := ""
		if len(parsed[0].Plan.Plans) > 0 {
			index = parsed[0].Plan.Plans[0].NodeType + " " + parsed[0].Plan.Plans[0].IndexName
		}
		t.Logf("%-45s %-40s executed in %.3f ms", filterName(f), index, parsed[0].ExecutionTime)
		jobs, err := s.JobList(ctx, f)
		require.NoError(t, err)
		require.Len(t, jobs, 50, "%+v", f)
		require.True(t, slices.IsSortedFunc(jobs, func(a, b stroem.Job) int { return b.CreatedAt.Compare(a.CreatedAt) }))
	}
}

// BenchmarkJobList lists 50 jobs out of 100,000 with each filter and
// reports the p99 latency.
//
//	go test -bench JobList -run xxx ./persistence/postgres/
func BenchmarkJobList(b *testing.B) {
	s := dbtest.Store(b)
	seedJobs(b, s, 100_000)
	ctx := context.Background()
	for _, f := range listFilters {
		b.Run(filterName(f), func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if _, err := s.JobList(ctx, f); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

func filterName(f persistence.JobFilter) string {
	var parts []string
	for _, kv := range [][2]string{{"ws", f.Workspace}, {"task", f.Task}, {"status", string(f.Status)},
		{"source", string(f.SourceType)}, {"source_id", f.SourceID}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if f.Offset > 0 {
		parts = append(parts, fmt.Sprintf("offset=%d", f.Offset))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, ",")
}

// seedReady inserts n ready shell steps, four per job, in one statement.
func seedReady(tb testing.TB, s *postgres.Store, n int) {
	tb.Helper()
	_, err := s.Pool().Exec(context.Background(), `
		WITH j AS (
			SELECT i, gen_random_uuid() AS id FROM generate_series(0, ($1 - 1) / 4) AS i
		), ins AS (
			INSERT INTO jobs (id, workspace, task_name, status, source_type)
			SELECT id, 'default', 'bench', 'pending', 'api' FROM j
		)
		INSERT INTO job_steps (job_id, step_name, position, action_name, action_type, status, input, ready_at)
		SELECT j.id, 's' || (k % 4), k % 4, 'act', 'shell', 'ready', '{"n": 1}', now()
		FROM generate_series(0, $1 - 1) AS k JOIN j ON j.i = k / 4`, n)
	require.NoError(tb, err)
}

// BenchmarkClaimComplete measures claim+complete pairs (see
// storetest.BenchClaimComplete) on pooled connections.
//
//	go test -bench ClaimComplete -run xxx ./persistence/postgres/
func BenchmarkClaimComplete(b *testing.B) {
	s := dbtest.Store(b)
	storetest.BenchClaimComplete(b, s, func(b *testing.B, n int) { seedReady(b, s, n) })
}

// BenchmarkJobUpdateBigJob measures one transition of a job of 2,000 steps
// in a chain, all but the last done: what each hop of a long chain costs the
// store. A transition reads only the step rows written since its last read
// (job_steps_version_idx) and copies the job's step pointers; it does not
// copy or compare the steps it does not change.
//
//	go test -bench JobUpdateBigJob -run xxx ./persistence/postgres/
func BenchmarkJobUpdateBigJob(b *testing.B) {
	s := dbtest.Store(b)
	ctx := context.Background()
	const n = 2000
	steps := make([]storetest.Step, n)
	for i := range steps {
		steps[i].Name = fmt.Sprintf("s%04d", i)
		if i > 0 {
			steps[i].Deps = []string{steps[i-1].Name}
		}
	}
	nj := storetest.InsertJob(b, s, steps...)
	_, err := s.JobUpdate(ctx, nj.Job.ID, func(st *persistence.JobState) error {
		for i := range n - 1 {
			st.MutAt(i).Status = stroem.StepSkipped // done, as far as the store is concerned
		}
		st.MutAt(n - 1).Status = stroem.StepReady
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `ANALYZE job_steps`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		_, err := s.JobUpdate(ctx, nj.Job.ID, func(st *persistence.JobState) error {
			st.MutAt(n - 1).Input = map[string]any{"i": float64(i)}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
