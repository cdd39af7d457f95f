package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/actors"
	"github.com/stroem/stroem/auth"
	"github.com/stroem/stroem/persistence"
)

// Task state, global state and artifacts (issue 22,
// docs/state-artifacts.md): the worker routes a step's worker writes and
// reads them through (fenced by attempt, like log pushes), and the public
// routes. Handlers decode, call actors.Files and encode.

// Files is the state and artifact service (actors.Files).
type Files interface {
	ArtifactPut(ctx context.Context, w actors.StepWrite, name, contentType string, body io.Reader) (persistence.Artifact, error)
	StatePut(ctx context.Context, w actors.StepWrite, scope string, body io.Reader) (persistence.StateSnapshot, error)
	StateGet(ctx context.Context, w actors.StepWrite, scope string) (persistence.StateSnapshot, io.Reader, error)
	StateUpload(ctx context.Context, u actors.StateUpload, body io.Reader) (persistence.StateSnapshot, error)
	StateList(ctx context.Context, workspace, task string, limit int) ([]persistence.StateSnapshot, error)
	StateOpen(ctx context.Context, workspace, task, id string) (persistence.StateSnapshot, io.Reader, error)
	ArtifactList(ctx context.Context, jobID string) ([]persistence.Artifact, error)
	ArtifactOpen(ctx context.Context, jobID, name string) (persistence.Artifact, io.Reader, error)
	Limits() actors.FileLimits
}

// mountFilesAPI adds the public state and artifact routes under /api.
func (s *Server) mountFilesAPI(r chi.Router) {
	r.Post("/workspaces/{ws}/tasks/{task}/state", s.handle(s.stateUpload))
	r.Get("/workspaces/{ws}/tasks/{task}/state", s.handle(s.stateList))
	r.Get("/workspaces/{ws}/tasks/{task}/state/{snapshot}", s.handle(s.stateDownload))
	r.Post("/workspaces/{ws}/state", s.handle(s.stateUpload))
	r.Get("/workspaces/{ws}/state", s.handle(s.stateList))
	r.Get("/workspaces/{ws}/state/{snapshot}", s.handle(s.stateDownload))
	r.Get("/jobs/{id}/artifacts", s.handle(s.artifactsList))
	r.Get("/jobs/{id}/artifacts/*", s.handle(s.artifactDownload))
}

// mountFilesWorker adds the worker's routes (behind its credential).
func (s *Server) mountFilesWorker(r chi.Router) {
	r.Post("/jobs/{id}/steps/{step}/artifacts/*", s.handle(s.workerArtifactPut))
	r.Post("/jobs/{id}/steps/{step}/state", s.handle(s.workerStatePut))
	r.Get("/jobs/{id}/steps/{step}/state", s.handle(s.workerStateGet))
}

// ownBodyLimit reports the upload routes that bound their body themselves
// (larger than the server's max_body_bytes): limitBody leaves them alone.
func ownBodyLimit(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/worker/jobs/"):
		return strings.Contains(p, "/artifacts/") || strings.HasSuffix(p, "/state")
	case strings.HasPrefix(p, "/api/workspaces/"):
		return strings.HasSuffix(p, "/state")
	}
	return false
}

// binaryUpload admits the gzip body of a state upload where the API
// otherwise wants JSON: a browser cannot send these types cross-site
// without a preflight either.
func binaryUpload(r *http.Request) bool {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/api/workspaces/") || !strings.HasSuffix(r.URL.Path, "/state") {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == "application/gzip" || mt == "application/x-gzip" || mt == "application/octet-stream")
}

func (s *Server) files() (Files, error) {
	if s.cfg.Files == nil {
		return nil, stroem.Errorf(stroem.CodeNotFound, "state and artifacts are not enabled on this server")
	}
	return s.cfg.Files, nil
}

// uploadReadTimeout bounds the body of an upload (the server's
// http.read_timeout is sized for JSON bodies, not 100 MiB files).
const uploadReadTimeout = 30 * time.Minute

// limitedBody bounds an upload's body to max bytes, answering 413 beyond,
// and gives it uploadReadTimeout to arrive.
func limitedBody(w http.ResponseWriter, r *http.Request, max int64, what string) (io.Reader, error) {
	if r.ContentLength > max {
		return nil, stroem.Errorf(stroem.CodeTooLarge, "%s of %d bytes is larger than the limit of %d bytes", what, r.ContentLength, max)
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(uploadReadTimeout))
	return &tooLargeBody{r: http.MaxBytesReader(w, r.Body, max), what: what, max: max}, nil
}

type tooLargeBody struct {
	r    io.Reader
	what string
	max  int64
}

func (b *tooLargeBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		err = stroem.Errorf(stroem.CodeTooLarge, "%s is larger than the limit of %d bytes", b.what, b.max)
	}
	return n, err
}

// stepWrite reads a worker file route's job, step, worker_id and attempt.
func stepWrite(r *http.Request) (actors.StepWrite, error) {
	id, step, err := stepPath(r)
	if err != nil {
		return actors.StepWrite{}, err
	}
	q := r.URL.Query()
	attempt, err := strconv.Atoi(q.Get("attempt"))
	if err != nil {
		return actors.StepWrite{}, stroem.Errorf(stroem.CodeInvalid, "attempt: want a number, got %q", q.Get("attempt"))
	}
	return actors.StepWrite{JobID: id, Step: step, Attempt: attempt, WorkerID: q.Get("worker_id")}, nil
}

// workerFiles is the file store and the step attempt of a worker file
// route.
func (s *Server) workerFiles(r *http.Request) (Files, actors.StepWrite, error) {
	f, err := s.files()
	if err != nil {
		return nil, actors.StepWrite{}, err
	}
	sw, err := stepWrite(r)
	return f, sw, err
}

func (s *Server) workerArtifactPut(w http.ResponseWriter, r *http.Request) error {
	f, sw, err := s.workerFiles(r)
	if err != nil {
		return err
	}
	name := pathParam(r, "*")
	if err := persistence.CheckArtifactName(name); err != nil {
		return err
	}
	body, err := limitedBody(w, r, f.Limits().MaxFileBytes, fmt.Sprintf("artifact %q (artifact_storage.max_file_bytes)", name))
	if err != nil {
		return err
	}
	a, err := f.ArtifactPut(r.Context(), sw, name, r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"name": a.Name, "size_bytes": a.SizeBytes, "content_type": a.ContentType, "sha256": a.SHA256})
	return nil
}

func (s *Server) workerStatePut(w http.ResponseWriter, r *http.Request) error {
	f, sw, err := s.workerFiles(r)
	if err != nil {
		return err
	}
	body, err := limitedBody(w, r, f.Limits().MaxStateBytes, "state snapshot (state_storage.max_bytes)")
	if err != nil {
		return err
	}
	sn, err := f.StatePut(r.Context(), sw, r.URL.Query().Get("scope"), body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, sn)
	return nil
}

func (s *Server) workerStateGet(w http.ResponseWriter, r *http.Request) error {
	f, sw, err := s.workerFiles(r)
	if err != nil {
		return err
	}
	sn, body, err := f.StateGet(r.Context(), sw, r.URL.Query().Get("scope"))
	if err != nil {
		return err
	}
	if body == nil {
		w.WriteHeader(http.StatusNoContent) // no state yet
		return nil
	}
	s.stream(w, "application/gzip", sn.SizeBytes, "", body)
	return nil
}

// stream writes a stored body with its length, a write deadline per chunk.
func (s *Server) stream(w http.ResponseWriter, contentType string, size int64, disposition string, body io.Reader) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("X-Content-Type-Options", "nosniff")
	if disposition != "" {
		h.Set("Content-Disposition", disposition)
	}
	w.WriteHeader(http.StatusOK)
	cw := &chunkWriter{w: w, rc: http.NewResponseController(w), timeout: s.cfg.WriteTimeout}
	if _, err := io.Copy(cw, body); err != nil {
		// The status is sent: the short body tells the client.
		s.log.Warn("stream stored file", "err", err)
	}
}

// stateFiles is the file store and the workspace and task of a public
// state route (see stateTarget).
func (s *Server) stateFiles(r *http.Request, write bool) (Files, string, string, error) {
	f, err := s.files()
	if err != nil {
		return nil, "", "", err
	}
	ws, task, err := s.stateTarget(r, write)
	return f, ws, task, err
}

// jobFiles is the file store and the job of a public artifact route.
func (s *Server) jobFiles(r *http.Request) (Files, *stroem.Job, error) {
	f, err := s.files()
	if err != nil {
		return nil, nil, err
	}
	j, err := s.job(r)
	return f, j, err
}

// stateTarget resolves the workspace and task of a public state route
// (task "" for global state) and checks the caller's permission.
func (s *Server) stateTarget(r *http.Request, write bool) (ws, task string, err error) {
	w, err := s.workspace(r)
	if err != nil {
		return "", "", err
	}
	name := pathParam(r, "task")
	if name == "" {
		if err := requireAdmin(r); err != nil {
			return "", "", s.refused(r, stroem.Errorf(stroem.CodeForbidden, "global state needs an admin account"), "acl")
		}
		return w.Name, "", nil
	}
	t := w.Tasks[name]
	if t == nil {
		return "", "", stroem.Errorf(stroem.CodeNotFound, "task %q not found in workspace %q", name, w.Name)
	}
	if write {
		if err := requireRun(s.acl(), r, w.Name, taskPath(t), "upload state of"); err != nil {
			return "", "", s.refused(r, err, "acl")
		}
	} else if permission(s.acl(), r, w.Name, taskPath(t)) < auth.View {
		return "", "", stroem.Errorf(stroem.CodeNotFound, "task %q not found in workspace %q", name, w.Name)
	}
	return w.Name, name, nil
}

func (s *Server) stateUpload(w http.ResponseWriter, r *http.Request) error {
	f, ws, task, err := s.stateFiles(r, true)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	u := actors.StateUpload{Workspace: ws, Task: task, By: identity(r).Actor(), Mode: q.Get("mode"), Values: map[string]string{}}
	for k, vs := range q {
		if k == "mode" {
			continue
		}
		if len(vs) != 1 {
			return stroem.Errorf(stroem.CodeInvalid, "state key %q is given %d times", k, len(vs))
		}
		u.Values[k] = vs[0]
	}
	body, err := limitedBody(w, r, f.Limits().MaxStateBytes, "state snapshot (state_storage.max_bytes)")
	if err != nil {
		return err
	}
	sn, err := f.StateUpload(r.Context(), u, body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, sn)
	return nil
}

func (s *Server) stateList(w http.ResponseWriter, r *http.Request) error {
	f, ws, task, err := s.stateFiles(r, false)
	if err != nil {
		return err
	}
	list, err := f.StateList(r.Context(), ws, task, 100)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": list})
	return nil
}

func (s *Server) stateDownload(w http.ResponseWriter, r *http.Request) error {
	f, ws, task, err := s.stateFiles(r, false)
	if err != nil {
		return err
	}
	sn, body, err := f.StateOpen(r.Context(), ws, task, pathParam(r, "snapshot"))
	if err != nil {
		return err
	}
	s.stream(w, "application/gzip", sn.SizeBytes, attachment("state-"+sn.ID+".tar.gz", false), body)
	return nil
}

// artifactView is an artifact as the API lists it.
type artifactView struct {
	persistence.Artifact
	URL string `json:"url"`
}

func (s *Server) artifactsList(w http.ResponseWriter, r *http.Request) error {
	f, j, err := s.jobFiles(r)
	if err != nil {
		return err
	}
	list, err := f.ArtifactList(r.Context(), j.ID)
	if err != nil {
		return err
	}
	out := make([]artifactView, len(list))
	for i, a := range list {
		out[i] = artifactView{Artifact: a, URL: persistence.ArtifactPath(j.ID, a.Name)}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// inlineTypes are served inline; everything else (HTML, SVG, XML, JSON…)
// downloads, so a workflow's file cannot run script on the server's origin.
var inlineTypes = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true,
	"application/pdf": true, "text/plain": true, "text/markdown": true,
}

func attachment(name string, inline bool) string {
	kind := "attachment"
	if inline {
		kind = "inline"
	}
	return mime.FormatMediaType(kind, map[string]string{"filename": name})
}

func (s *Server) artifactDownload(w http.ResponseWriter, r *http.Request) error {
	f, j, err := s.jobFiles(r)
	if err != nil {
		return err
	}
	name := pathParam(r, "*")
	if err := persistence.CheckArtifactName(name); err != nil {
		return err
	}
	a, body, err := f.ArtifactOpen(r.Context(), j.ID, name)
	if err != nil {
		return err
	}
	mt, _, _ := mime.ParseMediaType(a.ContentType)
	base := name[strings.LastIndex(name, "/")+1:]
	s.stream(w, a.ContentType, a.SizeBytes, attachment(base, inlineTypes[mt]), body)
	return nil
}
