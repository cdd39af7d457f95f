package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence/dbtest"
)

func TestMigrateStatusJSON(t *testing.T) {
	t.Parallel()
	url := dbtest.EmptyURL(t)
	r := runCLI(t, t.Context(), "migrate", "status", "--db-url", url, "-o", "json")
	require.Equal(t, 0, r.code, r.err)
	var pending []migrationJSON
	require.NoError(t, json.Unmarshal([]byte(r.out), &pending), r.out)
	require.NotEmpty(t, pending)
	for _, m := range pending {
		require.False(t, m.Applied, m.Name)
		require.Nil(t, m.AppliedAt, m.Name)
	}
	require.Equal(t, int64(1), pending[0].Version)
	require.Equal(t, "00001_init.sql", pending[0].Name)

	r = runCLI(t, t.Context(), "migrate", "up", "--db-url", url, "--output", "json")
	require.Equal(t, 0, r.code, r.err)
	var applied []migrationJSON
	require.NoError(t, json.Unmarshal([]byte(r.out), &applied), r.out)
	require.Len(t, applied, len(pending))
	for _, m := range applied {
		require.True(t, m.Applied, m.Name)
		require.NotNil(t, m.AppliedAt, m.Name)
	}

	r = runCLI(t, t.Context(), "migrate", "status", "--db-url", url, "-o", "yaml")
	require.Equal(t, 2, r.code, r.err)
	require.Contains(t, r.err, `--output must be text or json, not "yaml"`)
}
