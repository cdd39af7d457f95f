package gitsource_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/workspace"
	"github.com/stroem/stroem/workspace/gitsource"
	"github.com/stroem/stroem/workspace/gitsource/gittest"
)

func flow(tasks ...string) string {
	var b strings.Builder
	b.WriteString("actions:\n  hello:\n    type: shell\n    cmd: echo hello\ntasks:\n")
	for _, t := range tasks {
		b.WriteString("  " + t + ":\n    flow:\n      s:\n        action: hello\n")
	}
	return b.String()
}

func newSource(t *testing.T, cfg gitsource.Config) *gitsource.Source {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := gitsource.New(cfg)
	require.NoError(t, err)
	return s
}

func read(t *testing.T, dir, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	require.NoError(t, err)
	return string(b)
}

// synced is a sync of s that must succeed (keep: the version to keep).
func synced(t *testing.T, s *gitsource.Source, keep string) workspace.SyncResult {
	t.Helper()
	res, err := s.Sync(context.Background(), keep)
	require.NoError(t, err)
	return res
}

func TestSyncBranchTagCommitAndForcePush(t *testing.T) {
	r := gittest.New(t)
	a := r.Commit("a", map[string]string{".workflows/w.yaml": flow("one"), "run.sh": "echo a\n"})
	r.Push()
	r.Tag("v1")
	ctx := context.Background()

	branch := newSource(t, gitsource.Config{URL: r.URL, Ref: "main"})
	res := synced(t, branch, "")
	require.Equal(t, a, res.Version)
	require.Equal(t, "echo a\n", read(t, res.Dir, "run.sh"))
	info, err := os.Stat(filepath.Join(res.Dir, "run.sh"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o755), info.Mode().Perm(), "the executable bit is kept")

	b := r.Commit("b", map[string]string{"run.sh": "echo b\n"})
	r.Push()
	resB := synced(t, branch, res.Version)
	require.Equal(t, b, resB.Version)
	require.Equal(t, "echo b\n", read(t, resB.Dir, "run.sh"))
	require.Equal(t, "echo a\n", read(t, res.Dir, "run.sh"), "the kept version's folder is untouched")

	// Default ref: the remote's HEAD (main).
	head := newSource(t, gitsource.Config{URL: r.URL})
	resH := synced(t, head, "")
	require.Equal(t, b, resH.Version)

	// A tag and a commit stay where they point.
	tag := newSource(t, gitsource.Config{URL: r.URL, Ref: "v1"})
	resT := synced(t, tag, "")
	require.Equal(t, a, resT.Version)
	pinned := newSource(t, gitsource.Config{URL: r.URL, Ref: a})
	resP := synced(t, pinned, "")
	require.Equal(t, a, resP.Version)

	// Force-push: main is rewritten to a after a, dropping b.
	r.Reset(a)
	c := r.Commit("c", map[string]string{"run.sh": "echo c\n"})
	r.Push()
	resC := synced(t, branch, resB.Version)
	require.Equal(t, c, resC.Version)
	require.Equal(t, "echo c\n", read(t, resC.Dir, "run.sh"))
	_, err = os.Stat(res.Dir)
	require.True(t, os.IsNotExist(err), "folders of versions neither current nor kept are removed")

	missing := newSource(t, gitsource.Config{URL: r.URL, Ref: "nope"})
	_, err = missing.Sync(ctx, "")
	require.ErrorContains(t, err, `ref "nope" is neither a branch nor a tag`)
}

func TestSizeLimit(t *testing.T) {
	r := gittest.New(t)
	r.Commit("big", map[string]string{".workflows/w.yaml": flow("one"), "data.bin": strings.Repeat("x", 5000)})
	r.Push()
	s := newSource(t, gitsource.Config{URL: r.URL, MaxBytes: 1000})
	_, err := s.Sync(context.Background(), "")
	require.ErrorContains(t, err, "over the size limit")
	require.ErrorContains(t, err, "1000 bytes")
}

func TestCredentialsNeverInErrors(t *testing.T) {
	const token = "s3cr3t-token-value"
	var sawAuth bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pw, ok := r.BasicAuth()
		sawAuth = sawAuth || (ok && pw == token)
		w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
		http.Error(w, "denied", http.StatusUnauthorized)
	}))
	defer srv.Close()
	for name, cfg := range map[string]gitsource.Config{
		"token":        {URL: srv.URL + "/repo.git", Auth: gitsource.Auth{Type: gitsource.AuthToken, Token: token}},
		"url userinfo": {URL: strings.Replace(srv.URL, "http://", "http://user:"+token+"@", 1) + "/repo.git"},
	} {
		t.Run(name, func(t *testing.T) {
			s := newSource(t, cfg)
			_, err := s.Sync(context.Background(), "")
			require.Error(t, err)
			require.NotContains(t, err.Error(), token)
			require.NotContains(t, s.Describe(), token)
		})
	}
	require.True(t, sawAuth, "the token was sent to the server")

	_, err := gitsource.New(gitsource.Config{URL: "ssh://git@h/r", Dir: t.TempDir(), Auth: gitsource.Auth{Type: gitsource.AuthSSH, PrivateKey: []byte("not a key " + token)}})
	require.ErrorContains(t, err, "ssh private key cannot be used")
	require.NotContains(t, err.Error(), token)
	_, err = gitsource.New(gitsource.Config{URL: "x", Dir: t.TempDir(), Auth: gitsource.Auth{Type: "password"}})
	require.ErrorContains(t, err, `auth type "password" is not supported`)
}

// registry syncs a git workspace and checks what it serves.
func TestRegistryKeepsLastGoodRevision(t *testing.T) {
	r := gittest.New(t)
	good := r.Commit("good", map[string]string{".workflows/w.yaml": flow("one")})
	r.Push()
	reg := workspace.NewRegistry(nil, slog.New(slog.DiscardHandler))
	var swapped []string
	reg.OnReload(func(ws *workspace.Workspace) { swapped = append(swapped, ws.Revision) })
	reg.AddSource(context.Background(), "team", newSource(t, gitsource.Config{URL: r.URL, Ref: "main"}), 0)
	ws := reg.Get("team")
	require.Empty(t, ws.Problems)
	require.Contains(t, ws.Tasks, "one")
	goodRev := ws.Revision

	// Two broken files in one commit: the good revision stays, each file
	// is reported.
	r.Commit("broken", map[string]string{".workflows/w.yaml": "tasks: [\n", ".workflows/x.yaml": "tasks:\n  t:\n    flow:\n      s:\n        action: nope\n"})
	r.Push()
	_, err := reg.Reload("team")
	require.Equal(t, stroem.CodeInvalid, stroem.ErrorCode(err))
	served := reg.Get("team")
	require.Equal(t, goodRev, served.Revision)
	require.Contains(t, served.Tasks, "one")
	st, ok := reg.SourceStatus("team")
	require.True(t, ok)
	require.Equal(t, good, st.Version)
	require.Contains(t, st.Error, "still serving")
	files := map[string]bool{}
	for _, p := range st.Rejected {
		files[p.Pos.File] = true
	}
	require.Equal(t, map[string]bool{".workflows/w.yaml": true, ".workflows/x.yaml": true}, files, "each broken file is reported: %v", st.Rejected)
	require.Empty(t, swapped, "no hook runs for a refused version")

	// Fixed: the new revision is served and the hooks run.
	fixed := r.Commit("fixed", map[string]string{".workflows/w.yaml": flow("one", "two"), ".workflows/x.yaml": ""})
	r.Push()
	ws, err = reg.Reload("team")
	require.NoError(t, err)
	require.Contains(t, ws.Tasks, "two")
	require.Empty(t, ws.Problems)
	require.Equal(t, []string{ws.Revision}, swapped)
	st, _ = reg.SourceStatus("team")
	require.Equal(t, fixed, st.Version)
	require.Empty(t, st.Error)

	// Unreachable: the served revision stays and the error shows.
	require.NoError(t, os.RemoveAll(r.Bare))
	_, err = reg.Reload("team")
	require.Equal(t, stroem.CodeUnavailable, stroem.ErrorCode(err))
	served = reg.Get("team")
	require.Equal(t, ws.Revision, served.Revision)
	require.Contains(t, served.Tasks, "two")
	require.NotEmpty(t, served.Problems, "the sync error is shown with the workspace")
	st, _ = reg.SourceStatus("team")
	require.Contains(t, st.Error, "fetch")
}

func TestRegistryIsolatesWorkspacesAndPolls(t *testing.T) {
	r := gittest.New(t)
	r.Commit("one", map[string]string{".workflows/w.yaml": flow("one")})
	r.Push()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "w.yaml"), []byte(flow("local")), 0o644))
	reg := workspace.NewRegistry(map[string]string{"local": dir}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	reg.AddSource(ctx, "broken", newSource(t, gitsource.Config{URL: "file://" + filepath.Join(t.TempDir(), "missing.git")}), 0)
	reg.AddSource(ctx, "team", newSource(t, gitsource.Config{URL: r.URL}), 20*time.Millisecond)

	require.NotEmpty(t, reg.Get("broken").Problems)
	require.Empty(t, reg.Get("broken").Tasks)
	require.Contains(t, reg.Get("local").Tasks, "local")
	require.Empty(t, reg.Get("local").Problems)
	require.Contains(t, reg.Get("team").Tasks, "one")
	require.Len(t, reg.List(), 3)

	// Polling picks a new commit up without a refresh.
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = reg.Watch(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	r.Commit("two", map[string]string{".workflows/w.yaml": flow("one", "two")})
	r.Push()
	require.Eventually(t, func() bool { return reg.Get("team").Tasks["two"] != nil }, 10*time.Second, 10*time.Millisecond)
}

func TestSSHKeyAuth(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	const pass = "k3y-passphrase"
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(pass))
	require.NoError(t, err)
	key := pem.EncodeToMemory(block)

	s, err := gitsource.New(gitsource.Config{URL: "deploy@example.invalid:org/repo.git", Dir: t.TempDir(),
		Auth: gitsource.Auth{Type: gitsource.AuthSSH, PrivateKey: key, Passphrase: pass, InsecureIgnoreHostKey: true}})
	require.NoError(t, err)
	require.Equal(t, "deploy@example.invalid:org/repo.git@HEAD", s.Describe())

	_, err = gitsource.New(gitsource.Config{URL: "ssh://git@example.invalid/r", Dir: t.TempDir(),
		Auth: gitsource.Auth{Type: gitsource.AuthSSH, PrivateKey: key, Passphrase: "wrong-" + pass}})
	require.ErrorContains(t, err, "ssh private key cannot be used")
	require.NotContains(t, err.Error(), pass)
}

func TestCredentialsNeverInLogsOrProblems(t *testing.T) {
	const token = "tok-9f8e7d6c5b4a"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "denied", http.StatusUnauthorized)
	}))
	defer srv.Close()
	var logs bytes.Buffer
	reg := workspace.NewRegistry(nil, slog.New(slog.NewTextHandler(&logs, nil)))
	url := strings.Replace(srv.URL, "http://", "http://bot:"+token+"@", 1) + "/repo.git"
	reg.AddSource(context.Background(), "team", newSource(t, gitsource.Config{URL: url, Auth: gitsource.Auth{Type: gitsource.AuthToken, Token: token}}), 0)
	_, err := reg.Reload("team")
	require.Error(t, err)
	require.NotContains(t, err.Error(), token)
	require.Contains(t, logs.String(), "sync failed")
	require.NotContains(t, logs.String(), token)
	ws := reg.Get("team")
	require.NotEmpty(t, ws.Problems)
	for _, p := range ws.Problems {
		require.NotContains(t, p.String(), token)
	}
	st, _ := reg.SourceStatus("team")
	require.NotContains(t, st.Error+st.Source, token)
}

// A sync error reaches API clients (the workspace's source status): it
// names the cache folder "<git cache>", never its place on the server.
func TestServerPathsNeverInErrors(t *testing.T) {
	r := gittest.New(t)
	r.Commit("one", map[string]string{".workflows/w.yaml": flow("one")})
	r.Push()
	parent := t.TempDir()
	dir := filepath.Join(parent, "cache")
	require.NoError(t, os.WriteFile(dir, []byte("a file, not a folder"), 0o600))
	s := newSource(t, gitsource.Config{URL: r.URL, Ref: "main", Dir: dir})
	_, err := s.Sync(context.Background(), "")
	require.Error(t, err)
	require.NotContains(t, err.Error(), parent)
	require.Contains(t, err.Error(), "<git cache>")
}
