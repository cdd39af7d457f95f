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

// Configuration errors name the key and what is accepted, in the user's
// words: no Go type names, a suggestion for a typo.
func TestConfigErrorsSayKeyAndFix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	tests := []struct {
		name     string
		path     string
		env      []string
		want     []string
		worker   bool
		wantNone []string
	}{
		{name: "typo in file", path: write("typo.yaml", "listn: x\n"),
			want: []string{"typo.yaml", "line 1", "key listn: unknown key", `did you mean "listen"?`}},
		{name: "typo nested", path: write("nested.yaml", "db:\n  ulr: x\n"),
			want: []string{"line 2", "key db.ulr: unknown key", `did you mean "url"?`}},
		{name: "typo in a workspace", path: write("ws.yaml", "workspaces:\n  ops:\n    pth: ./x\n"),
			want: []string{"key workspaces.ops.pth: unknown key", `did you mean "path"?`}},
		{name: "far from any key", path: write("far.yaml", "zzzzzzzzzz: 1\n"),
			want: []string{"key zzzzzzzzzz: unknown key"}, wantNone: []string{"did you mean"}},
		{name: "bad duration in file", path: write("dur.yaml", "lease: abc\n"),
			want: []string{"dur.yaml", "line 1", `key lease: "abc" is not a duration`, "30s"}},
		{name: "bad number in file", path: write("num.yaml", "max_body_bytes: lots\n"),
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
	cfg := defaultServerConfig()
	require.NoError(t, loadConfig(path, &cfg, []string{"STROEM__WORKSPACES__ENV__PATH=./here"}))
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
	path := filepath.Join(t.TempDir(), "server.yaml")
	require.NoError(t, os.WriteFile(path, []byte("default_step_timeout: 0\nstart_timeout: 0\n"), 0o600))
	cfg := defaultServerConfig()
	cfg.DefaultStepTimeout = time.Minute
	require.NoError(t, loadConfig(path, &cfg, []string{"STROEM__SHUTDOWN_GRACE=0"}))
	require.Zero(t, cfg.DefaultStepTimeout)
	require.Zero(t, cfg.StartTimeout)
	require.Zero(t, cfg.ShutdownGrace)
}
