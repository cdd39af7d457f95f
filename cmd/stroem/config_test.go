package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadConfigFileAndEnv(t *testing.T) {
	t.Parallel()
	path := configFile(t, "server.yaml", `
listen: "127.0.0.1:9000"
db:
  url: "postgres://a@b/c"
worker_token: from-file
lease: 15s
`)
	cfg := loadServerConfig(t, path,
		"STROEM__WORKER_TOKEN=from-env",
		"STROEM__LOG_STORAGE__LOCAL_DIR=/tmp/logs",
		"STROEM__MAX_BODY_BYTES=2048",
		"OTHER=ignored",
	)
	require.Equal(t, "127.0.0.1:9000", cfg.Listen)
	require.Equal(t, "postgres://a@b/c", cfg.DB.URL)
	require.Equal(t, "from-env", cfg.WorkerToken)
	require.Equal(t, "/tmp/logs", cfg.LogStorage.LocalDir)
	require.Equal(t, int64(2048), cfg.MaxBodyBytes)
	require.Equal(t, 15*time.Second, cfg.Lease)
	require.Equal(t, "./workspace", cfg.Workspaces["default"].Path, "defaults survive")
	require.NoError(t, cfg.validate())
}

// Configuration errors name the file or variable and the key, and what is
// accepted, in the user's words: no Go type names, a suggestion for a typo.
func TestConfigErrorsSayKeyAndFix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		path     string
		env      []string
		want     []string
		worker   bool
		wantNone []string
	}{
		{name: "missing file", path: filepath.Join(t.TempDir(), "nope.yaml"), want: []string{"nope.yaml", "no such file"}},
		{name: "unknown key", path: configFile(t, "unknown.yaml", "listen: x\nlistn: y\n"), want: []string{"unknown.yaml", "listn"}},
		{name: "wrong type", path: configFile(t, "type.yaml", "max_body_bytes: lots\n"), want: []string{"type.yaml", "line 1", "lots"}},
		{name: "malformed", path: configFile(t, "bad.yaml", "listen: [\n"), want: []string{"bad.yaml"}},
		{name: "bad env value", env: []string{"STROEM__LEASE=soon"}, want: []string{"STROEM__LEASE", "soon"}},
		{name: "unknown env key", env: []string{"STROEM__DB__URLL=x"}, want: []string{"STROEM__DB__URLL", "urll"}},
		{name: "typo in file", path: configFile(t, "typo.yaml", "listn: x\n"),
			want: []string{"typo.yaml", "line 1", "key listn: unknown key", `did you mean "listen"?`}},
		{name: "typo nested", path: configFile(t, "nested.yaml", "db:\n  ulr: x\n"),
			want: []string{"line 2", "key db.ulr: unknown key", `did you mean "url"?`}},
		{name: "typo in a workspace", path: configFile(t, "ws.yaml", "workspaces:\n  ops:\n    pth: ./x\n"),
			want: []string{"key workspaces.ops.pth: unknown key", `did you mean "path"?`}},
		{name: "far from any key", path: configFile(t, "far.yaml", "zzzzzzzzzz: 1\n"),
			want: []string{"key zzzzzzzzzz: unknown key"}, wantNone: []string{"did you mean"}},
		{name: "bad duration in file", path: configFile(t, "dur.yaml", "lease: abc\n"),
			want: []string{"dur.yaml", "line 1", `key lease: "abc" is not a duration`, "30s"}},
		{name: "bad number in file", path: configFile(t, "num.yaml", "max_body_bytes: lots\n"),
			want: []string{`key max_body_bytes: "lots" is not a whole number`}},
		{name: "unknown env key", env: []string{"STROEM__BOGUS=1"},
			want: []string{"environment STROEM__BOGUS", "key bogus: unknown key (docs/operations.md#configuration lists every key)"}},
		{name: "env typo", env: []string{"STROEM__LISTN=x"},
			want: []string{"environment STROEM__LISTN", `did you mean "listen"?`}},
		{name: "bad env duration", env: []string{"STROEM__LEASE=abc"},
			want: []string{"environment STROEM__LEASE", `key lease: "abc" is not a duration`}},
		{name: "bad nested env duration", env: []string{"STROEM__HTTP__READ_TIMEOUT=soon"},
			want: []string{`key http.read_timeout: "soon" is not a duration`}},
		{name: "worker typo", worker: true, env: []string{"STROEM__MAX_CONCURENT=3"},
			want: []string{`did you mean "max_concurrent"?`}},
		{name: "worker bad number", worker: true, env: []string{"STROEM__MAX_CONCURRENT=many"},
			want: []string{`key max_concurrent: "many" is not a whole number`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.worker {
				cfg := defaultWorkerConfig()
				err = loadConfig(tt.path, &cfg, tt.env)
			} else {
				cfg := defaultServerConfig()
				err = loadConfig(tt.path, &cfg, tt.env)
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			if tt.path == "" {
				tt.wantNone = append(tt.wantNone, "line ")
			}
			for _, w := range append(tt.wantNone, "main.", "time.Duration", "unmarshal", "\n") {
				require.NotContains(t, err.Error(), w)
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
	cfg := loadServerConfig(t, "",
		"STROEM__WORKSPACES__DEFAULT__PATH=/srv/ws",
		"STROEM__WORKSPACES__DEFAULT__TYPE=folder",
		"STROEM__WORKER_TOKEN=t",
		"STROEM__LISTEN=127.0.0.1:8080",
	)
	require.Equal(t, map[string]workspaceConfig{"default": {Type: "folder", Path: "/srv/ws"}}, cfg.Workspaces)
	require.NoError(t, cfg.validate())

	// An override of one key of a workspace from the file keeps its other
	// keys; configured workspaces replace the built-in default.
	path := configFile(t, "server.yaml", `
worker_token: x
workspaces:
  ops:
    path: /srv/ops
`)
	cfg = loadServerConfig(t, path, "STROEM__WORKSPACES__OPS__TYPE=folder", "STROEM__LEASE=20s")
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
	cfg := loadServerConfig(t, p)
	require.Equal(t, 30*time.Minute, cfg.DefaultStepTimeout)
	require.NoError(t, cfg.validate())
	cfg.DefaultStepTimeout = 25 * time.Hour
	require.EqualError(t, cfg.validate(), "key default_step_timeout: 25h0m0s is out of range (0 to 24h)")
}

func TestGitWorkspaceConfig(t *testing.T) {
	path := configFile(t, "c.yaml", `worker_token: t
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
`)
	cfg := loadServerConfig(t, path, "STROEM__WORKSPACES__DATA-TEAM__AUTH__USERNAME=oauth2")
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

func TestWorkerTokenErrorSaysWhereToSetIt(t *testing.T) {
	t.Parallel()
	s := defaultServerConfig()
	require.ErrorContains(t, s.validate(), "STROEM__WORKER_TOKEN")
	w := defaultWorkerConfig()
	require.ErrorContains(t, w.validate(), "STROEM__WORKER_TOKEN")
}

// Relative paths in a configuration file are relative to the file, so the
// README's server.yaml means the same from any working directory; paths
// from the environment stay relative to the working directory.
func TestConfigPathsRelativeToTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "conf", "server.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(`
workspaces:
  default: {type: folder, path: ./examples/workspace}
  abs: {type: folder, path: /srv/ws}
  ops:
    type: git
    url: https://example.com/ops.git
    auth: {type: ssh, private_key_path: keys/id}
git_cache_dir: cache
`), 0o600))
	cfg := loadServerConfig(t, path, "STROEM__WORKSPACES__ENV__PATH=./here")
	confDir := filepath.Dir(path)
	require.Equal(t, filepath.Join(confDir, "examples/workspace"), cfg.Workspaces["default"].Path)
	require.Equal(t, "/srv/ws", cfg.Workspaces["abs"].Path)
	require.Equal(t, filepath.Join(confDir, "keys/id"), cfg.Workspaces["ops"].Auth.PrivateKeyPath)
	require.Equal(t, filepath.Join(confDir, "cache"), cfg.GitCacheDir)
	require.Equal(t, "./here", cfg.Workspaces["env"].Path)

	wpath := filepath.Join(confDir, "worker.yaml")
	require.NoError(t, os.WriteFile(wpath, []byte("work_dir: work\n"), 0o600))
	wcfg := defaultWorkerConfig()
	require.NoError(t, loadConfig(wpath, &wcfg, nil))
	require.Equal(t, filepath.Join(confDir, "work"), wcfg.WorkDir)
}

// A missing role is said once, with how to create it.
func TestDBErrorOnceWithHint(t *testing.T) {
	t.Parallel()
	err := explainDBError(errors.New("database unavailable: cannot connect to PostgreSQL at localhost:5432: failed to connect to `user=stroem database=stroem`:\n" +
		"\t127.0.0.1:5432 (localhost): server error: FATAL: role \"stroem\" does not exist (SQLSTATE 28000)\n" +
		"\t127.0.0.1:5432 (localhost): server error: FATAL: role \"stroem\" does not exist (SQLSTATE 28000)"))
	require.Equal(t, 1, strings.Count(err.Error(), "does not exist"))
	require.Contains(t, err.Error(), "CREATE ROLE stroem")
	require.Contains(t, err.Error(), "docs/operations.md#postgresql")
}

// A duration of 0 needs no unit, in the file and in the environment.
func TestConfigZeroDuration(t *testing.T) {
	t.Parallel()
	path := configFile(t, "server.yaml", "default_step_timeout: 0\nstart_timeout: 0\n")
	cfg := defaultServerConfig()
	cfg.DefaultStepTimeout = time.Minute
	require.NoError(t, loadConfig(path, &cfg, []string{"STROEM__SHUTDOWN_GRACE=0"}))
	require.Zero(t, cfg.DefaultStepTimeout)
	require.Zero(t, cfg.StartTimeout)
	require.Zero(t, cfg.ShutdownGrace)
}

func TestConfigSecretHygieneKeys(t *testing.T) {
	t.Parallel()
	srv := defaultServerConfig()
	require.NoError(t, loadConfig(configFile(t, "s.yaml", "worker_token: t\nlisten: 127.0.0.1:8080\nwebhooks:\n  headers: [X-GitHub-Event, X-Custom]\n"), &srv, nil))
	require.NoError(t, srv.validate())
	require.Equal(t, []string{"X-GitHub-Event", "X-Custom"}, srv.Webhooks.Headers)

	srv = defaultServerConfig()
	require.NoError(t, loadConfig(configFile(t, "s2.yaml", "worker_token: t\nlisten: 127.0.0.1:8080\nwebhooks:\n  headers: [Cookie]\n"), &srv, nil))
	require.ErrorContains(t, srv.validate(), "key webhooks.headers: Cookie carries credentials")

	wk := defaultWorkerConfig()
	require.NoError(t, loadConfig(configFile(t, "w.yaml", "worker_token: t\npass_env: [HTTPS_PROXY, STROEM__WORKER_TOKEN]\n"), &wk, nil))
	require.ErrorContains(t, wk.validate(), "key pass_env: \"STROEM__WORKER_TOKEN\"")
	wk.PassEnv = []string{"HTTPS_PROXY"}
	require.NoError(t, wk.validate())
}

// configFile writes body as the config file name in a new temporary
// directory and returns its path.
func configFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// loadServerConfig is the server configuration from the file at path ("":
// none) and the STROEM__ variables env, which must load.
func loadServerConfig(t *testing.T, path string, env ...string) serverConfig {
	t.Helper()
	cfg := defaultServerConfig()
	require.NoError(t, loadConfig(path, &cfg, env))
	return cfg
}

// The upstream's worker file (the runners guide's combined config) starts
// this worker: its script capability is this worker's shell, the container
// runners it lacks are left out (it would claim their steps only to fail
// them), and each key it does not use is named in a warning.
func TestUpstreamWorkerConfigStarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`server_url: "http://stroem-server:8080"
worker_token: "your-token"
worker_name: "worker-1"
max_concurrent: 4
poll_interval_secs: 2
workspace_cache_dir: /var/stroem/workspace-cache
capabilities:
  - script
  - docker
  - kubernetes
runner_image: "ghcr.io/fremvaerk/stroem-runner:latest"
docker: {}
kubernetes:
  namespace: stroem-jobs
tags: [gpu]
exclusive: true
`), 0o600))
	cfg, notes, err := readWorkerConfig(path)
	require.NoError(t, err)
	require.Equal(t, []string{"shell"}, cfg.Capabilities)
	require.Equal(t, "worker-1", cfg.WorkerName)
	all := strings.Join(notes, "\n")
	for _, want := range []string{`capability "docker" is left out`, `capability "kubernetes" is left out`,
		"key poll_interval_secs is not used", "key workspace_cache_dir is not used",
		"keys runner_image, docker and kubernetes are not used"} {
		require.Contains(t, all, want)
	}
	require.NotContains(t, all, "exclusive", "tags route steps: exclusive is used")
	require.Equal(t, []string{"gpu"}, cfg.Tags)
	require.True(t, cfg.Exclusive)

	// Our own names pass through, once each.
	for caps, want := range map[string][]string{
		"[shell, script, shell]": {"shell"},
		"[shell, custom]":        {"shell", "custom"},
	} {
		require.NoError(t, os.WriteFile(path, []byte("worker_token: t\ncapabilities: "+caps+"\n"), 0o600))
		cfg, notes, err := readWorkerConfig(path)
		require.NoError(t, err)
		require.Equal(t, want, cfg.Capabilities, caps)
		if caps == "[shell, custom]" {
			require.Empty(t, notes)
		}
	}
	// A worker meant for containers only does not become a script worker.
	require.NoError(t, os.WriteFile(path, []byte("worker_token: t\ncapabilities: [docker, kubernetes]\n"), 0o600))
	_, _, err = readWorkerConfig(path)
	require.ErrorContains(t, err, "key capabilities: this worker runs none of docker, kubernetes")
	var ee *exitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 2, ee.code)
}
