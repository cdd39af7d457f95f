package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
	"github.com/stroem/stroem/persistence/storetest"
)

// The claim's generic plan, made while the statistics describe pending
// one-step jobs (job_id alone looks unique, many jobs are pending), finds
// each claimed step and its job by a full unique key: not every pending
// job through jobs_status_created_idx, not every step of the job through
// the (job_id, position) index on job_id alone.
func TestClaimPlanFindsRowsByFullKey(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()
	for range 200 {
		storetest.InsertJob(t, s, storetest.Step{Name: "a"})
	}
	_, err := s.Pool().Exec(ctx, `ANALYZE jobs; ANALYZE job_steps`)
	require.NoError(t, err)

	for name, c := range map[string]struct{ sql, args string }{
		"claim":           {postgres.ClaimSQL, `'00000000-0000-0000-0000-000000000001', '{shell}', 1, 30000, '{x/1/a}', '{}', false`},
		"acknowledgement": {postgres.StartByPositionSQL, `'{00000000-0000-0000-0000-000000000001}', '{a}', '{1}', '{00000000-0000-0000-0000-000000000002}', 'running', '{0}'`},
	} {
		plan, root := keyedPlan(t, s, name, c.sql, c.args)
		var checked int
		var walk func(n planNode)
		walk = func(n planNode) {
			switch {
			case n.Relation == "jobs" && n.NodeType != "ModifyTable":
				require.Equal(t, "jobs_pkey", n.IndexName, "%s reads jobs not by id:\n%s", name, plan)
				checked++
			case n.IndexName == "job_steps_job_id_position_key":
				require.Contains(t, n.IndexCond, "position", "%s reads every step of a job:\n%s", name, plan)
				checked++
			case n.IndexName == "job_steps_pkey" && n.NodeType != "ModifyTable":
				checked++
			}
			for _, c := range n.Plans {
				walk(c)
			}
		}
		walk(root)
		require.NotZero(t, checked, "%s:\n%s", name, plan)
		require.False(t, strings.Contains(plan, `"Seq Scan"`), "%s:\n%s", name, plan)
	}
}
