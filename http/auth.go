package http

import (
	"errors"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/auth"
	"github.com/stroem/stroem/http/apierror"
	"github.com/stroem/stroem/workspace"
)

// Cookie names. The session cookie carries the access token for browsers;
// the refresh cookie is only sent to /api/auth.
const (
	SessionCookie = "stroem_session"
	RefreshCookie = "stroem_refresh"
	FlowCookie    = "stroem_oidc_flow"
)

// publicAPI lists the /api routes that answer without a session: the UI's
// bootstrap and the ways to get a session.
func publicAPI(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case p == "/api/config" && r.Method == http.MethodGet:
		return true
	case p == "/api/auth/login", p == "/api/auth/refresh", p == "/api/auth/logout":
		return r.Method == http.MethodPost
	case p == "/api/auth/providers":
		return r.Method == http.MethodGet
	case strings.HasPrefix(p, "/api/auth/oidc/"):
		return r.Method == http.MethodGet
	}
	return false
}

// stateChanging reports whether the method may change state.
func stateChanging(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// guard authenticates every request under /api and /debug, and applies the
// browser defences: a cross-origin check when the session comes from a
// cookie, and JSON-only bodies on state-changing routes. It runs before
// routing, on the path, so no /api route can be mounted around it.
// Webhooks (/hooks, their own secrets), the worker API (/worker, the
// worker token) and the health probes are not its business.
func (s *Server) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	if s.cfg.Auth != nil && s.cfg.Auth.Config().BaseURL != "" {
		if u, err := url.Parse(s.cfg.Auth.Config().BaseURL); err == nil {
			_ = cop.AddTrustedOrigin(u.Scheme + "://" + u.Host)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.denied(w, r, stroem.Errorf(stroem.CodeForbidden, "cross-origin request refused: a browser session may only change state from this server's own pages"), "csrf")
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		api := p == "/api" || strings.HasPrefix(p, "/api/")
		debug := strings.HasPrefix(p, "/debug/")
		if !api && !debug {
			next.ServeHTTP(w, r)
			return
		}
		if api && stateChanging(r) && !binaryUpload(r) {
			if err := jsonOnly(r); err != nil {
				writeError(w, r, s.log, err)
				return
			}
		}
		if api && publicAPI(r) {
			// Refresh and logout read the browser's cookies: the same
			// cross-origin check as for a session.
			if stateChanging(r) && hasSessionCookie(r) {
				cop.Handler(next).ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		id, err := s.identify(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="stroem"`)
			s.denied(w, r, err, "unauthenticated")
			return
		}
		if debug && !id.IsAdmin {
			s.denied(w, r, stroem.Errorf(stroem.CodeForbidden, "profiling endpoints are for admins"), "forbidden")
			return
		}
		r = r.WithContext(auth.WithIdentity(r.Context(), id))
		if id.Method == auth.MethodCookie && stateChanging(r) {
			cop.Handler(next).ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func hasSessionCookie(r *http.Request) bool {
	for _, name := range []string{SessionCookie, RefreshCookie} {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			return true
		}
	}
	return false
}

// jsonOnly refuses a state-changing request whose body is not JSON: a
// browser can send text/plain and form bodies cross-site without a
// preflight, JSON it cannot. An empty body without a type is fine.
func jsonOnly(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.ContentLength == 0 {
			return nil
		}
		return stroem.Errorf(stroem.CodeUnsupported, "request body needs Content-Type: application/json")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return stroem.Errorf(stroem.CodeUnsupported, "unsupported Content-Type %q: send JSON (Content-Type: application/json)", truncate(ct, 100))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// identify finds who the request acts as: the bearer token (an access
// token or an API key), else the session cookie. Without auth configured
// everyone is the open server's identity.
func (s *Server) identify(r *http.Request) (auth.Identity, error) {
	if s.cfg.Auth == nil {
		return auth.Identity{Method: auth.MethodNone, IsAdmin: true}, nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return auth.Identity{}, stroem.Errorf(stroem.CodeUnauthorized, "malformed Authorization header: want `Bearer <token>`")
		}
		return s.cfg.Auth.Authenticate(r.Context(), strings.TrimSpace(token), auth.MethodJWT)
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		id, err := s.cfg.Auth.Authenticate(r.Context(), c.Value, auth.MethodCookie)
		if err == nil && id.Method != auth.MethodCookie {
			// An API key in the cookie: not how cookies are made.
			return auth.Identity{}, stroem.Errorf(stroem.CodeUnauthorized, "invalid session cookie; log in again")
		}
		return id, err
	}
	return auth.Identity{}, stroem.Errorf(stroem.CodeUnauthorized,
		"authentication required: log in (`stroem login`, or POST /api/auth/login) or send Authorization: Bearer <access token or API key>")
}

// denied answers a 401/403 and logs it without any credential.
func (s *Server) denied(w http.ResponseWriter, r *http.Request, err error, reason string) {
	writeError(w, r, s.log, s.refused(r, err, reason))
}

// refused logs a refused request (401/403) without any credential and
// returns err, for handlers that return their errors.
func (s *Server) refused(r *http.Request, err error, reason string) error {
	attrs := []any{"method", r.Method, "path", r.URL.Path, "remote", clientIP(r), "reason", reason, "status", apierror.Status(err)}
	if id, ok := auth.FromContext(r.Context()); ok && id.Email != "" {
		attrs = append(attrs, "user", id.Email)
	}
	if stroem.ErrorCode(err) == stroem.CodeUnauthorized || stroem.ErrorCode(err) == stroem.CodeForbidden {
		attrs = append(attrs, "err", stroem.ErrorMessage(err))
		s.log.Warn("request denied", attrs...)
	}
	return err
}

// clientIP is the address the request came from (the TCP peer; a proxy in
// front makes every client share the proxy's login rate limit).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// identity returns the request's identity (set by guard).
func identity(r *http.Request) auth.Identity {
	id, _ := auth.FromContext(r.Context())
	return id
}

// taskPath is a task's name as ACL rules see it: "folder/name", or the
// name alone.
func taskPath(t *workspace.Task) string {
	if t.Folder != "" {
		return strings.Trim(t.Folder, "/") + "/" + t.Name
	}
	return t.Name
}

// permission is what the request's user may do with a task.
func permission(acl *auth.ACL, r *http.Request, ws, task string) auth.Permission {
	id, ok := auth.FromContext(r.Context())
	if !ok {
		return auth.Deny
	}
	return acl.Check(id, ws, task)
}

// jobTaskPath is the ACL path of a job's task: looked up in the current
// workspace (for its folder), else the stored task name.
func jobTaskPath(wss Workspaces, j *stroem.Job) string {
	if ws := wss.Get(j.Workspace); ws != nil {
		if t := ws.Tasks[j.TaskName]; t != nil {
			return taskPath(t)
		}
	}
	return j.TaskName
}

// canSee reports whether the request may see a job's task (view or run).
func (s *Server) canSee(r *http.Request, j *stroem.Job) bool {
	return permission(s.acl(), r, j.Workspace, s.jobACLPath(r, j)) >= auth.View // hookacl.go
}

func (s *Server) acl() *auth.ACL {
	if s.cfg.Auth == nil {
		return nil
	}
	return s.cfg.Auth.ACL()
}

// requireRun checks run permission on a task: deny hides it (404), view is
// a 403 naming what is missing.
func requireRun(acl *auth.ACL, r *http.Request, ws, task, what string) error {
	switch permission(acl, r, ws, task) {
	case auth.Run:
		return nil
	case auth.View:
		return stroem.Errorf(stroem.CodeForbidden, "you may view task %q of workspace %q but not %s it (ask an admin for run access)", task, ws, what)
	}
	return stroem.Errorf(stroem.CodeNotFound, "task %q not found in workspace %q", task, ws)
}

// requireAdmin is for user management; with ACL configured, also for
// operations on a whole workspace (reload) and the worker list.
func requireAdmin(r *http.Request) error {
	if identity(r).IsAdmin {
		return nil
	}
	return stroem.Errorf(stroem.CodeForbidden, "this needs an admin account")
}

// setSessionCookies gives a browser its session: the access token for
// every request, the refresh token only for /api/auth.
func (s *Server) setSessionCookies(w http.ResponseWriter, r *http.Request, sess auth.Session) {
	secure := s.cfg.Auth.Config().SecureCookies() || r.TLS != nil
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: sess.AccessToken, Path: "/", HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteLaxMode, Expires: sess.AccessExpiresAt, MaxAge: int(time.Until(sess.AccessExpiresAt).Seconds())})
	http.SetCookie(w, &http.Cookie{Name: RefreshCookie, Value: sess.RefreshToken, Path: "/api/auth", HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(auth.RefreshTTL.Seconds())})
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request, name, path string) {
	secure := s.cfg.Auth.Config().SecureCookies() || r.TLS != nil
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// retryAfter sets Retry-After on a rate-limited answer.
func retryAfter(w http.ResponseWriter, err error) {
	var rl *auth.RateLimitError
	if errors.As(err, &rl) {
		w.Header().Set("Retry-After", strconv.Itoa(int(rl.RetryAfter.Round(time.Second).Seconds())))
	}
}
