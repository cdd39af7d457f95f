package sqlite

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence"
)

// A step's page of lines reads its own lines through job_logs_step_idx and
// its loop instances' through job_logs_loop_idx, each from its first line
// after the page's start: never among the job's other lines (without
// INDEXED BY, SQLite read them through the primary key). Each part's page
// is sorted again for the merge: at most a page.
func TestLogPageOfAStepUsesItsIndexes(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	var args params
	q := persistence.LogPageQuery("00000000-0000-0000-0000-000000000001", "deploy", 0, args.add, true)
	plan := queryPlan(t, s, q, args...)
	require.Contains(t, plan, "USING INDEX job_logs_step_idx (job_id=? AND step_name=? AND seq>?)", plan)
	require.Contains(t, plan, "USING INDEX job_logs_loop_idx (job_id=? AND <expr>=? AND seq>?)", plan)
	require.NotContains(t, plan, "SCAN job_logs", plan)
	require.NotContains(t, plan, "PRIMARY KEY", "not among the job's lines in seq order:\n%s", plan)
}
