package postgres_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stroem/stroem/persistence/postgres"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// stepXmin returns the row version of a step, to prove a row was not written.
func stepXmin(t testing.TB, s *postgres.Store, jobID, step string) string {
	t.Helper()
	var xmin string
	require.NoError(t, s.Pool().QueryRow(context.Background(),
		`SELECT xmin::text FROM job_steps WHERE job_id = $1 AND step_name = $2`, jobID, step).Scan(&xmin))
	return xmin
}
