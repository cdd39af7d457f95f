package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	stroemhttp "github.com/stroem/stroem/http"
)

func TestServerConfigMaxConnections(t *testing.T) {
	t.Parallel()
	cfg := defaultServerConfig()
	require.Equal(t, stroemhttp.DefaultMaxConnections, cfg.HTTP.MaxConnections)

	path := filepath.Join(t.TempDir(), "server.yaml")
	require.NoError(t, os.WriteFile(path, []byte("worker_token: t\nlisten: 127.0.0.1:8080\nhttp:\n  max_connections: 10\n"), 0o600))
	require.NoError(t, loadConfig(path, &cfg, nil))
	require.Equal(t, 10, cfg.HTTP.MaxConnections)
	require.NoError(t, cfg.validate())

	cfg = defaultServerConfig()
	require.NoError(t, loadConfig(path, &cfg, []string{"STROEM__HTTP__MAX_CONNECTIONS=0"}))
	require.ErrorContains(t, cfg.validate(), "key http.max_connections: 0 is too small (at least 1)")
}
