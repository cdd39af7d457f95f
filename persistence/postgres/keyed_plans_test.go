package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
	"github.com/stroem/stroem/persistence/storetest"
)

// A transition's and the acknowledgements' statements run with generic
// plans (made once per connection, then kept). Made on a new database,
// whose job_steps is tiny and never analyzed — where a sequential scan
// looks cheapest — those plans must still find job_steps' rows through an
// index, or they would read the whole table at every execution once it is
// large.
func TestKeyedPlansUseIndexesOnAYoungTable(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	storetest.InsertJob(t, s, storetest.Step{Name: "a"}, storetest.Step{Name: "b", Deps: []string{"a"}})

	for name, c := range map[string]struct{ sql, args string }{
		"acknowledgement":             {postgres.StartSQL, `'{}', '{}', '{}', '{}', 'running'`},
		"acknowledgement by position": {postgres.StartByPositionSQL, `'{}', '{}', '{}', '{}', 'running', '{}'`},
		"claim":                       {postgres.ClaimSQL, `'00000000-0000-0000-0000-000000000001', '{shell}', 1, 30000, '{x/1/a}', '{gpu}', true`},
		"claimed for a completion":    {postgres.HandedForSQL, `'00000000-0000-0000-0000-000000000001', 'x/1/a'`},
		"step read":                   {postgres.ReadStepsSQL, `'00000000-0000-0000-0000-000000000000'`},
		"step read since":             {postgres.ReadStepsSinceSQL, `'00000000-0000-0000-0000-000000000000', 1`},
		"unread check":                {postgres.UnreadCheckSQL, `'00000000-0000-0000-0000-000000000000', 1, '{}', '{}', false, false`},
		"step write": {postgres.WriteStepsSQL, `'00000000-0000-0000-0000-000000000000'` +
			strings.Repeat(`, '{}'`, 21) + `, now(), '{}', '{true}', '{shell}', now(), '{}', '{gpu}', false`},
	} {
		plan, root := keyedPlan(t, s, name, c.sql, c.args)
		var scans []string
		var walk func(n planNode)
		walk = func(n planNode) {
			if n.Relation == "job_steps" && n.NodeType != "ModifyTable" {
				scans = append(scans, n.NodeType)
				if name == "step read since" || name == "unread check" {
					// The rows written since the last read are found by
					// job and version, never among all of the job's steps.
					require.True(t, n.IndexName == "job_steps_version_idx" && strings.Contains(n.IndexCond, "version"),
						"the step read since a horizon reads a job's steps by job only:\n%s", plan)
				}
				if name == "step write" && n.NodeType == "Index Scan" {
					// The steps it writes are found by job and position
					// (then by TID), never among all of the job's steps: a
					// transition costs what it writes, not what the job
					// holds (the guard of offers reads the ready index).
					require.True(t, n.IndexName == "job_steps_ready_order_idx" || strings.Contains(n.IndexCond, "position"),
						"the step write reads a job's steps by job only:\n%s", plan)
				}
			}
			for _, c := range n.Plans {
				walk(c)
			}
		}
		walk(root)
		require.NotEmpty(t, scans, name)
		for _, scan := range scans {
			require.Contains(t, []string{"Index Scan", "Index Only Scan", "Tid Scan"}, scan, "%s reads job_steps without an index:\n%s", name, plan)
		}
	}
}

// The acknowledgement's statement and a transition's step write unnest
// arrays; planned anew at every execution, they cost more in planning than
// in running. On one connection, their prepared statements are executed
// again and again with the generic plan, never with a custom one.
func TestKeyedStatementsAreNotPlannedAgain(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	one := oneConnection(t, s)

	const n = 8
	for range n {
		storetest.InsertJob(t, one, storetest.Step{Name: "a"})
		c := storetest.ClaimOne(t, one, "w1")
		_, err := one.StepStart(ctx, c.JobID, c.StepName, c.Attempt, "w1")
		require.NoError(t, err)
		_, err = one.JobUpdate(ctx, c.JobID, storetest.Complete(storetest.Report{Step: "a", Worker: "w1", Attempt: c.Attempt}))
		require.NoError(t, err)
	}
	for name, sql := range map[string]string{"acknowledgement": postgres.StartSQL, "step write": postgres.WriteStepsSQL, "claim": postgres.ClaimSQL} {
		var generic, custom int
		require.NoError(t, one.Pool().QueryRow(ctx, `SELECT generic_plans, custom_plans FROM pg_prepared_statements
			WHERE statement = $1`, sql).Scan(&generic, &custom), name)
		require.Equal(t, n, generic, name)
		require.Zero(t, custom, name)
	}
}

// An acknowledgement of a step of a job whose steps the store keeps (a
// transition of the job ran on this server) names the step by its position
// too (startByPositionSQL), and is recorded as the plain one is: the
// worker's step is started; an attempt it does not hold is refused.
func TestAcknowledgementByPosition(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	one := oneConnection(t, s)

	storetest.InsertJob(t, one, storetest.Step{Name: "a"}, storetest.Step{Name: "b"}, storetest.Step{Name: "c"})
	a := storetest.ClaimOne(t, one, "w1")
	id := a.JobID
	_, err := one.StepStart(ctx, a.JobID, a.StepName, a.Attempt, "w1")
	require.NoError(t, err)
	_, err = one.JobUpdate(ctx, id, storetest.Complete(storetest.Report{Step: a.StepName, Worker: "w1", Attempt: a.Attempt}))
	require.NoError(t, err) // the store keeps the job's steps now

	b := storetest.ClaimOne(t, one, "w2")
	_, err = one.StepStart(ctx, b.JobID, b.StepName, b.Attempt, "w2")
	require.NoError(t, err)
	c := storetest.ClaimOne(t, one, "w3")
	_, err = one.StepStart(ctx, c.JobID, c.StepName, c.Attempt, "w-other")
	require.ErrorIs(t, err, stroem.ErrConflict, "an attempt the worker does not hold is not acknowledged")

	var byPosition, plain int
	require.NoError(t, one.Pool().QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE statement = $1), count(*) FILTER (WHERE statement = $2)
		FROM pg_prepared_statements`, postgres.StartByPositionSQL, postgres.StartSQL).Scan(&byPosition, &plain))
	require.Equal(t, 1, byPosition, "the acknowledgements of the kept job name its steps by position")
	require.Equal(t, 1, plain, "the first, before any transition, does not")
	var started, other int
	require.NoError(t, one.Pool().QueryRow(ctx, `SELECT
		(SELECT started_attempt FROM job_steps WHERE job_id = $1 AND step_name = $2),
		(SELECT started_attempt FROM job_steps WHERE job_id = $1 AND step_name = $3)`,
		id, b.StepName, c.StepName).Scan(&started, &other))
	require.Equal(t, b.Attempt, started, "b's start is recorded")
	require.NotEqual(t, c.Attempt, other, "c's refused start is not")
}

// keyedPlan is the plan sql gets with args (SQL literals) under keyedPlans,
// as its prepared statement's generic plan: the JSON, and its root node.
func keyedPlan(t *testing.T, s *postgres.Store, name, sql, args string) (string, planNode) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, postgres.KeyedPlans)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `PREPARE keyed AS `+sql)
	require.NoError(t, err, name)
	defer tx.Exec(ctx, `DEALLOCATE keyed`) //nolint:errcheck // PREPARE outlives a rollback
	var plan string
	require.NoError(t, tx.QueryRow(ctx, `EXPLAIN (FORMAT JSON) EXECUTE keyed(`+args+`)`).Scan(&plan), name)
	var parsed []struct{ Plan planNode }
	require.NoError(t, json.Unmarshal([]byte(plan), &parsed))
	return plan, parsed[0].Plan
}

// oneConnection opens a second store on s's database with a pool of one
// connection, whose prepared statements a test can read.
func oneConnection(t *testing.T, s *postgres.Store) *postgres.Store {
	t.Helper()
	url := s.Pool().Config().ConnString()
	if strings.Contains(url, "?") {
		url += "&pool_max_conns=1"
	} else {
		url += "?pool_max_conns=1"
	}
	one, err := postgres.Open(context.Background(), url, nil)
	require.NoError(t, err)
	t.Cleanup(one.Close)
	return one
}

// Each claim and hand-over inserts an attempt row, and a step's first log
// lines a step_logs row; PostgreSQL then checks their foreign keys with a
// lookup of its own (SELECT 1 FROM ONLY <referenced> WHERE <columns> = …
// FOR KEY SHARE), planned generically as the transition's statements are.
// On a young job_steps, a lookup by (job_id, step_name) went through the
// (job_id, position) index and filtered the names: it read the job's steps
// up to the one it looked for, at every attempt. Every such lookup must
// find its row by all the key's columns.
func TestForeignKeyLookupsOfHotInsertsUseTheWholeKey(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	storetest.InsertJob(t, s, storetest.Step{Name: "a"}, storetest.Step{Name: "b", Deps: []string{"a"}})

	rows, err := s.Pool().Query(ctx, `SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text,
			array_agg(a.attname::text ORDER BY k.ord)
		FROM pg_constraint c
		CROSS JOIN LATERAL unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum
		WHERE c.contype = 'f' AND c.conrelid IN ('step_attempts'::regclass, 'step_logs'::regclass)
		GROUP BY c.conname, c.conrelid, c.confrelid`)
	require.NoError(t, err)
	type fk struct {
		name, table, referenced string
		columns                 []string
	}
	var fks []fk
	for rows.Next() {
		var f fk
		require.NoError(t, rows.Scan(&f.name, &f.table, &f.referenced, &f.columns))
		fks = append(fks, f)
	}
	require.NoError(t, rows.Err())
	tables := map[string]bool{}
	for _, f := range fks {
		tables[f.table] = true
	}
	require.Equal(t, map[string]bool{"step_attempts": true, "step_logs": true}, tables, "both tables keep a foreign key")

	for _, f := range fks {
		var conds, args []string
		for i, c := range f.columns {
			conds = append(conds, fmt.Sprintf("%s = $%d", c, i+1))
			args = append(args, "NULL")
		}
		sql := `SELECT 1 FROM ONLY ` + f.referenced + ` x WHERE ` + strings.Join(conds, " AND ") + ` FOR KEY SHARE OF x`
		plan, root := keyedPlan(t, s, f.name, sql, strings.Join(args, ", "))
		var scans int
		var walk func(n planNode)
		walk = func(n planNode) {
			if n.Relation == f.referenced {
				scans++
				require.Contains(t, []string{"Index Scan", "Index Only Scan"}, n.NodeType, "%s: %s", f.name, plan)
				for _, c := range f.columns {
					require.Contains(t, n.IndexCond, c, "%s finds %s rows by part of the key:\n%s", f.name, f.referenced, plan)
				}
			}
			for _, c := range n.Plans {
				walk(c)
			}
		}
		walk(root)
		require.Equal(t, 1, scans, "%s:\n%s", f.name, plan)
	}
}
