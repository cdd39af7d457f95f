package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/auth"
	"github.com/stroem/stroem/persistence"
)

const hookACLWorkflow = `
actions:
  gate: { type: approval }
  note:
    type: script
    script: echo "{{ input.err }}"
    input:
      err: { type: string, default: "" }
tasks:
  secret-deploy:
    flow:
      wait: { action: gate }
    on_error:
      - action: note
        input: { err: "{{ hook.error_message }}" }
`

// A hook job (task _hook:<action>) is seen, like its logs, by who may see
// the job it reports on: its input carries that job's errors.
func TestHookJobsFollowTheirJobsACL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "w.yaml"), []byte(hookACLWorkflow), 0o644))
	e := newAuthEnv(t, func(c *serverConfig) {
		c.Workspaces = map[string]workspaceConfig{"default": {Type: "folder", Path: dir}}
		c.ACL = &auth.ACLConfig{Default: "view", Rules: []auth.ACLRule{
			{Workspace: "*", Tasks: []string{"secret-*"}, Action: "deny", Groups: []string{"outsiders"}},
		}}
	})
	admin, _ := e.login(adminEmail, adminPassword)
	e.user("out@example.com", "pw-outsider", "outsiders")
	out, _ := e.login("out@example.com", "pw-outsider")
	e.user("in@example.com", "pw-insider")
	in, _ := e.login("in@example.com", "pw-insider")

	id := e.execute(admin, "secret-deploy")
	st, b, _ := e.do(req{method: "POST", path: "/api/jobs/" + id + "/steps/wait/approve", body: `{"approved": false, "rejection_reason": "db password leaked"}`, token: admin})
	require.Equal(t, http.StatusOK, st, string(b))
	var hookID string
	require.Eventually(t, func() bool {
		hooks, err := e.store.JobList(context.Background(), persistence.JobFilter{SourceType: stroem.SourceHook, SourceID: id, Limit: 10})
		if err != nil || len(hooks) == 0 {
			return false
		}
		hookID = hooks[0].ID
		return true
	}, 10*time.Second, 20*time.Millisecond)

	st, b, _ = e.do(req{method: "GET", path: "/api/jobs/" + id, token: out})
	require.Equal(t, http.StatusNotFound, st, string(b))
	st, b, _ = e.do(req{method: "GET", path: "/api/jobs/" + hookID, token: out})
	require.Equal(t, http.StatusNotFound, st, "the hook job of a job the user may not see: %s", b)
	st, b, _ = e.do(req{method: "GET", path: "/api/jobs/" + hookID + "/logs", token: out})
	require.Equal(t, http.StatusNotFound, st, string(b))
	st, b, _ = e.do(req{method: "POST", path: "/api/jobs/" + hookID + "/cancel", body: `{}`, token: out})
	require.Equal(t, http.StatusNotFound, st, string(b))
	st, b, _ = e.do(req{method: "GET", path: "/api/jobs", token: out})
	require.Equal(t, http.StatusOK, st, string(b))
	require.NotContains(t, string(b), hookID)
	require.NotContains(t, string(b), "db password leaked")

	// Who may see the job sees its hook job, in the job and on its own.
	st, b, _ = e.do(req{method: "GET", path: "/api/jobs/" + id, token: in})
	require.Equal(t, http.StatusOK, st, string(b))
	var j stroem.Job
	require.NoError(t, json.Unmarshal(b, &j))
	require.Len(t, j.Hooks, 1)
	require.Equal(t, hookID, j.Hooks[0].JobID)
	st, b, _ = e.do(req{method: "GET", path: "/api/jobs/" + hookID, token: in})
	require.Equal(t, http.StatusOK, st, string(b))
}
