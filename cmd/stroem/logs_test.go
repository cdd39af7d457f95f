package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// logs --step with a step the job does not have says so (exit 1), as GET
// /api/jobs/{id}/steps/{step}/logs does: it printed nothing and exited 0,
// and with --follow waited out the whole job to print nothing. A loop
// instance is a step too, also before its loop expanded.
func TestLogsOfAStepTheJobDoesNotHave(t *testing.T) {
	t.Parallel()
	_, url := newFakeAPI(t)
	for _, args := range [][]string{
		{"logs", testJobID, "--step", "say-helo"},
		{"logs", testJobID, "--step", "say-helo", "--follow"},
		{"logs", testJobID, "--step", "say-helo", "-o", "json"},
	} {
		r := runCLI(t, t.Context(), append(args, "--server", url)...)
		require.Equal(t, 1, r.code, "%v: %s", args, r.err)
		require.Equal(t, `stroem: job `+testJobID+` has no step "say-helo" (its steps: say-hello, shout-it)`+"\n", r.err, args)
		require.Empty(t, r.out, args)
	}
	r := runCLI(t, t.Context(), "logs", testJobID, "--step", "say-hello[1]", "--server", url)
	require.Equal(t, 0, r.code, r.err)
}
