package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/auth"
)

// api-keys create checks its NAME and --expires-in-days as the server
// does, before the request: a usage error (exit 2) in one clear line, not
// the server's 400 (exit 1) with its problem printed twice.
func TestAPIKeysCreateChecksItsArguments(t *testing.T) {
	t.Parallel()
	_, url := newFakeAPI(t)
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"api-keys", "create", "ci", "--expires-in-days", "36501"}, "stroem: --expires-in-days 36501: want 1 to 36500, or 0 for a key that never expires\n"},
		{[]string{"api-keys", "create", "ci", "--expires-in-days", "-1"}, "stroem: --expires-in-days -1: want 1 to 36500, or 0 for a key that never expires\n"},
		{[]string{"api-keys", "create", " "}, "stroem: NAME must not be empty\n"},
	} {
		r := runCLI(t, t.Context(), append(tc.args, "--server", url)...)
		require.Equal(t, 2, r.code, "%v: %s", tc.args, r.err)
		require.Equal(t, tc.err, r.err, tc.args)
	}
	require.Equal(t, 36500, auth.MaxAPIKeyDays, "the CLI's bound is the server's")
}
