package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Without a home folder (a service, a bare container) no session can have
// been kept: the client commands go on without one, as with an empty
// credentials file. They all failed with "neither $XDG_CONFIG_HOME nor
// $HOME are defined".
func TestClientCommandsWithoutAHomeFolder(t *testing.T) {
	t.Setenv("HOME", "")
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("STROEM_TOKEN", "")
	_, url := newFakeAPI(t)
	r := runCLI(t, t.Context(), "tasks", "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, "hello-world")

	// login has nowhere to keep the session: it says so.
	r = runCLIIn(t, t.Context(), "pw\n", "login", "--email", "a@example.com", "--password-stdin", "--server", url)
	require.Equal(t, 1, r.code, r.err)
	require.Contains(t, r.err, "find the user config dir")
}
