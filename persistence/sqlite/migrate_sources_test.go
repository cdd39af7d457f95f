package sqlite

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTriggerSourceIDsMigration: 00222 gives the jobs stored before it the
// upstream's source_id of a trigger or webhook job, "workspace/trigger";
// other jobs keep theirs.
func TestTriggerSourceIDsMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, db := migrateTo(t, 210)
	rows := []struct{ id, ws, source, sourceID, want string }{
		{"j1", "default", "trigger", "nightly", "default/nightly"},
		{"j2", "ops", "webhook", "deploy", "ops/deploy"},
		{"j3", "default", "hook", "j1", "j1"},
		{"j4", "default", "api", "", ""},
	}
	for _, r := range rows {
		_, err := db.ExecContext(ctx, `INSERT INTO jobs (id, workspace, task_name, status, source_type, source_id, created_at)
			VALUES (?, ?, 't', 'pending', ?, ?, 0)`, r.id, r.ws, r.source, r.sourceID)
		require.NoError(t, err)
	}
	want := map[string]string{}
	for _, r := range rows {
		want[r.id] = r.want
	}
	requireSourceIDsAfterMigrate(t, path, db, want)
}

// TestTaskSourceIDsMigration: 00241 gives the sub-jobs stored before it the
// upstream's source_id, "parent_job_id/step" (a for_each instance's step
// with its index), from the parent link their context keeps; other jobs,
// and a sub-job without that link, keep theirs.
func TestTaskSourceIDsMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, db := migrateTo(t, 230)
	const parent = "p1"
	link := func(step string) string {
		return `{"parent": {"job_id": "` + parent + `", "step_name": "` + step + `", "depth": 1}}`
	}
	rows := []struct{ id, source, sourceID, context, want string }{
		{parent, "api", "", "", ""},
		{"j1", "task", parent, link("cleanup"), parent + "/cleanup"},
		{"j2", "task", parent, link("fan[1]"), parent + "/fan[1]"},
		{"j3", "task", parent, link("a/b"), parent + "/a/b"},
		{"j4", "task", parent + "/done", link("done"), parent + "/done"},
		{"j5", "task", parent, "", parent},
		{"j6", "hook", parent, `{"hook": {"event": "on_success"}}`, parent},
		{"j7", "trigger", "default/nightly", link("x"), "default/nightly"},
	}
	for _, r := range rows {
		var jctx any
		if r.context != "" {
			jctx = r.context
		}
		_, err := db.ExecContext(ctx, `INSERT INTO jobs (id, workspace, task_name, status, source_type, source_id, context, created_at)
			VALUES (?, 'default', 't', 'pending', ?, ?, ?, 0)`, r.id, r.source, r.sourceID, jctx)
		require.NoError(t, err)
	}
	want := map[string]string{}
	for _, r := range rows {
		want[r.id] = r.want
	}
	requireSourceIDsAfterMigrate(t, path, db, want)
}

// requireSourceIDsAfterMigrate closes db, opens the store at path (which
// runs the pending migrations) and requires each job's source_id to be
// want's.
func requireSourceIDsAfterMigrate(t *testing.T, path string, db *sql.DB, want map[string]string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, db.Close())
	s, err := Open(ctx, path, nil)
	require.NoError(t, err)
	defer s.Close()
	for id, w := range want {
		var got string
		require.NoError(t, s.read.QueryRowContext(ctx, `SELECT source_id FROM jobs WHERE id = ?`, id).Scan(&got))
		require.Equal(t, w, got, "job %s", id)
	}
}
