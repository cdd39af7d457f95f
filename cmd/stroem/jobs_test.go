package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// --limit beyond what the API serves (1–1000, docs/api.md) is a usage
// error before any request, as --limit 0 is: it was the server's 400,
// exit 1, with its message printed twice.
func TestJobsLimitAboveTheAPIsMaximum(t *testing.T) {
	t.Parallel()
	f, url := newFakeAPI(t)
	for _, n := range []string{"1001", "99999999999"} {
		r := runCLI(t, t.Context(), "jobs", "--limit", n, "--server", url)
		require.Equal(t, 2, r.code, r.err)
		require.Equal(t, "stroem: --limit "+n+": want 1 to 1000\n", r.err)
	}
	require.Empty(t, f.queries, "no request")
	r := runCLI(t, t.Context(), "jobs", "--limit", "1000", "--server", url)
	require.Equal(t, 0, r.code, r.err)
}
