package http

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/actors"
	"github.com/stroem/stroem/auth"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// Orchestrator is what the public handlers ask of the job engine.
type Orchestrator interface {
	JobCreate(ctx context.Context, r actors.JobRequest) (string, error)
	JobCancel(ctx context.Context, jobID string) error
	// Masker is the job's secret masker: a served job is masked once more.
	Masker(ctx context.Context, jobID string) (*stroem.Masker, error)
	// Approve decides a suspended approval gate (http/approval.go).
	Approve(ctx context.Context, jobID, step string, d actors.Decision) error
	// RedactJob masks every secret in a job about to be served, its
	// secret: true inputs included; an error means it must not be served.
	RedactJob(ctx context.Context, j *stroem.Job) error
}

// Workers is the worker protocol (actors.Workers): the worker API's
// handlers only decode, call one of these and encode.
type Workers interface {
	Register(ctx context.Context, reg stroem.WorkerRegistration) (stroem.WorkerRegistered, error)
	Heartbeat(ctx context.Context, hb stroem.Heartbeat) (stroem.HeartbeatResponse, error)
	Claim(ctx context.Context, req stroem.ClaimRequest) (*stroem.Assignment, error)
	Unassign(ctx context.Context, a *stroem.Assignment, workerID string)
	Start(ctx context.Context, jobID, step string, st stroem.StepStart) error
	PushLogs(ctx context.Context, jobID, step string, p stroem.LogPush) (stroem.LogPushResponse, error)
	Complete(ctx context.Context, jobID, step string, c stroem.Completion) (*stroem.Assignment, error)
	// Authenticate maps a worker's own credential to its id; the worker
	// routes then run with actors.WithCaller.
	Authenticate(ctx context.Context, credential string) (string, error)
	ArchiveAllowed(ctx context.Context, revision string) error
}

// Store is what the handlers read directly.
type Store interface {
	Ping(ctx context.Context) error
	JobGet(ctx context.Context, id string) (*stroem.Job, error)
	JobList(ctx context.Context, f persistence.JobFilter) ([]stroem.Job, error)
	JobCount(ctx context.Context, f persistence.JobFilter) (int, error)
	// JobCancelledBy records who cancelled a job (the first one).
	JobCancelledBy(ctx context.Context, jobID, who string) error
	WorkerList(ctx context.Context) ([]stroem.Worker, error)
	WorkspaceArchiveGet(ctx context.Context, revision string) ([]byte, error)
}

// Workspaces is the set of loaded workspaces.
type Workspaces interface {
	Get(name string) *workspace.Workspace
	List() []*workspace.Workspace
	Reload(name string) (*workspace.Workspace, error)
	// SourceStatus is the sync state of a workspace loaded from git; ok
	// is false for folder workspaces.
	SourceStatus(name string) (workspace.SourceStatus, bool)
	// RefProblems are the problems of the workspace's references to
	// other workspaces' actions, checked against the workspaces served now.
	RefProblems(name string) []workspace.Problem
}

// Logs reads the stored log lines (persistence.Store's Log methods).
type Logs interface {
	LogScan(ctx context.Context, jobID string, afterSeq int64, step string, fn func(stroem.LogLine) error) error
	LogTruncatedSteps(ctx context.Context, jobID string) ([]string, error)
}

// Hub serves a job's log stream (http/logstream).
type Hub interface {
	ServeHTTP(w http.ResponseWriter, r *http.Request, jobID string)
}

// Config holds what the server needs besides its collaborators.
type Config struct {
	WorkerToken  string
	MaxBodyBytes int64
	// WriteTimeout is the server's write timeout; the claim long poll
	// extends its deadline by it beyond the wait, a streamed log read
	// gives it to each chunk.
	WriteTimeout time.Duration
	// Ready reports whether the server finished starting (migrations applied,
	// workspaces loaded); /readyz is 503 until then.
	Ready func() bool
	// Extra mounts additional routes (webhooks, pprof) on the root router.
	// Whatever it mounts under /api or /debug is guarded like the rest.
	Extra func(r chi.Router)
	// UI, when set, answers the GET and HEAD requests no route matched
	// outside the server's own prefixes (the web front end, package ui).
	UI http.Handler
	// Auth authenticates users; nil means an open server (no auth:
	// section, allowed only on a loopback address or when explicitly
	// turned off), where every request may do everything.
	Auth *auth.Service
	// Files stores and serves task state and artifacts (actors.Files);
	// nil answers their routes 404.
	Files Files
}

// serverPrefixes are the paths that belong to the server: the UI never
// answers under them, so an unknown API route stays a JSON 404.
var serverPrefixes = []string{"/api", "/hooks", "/worker", "/healthz", "/readyz", "/metrics", "/debug"}

func serverPath(p string) bool {
	for _, pre := range serverPrefixes {
		if p == pre || strings.HasPrefix(p, pre+"/") {
			return true
		}
	}
	return false
}

// Server is the HTTP API.
type Server struct {
	cfg     Config
	orch    Orchestrator
	workers Workers
	store   Store
	ws      Workspaces
	logs    Logs
	hub     Hub
	log     *slog.Logger
}

// NewServer wires the handlers.
func NewServer(cfg Config, orch Orchestrator, workers Workers, store Store, ws Workspaces, logs Logs, hub Hub, log *slog.Logger) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 10 << 20
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, orch: orch, workers: workers, store: store, ws: ws, logs: logs, hub: hub, log: log}
}

// Handler returns the router.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.recoverer, s.checkText, s.deadlines, s.limitBody, s.guard)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.UI != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !serverPath(r.URL.Path) {
			s.cfg.UI.ServeHTTP(w, r)
			return
		}
		writeError(w, r, s.log, stroem.Errorf(stroem.CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)})
	})
	r.Get("/healthz", s.healthz)
	r.Get("/healthz/detail", s.healthzDetail)
	r.Get("/readyz", s.readyz)

	r.Route("/api", func(r chi.Router) {
		s.mountAuth(r)
		r.Get("/workspaces", s.handle(s.workspacesList))
		r.Get("/workspaces/{ws}", s.handle(s.workspaceGet))
		r.Post("/workspaces/{ws}/reload", s.handle(s.workspaceReload))
		r.Post("/workspaces/{ws}/refresh", s.handle(s.workspaceRefresh))
		r.Get("/workspaces/{ws}/source", s.handle(s.workspaceSource))
		r.Get("/workspaces/{ws}/tasks", s.handle(s.tasksList))
		r.Get("/workspaces/{ws}/tasks/{task}", s.handle(s.taskGet))
		r.Get("/workspaces/{ws}/tasks/{task}/stats", s.handle(s.taskStats))
		r.Post("/workspaces/{ws}/tasks/{task}/execute", s.handle(s.taskExecute))
		r.Get("/jobs", s.handle(s.jobsList))
		r.Get("/jobs/{id}", s.handle(s.jobGet))
		r.Post("/jobs/{id}/cancel", s.handle(s.jobCancel))
		r.Get("/jobs/{id}/logs", s.handle(s.jobLogs))
		r.Get("/jobs/{id}/steps/{step}/logs", s.handle(s.jobLogs))
		r.Get("/jobs/{id}/logs/stream", s.handle(s.jobLogStream))
		r.Post("/jobs/{id}/steps/{step}/approve", s.handle(s.stepApprove))
		r.Get("/workers", s.handle(s.workersList))
		s.mountFilesAPI(r)
		// What the web UI asks first: whether to show a login page.
		// Authentication (issue 15) answers this route itself once it lands.
	})

	r.Route("/worker", func(r chi.Router) {
		// The shared worker token only registers; the answer carries the
		// worker's own credential, which every other route requires.
		r.With(s.workerAuth).Post("/register", s.handle(s.workerRegister))
		r.Group(func(r chi.Router) {
			r.Use(s.workerCredential)
			r.Post("/heartbeat", s.handle(s.workerHeartbeat))
			r.Post("/jobs/claim", s.handle(s.workerClaim))
			r.Post("/jobs/{id}/steps/{step}/start", s.handle(s.workerStart))
			r.Post("/jobs/{id}/steps/{step}/logs", s.handle(s.workerLogs))
			r.Post("/jobs/{id}/steps/{step}/complete", s.handle(s.workerComplete))
			r.Get("/workspaces/{ws}/{file}", s.handle(s.workerArchive))
			s.mountFilesWorker(r)
		})
	})
	if s.cfg.Extra != nil {
		s.cfg.Extra(r)
	}
	return r
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil && !s.cfg.Ready() {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "starting"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "database unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// healthz is the open liveness probe: up, and the database answers. It
// says nothing more (no topology for anonymous scanners).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy", "db": "error"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "db": "ok"})
}

// healthzDetail is the authenticated diagnostic view: the worker token or
// any signed-in user (or API key).
func (s *Server) healthzDetail(w http.ResponseWriter, r *http.Request) {
	tok, _ := bearer(r)
	workerTok := s.cfg.WorkerToken != "" && auth.Equal(tok, s.cfg.WorkerToken)
	if !workerTok {
		if _, err := s.identify(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="stroem"`)
			s.denied(w, r, err, "unauthenticated")
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]any{"db": "ok", "ready": s.cfg.Ready == nil || s.cfg.Ready()}
	status, code := "ok", http.StatusOK
	if err := s.store.Ping(ctx); err != nil {
		checks["db"] = "error"
		status, code = "unhealthy", http.StatusServiceUnavailable
	}
	if checks["ready"] == false {
		status, code = "starting", http.StatusServiceUnavailable
	}
	if ws, err := s.store.WorkerList(ctx); err == nil {
		active := 0
		for _, wk := range ws {
			if wk.Status == "active" {
				active++
			}
		}
		checks["workers_active"] = active
	}
	checks["auth"] = s.cfg.Auth != nil
	writeJSON(w, code, map[string]any{"status": status, "checks": checks})
}

// handle answers the error a handler returns through the one error mapping.
func (s *Server) handle(fn handlerFunc) http.HandlerFunc { return handle(s.log, fn) }

// recoverer turns a handler panic into a JSON 500 and a log record with the
// stack, and keeps the server up.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody bounds every request body.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ownBodyLimit(r) { // http/artifacts.go
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > s.cfg.MaxBodyBytes {
			writeError(w, r, s.log, stroem.Errorf(stroem.CodeTooLarge, "request body is larger than %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// bearer is the token of a request's `Authorization: Bearer <token>`
// header (the scheme in any case, as RFC 9110 says); ok is false without
// one.
func bearer(r *http.Request) (token string, ok bool) {
	h := r.Header.Get("Authorization")
	if len(h) > len("Bearer ") && strings.EqualFold(h[:len("Bearer ")], "Bearer ") {
		return h[len("Bearer "):], true
	}
	return "", false
}

// workerAuth admits only requests with the worker token, compared in
// constant time, length included (auth.Equal).
func (s *Server) workerAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := bearer(r)
		if s.cfg.WorkerToken == "" || !auth.Equal(got, s.cfg.WorkerToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="stroem-worker"`)
			msg := "missing or wrong worker token"
			if r.Header.Get("Authorization") == "" {
				msg = "missing worker token (Authorization: Bearer …)"
			}
			s.denied(w, r, stroem.Errorf(stroem.CodeUnauthorized, "%s", msg), "worker token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// workerCredential admits only requests with a registered worker's own
// credential and runs them as that worker (actors.WithCaller): every
// worker_id they name must be the caller's.
func (s *Server) workerCredential(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred, _ := bearer(r)
		id, err := s.workers.Authenticate(r.Context(), cred)
		if err != nil {
			if stroem.ErrorCode(err) == stroem.CodeUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="stroem-worker"`)
			}
			writeError(w, r, s.log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(actors.WithCaller(r.Context(), id)))
	})
}

// pathParam returns a URL parameter, unescaped by chi's routing of RawPath.
// chi routes on RawPath only when the request has one; otherwise the
// parameter comes from the decoded Path and is not unescaped again (an
// artifact named a%41.txt is not aA.txt).
func pathParam(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if r.URL.RawPath != "" && strings.ContainsRune(v, '%') {
		if u, err := url.PathUnescape(v); err == nil {
			return u
		}
	}
	return v
}
