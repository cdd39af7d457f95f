package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// An unknown subcommand of a command that groups others (state,
// artifacts, api-keys, admin) is a usage error, exit 2, as at the top
// level: `stroem state lst` printed the help and exited 0, so a script
// took the typo for success.
func TestUnknownSubcommandIsAUsageError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"state", "lst"}, `stroem: unknown command "lst" for "stroem state" (did you mean "list"?); see 'stroem state --help'` + "\n"},
		{[]string{"artifacts", "downlaod", "x"}, `stroem: unknown command "downlaod" for "stroem artifacts" (did you mean "download"?); see 'stroem artifacts --help'` + "\n"},
		{[]string{"api-keys", "bogus"}, `stroem: unknown command "bogus" for "stroem api-keys"; see 'stroem api-keys --help'` + "\n"},
		{[]string{"admin", "prun"}, `stroem: unknown command "prun" for "stroem admin" (did you mean "prune"?); see 'stroem admin --help'` + "\n"},
	} {
		r := runCLI(t, t.Context(), tc.args...)
		require.Equal(t, 2, r.code, "%v: %s", tc.args, r.err)
		require.Equal(t, tc.err, r.err, tc.args)
		require.Empty(t, r.out, tc.args)
	}
	r := runCLI(t, t.Context(), "state")
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, "Usage:", "a group alone prints its help")
}
