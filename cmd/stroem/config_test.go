package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadConfigFileAndEnv(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "server.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
listen: "127.0.0.1:9000"
db:
  url: "postgres://a@b/c"
worker_token: from-file
lease: 15s
`), 0o600))
	cfg := defaultServerConfig()
	err := loadConfig(path, &cfg, []string{
		"STROEM__WORKER_TOKEN=from-env",
		"STROEM__LOG_STORAGE__LOCAL_DIR=/tmp/logs",
		"STROEM__MAX_BODY_BYTES=2048",
		"OTHER=ignored",
	})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9000", cfg.Listen)
	require.Equal(t, "postgres://a@b/c", cfg.DB.URL)
	require.Equal(t, "from-env", cfg.WorkerToken)
	require.Equal(t, "/tmp/logs", cfg.LogStorage.LocalDir)
	require.Equal(t, int64(2048), cfg.MaxBodyBytes)
	require.Equal(t, 15*time.Second, cfg.Lease)
	require.Equal(t, "./workspace", cfg.Workspaces["default"].Path, "defaults survive")
	require.NoError(t, cfg.validate())
}

func TestLoadConfigErrorsNameFileAndKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	tests := []struct {
		name    string
		path    string
		env     []string
		wantErr []string
	}{
		{"missing file", filepath.Join(dir, "nope.yaml"), nil, []string{"nope.yaml", "no such file"}},
		{"unknown key", write("unknown.yaml", "listen: x\nlistn: y\n"), nil, []string{"unknown.yaml", "listn"}},
		{"wrong type", write("type.yaml", "max_body_bytes: lots\n"), nil, []string{"type.yaml", "line 1", "lots"}},
		{"malformed", write("bad.yaml", "listen: [\n"), nil, []string{"bad.yaml"}},
		{"bad env value", "", []string{"STROEM__LEASE=soon"}, []string{"STROEM__LEASE", "soon"}},
		{"unknown env key", "", []string{"STROEM__DB__URLL=x"}, []string{"STROEM__DB__URLL", "urll"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultServerConfig()
			err := loadConfig(tt.path, &cfg, tt.env)
			require.Error(t, err)
			for _, want := range tt.wantErr {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestWorkerConfigDefaultsAndValidation(t *testing.T) {
	t.Parallel()
	cfg := defaultWorkerConfig()
	require.NoError(t, loadConfig("", &cfg, []string{"STROEM__WORKER_TOKEN=t", "STROEM__CAPABILITIES=[shell, docker]"}))
	require.NoError(t, cfg.validate())
	require.Equal(t, []string{"shell", "docker"}, cfg.Capabilities)
	cfg.MaxConcurrent = 0
	require.ErrorContains(t, cfg.validate(), "max_concurrent")
}

func TestLoadConfigOverridesMergeIntoMapEntries(t *testing.T) {
	t.Parallel()
	// Two overrides of one workspace entry: both keys stay.
	cfg := defaultServerConfig()
	require.NoError(t, loadConfig("", &cfg, []string{
		"STROEM__WORKSPACES__DEFAULT__PATH=/srv/ws",
		"STROEM__WORKSPACES__DEFAULT__TYPE=folder",
		"STROEM__WORKER_TOKEN=t",
		"STROEM__LISTEN=127.0.0.1:8080",
	}))
	require.Equal(t, map[string]workspaceConfig{"default": {Type: "folder", Path: "/srv/ws"}}, cfg.Workspaces)
	require.NoError(t, cfg.validate())

	// An override of one key of a workspace from the file keeps its other
	// keys; configured workspaces replace the built-in default.
	path := filepath.Join(t.TempDir(), "server.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
worker_token: x
workspaces:
  ops:
    path: /srv/ops
`), 0o600))
	cfg = defaultServerConfig()
	require.NoError(t, loadConfig(path, &cfg, []string{"STROEM__WORKSPACES__OPS__TYPE=folder", "STROEM__LEASE=20s"}))
	require.Equal(t, map[string]workspaceConfig{"ops": {Type: "folder", Path: "/srv/ops"}}, cfg.Workspaces)
	require.Equal(t, 20*time.Second, cfg.Lease)
	require.Equal(t, "x", cfg.WorkerToken)
}

func TestServerConfigStartTimeout(t *testing.T) {
	t.Parallel()
	cfg := defaultServerConfig()
	cfg.WorkerToken, cfg.Listen = "t", "127.0.0.1:8080"
	require.NoError(t, cfg.validate(), "0 means the default")
	cfg.StartTimeout = 2 * time.Second
	require.NoError(t, cfg.validate())
	cfg.StartTimeout = 50 * time.Millisecond
	require.ErrorContains(t, cfg.validate(), "key start_timeout: 50ms is too short")
	cfg.StartTimeout = 6 * time.Second // lease 10s
	require.ErrorContains(t, cfg.validate(), "key start_timeout: 6s must be at most half the lease (10s)")
	cfg.StartTimeout = -time.Second
	require.ErrorContains(t, cfg.validate(), "key start_timeout")
}

func TestDefaultStepTimeoutConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "s.yaml")
	require.NoError(t, os.WriteFile(p, []byte("worker_token: x\nlisten: 127.0.0.1:8080\ndefault_step_timeout: 30m\n"), 0o600))
	cfg := defaultServerConfig()
	require.NoError(t, loadConfig(p, &cfg, nil))
	require.Equal(t, 30*time.Minute, cfg.DefaultStepTimeout)
	require.NoError(t, cfg.validate())
	cfg.DefaultStepTimeout = 25 * time.Hour
	require.EqualError(t, cfg.validate(), "key default_step_timeout: 25h0m0s is out of range (0 to 24h)")
}

func TestGitWorkspaceConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`worker_token: t
listen: 127.0.0.1:8080
workspaces:
  data-team:
    type: git
    url: https://example.invalid/org/data.git
    ref: main
    poll_interval_secs: 30
    max_size_bytes: 1000000
    auth:
      type: token
      token: ref+env://GIT_TOKEN
`), 0o644))
	cfg := defaultServerConfig()
	require.NoError(t, loadConfig(path, &cfg, []string{"STROEM__WORKSPACES__DATA-TEAM__AUTH__USERNAME=oauth2"}))
	require.NoError(t, cfg.validate())
	w := cfg.Workspaces["data-team"]
	require.Equal(t, "git", w.Type)
	require.Equal(t, "main", w.Ref)
	require.Equal(t, 30, w.PollIntervalSecs)
	require.Equal(t, "oauth2", w.Auth.Username)

	// The token reference is resolved when the source is built; a missing
	// variable names the key, not a value.
	t.Setenv("GIT_TOKEN", "")
	_, err := w.gitSource("data-team", t.TempDir())
	require.ErrorContains(t, err, "token")

	for _, tt := range []struct {
		name string
		mod  func(w *workspaceConfig)
		want string
	}{
		{"no url", func(w *workspaceConfig) { w.URL = "" }, "workspaces.x.url: must be set"},
		{"two refs", func(w *workspaceConfig) { w.Tag = "v1" }, "only one of ref, branch, tag and commit"},
		{"short commit", func(w *workspaceConfig) { w.Ref = ""; w.Commit = "abc" }, "not a full commit sha"},
		{"path", func(w *workspaceConfig) { w.Path = "./x" }, "a git workspace has no path"},
		{"auth type", func(w *workspaceConfig) { w.Auth.Type = "password" }, `auth.type: "password" is not supported`},
		{"ssh without key", func(w *workspaceConfig) { w.Auth = gitAuthConfig{Type: "ssh_key"} }, "private_key and private_key_path"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.Workspaces = map[string]workspaceConfig{"x": w}
			ws := c.Workspaces["x"]
			tt.mod(&ws)
			c.Workspaces["x"] = ws
			require.ErrorContains(t, c.validate(), tt.want)
		})
	}
	folder := cfg
	folder.Workspaces = map[string]workspaceConfig{"f": {Type: "folder", Path: "."}}
	fw := folder.Workspaces["f"]
	fw.URL = "https://x"
	folder.Workspaces["f"] = fw
	require.ErrorContains(t, folder.validate(), "only a git workspace has a url")
}
