package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// A step of workspace "default" runs action owner.show of workspace
// "owner" (a cross-workspace reference): with owner's files, secrets and
// the revision owner had when the job was created, even after owner
// changes mid-job; a new job runs the new revision. References to a
// missing workspace or action are refused with 400 naming it, and listed
// in the caller's errors.
func TestCrossWorkspaceReferences(t *testing.T) {
	t.Parallel()
	owner := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(owner, ".workflows"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(owner, "data"), 0o755))
	ownerYAML := func(version string) string {
		return `
actions:
  show:
    type: script
    input:
      label: { type: string, required: true }
      go: { type: string, required: true }
    script: |
      echo "label {{ input.label }}, action ` + version + `"
      while [ ! -e "{{ input.go }}" ]; do sleep 0.05; done
      echo "file $(cat data/version.txt), token length {{ secret.token | length }}"
secrets:
  token: "owner-secret-value"
`
	}
	write := func(version string) {
		require.NoError(t, os.WriteFile(filepath.Join(owner, "data", "version.txt"), []byte(version+"\n"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(owner, ".workflows", "owner.yaml"), []byte(ownerYAML(version)), 0o644))
	}
	write("v1")
	caller := workspaceDir(t, `
tasks:
  use-owner:
    input:
      go: { type: string, required: true }
    flow:
      prepare:
        action: local
      remote:
        action: owner.show
        depends_on: [prepare]
        input:
          label: "{{ prepare.output.label }}"
          go: "{{ input.go }}"
  typo:
    flow:
      remote:
        action: owner.shwo
        input: { label: x, go: x }
  nowhere:
    flow:
      remote:
        action: elsewhere.show
  bad-input:
    flow:
      remote:
        action: owner.show
        input: { label: x, go: x, colour: red }
actions:
  local:
    type: script
    script: 'test ! -e data/version.txt && echo "OUTPUT: {\"label\": \"from-caller\"}"'
`)
	s := startStack(t, stackOpts{workspace: caller, moreWorkspaces: map[string]string{"owner": owner}})

	execute := func(task string, input map[string]any) (int, string) {
		code, body := s.do("POST", "/api/workspaces/default/tasks/"+task+"/execute", map[string]any{"input": input})
		return code, string(body)
	}
	goFile := filepath.Join(t.TempDir(), "go")
	code, body := execute("use-owner", map[string]any{"go": goFile})
	require.Equal(t, http.StatusCreated, code, body)
	var created struct {
		JobID string `json:"job_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	first := created.JobID
	s.waitLog(first, "label from-caller, action v1")

	// owner changes while the step runs; the server serves the new revision.
	var before struct {
		Revision string `json:"revision"`
	}
	require.Equal(t, http.StatusOK, s.getJSON("/api/workspaces/owner", &before))
	write("v2")
	require.Eventually(t, func() bool {
		var now struct {
			Revision string `json:"revision"`
		}
		return s.getJSON("/api/workspaces/owner", &now) == http.StatusOK && now.Revision != before.Revision
	}, waitFor, 50*time.Millisecond, "owner was never reloaded")
	require.NoError(t, os.WriteFile(goFile, nil, 0o644))
	j := s.waitJob(first)
	require.Equal(t, stroem.JobCompleted, j.Status, describeJob(j))
	logs := s.logs(first)
	require.Contains(t, logs, "file v1, token length 18", "the step ran on owner's files as they were when the job was created, with owner's secret")
	require.NotContains(t, logs, "owner-secret-value")

	// A new job runs owner's new revision.
	code, body = execute("use-owner", map[string]any{"go": goFile})
	require.Equal(t, http.StatusCreated, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	j = s.waitJob(created.JobID)
	require.Equal(t, stroem.JobCompleted, j.Status, describeJob(j))
	logs = s.logs(created.JobID)
	require.Contains(t, logs, "label from-caller, action v2")
	require.Contains(t, logs, "file v2, token length 18")

	// Unresolvable references: 400 naming the workspace or action.
	for task, want := range map[string]string{
		"typo":      `step remote: action \"owner.shwo\": workspace owner has no action \"shwo\" (did you mean \"show\"?)`,
		"nowhere":   `step remote: action \"elsewhere.show\": there is no library or workspace \"elsewhere\"`,
		"bad-input": `step remote: action show has no input \"colour\"`,
	} {
		code, body := execute(task, nil)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", task, body)
		require.Contains(t, body, want, task)
	}
	var ws struct {
		Errors []string `json:"errors"`
	}
	require.Equal(t, http.StatusOK, s.getJSON("/api/workspaces/default", &ws))
	joined := strings.Join(ws.Errors, "\n")
	require.Contains(t, joined, `task nowhere, step remote: action "elsewhere.show": there is no library or workspace "elsewhere"`)
	require.Contains(t, joined, `task typo, step remote: action "owner.shwo": workspace owner has no action "shwo"`)
	require.Contains(t, joined, `task bad-input, step remote: action show has no input "colour"`)
	require.Len(t, ws.Errors, 3, joined)
}
