package sqlite

import (
	"context"
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
	require.NoError(t, db.Close())
	s, err := Open(ctx, path, nil)
	require.NoError(t, err)
	defer s.Close()
	for _, r := range rows {
		var got string
		require.NoError(t, s.read.QueryRowContext(ctx, `SELECT source_id FROM jobs WHERE id = ?`, r.id).Scan(&got))
		require.Equal(t, r.want, got, "%s job", r.source)
	}
}
