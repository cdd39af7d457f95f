package postgres_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
)

// The give-back sweep finds the unacknowledged running steps through the
// index of running steps, however many finished steps the table holds.
func TestGiveBackPlanIsIndexDriven(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("seeds 100,000 steps")
	}
	s := dbtest.Store(t)
	ctx := context.Background()
	_, err := s.Pool().Exec(ctx, `
		WITH j AS (
			SELECT i, gen_random_uuid() AS id FROM generate_series(0, 24999) AS i
		), ins AS (
			INSERT INTO jobs (id, workspace, task_name, status, source_type, completed_at)
			SELECT id, 'default', 'bench', CASE WHEN i < 25 THEN 'running' ELSE 'completed' END, 'api',
				CASE WHEN i >= 25 THEN now() END
			FROM j
		)
		INSERT INTO job_steps (job_id, step_name, position, action_name, action_type, status, input,
			worker_id, attempt, started_attempt, lease_expires_at, ready_at, started_at, completed_at)
		SELECT j.id, 's' || (k % 4), k % 4, 'act', 'shell', CASE WHEN j.i < 25 THEN 'running' ELSE 'completed' END,
			'{}', 'w1', 1, CASE WHEN k % 2 = 0 THEN 1 ELSE 0 END,
			CASE WHEN j.i < 25 THEN now() + interval '1 minute' END, now() - interval '2 hours', now() - interval '1 hour',
			CASE WHEN j.i >= 25 THEN now() END
		FROM generate_series(0, 99999) AS k JOIN j ON j.i = k / 4`)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `ANALYZE job_steps`)
	require.NoError(t, err)

	tx, err := s.Pool().BeginTx(ctx, pgx.TxOptions{})
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	var plan string
	require.NoError(t, tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+postgres.GiveBackSQL,
		int64(1000), 100, "test").Scan(&plan))
	var parsed []struct{ Plan planNode }
	require.NoError(t, json.Unmarshal([]byte(plan), &parsed))
	var scans []string // how job_steps is read
	var walk func(n planNode)
	walk = func(n planNode) {
		if n.Relation == "job_steps" && n.NodeType != "ModifyTable" {
			scans = append(scans, n.NodeType+" "+n.IndexName)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(parsed[0].Plan)
	require.Equal(t, []string{"Index Scan job_steps_lease_idx", "Index Scan job_steps_pkey"}, scans, plan)
	require.Equal(t, 50.0, parsed[0].Plan.ActualRows, "the 50 unacknowledged running steps are given back")
}

// planNode is a node of an EXPLAIN (FORMAT JSON) plan.
type planNode struct {
	NodeType   string     `json:"Node Type"`
	Relation   string     `json:"Relation Name"`
	IndexName  string     `json:"Index Name"`
	IndexCond  string     `json:"Index Cond"`
	ActualRows float64    `json:"Actual Rows"`
	Plans      []planNode `json:"Plans"`
}
