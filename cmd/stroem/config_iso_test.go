package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigSecretHygieneKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	srv := defaultServerConfig()
	require.NoError(t, loadConfig(write("s.yaml", "worker_token: t\nlisten: 127.0.0.1:8080\nwebhooks:\n  headers: [X-GitHub-Event, X-Custom]\n"), &srv, nil))
	require.NoError(t, srv.validate())
	require.Equal(t, []string{"X-GitHub-Event", "X-Custom"}, srv.Webhooks.Headers)

	srv = defaultServerConfig()
	require.NoError(t, loadConfig(write("s2.yaml", "worker_token: t\nlisten: 127.0.0.1:8080\nwebhooks:\n  headers: [Cookie]\n"), &srv, nil))
	require.ErrorContains(t, srv.validate(), "key webhooks.headers: Cookie carries credentials")

	wk := defaultWorkerConfig()
	require.NoError(t, loadConfig(write("w.yaml", "worker_token: t\npass_env: [HTTPS_PROXY, STROEM__WORKER_TOKEN]\n"), &wk, nil))
	require.ErrorContains(t, wk.validate(), "key pass_env: \"STROEM__WORKER_TOKEN\"")
	wk.PassEnv = []string{"HTTPS_PROXY"}
	require.NoError(t, wk.validate())
}
