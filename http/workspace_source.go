package http

import (
	"net/http"
	"slices"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/workspace"
)

// sourceView is a workspace with the sync state of its git source.
type sourceView struct {
	workspaceView
	Source *workspace.SourceStatus `json:"source,omitempty"`
}

// workspaceRefresh (POST /api/workspaces/{ws}/refresh) syncs a git
// workspace now (a push webhook calls it) or reloads a folder workspace.
// A sync that fails keeps the served revision: the answer is 503 when the
// repository cannot be reached and 400 when the new commit was refused,
// with each problem in details; GET …/source shows the state any time.
func (s *Server) workspaceRefresh(w http.ResponseWriter, r *http.Request) error {
	// The same rules as reload.
	name, err := s.reloadable(r)
	if err != nil {
		return err
	}
	ws, err := s.ws.Reload(name)
	if err != nil {
		// As reload: only workspace-relative paths reach the client.
		served := s.ws.Get(name)
		details := slices.Clone(stroem.ErrorDetails(err))
		for i := range details {
			details[i] = served.PublicText(details[i])
		}
		return &stroem.Error{Code: stroem.ErrorCode(err), Message: "refresh workspace " + name + ": " + served.PublicText(stroem.ErrorMessage(err)), Details: details}
	}
	writeJSON(w, http.StatusOK, s.sourceView(ws))
	return nil
}

// workspaceSource (GET /api/workspaces/{ws}/source) shows a workspace with
// its sync state.
func (s *Server) workspaceSource(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
	v := s.sourceView(ws)
	v.TasksCount = visibleTasks(s.acl(), r, ws) // as GET …/{ws}: the visible ones
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) sourceView(ws *workspace.Workspace) sourceView {
	v := sourceView{workspaceView: s.viewWorkspace(ws)}
	if st, ok := s.ws.SourceStatus(ws.Name); ok {
		v.Source = &st
	}
	return v
}
