package main

// Acceptance tests of authentication and access control (issue 15), on the
// real server wiring with the embedded store: every route × every kind of
// caller, login rate limits, browser request forgery, OIDC through a real
// provider, the refresh token life cycle and who did what.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/oauth2-proxy/mockoidc"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/auth"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/sqlite"
	"github.com/stroem/stroem/stroemtest"
)

const (
	testJWTSecret     = "test-jwt-secret-0123456789abcdef"
	testRefreshSecret = "test-refresh-secret-0123456789ab"
	adminEmail        = "admin@stroem.local"
	adminPassword     = "admin-password"
)

const authWorkflow = `
actions:
  say:
    type: shell
    cmd: "echo hi"
  gate:
    type: approval
    message: "go on?"
tasks:
  hello:
    flow:
      one: {action: say}
  gated:
    flow:
      wait: {action: gate}
  other:
    flow:
      one: {action: say}
triggers:
  hook:
    type: webhook
    task: hello
    secret: "a-webhook-secret"
`

// testACL: viewers see everything, runners run everything, anybody else
// (no group) is denied by default.
var testACL = &auth.ACLConfig{Default: "deny", Rules: []auth.ACLRule{
	{Workspace: "*", Tasks: []string{"*"}, Action: "view", Groups: []string{"viewers"}},
	{Workspace: "*", Tasks: []string{"*"}, Action: "run", Groups: []string{"runners"}},
	{Workspace: "default", Tasks: []string{"hel*"}, Action: "run", Groups: []string{"hello-only"}},
}}

type authEnv struct {
	t     *testing.T
	logs  *stroemtest.Buffer // the server's log records, warnings and up
	app   *serverApp
	url   string
	store *sqlite.Store
	cfg   serverConfig
	hc    *http.Client
}

func newAuthEnv(t *testing.T, mutate func(*serverConfig)) *authEnv {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "ws", ".workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ws", ".workflows", "test.yaml"), []byte(authWorkflow), 0o644))
	logs := &stroemtest.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("server log:\n" + logs.String())
		}
	})
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "stroem.db"), log)
	require.NoError(t, err)
	cfg := defaultServerConfig()
	cfg.LogStorage.LocalDir = filepath.Join(dir, "logs")
	cfg.Workspaces = map[string]workspaceConfig{"default": {Type: "folder", Path: filepath.Join(dir, "ws")}}
	cfg.WorkerToken = testToken
	cfg.ShutdownGrace = 5 * time.Second
	cfg.Auth = &auth.Config{
		JWTSecret: testJWTSecret, RefreshSecret: testRefreshSecret,
		Providers:   map[string]auth.ProviderConfig{"internal": {ProviderType: auth.ProviderInternal}},
		InitialUser: &auth.InitialUser{Email: adminEmail, Password: adminPassword},
	}
	cfg.ACL = testACL
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.Auth.BaseURL = "http://" + ln.Addr().String()
	if mutate != nil {
		mutate(&cfg)
	}
	app, err := startServer(context.Background(), cfg, serverOptions{store: store, listener: ln, pprof: true}, log)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, app.Stop(context.Background())) })
	return &authEnv{t: t, logs: logs, app: app, url: app.URL(), store: store, cfg: cfg, hc: &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// user stores a user with a password and groups and returns its id.
func (e *authEnv) user(email, password string, groups ...string) string {
	e.t.Helper()
	hash, err := auth.HashPassword(password)
	require.NoError(e.t, err)
	id := uuid.NewString()
	require.NoError(e.t, e.store.UserInsert(context.Background(), stroem.User{ID: id, Email: email, PasswordHash: hash,
		Groups: groups, CreatedAt: time.Now().UTC()}))
	return id
}

// req is one HTTP request of a test.
type req struct {
	method, path string
	body         string
	contentType  string // default application/json when there is a body
	token        string
	header       map[string]string
}

func (e *authEnv) do(r req) (int, []byte, http.Header) {
	e.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, e.url+r.path, body)
	require.NoError(e.t, err)
	if r.body != "" {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := e.hc.Do(hr)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, b, resp.Header
}

func (e *authEnv) login(email, password string) (access, refresh string) {
	e.t.Helper()
	st, b, _ := e.do(req{method: "POST", path: "/api/auth/login", body: fmt.Sprintf(`{"email": %q, "password": %q}`, email, password)})
	require.Equal(e.t, http.StatusOK, st, string(b))
	var tp struct{ AccessToken, RefreshToken string }
	require.NoError(e.t, json.Unmarshal(b, &struct {
		A *string `json:"access_token"`
		R *string `json:"refresh_token"`
	}{&tp.AccessToken, &tp.RefreshToken}))
	require.NotEmpty(e.t, tp.AccessToken)
	require.NotEmpty(e.t, tp.RefreshToken)
	return tp.AccessToken, tp.RefreshToken
}

// execute creates a job of task as token and returns its id.
func (e *authEnv) execute(token, task string) string {
	e.t.Helper()
	st, b, _ := e.do(req{method: "POST", path: "/api/workspaces/default/tasks/" + task + "/execute", body: `{}`, token: token})
	require.Equal(e.t, http.StatusCreated, st, string(b))
	var out struct {
		JobID string `json:"job_id"`
	}
	require.NoError(e.t, json.Unmarshal(b, &out))
	return out.JobID
}

func (e *authEnv) jobCount() int {
	e.t.Helper()
	jobs, err := e.store.JobList(context.Background(), jobFilterAll())
	require.NoError(e.t, err)
	return len(jobs)
}

// caller kinds of the route table.
const (
	anonymous     = "anonymous"
	badToken      = "bad token"
	expiredAccess = "expired access token"
	spentRefresh  = "revoked/reused refresh token"
	viewUser      = "view user"
	runUser       = "run user"
	deniedUser    = "denied user"
	adminUser     = "admin"
	apiKey        = "API key"
	expiredKey    = "expired API key"
)

var callers = []string{anonymous, badToken, expiredAccess, spentRefresh, viewUser, runUser, deniedUser, adminUser, apiKey, expiredKey}

// expect gives the status for each caller; unauthenticated callers get
// 401 on every protected route, so only the five identities are listed.
type expect struct {
	public                        int // when non-zero: the route is open, every caller gets this
	view, run, denied, admin, key int
}

func protected(view, run, denied, admin, key int) expect {
	return expect{view: view, run: run, denied: denied, admin: admin, key: key}
}

func all(status int) expect { return protected(status, status, status, status, status) }

func (x expect) status(caller string) int {
	if x.public != 0 {
		return x.public
	}
	switch caller {
	case viewUser:
		return x.view
	case runUser:
		return x.run
	case deniedUser:
		return x.denied
	case adminUser:
		return x.admin
	case apiKey:
		return x.key
	}
	return http.StatusUnauthorized
}

// routeCase is one route of the table: how to call it and what to expect.
type routeCase struct {
	// path builds the URL (it may create what the call needs, e.g. a
	// fresh job to cancel).
	path   func() string
	body   string
	expect expect
	// worker marks /worker routes: only the worker token opens them, so
	// every caller of the table gets 401.
	worker bool
}

func TestEveryRouteForEveryCaller(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil)
	ctx := context.Background()

	// The callers' credentials.
	adminAccess, _ := e.login(adminEmail, adminPassword)
	e.user("viewer@example.com", "pw-viewer", "viewers")
	e.user("runner@example.com", "pw-runner", "runners")
	e.user("denied@example.com", "pw-denied")
	spare := e.user("spare@example.com", "pw-spare")
	creds := map[string]string{
		badToken:  "not-a-token",
		adminUser: adminAccess,
	}
	creds[viewUser], _ = e.login("viewer@example.com", "pw-viewer")
	var runRefresh string
	creds[runUser], runRefresh = e.login("runner@example.com", "pw-runner")
	creds[deniedUser], _ = e.login("denied@example.com", "pw-denied")
	past := auth.NewTokens(testJWTSecret, testRefreshSecret, func() time.Time { return time.Now().Add(-time.Hour) })
	creds[expiredAccess], _, _ = past.Access(auth.Identity{UserID: spare, Email: "runner@example.com", Groups: []string{"runners"}})
	// A refresh token that was rotated and then presented again: the
	// second use is refused and revokes the session.
	st, b, _ := e.do(req{method: "POST", path: "/api/auth/refresh", body: fmt.Sprintf(`{"refresh_token": %q}`, runRefresh)})
	require.Equal(t, http.StatusOK, st, string(b))
	st, _, _ = e.do(req{method: "POST", path: "/api/auth/refresh", body: fmt.Sprintf(`{"refresh_token": %q}`, runRefresh)})
	require.Equal(t, http.StatusUnauthorized, st)
	creds[spentRefresh] = runRefresh
	// API keys of the run user: one live, one expired.
	runnerID := mustUser(t, e, "runner@example.com")
	st, b, _ = e.do(req{method: "POST", path: "/api/auth/api-keys", body: `{"name": "ci", "expires_in_days": 30}`, token: creds[runUser]})
	require.Equal(t, http.StatusCreated, st, string(b))
	var created struct {
		Key string `json:"key"`
	}
	require.NoError(t, json.Unmarshal(b, &created))
	creds[apiKey] = created.Key
	// A key's shown prefix has three random hex digits, unique per user: one
	// draw in 4,096 clashes with the key just created (the server draws
	// again; so does this).
	gone := time.Now().Add(-time.Hour).UTC()
	for try := 1; ; try++ {
		expired, hash, prefix, err := auth.NewAPIKey()
		require.NoError(t, err)
		err = e.store.APIKeyInsert(ctx, stroem.APIKey{Hash: hash, Prefix: prefix, UserID: runnerID, Name: "old", CreatedAt: gone.Add(-time.Hour), ExpiresAt: &gone})
		if errors.Is(err, stroem.ErrConflict) && try < 5 {
			continue
		}
		require.NoError(t, err)
		creds[expiredKey] = expired
		break
	}

	// A finished job (its log stream ends at once) for the read routes.
	doneJob := e.execute(adminAccess, "hello")
	st, b, _ = e.do(req{method: "POST", path: "/api/jobs/" + doneJob + "/cancel", token: adminAccess})
	require.Equal(t, http.StatusOK, st, string(b))
	pendingJob := func() string { return e.execute(adminAccess, "hello") }

	const (
		ok        = http.StatusOK
		created_  = http.StatusCreated
		forbidden = http.StatusForbidden
		notFound  = http.StatusNotFound
		unauth    = http.StatusUnauthorized
	)
	fixed := func(p string) func() string { return func() string { return p } }
	table := map[string]routeCase{
		"GET /healthz":        {path: fixed("/healthz"), expect: expect{public: ok}},
		"GET /readyz":         {path: fixed("/readyz"), expect: expect{public: ok}},
		"GET /healthz/detail": {path: fixed("/healthz/detail"), expect: all(ok)},

		"GET /api/config":                                {path: fixed("/api/config"), expect: expect{public: ok}},
		"POST /api/auth/login":                           {path: fixed("/api/auth/login"), body: `{"email": "someone@example.com", "password": "wrong"}`, expect: expect{public: unauth}},
		"POST /api/auth/refresh":                         {path: fixed("/api/auth/refresh"), body: `{"refresh_token": "bogus"}`, expect: expect{public: unauth}},
		"POST /api/auth/logout":                          {path: fixed("/api/auth/logout"), body: `{"refresh_token": "bogus"}`, expect: expect{public: ok}},
		"GET /api/auth/providers":                        {path: fixed("/api/auth/providers"), expect: expect{public: ok}},
		"GET /api/auth/oidc/{provider}":                  {path: fixed("/api/auth/oidc/nope"), expect: expect{public: notFound}},
		"GET /api/auth/oidc/{provider}/callback":         {path: fixed("/api/auth/oidc/nope/callback?code=x&state=y"), expect: expect{public: notFound}},
		"GET /api/auth/me":                               {path: fixed("/api/auth/me"), expect: all(ok)},
		"GET /api/auth/api-keys":                         {path: fixed("/api/auth/api-keys"), expect: all(ok)},
		"POST /api/auth/api-keys":                        {path: fixed("/api/auth/api-keys"), body: `{"name": "k"}`, expect: protected(created_, created_, created_, created_, forbidden)},
		"DELETE /api/auth/api-keys/{prefix}":             {path: fixed("/api/auth/api-keys/strm_zzz"), expect: all(notFound)},
		"GET /api/users":                                 {path: fixed("/api/users"), expect: protected(forbidden, forbidden, forbidden, ok, forbidden)},
		"GET /api/users/{id}":                            {path: fixed("/api/users/" + spare), expect: protected(forbidden, forbidden, forbidden, ok, forbidden)},
		"PUT /api/users/{id}/admin":                      {path: fixed("/api/users/" + spare + "/admin"), body: `{"is_admin": false}`, expect: protected(forbidden, forbidden, forbidden, ok, forbidden)},
		"GET /api/users/{id}/groups":                     {path: fixed("/api/users/" + spare + "/groups"), expect: protected(forbidden, forbidden, forbidden, ok, forbidden)},
		"PUT /api/users/{id}/groups":                     {path: fixed("/api/users/" + spare + "/groups"), body: `{"groups": ["spare"]}`, expect: protected(forbidden, forbidden, forbidden, ok, forbidden)},
		"GET /api/groups":                                {path: fixed("/api/groups"), expect: protected(forbidden, forbidden, forbidden, ok, forbidden)},
		"GET /api/users/{id}/api-keys":                   {path: fixed("/api/users/" + spare + "/api-keys"), expect: protected(forbidden, forbidden, forbidden, ok, forbidden)},
		"DELETE /api/users/{id}/api-keys/{prefix}":       {path: fixed("/api/users/" + spare + "/api-keys/strm_zzz"), expect: protected(forbidden, forbidden, forbidden, notFound, forbidden)},
		"GET /api/workspaces":                            {path: fixed("/api/workspaces"), expect: all(ok)},
		"GET /api/workspaces/{ws}":                       {path: fixed("/api/workspaces/default"), expect: protected(ok, ok, notFound, ok, ok)},
		"POST /api/workspaces/{ws}/reload":               {path: fixed("/api/workspaces/default/reload"), expect: protected(forbidden, forbidden, notFound, ok, forbidden)},
		"POST /api/workspaces/{ws}/refresh":              {path: fixed("/api/workspaces/default/refresh"), expect: protected(forbidden, forbidden, notFound, ok, forbidden)},
		"GET /api/workspaces/{ws}/source":                {path: fixed("/api/workspaces/default/source"), expect: protected(ok, ok, notFound, ok, ok)},
		"GET /api/workspaces/{ws}/tasks":                 {path: fixed("/api/workspaces/default/tasks"), expect: protected(ok, ok, notFound, ok, ok)},
		"GET /api/workspaces/{ws}/tasks/{task}":          {path: fixed("/api/workspaces/default/tasks/hello"), expect: protected(ok, ok, notFound, ok, ok)},
		"POST /api/workspaces/{ws}/tasks/{task}/execute": {path: fixed("/api/workspaces/default/tasks/hello/execute"), body: `{}`, expect: protected(forbidden, created_, notFound, created_, created_)},
		"GET /api/workspaces/{ws}/triggers":              {path: fixed("/api/workspaces/default/triggers"), expect: protected(ok, ok, notFound, ok, ok)},
		"GET /api/workspaces/{ws}/triggers/{trigger}":    {path: fixed("/api/workspaces/default/triggers/hook"), expect: protected(ok, ok, notFound, ok, ok)},
		"GET /api/jobs":                                  {path: fixed("/api/jobs"), expect: all(ok)},
		"GET /api/jobs/{id}":                             {path: fixed("/api/jobs/" + doneJob), expect: protected(ok, ok, notFound, ok, ok)},
		"POST /api/jobs/{id}/cancel":                     {path: func() string { return "/api/jobs/" + pendingJob() + "/cancel" }, expect: protected(forbidden, ok, notFound, ok, ok)},
		"POST /api/jobs/{id}/steps/{step}/approve": {path: func() string { return "/api/jobs/" + e.execute(adminAccess, "gated") + "/steps/wait/approve" },
			body: `{"approved": true}`, expect: protected(forbidden, ok, notFound, ok, ok)},
		"GET /api/jobs/{id}/logs":                     {path: fixed("/api/jobs/" + doneJob + "/logs"), expect: protected(ok, ok, notFound, ok, ok)},
		"GET /api/jobs/{id}/logs/stream":              {path: fixed("/api/jobs/" + doneJob + "/logs/stream"), expect: protected(ok, ok, notFound, ok, ok)},
		"GET /api/workers":                            {path: fixed("/api/workers"), expect: protected(forbidden, forbidden, forbidden, ok, forbidden)},
		"GET /api/jobs/{id}/steps/{step}/logs":        {path: fixed("/api/jobs/" + doneJob + "/steps/one/logs"), expect: protected(ok, ok, notFound, ok, ok)},
		"GET /api/workspaces/{ws}/tasks/{task}/stats": {path: fixed("/api/workspaces/default/tasks/hello/stats"), expect: protected(ok, ok, notFound, ok, ok)},

		// Task state (as the task: view reads, run uploads), global state
		// (admins), artifacts (as the job).
		"GET /api/workspaces/{ws}/tasks/{task}/state":            {path: fixed("/api/workspaces/default/tasks/hello/state"), expect: protected(ok, ok, notFound, ok, ok)},
		"GET /api/workspaces/{ws}/tasks/{task}/state/{snapshot}": {path: fixed("/api/workspaces/default/tasks/hello/state/latest"), expect: all(notFound)},
		"POST /api/workspaces/{ws}/tasks/{task}/state":           {path: fixed("/api/workspaces/default/tasks/hello/state?k=v"), expect: protected(forbidden, created_, notFound, created_, created_)},
		"GET /api/workspaces/{ws}/state":                         {path: fixed("/api/workspaces/default/state"), expect: protected(forbidden, forbidden, notFound, ok, forbidden)},
		"GET /api/workspaces/{ws}/state/{snapshot}":              {path: fixed("/api/workspaces/default/state/latest"), expect: protected(forbidden, forbidden, notFound, notFound, forbidden)},
		"POST /api/workspaces/{ws}/state":                        {path: fixed("/api/workspaces/default/state?k=v"), expect: protected(forbidden, forbidden, notFound, created_, forbidden)},
		"GET /api/jobs/{id}/artifacts":                           {path: fixed("/api/jobs/" + doneJob + "/artifacts"), expect: protected(ok, ok, notFound, ok, ok)},
		"GET /api/jobs/{id}/artifacts/*":                         {path: fixed("/api/jobs/" + doneJob + "/artifacts/reports/a.txt"), expect: all(notFound)},
		"POST /worker/jobs/{id}/steps/{step}/artifacts/*":        {path: fixed("/worker/jobs/" + doneJob + "/steps/one/artifacts/a.txt?attempt=1"), body: `x`, worker: true},
		"POST /worker/jobs/{id}/steps/{step}/state":              {path: fixed("/worker/jobs/" + doneJob + "/steps/one/state?attempt=1&scope=task"), worker: true},
		"GET /worker/jobs/{id}/steps/{step}/state":               {path: fixed("/worker/jobs/" + doneJob + "/steps/one/state?attempt=1&scope=task"), worker: true},

		// Prometheus metrics: the worker token (metrics.public is off).
		"GET /metrics": {path: fixed("/metrics"), worker: true},

		// Webhooks keep their own secret: no user credential opens them.
		"POST /hooks/{trigger}":           {path: fixed("/hooks/hook"), body: `{}`, expect: expect{public: unauth}},
		"POST /hooks/{ws}/{trigger}":      {path: fixed("/hooks/default/hook"), body: `{}`, expect: expect{public: unauth}},
		"GET /hooks/{trigger}":            {path: fixed("/hooks/hook"), expect: expect{public: unauth}},
		"GET /hooks/{ws}/{trigger}":       {path: fixed("/hooks/default/hook"), expect: expect{public: unauth}},
		"GET /hooks/{trigger}/jobs/{job}": {path: fixed("/hooks/hook/jobs/" + doneJob), expect: expect{public: unauth}},

		// Profiles are for admins.
		"* /debug/pprof/*":       {path: fixed("/debug/pprof/"), expect: protected(forbidden, forbidden, forbidden, ok, forbidden)},
		"* /debug/pprof/cmdline": {path: fixed("/debug/pprof/cmdline"), expect: protected(forbidden, forbidden, forbidden, ok, forbidden)},
		"* /debug/pprof/profile": {path: fixed("/debug/pprof/profile?seconds=1"), expect: protected(forbidden, forbidden, forbidden, ok, forbidden)},
		"* /debug/pprof/symbol":  {path: fixed("/debug/pprof/symbol"), expect: protected(forbidden, forbidden, forbidden, ok, forbidden)},
		"* /debug/pprof/trace":   {path: fixed("/debug/pprof/trace?seconds=1"), expect: protected(forbidden, forbidden, forbidden, ok, forbidden)},

		// The worker API answers the worker token only.
		"POST /worker/register":                        {path: fixed("/worker/register"), body: `{}`, worker: true},
		"POST /worker/heartbeat":                       {path: fixed("/worker/heartbeat"), body: `{}`, worker: true},
		"POST /worker/jobs/claim":                      {path: fixed("/worker/jobs/claim"), body: `{}`, worker: true},
		"POST /worker/jobs/{id}/steps/{step}/start":    {path: fixed("/worker/jobs/" + doneJob + "/steps/one/start"), body: `{}`, worker: true},
		"POST /worker/jobs/{id}/steps/{step}/logs":     {path: fixed("/worker/jobs/" + doneJob + "/steps/one/logs"), body: `{}`, worker: true},
		"POST /worker/jobs/{id}/steps/{step}/complete": {path: fixed("/worker/jobs/" + doneJob + "/steps/one/complete"), body: `{}`, worker: true},
		"GET /worker/workspaces/{ws}/{file}":           {path: fixed("/worker/workspaces/default/x.tar.gz"), worker: true},
	}

	// Every route of the router is in the table, and nothing else is:
	// a new route cannot be added without deciding who may call it.
	routes := map[string]bool{}
	require.NoError(t, chi.Walk(e.app.routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.Replace(route, "/*/", "/", -1) // chi's marker of mounted subrouters
		if strings.HasPrefix(route, "/debug/pprof/") {
			method = "*" // HandleFunc: every method
		}
		routes[method+" "+route] = true
		return nil
	}))
	var missing, stale []string
	for r := range routes {
		if _, ok := table[r]; !ok {
			missing = append(missing, r)
		}
	}
	for r := range table {
		if !routes[r] {
			stale = append(stale, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	require.Empty(t, missing, "routes without an expectation in this table")
	require.Empty(t, stale, "table entries for routes the router does not have")

	names := make([]string, 0, len(table))
	for r := range table {
		names = append(names, r)
	}
	sort.Strings(names)
	for _, name := range names {
		rc := table[name]
		method, _, _ := strings.Cut(name, " ")
		if method == "*" {
			method = "GET"
		}
		for _, c := range callers {
			want := rc.expect.status(c)
			if rc.worker {
				want = unauth
			}
			st, b, _ := e.do(req{method: method, path: rc.path(), body: rc.body, token: creds[c]})
			require.Equal(t, want, st, "%s as %s: %s", name, c, b)
			if st == unauth || st == forbidden {
				var eb struct {
					Error string `json:"error"`
				}
				if json.Unmarshal(b, &eb) == nil {
					for _, secret := range []string{creds[c], testJWTSecret, testRefreshSecret} {
						if len(secret) > 8 {
							require.NotContains(t, string(b), secret, "%s as %s: an error never echoes a credential", name, c)
						}
					}
				}
			}
		}
	}

	// Refusals are logged, and no log record holds a credential.
	logged := e.logs.String()
	require.Contains(t, logged, "request denied")
	require.Contains(t, logged, "reason=acl")
	require.Contains(t, logged, "login failed")
	for c, cred := range creds {
		if len(cred) > 8 {
			require.NotContains(t, logged, cred, "the log holds the credential of %s", c)
		}
	}
	for _, secret := range []string{testJWTSecret, testRefreshSecret, adminPassword, "pw-runner", "pw-viewer", "a-webhook-secret"} {
		require.NotContains(t, logged, secret)
	}

	// Lists hide what is denied: the denied user sees no workspace and no
	// job; a user who may run only "hello" sees that task and its jobs.
	e.user("partial@example.com", "pw-partial", "hello-only")
	partial, _ := e.login("partial@example.com", "pw-partial")
	otherJob := e.execute(adminAccess, "other")
	names = func(token, path, key string) []string {
		st, b, _ := e.do(req{method: "GET", path: path, token: token})
		require.Equal(t, http.StatusOK, st, string(b))
		var items []map[string]any
		require.NoError(t, json.Unmarshal(b, &items), string(b))
		out := []string{}
		for _, it := range items {
			out = append(out, fmt.Sprint(it[key]))
		}
		sort.Strings(out)
		return out
	}(partial, "/api/workspaces/default/tasks", "name")
	require.Equal(t, []string{"hello"}, names)
	require.Equal(t, []string{"hello"}, uniq(listOf(t, e, partial, "/api/jobs?limit=1000", "task_name")))
	require.Equal(t, []string{"gated", "hello", "other"}, uniq(listOf(t, e, creds[viewUser], "/api/jobs?limit=1000", "task_name")))
	require.Equal(t, []string{"hook"}, listOf(t, e, partial, "/api/workspaces/default/triggers", "name"))
	st, _, _ = e.do(req{method: "GET", path: "/api/jobs/" + otherJob, token: partial})
	require.Equal(t, http.StatusNotFound, st, "a job of a hidden task is not found")
	// A hidden task, and what it would tell of itself, is not found either.
	for _, path := range []string{"/api/workspaces/default/tasks/other", "/api/workspaces/default/tasks/other/stats",
		"/api/workspaces/default/tasks/other/state"} {
		st, b, _ := e.do(req{method: "GET", path: path, token: partial})
		require.Equal(t, http.StatusNotFound, st, "%s: %s", path, b)
	}
	st, b, _ = e.do(req{method: "GET", path: "/api/workspaces/default/tasks/hello/stats", token: partial})
	require.Equal(t, http.StatusOK, st, string(b))
	require.Empty(t, listOf(t, e, creds[deniedUser], "/api/jobs?limit=1000", "task_name"))
	require.Empty(t, listOf(t, e, creds[deniedUser], "/api/workspaces", "name"))
	require.Equal(t, []string{"default"}, listOf(t, e, partial, "/api/workspaces", "name"))
	for _, path := range []string{"/api/workspaces", "/api/workspaces/default", "/api/workspaces/default/source"} {
		st, b, _ := e.do(req{method: "GET", path: path, token: partial})
		require.Equal(t, http.StatusOK, st, string(b))
		require.Contains(t, string(b), `"tasks_count":1,`, "%s counts the visible tasks only", path)
	}
	// limit counts visible jobs: a page of one for the partial user is a
	// hello job even though the newest job is "other".
	page := listOf(t, e, partial, "/api/jobs?limit=1", "task_name")
	require.Equal(t, []string{"hello"}, page)
}

func listOf(t *testing.T, e *authEnv, token, path, key string) []string {
	t.Helper()
	st, b, _ := e.do(req{method: "GET", path: path, token: token})
	require.Equal(t, http.StatusOK, st, string(b))
	var items []map[string]any
	if strings.HasPrefix(path, "/api/jobs") || strings.HasPrefix(path, "/api/workers") {
		// Envelopes: {items, total}; total counts what the caller may see.
		var page struct {
			Items []map[string]any `json:"items"`
			Total int              `json:"total"`
		}
		require.NoError(t, json.Unmarshal(b, &page), string(b))
		require.GreaterOrEqual(t, page.Total, len(page.Items), string(b))
		items = page.Items
	} else {
		require.NoError(t, json.Unmarshal(b, &items), string(b))
	}
	out := []string{}
	for _, it := range items {
		out = append(out, fmt.Sprint(it[key]))
	}
	return out
}

func uniq(in []string) []string {
	sort.Strings(in)
	out := []string{}
	for i, s := range in {
		if i == 0 || s != in[i-1] {
			out = append(out, s)
		}
	}
	return out
}

func mustUser(t *testing.T, e *authEnv, email string) string {
	t.Helper()
	u, err := e.store.UserGetByEmail(context.Background(), email)
	require.NoError(t, err)
	return u.ID
}

func jobFilterAll() persistence.JobFilter { return persistence.JobFilter{Limit: 1000} }

func TestLoginRateLimits(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil)
	wrong := fmt.Sprintf(`{"email": %q, "password": "wrong"}`, adminEmail)
	first429 := 0
	for i := 1; i <= 50; i++ {
		st, b, h := e.do(req{method: "POST", path: "/api/auth/login", body: wrong})
		if st == http.StatusTooManyRequests {
			first429 = i
			require.NotEmpty(t, h.Get("Retry-After"), "429 says when to come back")
			require.Contains(t, string(b), "too many login attempts")
			break
		}
		require.Equal(t, http.StatusUnauthorized, st, string(b))
		require.JSONEq(t, `{"error": "invalid email or password"}`, string(b))
	}
	require.NotZero(t, first429, "50 wrong passwords were all answered 401")
	require.Less(t, first429, 50)
	// While limited, even the right password is refused: guessing cannot
	// go on by chance of a correct guess.
	st, _, _ := e.do(req{method: "POST", path: "/api/auth/login", body: fmt.Sprintf(`{"email": %q, "password": %q}`, adminEmail, adminPassword)})
	require.Equal(t, http.StatusTooManyRequests, st)

	// Per address: many accounts from one address are limited too.
	e2 := newAuthEnv(t, nil)
	limited := false
	for i := range 50 {
		st, _, _ := e2.do(req{method: "POST", path: "/api/auth/login", body: fmt.Sprintf(`{"email": "user%d@example.com", "password": "x"}`, i)})
		if st == http.StatusTooManyRequests {
			limited = true
			break
		}
		require.Equal(t, http.StatusUnauthorized, st)
	}
	require.True(t, limited, "50 accounts tried from one address were never limited")
}

func TestBrowserForgeryNeverCreatesJobs(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, func(c *serverConfig) { c.ACL = nil })
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := browser.Post(e.url+"/api/auth/login", "application/json",
		strings.NewReader(fmt.Sprintf(`{"email": %q, "password": %q}`, adminEmail, adminPassword)))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "stroem_session" {
			session = c
		}
	}
	require.NotNil(t, session, "login sets the session cookie")
	require.True(t, session.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, session.SameSite)
	require.False(t, session.Secure, "plain http base: no Secure flag (see the https case below)")

	execute := e.url + "/api/workspaces/default/tasks/hello/execute"
	send := func(contentType, body string, header map[string]string) int {
		r, err := http.NewRequest("POST", execute, strings.NewReader(body))
		require.NoError(t, err)
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		for k, v := range header {
			r.Header.Set(k, v)
		}
		resp, err := browser.Do(r)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	before := e.jobCount()
	evil := map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
	// A cross-site HTML form: urlencoded, with the victim's cookie.
	require.Equal(t, http.StatusUnsupportedMediaType, send("application/x-www-form-urlencoded", "input=x", evil))
	require.Equal(t, http.StatusUnsupportedMediaType, send("multipart/form-data; boundary=x", "--x--", evil))
	// text/plain (a "simple" request, no preflight), even same-site.
	require.Equal(t, http.StatusUnsupportedMediaType, send("text/plain", `{"input": {}}`, evil))
	require.Equal(t, http.StatusUnsupportedMediaType, send("text/plain", `{"input": {}}`, nil))
	require.Equal(t, http.StatusUnsupportedMediaType, send("", `{"input": {}}`, nil), "a body without a type")
	// JSON from another origin with the cookie: the CSRF check refuses it.
	require.Equal(t, http.StatusForbidden, send("application/json", `{}`, evil))
	require.Equal(t, http.StatusForbidden, send("application/json", `{}`, map[string]string{"Origin": "https://evil.example"}))
	// An empty cross-site POST (no body at all) with the cookie.
	require.Equal(t, http.StatusForbidden, send("", "", evil))
	// Anonymous forms never get in either.
	st, _, _ := e.do(req{method: "POST", path: "/api/workspaces/default/tasks/hello/execute", body: "input=x", contentType: "application/x-www-form-urlencoded"})
	require.Equal(t, http.StatusUnsupportedMediaType, st)
	st, _, _ = e.do(req{method: "POST", path: "/api/workspaces/default/tasks/hello/execute", body: `{}`})
	require.Equal(t, http.StatusUnauthorized, st)
	require.Equal(t, before, e.jobCount(), "no forged request created a job")

	// The UI's own requests work: same origin, JSON, cookie.
	require.Equal(t, http.StatusCreated, send("application/json", `{}`, map[string]string{"Origin": e.url, "Sec-Fetch-Site": "same-origin"}))
	require.Equal(t, http.StatusCreated, send("application/json; charset=utf-8", `{}`, nil), "non-browser clients send no Origin")
	require.Equal(t, before+2, e.jobCount())

	// Another site cannot spend the refresh cookie or log the user out.
	for _, path := range []string{"/api/auth/refresh", "/api/auth/logout"} {
		r, err := http.NewRequest("POST", e.url+path, nil)
		require.NoError(t, err)
		for k, v := range evil {
			r.Header.Set(k, v)
		}
		resp, err := browser.Do(r)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, path)
	}
	require.Equal(t, http.StatusCreated, send("application/json", `{}`, nil), "the session still works")
	require.Equal(t, before+3, e.jobCount())

	// Logout clears the cookies; the cookie session then ends.
	r, err := http.NewRequest("POST", e.url+"/api/auth/logout", nil)
	require.NoError(t, err)
	resp, err = browser.Do(r)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, http.StatusUnauthorized, send("application/json", `{}`, nil))

	// With an https base URL the cookies are Secure.
	s := newAuthEnv(t, func(c *serverConfig) { c.Auth.BaseURL = "https://stroem.example.com" })
	st, _, h := s.do(req{method: "POST", path: "/api/auth/login", body: fmt.Sprintf(`{"email": %q, "password": %q}`, adminEmail, adminPassword)})
	require.Equal(t, http.StatusOK, st)
	cookies := (&http.Response{Header: h}).Cookies()
	require.NotEmpty(t, cookies)
	for _, c := range cookies {
		require.True(t, c.Secure, c.Name)
		require.True(t, c.HttpOnly, c.Name)
		require.Equal(t, http.SameSiteLaxMode, c.SameSite, c.Name)
	}
}

func TestRefreshRotationAndWhoDidIt(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil)
	e.user("runner@example.com", "pw", "runners")
	access, refresh := e.login("runner@example.com", "pw")

	// Rotation: the new pair works, the old refresh token is spent.
	st, b, _ := e.do(req{method: "POST", path: "/api/auth/refresh", body: fmt.Sprintf(`{"refresh_token": %q}`, refresh)})
	require.Equal(t, http.StatusOK, st, string(b))
	var pair struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	require.NoError(t, json.Unmarshal(b, &pair))
	require.NotEqual(t, refresh, pair.Refresh)
	st, _, _ = e.do(req{method: "GET", path: "/api/auth/me", token: pair.Access})
	require.Equal(t, http.StatusOK, st)
	// Reuse of the spent token revokes the whole session: the token it was
	// rotated into stops working too.
	st, _, _ = e.do(req{method: "POST", path: "/api/auth/refresh", body: fmt.Sprintf(`{"refresh_token": %q}`, refresh)})
	require.Equal(t, http.StatusUnauthorized, st)
	st, _, _ = e.do(req{method: "POST", path: "/api/auth/refresh", body: fmt.Sprintf(`{"refresh_token": %q}`, pair.Refresh)})
	require.Equal(t, http.StatusUnauthorized, st)
	// Logout ends a session.
	_, refresh2 := e.login("runner@example.com", "pw")
	st, _, _ = e.do(req{method: "POST", path: "/api/auth/logout", body: fmt.Sprintf(`{"refresh_token": %q}`, refresh2)})
	require.Equal(t, http.StatusOK, st)
	st, _, _ = e.do(req{method: "POST", path: "/api/auth/refresh", body: fmt.Sprintf(`{"refresh_token": %q}`, refresh2)})
	require.Equal(t, http.StatusUnauthorized, st)

	// Who did it: the creator and the canceller are kept and shown.
	jobID := e.execute(access, "hello")
	st, b, _ = e.do(req{method: "POST", path: "/api/auth/api-keys", body: `{"name": "ci"}`, token: access})
	require.Equal(t, http.StatusCreated, st, string(b))
	var key struct {
		Key    string     `json:"key"`
		Prefix string     `json:"prefix"`
		Expiry *time.Time `json:"expires_at"`
	}
	require.NoError(t, json.Unmarshal(b, &key))
	require.Nil(t, key.Expiry)
	require.Equal(t, key.Key[:8], key.Prefix)
	keyJob := e.execute(key.Key, "hello")
	adminAccess, _ := e.login(adminEmail, adminPassword)
	st, b, _ = e.do(req{method: "POST", path: "/api/jobs/" + jobID + "/cancel", token: adminAccess})
	require.Equal(t, http.StatusOK, st, string(b))
	var j stroem.Job
	require.NoError(t, json.Unmarshal(b, &j))
	require.Equal(t, "runner@example.com", j.CreatedBy)
	require.Equal(t, adminEmail, j.CancelledBy)
	st, b, _ = e.do(req{method: "GET", path: "/api/jobs/" + keyJob, token: access})
	require.Equal(t, http.StatusOK, st)
	require.NoError(t, json.Unmarshal(b, &j))
	require.Equal(t, "runner@example.com (api key "+key.Prefix+")", j.CreatedBy)

	// The key is listed (never the key itself), its use recorded, and
	// revoking it locks it out.
	st, b, _ = e.do(req{method: "GET", path: "/api/auth/api-keys", token: access})
	require.Equal(t, http.StatusOK, st)
	require.NotContains(t, string(b), key.Key)
	var keys []stroem.APIKey
	require.NoError(t, json.Unmarshal(b, &keys))
	require.Len(t, keys, 1)
	require.NotNil(t, keys[0].LastUsedAt)
	st, _, _ = e.do(req{method: "DELETE", path: "/api/auth/api-keys/" + key.Prefix, token: access})
	require.Equal(t, http.StatusOK, st)
	st, _, _ = e.do(req{method: "GET", path: "/api/auth/me", token: key.Key})
	require.Equal(t, http.StatusUnauthorized, st)
}

func TestOpenServerWithoutAuth(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, func(c *serverConfig) { c.Auth, c.ACL = nil, nil })
	st, b, _ := e.do(req{method: "GET", path: "/api/config"})
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, string(b), `"auth_required":false`)
	st, _, _ = e.do(req{method: "GET", path: "/api/jobs"})
	require.Equal(t, http.StatusOK, st, "open on loopback")
	for _, p := range []string{"/api/auth/me", "/api/users"} {
		st, _, _ = e.do(req{method: "GET", path: p})
		require.Equal(t, http.StatusNotFound, st, p)
	}
	st, _, _ = e.do(req{method: "POST", path: "/api/auth/login", body: `{"email": "a@b.c", "password": "x"}`})
	require.Equal(t, http.StatusNotFound, st)
	// JSON-only holds without auth too.
	st, _, _ = e.do(req{method: "POST", path: "/api/workspaces/default/tasks/hello/execute", body: "x", contentType: "text/plain"})
	require.Equal(t, http.StatusUnsupportedMediaType, st)
	jobID := e.execute("", "hello")
	st, b, _ = e.do(req{method: "GET", path: "/api/jobs/" + jobID})
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, string(b), `"created_by":""`)

	// The same configuration on a public address does not start.
	cfg := e.cfg
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	require.NoError(t, err)
	_, err = startServer(context.Background(), cfg, serverOptions{listener: ln}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "without authentication")
	require.ErrorContains(t, err, "insecure_no_auth")
}

// TestUpstreamConfigStartsServer: the server config of the upstream's
// authentication page (with its OIDC provider, whose discovery waits for
// the first sign-in) starts a server, and its initial user logs in.
func TestUpstreamConfigStartsServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "workspace", ".workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "workspace", ".workflows", "t.yaml"), []byte(authWorkflow), 0o644))
	path := filepath.Join(dir, "server-config.yaml")
	conf := strings.Replace(upstreamAuthConfig, "path: ./workspace", "path: "+filepath.Join(dir, "workspace"), 1)
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o600))
	cfg, err := readServerConfig(path)
	require.NoError(t, err)
	cfg.LogStorage.LocalDir = filepath.Join(dir, "logs")
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "db"), log)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	app, err := startServer(context.Background(), cfg, serverOptions{store: store, listener: ln}, log)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, app.Stop(context.Background())) })
	e := &authEnv{t: t, app: app, url: app.URL(), store: store, hc: &http.Client{Timeout: 30 * time.Second}}
	access, _ := e.login("admin@stroem.local", "admin")
	st, b, _ := e.do(req{method: "GET", path: "/api/auth/me", token: access})
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, string(b), `"is_admin":true`)
	st, b, _ = e.do(req{method: "GET", path: "/api/config"})
	require.Equal(t, http.StatusOK, st)
	require.JSONEq(t, `{"auth_required": true, "has_internal_auth": true, "acl_enabled": true, "version": "dev",
		"oidc_providers": [{"id": "google", "display_name": "Google"}]}`, string(b))
}

// TestOIDCLogin signs in through a real OIDC provider (mockoidc, started
// here): authorization code with PKCE (S256), state and nonce, JIT
// provisioning with the groups claim, and linking on the next sign-in.
func TestOIDCLogin(t *testing.T) {
	t.Parallel()
	m, err := mockoidc.Run()
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Shutdown() })
	mc := m.Config()
	e := newAuthEnv(t, func(c *serverConfig) {
		c.Auth.Providers["mock"] = auth.ProviderConfig{ProviderType: auth.ProviderOIDC, DisplayName: "Mock SSO",
			IssuerURL: mc.Issuer, ClientID: mc.ClientID, ClientSecret: mc.ClientSecret, DefaultGroups: []string{"employees"}}
		// A provider that does not answer: the server starts anyway.
		c.Auth.Providers["down"] = auth.ProviderConfig{ProviderType: auth.ProviderOIDC, IssuerURL: "http://127.0.0.1:1/",
			ClientID: "x", ClientSecret: "y"}
	})
	st, b, _ := e.do(req{method: "GET", path: "/api/auth/oidc/down"})
	require.Equal(t, http.StatusServiceUnavailable, st, string(b))
	require.Contains(t, string(b), "discovery")
	require.NotContains(t, string(b), `"y"`)
	st, b, _ = e.do(req{method: "GET", path: "/api/config"})
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, string(b), `{"id":"mock","display_name":"Mock SSO"}`)

	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) *http.Response {
		t.Helper()
		resp, err := browser.Get(u)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	// signIn walks the browser through the redirects and returns the
	// final fragment of /login/callback.
	signIn := func() url.Values {
		t.Helper()
		start := get(e.url + "/api/auth/oidc/mock")
		require.Equal(t, http.StatusFound, start.StatusCode)
		authURL, err := url.Parse(start.Header.Get("Location"))
		require.NoError(t, err)
		q := authURL.Query()
		require.True(t, strings.HasPrefix(authURL.String(), m.AuthorizationEndpoint()), authURL.String())
		require.Equal(t, "S256", q.Get("code_challenge_method"))
		require.NotEmpty(t, q.Get("code_challenge"))
		require.NotEmpty(t, q.Get("state"))
		require.NotEmpty(t, q.Get("nonce"))
		require.Equal(t, e.url+"/api/auth/oidc/mock/callback", q.Get("redirect_uri"))
		require.Contains(t, q.Get("scope"), "openid")
		idp := get(authURL.String())
		require.Equal(t, http.StatusFound, idp.StatusCode)
		back := idp.Header.Get("Location")
		require.True(t, strings.HasPrefix(back, e.url+"/api/auth/oidc/mock/callback?"), back)
		done := get(back)
		require.Equal(t, http.StatusFound, done.StatusCode)
		loc, err := url.Parse(done.Header.Get("Location"))
		require.NoError(t, err)
		require.Equal(t, "/login/callback", loc.Path)
		frag, err := url.ParseQuery(loc.EscapedFragment())
		require.NoError(t, err)
		return frag
	}

	frag := signIn()
	require.Empty(t, frag.Get("error"))
	access := frag.Get("access_token")
	require.NotEmpty(t, access)
	require.NotEmpty(t, frag.Get("refresh_token"))
	st, b, _ = e.do(req{method: "GET", path: "/api/auth/me", token: access})
	require.Equal(t, http.StatusOK, st, string(b))
	var me stroem.User
	require.NoError(t, json.Unmarshal(b, &me))
	require.Equal(t, "jane.doe@example.com", me.Email)
	require.False(t, me.IsAdmin, "not the first user (the initial admin exists)")
	require.Equal(t, []string{"design", "employees", "engineering"}, me.Groups, "groups claim plus default_groups")
	require.Equal(t, []string{"mock"}, me.AuthMethods)
	// The refresh token of an OIDC session works like any other.
	st, _, _ = e.do(req{method: "POST", path: "/api/auth/refresh", body: fmt.Sprintf(`{"refresh_token": %q}`, frag.Get("refresh_token"))})
	require.Equal(t, http.StatusOK, st)

	// A second sign-in of the same subject is the same user.
	again := signIn()
	st, b, _ = e.do(req{method: "GET", path: "/api/auth/me", token: again.Get("access_token")})
	require.Equal(t, http.StatusOK, st)
	var me2 stroem.User
	require.NoError(t, json.Unmarshal(b, &me2))
	require.Equal(t, me.ID, me2.ID)

	// A provider account with the email of an existing password user is
	// linked to that user.
	existing := e.user("sam@example.com", "pw")
	m.QueueUser(&mockoidc.MockUser{Subject: "sam-subject", Email: "sam@example.com", EmailVerified: true})
	linked := signIn()
	st, b, _ = e.do(req{method: "GET", path: "/api/auth/me", token: linked.Get("access_token")})
	require.Equal(t, http.StatusOK, st)
	var sam stroem.User
	require.NoError(t, json.Unmarshal(b, &sam))
	require.Equal(t, existing, sam.ID)
	require.Equal(t, []string{"password", "mock"}, sam.AuthMethods)

	// An unverified email is never linked to an existing account.
	e.user("victim@example.com", "pw")
	m.QueueUser(&mockoidc.MockUser{Subject: "attacker", Email: "victim@example.com", EmailVerified: false})
	refused := signIn()
	require.Contains(t, refused.Get("error"), "is not linked")
	require.Empty(t, refused.Get("access_token"))

	// A callback that does not match the sign-in this browser started is
	// refused: a forged state, or no flow cookie at all.
	start := get(e.url + "/api/auth/oidc/mock")
	authURL, err := url.Parse(start.Header.Get("Location"))
	require.NoError(t, err)
	idp := get(authURL.String())
	back, err := url.Parse(idp.Header.Get("Location"))
	require.NoError(t, err)
	bq := back.Query()
	bq.Set("state", "forged")
	back.RawQuery = bq.Encode()
	bad := get(back.String())
	require.Equal(t, http.StatusFound, bad.StatusCode)
	require.Contains(t, bad.Header.Get("Location"), "#error=")
	require.Contains(t, bad.Header.Get("Location"), "state+mismatch")
	stranger := &http.Client{Timeout: 30 * time.Second, CheckRedirect: browser.CheckRedirect}
	resp, err := stranger.Get(e.url + "/api/auth/oidc/mock/callback?code=x&state=y")
	require.NoError(t, err)
	resp.Body.Close()
	require.Contains(t, resp.Header.Get("Location"), "#error=")
	require.NotContains(t, resp.Header.Get("Location"), "access_token")
	// The provider's own error is passed on, not a token.
	resp, err = stranger.Get(e.url + "/api/auth/oidc/mock/callback?error=access_denied")
	require.NoError(t, err)
	resp.Body.Close()
	require.Contains(t, resp.Header.Get("Location"), "access_denied")
}
