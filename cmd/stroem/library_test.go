package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/workspace/gitsource/gittest"
)

// A git library (a bare repository over file://, pinned to a tag) and a
// folder library are merged into the workspace: a step runs library action
// common.notify from the archive's _libraries/common/, the library's task
// runs as common.release with its internal references rewritten, unknown
// library items are refused naming them. A step of another workspace's
// action is handed out with that workspace's revision, whose archive only
// its worker may download.
func TestLibrariesAndCrossWorkspaceSteps(t *testing.T) {
	remote := gittest.New(t)
	remote.Commit("library", map[string]string{
		".workflows/lib.yaml": `
actions:
  notify:
    type: script
    source: scripts/notify.sh
    input:
      text: { type: string, required: true }
  tag:
    type: script
    script: echo tagging
tasks:
  release:
    flow:
      tag:
        action: tag
      tell:
        action: notify
        depends_on: [tag]
        input: { text: released }
      local:
        action: ws-local
        depends_on: [tell]
`,
		"scripts/notify.sh": "echo \"notify $1\"\n",
	})
	remote.Push()
	remote.Tag("v1.0.0")
	folderLib := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(folderLib, ".workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(folderLib, ".workflows", "l.yaml"), []byte("actions:\n  hello:\n    type: script\n    script: echo hello from the folder library\n"), 0o644))

	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "w.yaml"), []byte(`
actions:
  ws-local:
    type: script
    script: echo the workspace's own
tasks:
  deploy:
    flow:
      notify:
        action: common.notify
        input: { text: deployed }
      hello:
        action: folder.hello
  typo:
    flow:
      s:
        action: common.notfy
        input: { text: x }
  remote:
    flow:
      s:
        action: other.show
`), 0o644))
	other := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(other, ".workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(other, ".workflows", "o.yaml"), []byte("actions:\n  show:\n    type: script\n    source: show.sh\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(other, "show.sh"), []byte("echo other\n"), 0o755))

	cfg := testServerConfig(t)
	cfg.GitCacheDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Workspaces = map[string]workspaceConfig{
		"default": {Type: "folder", Path: dir},
		"other":   {Type: "folder", Path: other},
	}
	cfg.Libraries = map[string]libraryConfig{
		"common": {Type: "git", URL: remote.URL, Ref: "v1.0.0", Auth: "none-needed"},
		"folder": {Type: "folder", Path: folderLib},
	}
	cfg.GitAuth = map[string]gitAuthConfig{"none-needed": {}}
	require.NoError(t, cfg.validate())
	s := startScenario(t, cfg, nil)

	// Library actions in a workspace task.
	job := s.execute("deploy", nil)
	w := s.worker()
	got := map[string]*stroem.Assignment{}
	for range 2 {
		a := w.claim(10 * time.Second)
		require.NotNil(t, a)
		got[a.StepName] = a
	}
	notify := got["notify"]
	require.Equal(t, "_libraries/common/scripts/notify.sh", notify.Spec.Script)
	require.Equal(t, "default", notify.Workspace)
	require.Equal(t, "echo \"notify $1\"\n", s.archiveFile(w, "default", notify.Revision, "_libraries/common/scripts/notify.sh"))
	require.Equal(t, "folder.hello", got["hello"].ActionName)
	for _, a := range got {
		require.Equal(t, http.StatusOK, w.complete(a, 0, nil, ""))
	}
	s.waitJob(job, stroem.JobCompleted)

	// The library's task, its references rewritten.
	code, body := s.do("GET", "/api/workspaces/default/tasks/common.release", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	job = s.execute("common.release", nil)
	for _, want := range []string{"tag", "tell", "local"} {
		a := w.mustClaim(want)
		require.Equal(t, map[string]string{"tag": "common.tag", "tell": "common.notify", "local": "ws-local"}[want], a.ActionName)
		require.Equal(t, http.StatusOK, w.complete(a, 0, nil, ""))
	}
	s.waitJob(job, stroem.JobCompleted)

	// Unknown library item: refused, naming it.
	code, body = s.do("POST", "/api/workspaces/default/tasks/typo/execute", map[string]any{}, "")
	require.Equal(t, http.StatusBadRequest, code, string(body))
	require.Contains(t, string(body), `step s: action \"common.notfy\": library common has no action \"notfy\" (did you mean \"notify\"?)`)

	// A step of another workspace's action: that workspace's revision,
	// whose archive only the worker running the step may download.
	job = s.execute("remote", nil)
	a := w.mustClaim("s")
	var ow struct {
		Revision string `json:"revision"`
	}
	code, body = s.do("GET", "/api/workspaces/other", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, json.Unmarshal(body, &ow))
	require.Equal(t, "other", a.Workspace)
	require.Equal(t, "other.show", a.ActionName, "the step shows the name its flow uses")
	require.Equal(t, ow.Revision, a.Revision)
	require.Equal(t, "echo other\n", s.archiveFile(w, "other", a.Revision, "show.sh"))
	idle := s.worker()
	code, body = s.do("GET", "/worker/workspaces/other/"+a.Revision+".tar.gz", nil, idle.cred)
	require.Equal(t, http.StatusForbidden, code, string(body))
	require.Equal(t, http.StatusOK, w.complete(a, 0, nil, ""))
	j := s.waitJob(job, stroem.JobCompleted)
	require.NotEqual(t, ow.Revision, j.Revision, "the job keeps its own workspace's revision")
	require.Equal(t, "default", j.Workspace)
}

// Bad libraries: and git_auth: entries are refused naming the key.
func TestLibraryConfigErrors(t *testing.T) {
	t.Parallel()
	for want, c := range map[string]func(*serverConfig){
		`key libraries.a.b: a library name is the prefix`: func(c *serverConfig) { c.Libraries = map[string]libraryConfig{"a.b": {Type: "folder", Path: "x"}} },
		`key libraries.lib.type: "svn" is not supported (folder or git)`: func(c *serverConfig) {
			c.Libraries = map[string]libraryConfig{"lib": {Type: "svn"}}
		},
		`key libraries.lib.path: must be set for a folder library`: func(c *serverConfig) { c.Libraries = map[string]libraryConfig{"lib": {Type: "folder"}} },
		`key libraries.lib.url: must be set for a git library`:     func(c *serverConfig) { c.Libraries = map[string]libraryConfig{"lib": {Type: "git"}} },
		`key libraries.lib.auth: no git_auth entry "gh" (entries: other)`: func(c *serverConfig) {
			c.Libraries = map[string]libraryConfig{"lib": {Type: "git", URL: "https://example.invalid/x.git", Auth: "gh"}}
			c.GitAuth = map[string]gitAuthConfig{"other": {}}
		},
		`key git_auth.gh.token: must be set for auth type token`: func(c *serverConfig) {
			c.GitAuth = map[string]gitAuthConfig{"gh": {Type: "token"}}
		},
	} {
		cfg := defaultServerConfig()
		cfg.WorkerToken = testToken
		c(&cfg)
		err := cfg.validate()
		require.Error(t, err, want)
		require.Contains(t, err.Error(), want)
	}
}

// A library on a branch is fetched again when a workspace reloads: a new
// commit's action appears; a failing fetch keeps the last good version.
func TestBranchLibraryFollowsReloads(t *testing.T) {
	remote := gittest.New(t)
	remote.Commit("one", map[string]string{".workflows/l.yaml": "actions:\n  one:\n    type: script\n    script: echo one\n"})
	remote.Push()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "w.yaml"), []byte("tasks:\n  t:\n    flow:\n      s:\n        action: lib.two\n"), 0o644))

	cfg := testServerConfig(t)
	cfg.GitCacheDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Workspaces = map[string]workspaceConfig{"default": {Type: "folder", Path: dir}}
	cfg.Libraries = map[string]libraryConfig{"lib": {Type: "git", URL: remote.URL, Ref: "main"}}
	require.NoError(t, cfg.validate())
	s := startScenario(t, cfg, nil)

	code, body := s.do("POST", "/api/workspaces/default/tasks/t/execute", map[string]any{}, "")
	require.Equal(t, http.StatusBadRequest, code, string(body))
	require.Contains(t, string(body), `library lib has no action \"two\"`)

	remote.Commit("two", map[string]string{".workflows/l.yaml": "actions:\n  one:\n    type: script\n    script: echo one\n  two:\n    type: script\n    script: echo two\n"})
	remote.Push()
	code, body = s.do("POST", "/api/workspaces/default/reload", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	job := s.execute("t", nil)
	a := s.worker().mustClaim("s")
	require.Equal(t, job, a.JobID)
	require.Equal(t, "lib.two", a.ActionName)
	require.Contains(t, a.Spec.Cmd+a.Spec.Code, "echo two")
}
