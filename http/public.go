package http

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/actors"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// workspaceView is a workspace as the API shows it.
type workspaceView struct {
	Name          string   `json:"name"`
	TasksCount    int      `json:"tasks_count"`
	ActionsCount  int      `json:"actions_count"`
	TriggersCount int      `json:"triggers_count"`
	Revision      string   `json:"revision"`
	Errors        []string `json:"errors"`
}

func viewWorkspace(ws *workspace.Workspace) workspaceView {
	v := workspaceView{
		Name: ws.Name, TasksCount: len(ws.Tasks), ActionsCount: len(ws.Actions),
		TriggersCount: len(ws.Triggers), Revision: ws.Revision, Errors: []string{},
	}
	for _, p := range ws.Problems {
		v.Errors = append(v.Errors, p.String())
	}
	return v
}

func (s *Server) workspace(r *http.Request) (*workspace.Workspace, error) {
	name := pathParam(r, "ws")
	ws := s.ws.Get(name)
	if ws == nil {
		return nil, stroem.Errorf(stroem.CodeNotFound, "workspace %q not found", name)
	}
	return ws, nil
}

func (s *Server) workspacesList(w http.ResponseWriter, _ *http.Request) error {
	out := []workspaceView{}
	for _, ws := range s.ws.List() {
		out = append(out, viewWorkspace(ws))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) workspaceGet(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewWorkspace(ws))
	return nil
}

func (s *Server) workspaceReload(w http.ResponseWriter, r *http.Request) error {
	name := pathParam(r, "ws")
	if s.ws.Get(name) == nil {
		return stroem.Errorf(stroem.CodeNotFound, "workspace %q not found", name)
	}
	ws, err := s.ws.Reload(name)
	if err != nil {
		return stroem.Errorf(stroem.CodeInvalid, "reload workspace %q: %v", name, err)
	}
	writeJSON(w, http.StatusOK, viewWorkspace(ws))
	return nil
}

// taskView is a task in lists; taskDetail adds its flow.
type taskView struct {
	Name        string           `json:"name"`
	Description string           `json:"description"`
	Mode        string           `json:"mode"`
	Input       workspace.Schema `json:"input"`
}

type taskDetail struct {
	taskView
	Flow []*workspace.FlowStep `json:"flow"`
}

func viewTask(t *workspace.Task) taskView {
	in := t.Input
	if in == nil {
		in = workspace.Schema{}
	}
	return taskView{Name: t.Name, Description: t.Description, Mode: t.Mode, Input: in}
}

func (s *Server) tasksList(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
	out := []taskView{}
	for _, name := range slices.Sorted(maps.Keys(ws.Tasks)) {
		out = append(out, viewTask(ws.Tasks[name]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) taskGet(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
	name := pathParam(r, "task")
	t := ws.Tasks[name]
	if t == nil {
		return stroem.Errorf(stroem.CodeNotFound, "task %q not found in workspace %q", name, ws.Name)
	}
	d := taskDetail{taskView: viewTask(t), Flow: []*workspace.FlowStep{}}
	for _, step := range t.Order {
		if fs := t.Flow[step]; fs != nil {
			d.Flow = append(d.Flow, fs)
		}
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// executeBody is the body of POST …/execute.
type executeBody struct {
	Input map[string]any `json:"input"`
}

func (s *Server) taskExecute(w http.ResponseWriter, r *http.Request) error {
	var body executeBody
	if err := decodeJSON(r, &body, true); err != nil {
		return err
	}
	id, err := s.orch.JobCreate(r.Context(), actors.JobRequest{
		Workspace: pathParam(r, "ws"), Task: pathParam(r, "task"), Input: body.Input,
		SourceType: stroem.SourceAPI,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"job_id": id})
	return nil
}

func (s *Server) jobsList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := persistence.JobFilter{Workspace: q.Get("workspace"), Task: q.Get("task"), Limit: 50}
	var problems []string
	if v := q.Get("status"); v != "" {
		f.Status = stroem.JobStatus(v)
		if !f.Status.Valid() {
			problems = append(problems, "status: unknown job status "+strconv.Quote(v))
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			problems = append(problems, "limit: want an integer from 1 to 1000, got "+strconv.Quote(v))
		}
		f.Limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			problems = append(problems, "offset: want a non-negative integer, got "+strconv.Quote(v))
		}
		f.Offset = n
	}
	if len(problems) > 0 {
		return stroem.Invalid("invalid query: "+strings.Join(problems, "; "), problems...)
	}
	jobs, err := s.store.JobList(r.Context(), f)
	if err != nil {
		return err
	}
	if jobs == nil {
		jobs = []stroem.Job{}
	}
	writeJSON(w, http.StatusOK, jobs)
	return nil
}

func (s *Server) job(r *http.Request) (*stroem.Job, error) {
	id, err := parseJobID(pathParam(r, "id"))
	if err != nil {
		return nil, err
	}
	j, err := s.store.JobGet(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return j, s.markTruncated(r.Context(), j)
}

// markTruncated sets LogsTruncated on the steps whose log hit the limit.
func (s *Server) markTruncated(ctx context.Context, j *stroem.Job) error {
	names, err := s.logs.LogTruncatedSteps(ctx, j.ID)
	if err != nil || len(names) == 0 {
		return err
	}
	for i := range j.Steps {
		j.Steps[i].LogsTruncated = slices.Contains(names, j.Steps[i].StepName)
	}
	return nil
}

func (s *Server) jobGet(w http.ResponseWriter, r *http.Request) error {
	j, err := s.job(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) jobCancel(w http.ResponseWriter, r *http.Request) error {
	j, err := s.job(r)
	if err != nil {
		return err
	}
	if err := s.orch.JobCancel(r.Context(), j.ID); err != nil {
		return err
	}
	if j, err = s.store.JobGet(r.Context(), j.ID); err == nil {
		err = s.markTruncated(r.Context(), j)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) jobLogStream(w http.ResponseWriter, r *http.Request) error {
	id, err := parseJobID(pathParam(r, "id"))
	if err != nil {
		return err
	}
	s.hub.ServeHTTP(w, r, id)
	return nil
}

func (s *Server) workersList(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.store.WorkerList(r.Context())
	if err != nil {
		return err
	}
	if ws == nil {
		ws = []stroem.Worker{}
	}
	writeJSON(w, http.StatusOK, ws)
	return nil
}
