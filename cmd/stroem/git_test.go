package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/workspace/gitsource/gittest"
)

// archiveFile returns one file of a workspace archive as the worker API
// serves it to w (a worker running a step of that revision).
func (s *scenario) archiveFile(w *fakeWorker, ws, revision, name string) string {
	s.t.Helper()
	code, body := s.do("GET", "/worker/workspaces/"+ws+"/"+revision+".tar.gz", nil, w.cred)
	require.Equal(s.t, http.StatusOK, code, string(body))
	gz, err := gzip.NewReader(bytes.NewReader(body))
	require.NoError(s.t, err)
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		require.NoError(s.t, err, "%s not in the archive of %s", name, revision)
		if h.Name == name {
			b, err := io.ReadAll(tr)
			require.NoError(s.t, err)
			return string(b)
		}
	}
}

const gitFlowOld = `actions:
  run:
    type: shell
    script: run.sh
tasks:
  old:
    flow:
      s:
        action: run
`

// The acceptance test of git workspaces: a job started on one commit runs
// on it to the end while a pushed commit, picked up by the refresh route,
// adds a task that new jobs run on the new revision.
func TestGitWorkspaceRefreshKeepsRunningJobOnItsRevision(t *testing.T) {
	remote := gittest.New(t)
	remote.Commit("first", map[string]string{".workflows/w.yaml": gitFlowOld, "run.sh": "echo old\n"})
	remote.Push()

	cfg := testServerConfig(t)
	cfg.GitCacheDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0" // the scenario gives the server its own listener
	ws := workspaceConfig{Type: "git"}
	ws.URL, ws.Branch, ws.PollIntervalSecs = remote.URL, "main", -1
	cfg.Workspaces = map[string]workspaceConfig{"default": ws}
	require.NoError(t, cfg.validate())
	s := startScenario(t, cfg, nil)

	oldJob := s.execute("old", nil)
	w := s.worker()
	a := w.mustClaim("s")
	oldRev := a.Revision
	require.NotEmpty(t, oldRev)

	remote.Commit("second", map[string]string{
		".workflows/w.yaml": gitFlowOld + "  new:\n    flow:\n      s:\n        action: run\n",
		"run.sh":            "echo new\n",
	})
	remote.Push()
	code, body := s.do("POST", "/api/workspaces/default/refresh", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	var view struct {
		Revision string `json:"revision"`
		Source   struct {
			Version string `json:"version"`
			Error   string `json:"error"`
		} `json:"source"`
	}
	require.NoError(t, json.Unmarshal(body, &view))
	require.NotEqual(t, oldRev, view.Revision)
	require.Len(t, view.Source.Version, 40)
	require.Empty(t, view.Source.Error)
	code, body = s.do("GET", "/api/workspaces/default/tasks/new", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))

	// The running step still gets its own revision's files, and finishes.
	require.Equal(t, "echo old\n", s.archiveFile(w, "default", oldRev, "run.sh"))
	require.Equal(t, http.StatusOK, w.complete(a, 0, nil, ""))
	j := s.waitJob(oldJob, stroem.JobCompleted)
	require.Equal(t, oldRev, j.Revision)

	newJob := s.execute("new", nil)
	b := w.mustClaim("s")
	require.Equal(t, newJob, b.JobID)
	require.Equal(t, view.Revision, b.Revision)
	require.Equal(t, "echo new\n", s.archiveFile(w, "default", b.Revision, "run.sh"))

	// A broken commit is refused with each problem; the revision stays.
	remote.Commit("broken", map[string]string{".workflows/w.yaml": "tasks: [\n"})
	remote.Push()
	code, body = s.do("POST", "/api/workspaces/default/refresh", nil, "")
	require.Equal(t, http.StatusBadRequest, code, string(body))
	require.Contains(t, string(body), ".workflows/w.yaml")
	code, body = s.do("GET", "/api/workspaces/default/source", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, json.Unmarshal(body, &view))
	require.Equal(t, b.Revision, view.Revision)
	require.Contains(t, view.Source.Error, "still serving")

	code, body = s.do("POST", "/api/workspaces/nope/refresh", nil, "")
	require.Equal(t, http.StatusNotFound, code, string(body))
}
