package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
)

// A page of a step's lines reads the step's own lines through
// job_logs_step_idx and its loop instances' through job_logs_loop_idx,
// from the page's start in seq order: never the job's other lines (the
// primary key would give them in seq order, all of them). Checked on a
// table with statistics, with the plan for the values and with the generic
// plan a prepared statement ends up with, and on a young table.
func TestLogPageOfAStepUsesItsIndexes(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	const job = "00000000-0000-0000-0000-0000000000aa"
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	q := persistence.LogPageQuery(job, "deploy", 0, arg, false)
	var literals []string
	for _, a := range args {
		literals = append(literals, fmt.Sprintf("'%v'", a))
	}

	check := func(name string, generic, analyze bool) {
		t.Helper()
		tx, err := s.Pool().Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx) //nolint:errcheck
		if generic {
			_, err = tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`)
			require.NoError(t, err)
		}
		explain := `EXPLAIN (FORMAT JSON)`
		if analyze {
			explain = `EXPLAIN (ANALYZE, FORMAT JSON)`
		}
		_, err = tx.Exec(ctx, `PREPARE logpage AS `+q)
		require.NoError(t, err)
		defer tx.Exec(ctx, `DEALLOCATE logpage`) //nolint:errcheck // PREPARE outlives a rollback
		var plan string
		require.NoError(t, tx.QueryRow(ctx, explain+` EXECUTE logpage(`+strings.Join(literals, ", ")+`)`).Scan(&plan), name)
		var parsed []struct{ Plan planNode }
		require.NoError(t, json.Unmarshal([]byte(plan), &parsed))
		var scans []string // how job_logs is read
		var walk func(n planNode)
		walk = func(n planNode) {
			if n.Relation == "job_logs" {
				scans = append(scans, n.NodeType+" "+n.IndexName)
			}
			for _, c := range n.Plans {
				walk(c)
			}
		}
		walk(parsed[0].Plan)
		require.ElementsMatch(t, []string{"Index Scan job_logs_step_idx", "Index Scan job_logs_loop_idx"}, scans, "%s:\n%s", name, plan)
		if analyze {
			require.Equal(t, float64(persistence.LogPageSize), parsed[0].Plan.ActualRows, "%s: a full page", name)
		}
	}
	check("young table, generic plan", true, false)

	if testing.Short() {
		t.Skip("seeds 200,000 lines")
	}
	// A job of 200,000 lines: 150,000 of its build, 10 instances of
	// deploy with 4,000 each spread among them, and steps whose names
	// start with deploy's; other jobs' lines beside.
	_, err := s.Pool().Exec(ctx, `
		INSERT INTO job_logs (job_id, seq, step_name, attempt, ts, stream, text)
		SELECT $1::uuid, i, CASE
				WHEN i % 4 = 0 THEN 'deploy[' || (i / 4) % 10 || ']'
				WHEN i % 20 = 1 THEN 'deploy2'
				WHEN i % 20 = 2 THEN 'deploy-x'
				ELSE 'build' END,
			1, now(), 'stdout', 'line ' || i
		FROM generate_series(1, 200000) AS i`, job)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `
		INSERT INTO job_logs (job_id, seq, step_name, attempt, ts, stream, text)
		SELECT gen_random_uuid(), 1, 'deploy[0]', 1, now(), 'stdout', 'x' FROM generate_series(1, 20000)`)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `ANALYZE job_logs`)
	require.NoError(t, err)
	check("plan for the values", false, true)
	check("generic plan", true, true)
}
