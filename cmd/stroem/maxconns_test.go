package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	stroemhttp "github.com/stroem/stroem/http"
)

func TestServerConfigMaxConnections(t *testing.T) {
	t.Parallel()
	cfg := defaultServerConfig()
	require.Equal(t, stroemhttp.DefaultMaxConnections, cfg.HTTP.MaxConnections)

	path := configFile(t, "server.yaml", "worker_token: t\nlisten: 127.0.0.1:8080\nhttp:\n  max_connections: 10\n")
	require.NoError(t, loadConfig(path, &cfg, nil))
	require.Equal(t, 10, cfg.HTTP.MaxConnections)
	require.NoError(t, cfg.validate())

	cfg = loadServerConfig(t, path, "STROEM__HTTP__MAX_CONNECTIONS=0")
	require.ErrorContains(t, cfg.validate(), "key http.max_connections: 0 is too small (at least 1)")
}
