package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Every command taking a JOB accepts a unique prefix of its id (jobid.go),
// approve and artifacts too: status prints the short ids.
func TestShortJobIDsOfApproveAndArtifacts(t *testing.T) {
	t.Parallel()
	_, url := newFakeAPI(t)
	for _, args := range [][]string{
		{"approve", "0b7e2c", "say-hello"},
		{"artifacts", "list", "0b7e2c"},
		{"artifacts", "download", "0b7e2c", "report.txt"},
	} {
		r := runCLI(t, t.Context(), append(args, "--server", url)...)
		require.Equal(t, 0, r.code, "%v: %s", args, r.err)
	}
	r := runCLI(t, t.Context(), "approve", "0b7", "say-hello", "--server", url)
	require.Equal(t, 2, r.code, r.err)
	require.Contains(t, r.err, `"0b7" is not a job id`)
	r = runCLI(t, t.Context(), "artifacts", "list", "zz-top", "--server", url)
	require.Equal(t, 2, r.code, r.err)
}
