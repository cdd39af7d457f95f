package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// Ctrl-C while a client command waits for the server is exit 130 without
// an error line (docs/operations.md), for every client command: whoami,
// api-keys revoke and login printed "…: context canceled" and exited 1.
func TestClientCommandsInterrupted(t *testing.T) {
	cfgDir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgDir)
	t.Setenv("HOME", cfgDir)
	t.Setenv("STROEM_TOKEN", "")
	arrived := make(chan struct{}, 1)
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select { // a server that does not answer
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) })
	for _, args := range [][]string{
		{"whoami"},
		{"api-keys", "revoke", "strm_a1b"},
		{"login", "--email", "a@example.com", "--password-stdin"},
		{"tasks"},
	} {
		if args[0] == "tasks" { // renewing the session is interrupted
			path, err := credentialsPath()
			require.NoError(t, err)
			require.NoError(t, saveCredentials(credentialFile{Servers: map[string]credential{
				srv.URL: {Email: "a@example.com", AccessToken: "expired", RefreshToken: "refresh"}}}, path))
		}
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-arrived
			cancel() // what Ctrl-C does to the command's context
		}()
		r := runCLIIn(t, ctx, "pw\n", append(args, "--server", srv.URL)...)
		cancel()
		require.Equal(t, 130, r.code, "%v: %s", args, r.err)
		require.Empty(t, r.err, args)
	}
}
