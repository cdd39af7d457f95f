package http

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/actors"
	"github.com/stroem/stroem/auth"
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

func (s *Server) viewWorkspace(ws *workspace.Workspace) workspaceView {
	v := workspaceView{
		Name: ws.Name, TasksCount: len(ws.Tasks), ActionsCount: len(ws.Actions),
		TriggersCount: len(ws.Triggers), Revision: ws.Revision, Errors: ws.PublicProblems(),
	}
	// Actions of other workspaces ("other.item") that do not resolve now.
	if refs := s.ws.RefProblems(ws.Name); len(refs) > 0 {
		shown := *ws
		shown.Problems = refs
		v.Errors = append(v.Errors, shown.PublicProblems()...)
	}
	return v
}

func (s *Server) workspace(r *http.Request) (*workspace.Workspace, error) {
	return routeWorkspace(s.ws, s.acl(), r)
}

// routeWorkspace is the workspace the route's {ws} names, when the caller
// may see it (visibleWorkspace); else it is not found.
func routeWorkspace(wss Workspaces, acl *auth.ACL, r *http.Request) (*workspace.Workspace, error) {
	name := pathParam(r, "ws")
	ws := wss.Get(name)
	if ws == nil || !visibleWorkspace(acl, r, ws) {
		return nil, stroem.Errorf(stroem.CodeNotFound, "workspace %q not found", name)
	}
	return ws, nil
}

// visibleWorkspace: with ACL rules, a workspace is listed to a user who
// may see at least one of its tasks (admins see all).
func visibleWorkspace(acl *auth.ACL, r *http.Request, ws *workspace.Workspace) bool {
	if !acl.Enabled() || identity(r).IsAdmin {
		return true
	}
	for _, t := range ws.Tasks {
		if permission(acl, r, ws.Name, taskPath(t)) >= auth.View {
			return true
		}
	}
	return false
}

// visibleTasks counts the tasks the user may see.
func visibleTasks(acl *auth.ACL, r *http.Request, ws *workspace.Workspace) int {
	n := 0
	for _, t := range ws.Tasks {
		if permission(acl, r, ws.Name, taskPath(t)) >= auth.View {
			n++
		}
	}
	return n
}

func (s *Server) workspacesList(w http.ResponseWriter, r *http.Request) error {
	out := []workspaceView{}
	for _, ws := range s.ws.List() {
		if visibleWorkspace(s.acl(), r, ws) {
			v := s.viewWorkspace(ws)
			v.TasksCount = visibleTasks(s.acl(), r, ws)
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) workspaceGet(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
	v := s.viewWorkspace(ws)
	v.TasksCount = visibleTasks(s.acl(), r, ws)
	writeJSON(w, http.StatusOK, v)
	return nil
}

// workspaceReload swaps a workspace's definitions; with ACL rules it is
// for admins only (it affects every task of the workspace).
func (s *Server) workspaceReload(w http.ResponseWriter, r *http.Request) error {
	name, err := s.reloadable(r)
	if err != nil {
		return err
	}
	ws, err := s.ws.Reload(name)
	if err != nil {
		// The error names the files read: only workspace-relative paths
		// reach the client.
		return stroem.Errorf(stroem.CodeInvalid, "reload workspace %q: %s", name, s.ws.Get(name).PublicText(err.Error()))
	}
	writeJSON(w, http.StatusOK, s.viewWorkspace(ws))
	return nil
}

// reloadable names the workspace of a reload or refresh route: one the
// caller cannot see is not found; with ACL rules only admins reload.
func (s *Server) reloadable(r *http.Request) (string, error) {
	if _, err := s.workspace(r); err != nil {
		return "", err
	}
	if s.acl().Enabled() {
		if err := requireAdmin(r); err != nil {
			return "", s.refused(r, err, "forbidden")
		}
	}
	return pathParam(r, "ws"), nil
}

// taskView is a task in lists; taskDetail adds its flow. ID repeats the
// name (the task's key in its workspace), as clients of the Rust Strøm's
// API expect; HasTriggers says whether a trigger targets the task.
type taskView struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Label       string `json:"label,omitempty"`
	Workspace   string `json:"workspace"`
	Description string `json:"description"`
	Mode        string `json:"mode"`
	// Folder groups tasks in the UI ("deploy/staging").
	Folder      string `json:"folder,omitempty"`
	HasTriggers bool   `json:"has_triggers"`
	// Input is the full schema a form is built from: type, required,
	// default, description, enum (upstream's options), label, allow_custom,
	// multiple, secret, order. A secret field's default is not shown.
	Input workspace.Schema `json:"input"`
}

type taskDetail struct {
	taskView
	Flow []*workspace.FlowStep `json:"flow"`
}

func viewTask(ws *workspace.Workspace, t *workspace.Task) taskView {
	in := t.Input
	if in == nil {
		in = workspace.Schema{}
	}
	v := taskView{
		ID: t.Name, Name: t.Name, Label: t.Label, Workspace: ws.Name, Description: t.Description,
		Mode: t.Mode, Folder: t.Folder, Input: redactSecretDefaults(in),
	}
	for _, trig := range ws.Triggers {
		if trig.Task == t.Name {
			v.HasTriggers = true
			break
		}
	}
	return v
}

// redactSecretDefaults returns the schema with the defaults of secret
// fields left out (HasDefault still says there is one).
func redactSecretDefaults(in workspace.Schema) workspace.Schema {
	var out workspace.Schema
	for i, f := range in {
		if !f.Secret || f.Default == nil {
			continue
		}
		if out == nil {
			out = append(workspace.Schema(nil), in...)
		}
		c := *f
		c.Default = nil
		out[i] = &c
	}
	if out == nil {
		return in
	}
	return out
}

func (s *Server) tasksList(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
	out := []taskView{}
	for _, name := range slices.Sorted(maps.Keys(ws.Tasks)) {
		if permission(s.acl(), r, ws.Name, taskPath(ws.Tasks[name])) >= auth.View {
			out = append(out, viewTask(ws, ws.Tasks[name]))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// visibleTask is the task the route's {ws} and {task} name, when the
// caller may see it (view permission on the task's ACL path); else, like a
// task that does not exist, it is not found.
func (s *Server) visibleTask(r *http.Request) (*workspace.Workspace, *workspace.Task, error) {
	ws, err := s.workspace(r)
	if err != nil {
		return nil, nil, err
	}
	name := pathParam(r, "task")
	t := ws.Tasks[name]
	if t == nil || permission(s.acl(), r, ws.Name, taskPath(t)) < auth.View {
		return nil, nil, stroem.Errorf(stroem.CodeNotFound, "task %q not found in workspace %q", name, ws.Name)
	}
	return ws, t, nil
}

func (s *Server) taskGet(w http.ResponseWriter, r *http.Request) error {
	ws, t, err := s.visibleTask(r)
	if err != nil {
		return err
	}
	d := taskDetail{taskView: viewTask(ws, t), Flow: []*workspace.FlowStep{}}
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
	ws, err := s.workspace(r)
	if err != nil {
		return err
	}
	name := pathParam(r, "task")
	path := name
	if t := ws.Tasks[name]; t != nil {
		path = taskPath(t)
	}
	if err := requireRun(s.acl(), r, ws.Name, path, "run"); err != nil {
		return s.refused(r, err, "acl")
	}
	var body executeBody
	if err := decodeJSON(r, &body, true); err != nil {
		return err
	}
	id, err := s.orch.JobCreate(r.Context(), actors.JobRequest{
		Workspace: pathParam(r, "ws"), Task: pathParam(r, "task"), Input: body.Input,
		SourceType: stroem.SourceAPI, CreatedBy: identity(r).Actor(),
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"job_id": id})
	return nil
}

// page is a list answer: one page of items and how many there are in all.
type page[T any] struct {
	Items []T `json:"items"`
	Total int `json:"total"`
}

func (s *Server) jobsList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := persistence.JobFilter{Workspace: q.Get("workspace"), Task: q.Get("task"), Limit: 50}
	var problems []string
	if v := q.Get("task_name"); v != "" { // the Rust Strøm's name for it
		if f.Task != "" && f.Task != v {
			problems = append(problems, "task and task_name differ")
		}
		f.Task = v
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.CreatedAfter}, {"until", &f.CreatedBefore}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				problems = append(problems, p.name+": want an RFC 3339 time (2026-11-28T07:00:00Z), got "+strconv.Quote(v))
			}
			*p.dst = t
		}
	}
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
	if v := q.Get("id_prefix"); v != "" {
		f.IDPrefix = v
		if _, _, ok := persistence.UUIDPrefixRange(v); !ok {
			problems = append(problems, "id_prefix: want the start of a job id (hex digits, dashes where a UUID has them), got "+strconv.Quote(v))
		}
	}
	if len(problems) > 0 {
		return stroem.Invalid("invalid query: "+strings.Join(problems, "; "), problems...)
	}
	jobs, total, err := s.visibleJobs(r, f)
	if err != nil {
		return err
	}
	s.maskConnectionSecrets(jobs) // connections.go
	for i := range jobs {
		if err := s.orch.RedactJob(r.Context(), &jobs[i]); err != nil {
			return err // never serve what could not be masked
		}
	}
	writeJSON(w, http.StatusOK, page[stroem.Job]{Items: jobs, Total: total})
	return nil
}

// visibleJobs is JobList without the jobs whose task the user may not see,
// and the total the list envelope reports. With ACL rules it pages through
// the store, so limit, offset and total count visible jobs only (a hidden
// job is not even counted).
func (s *Server) visibleJobs(r *http.Request, f persistence.JobFilter) ([]stroem.Job, int, error) {
	acl := s.acl()
	if !acl.Enabled() || identity(r).IsAdmin {
		jobs, err := s.store.JobList(r.Context(), f)
		if err != nil {
			return nil, 0, err
		}
		if jobs == nil {
			jobs = []stroem.Job{}
		}
		total := f.Offset + len(jobs)
		if len(jobs) == f.Limit || (len(jobs) == 0 && f.Offset > 0) {
			// Only a full (or past-the-end) page needs a count: a short
			// page ends the list.
			if total, err = s.store.JobCount(r.Context(), f); err != nil {
				return nil, 0, err
			}
		}
		return jobs, total, nil
	}
	want, skip := f.Limit, f.Offset
	out := []stroem.Job{}
	visible := 0
	batch := f
	batch.Limit, batch.Offset = 500, 0
	for {
		jobs, err := s.store.JobList(r.Context(), batch)
		if err != nil {
			return nil, 0, err
		}
		for i := range jobs {
			if !s.canSee(r, &jobs[i]) {
				continue
			}
			visible++
			if skip > 0 {
				skip--
				continue
			}
			if len(out) < want {
				out = append(out, jobs[i])
			}
		}
		if len(jobs) < batch.Limit {
			return out, visible, nil
		}
		batch.Offset += len(jobs)
	}
}

// job loads the job of the URL, if the user may see its task (a hidden
// job is "not found", like a missing one).
func (s *Server) job(r *http.Request) (*stroem.Job, error) {
	id, err := parseJobID(pathParam(r, "id"))
	if err != nil {
		return nil, err
	}
	j, err := s.store.JobGet(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if !s.canSee(r, j) {
		return nil, stroem.Errorf(stroem.CodeNotFound, "job %s not found", id)
	}
	return j, s.markTruncated(r.Context(), j)
}

// runnableJob is the job of the route for a request that acts on it
// (cancel, approve): one the caller cannot see is not found (job), one
// whose task it may not run is refused; what says what was refused
// ("cancel jobs of").
func (s *Server) runnableJob(r *http.Request, what string) (*stroem.Job, error) {
	j, err := s.job(r)
	if err != nil {
		return nil, err
	}
	if err := requireRun(s.acl(), r, j.Workspace, s.jobACLPath(r, j), what); err != nil {
		return nil, s.refused(r, err, "acl")
	}
	return j, nil
}

// jobReload reads a job again after a change, with its truncation marks.
func (s *Server) jobReload(ctx context.Context, id string) (*stroem.Job, error) {
	j, err := s.store.JobGet(ctx, id)
	if err != nil {
		return nil, err
	}
	return j, s.markTruncated(ctx, j)
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
	return s.writeJobView(w, r, j)
}

// writeJobView answers with the single-job view of j: masked and with its
// links.
func (s *Server) writeJobView(w http.ResponseWriter, r *http.Request, j *stroem.Job) error {
	if err := s.orch.RedactJob(r.Context(), j); err != nil {
		return err // never serve what could not be masked
	}
	if err := s.jobLinks(r, j); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) jobCancel(w http.ResponseWriter, r *http.Request) error {
	j, err := s.runnableJob(r, "cancel jobs of")
	if err != nil {
		return err
	}
	if err := s.orch.JobCancel(r.Context(), j.ID); err != nil {
		return err
	}
	if who := identity(r).Actor(); who != "" {
		if err := s.store.JobCancelledBy(r.Context(), j.ID, who); err != nil {
			return err
		}
	}
	if j, err = s.jobReload(r.Context(), j.ID); err == nil {
		err = s.orch.RedactJob(r.Context(), j) // never serve what could not be masked
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) jobLogStream(w http.ResponseWriter, r *http.Request) error {
	j, err := s.job(r)
	if err != nil {
		return err
	}
	s.hub.ServeHTTP(w, r, j.ID)
	return nil
}

func (s *Server) workersList(w http.ResponseWriter, r *http.Request) error {
	// With ACL rules, for admins only (as upstream's Workers page).
	if s.acl().Enabled() {
		if err := requireAdmin(r); err != nil {
			return s.refused(r, err, "forbidden")
		}
	}
	limit, offset, err := pageParams(r, 1000, 1000)
	if err != nil {
		return err
	}
	ws, err := s.store.WorkerList(r.Context())
	if err != nil {
		return err
	}
	items := ws[min(offset, len(ws)):min(offset+limit, len(ws))]
	if items == nil {
		items = []stroem.Worker{}
	}
	writeJSON(w, http.StatusOK, page[stroem.Worker]{Items: items, Total: len(ws)})
	return nil
}

// pageParams reads ?limit= (1 to maxLimit, default defLimit) and ?offset= (≥ 0).
func pageParams(r *http.Request, defLimit, maxLimit int) (limit, offset int, err error) {
	q := r.URL.Query()
	limit = defLimit
	var problems []string
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			problems = append(problems, fmt.Sprintf("limit: want an integer from 1 to %d, got %q", maxLimit, v))
		}
		limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			problems = append(problems, "offset: want a non-negative integer, got "+strconv.Quote(v))
		}
		offset = n
	}
	if len(problems) > 0 {
		return 0, 0, stroem.Invalid("invalid query: "+strings.Join(problems, "; "), problems...)
	}
	return limit, offset, nil
}
