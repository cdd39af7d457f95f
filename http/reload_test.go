package http

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/workspace"
)

// reloadFailing is a workspace registry whose reload fails with an error
// naming the workspace's absolute path, as a folder that lost its
// .workflows folder does.
type reloadFailing struct{ ws *workspace.Workspace }

func (f reloadFailing) Get(name string) *workspace.Workspace {
	if name == f.ws.Name {
		return f.ws
	}
	return nil
}
func (f reloadFailing) List() []*workspace.Workspace { return []*workspace.Workspace{f.ws} }
func (f reloadFailing) Reload(name string) (*workspace.Workspace, error) {
	return nil, &stroem.Error{Code: stroem.CodeUnavailable,
		Message: "reload workspace " + name + ": load workspace: " + f.ws.Root + " has no .workflows folder",
		Details: []string{f.ws.Root + "/.workflows/a.yaml: unreadable"}}
}
func (f reloadFailing) SourceStatus(string) (workspace.SourceStatus, bool) {
	return workspace.SourceStatus{}, false
}
func (f reloadFailing) RefProblems(string) []workspace.Problem { return nil }

// A failed reload or refresh names files relative to the workspace, never
// the server's absolute path (docs/security.md, "Paths").
func TestReloadAndRefreshHideServerPaths(t *testing.T) {
	t.Parallel()
	const root = "/srv/secret-place/ws"
	wss := reloadFailing{ws: &workspace.Workspace{Name: "default", Root: root}}
	h := NewServer(Config{}, nil, nil, nil, wss, nil, nil, nil).Handler()
	for _, route := range []string{"/api/workspaces/default/reload", "/api/workspaces/default/refresh"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, route, nil))
		require.GreaterOrEqual(t, rec.Code, 400, route)
		require.Contains(t, rec.Body.String(), "has no .workflows folder", route)
		require.NotContains(t, rec.Body.String(), "/srv/secret-place", route)
	}
}
