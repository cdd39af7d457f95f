package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/actors"
	"github.com/stroem/stroem/auth"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// DefaultHookBodyBytes bounds a webhook's request body.
const DefaultHookBodyBytes = 1 << 20

// JobCreator creates jobs (the Orchestrator).
type JobCreator interface {
	JobCreate(ctx context.Context, r actors.JobRequest) (string, error)
}

// TriggerJobs reads the jobs triggers started.
type TriggerJobs interface {
	JobGet(ctx context.Context, id string) (*stroem.Job, error)
	JobList(ctx context.Context, f persistence.JobFilter) ([]stroem.Job, error)
}

// Schedule tells when a scheduler trigger fires next (the Scheduler).
type Schedule interface {
	NextFire(ws, trigger string) (time.Time, bool)
}

// TriggersConfig tunes the webhook endpoints; zero fields take defaults.
type TriggersConfig struct {
	// MaxBodyBytes bounds a webhook's JSON body (default 1 MiB); a larger
	// body is refused with 413.
	MaxBodyBytes int64
	// Headers is the allowlist of request headers a webhook job stores
	// (case-insensitive); nil means DefaultHookHeaders, empty stores none.
	// Authorization, Proxy-Authorization and Cookie are never stored.
	Headers []string
	// ACL filters the trigger list (GET /api/workspaces/{ws}/triggers) by
	// the triggers' tasks; nil when no acl section is configured. The
	// webhooks themselves are not subject to it: they have their secrets.
	ACL *auth.ACL
}

// Triggers serves the webhooks (POST /hooks/{trigger} and
// /hooks/{workspace}/{trigger}) and the trigger list
// (GET /api/workspaces/{ws}/triggers). Mount it through Config.Extra, and
// give it every JobFinished event so sync webhooks can answer.
type Triggers struct {
	cfg     TriggersConfig
	headers map[string]bool
	orch    JobCreator
	store   TriggerJobs
	ws      Workspaces
	sched   Schedule
	log     *slog.Logger

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
	closed  chan struct{}
	once    sync.Once
}

// NewTriggers returns the trigger endpoints. sched may be nil (no
// next_fire_at).
func NewTriggers(cfg TriggersConfig, orch JobCreator, store TriggerJobs, ws Workspaces, sched Schedule, log *slog.Logger) *Triggers {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultHookBodyBytes
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Triggers{cfg: cfg, headers: hookHeaderSet(cfg.Headers), orch: orch, store: store, ws: ws, sched: sched, log: log,
		waiters: map[string]map[chan struct{}]struct{}{}, closed: make(chan struct{})}
}

// Mount adds the routes to r (the server's root router).
func (t *Triggers) Mount(r chi.Router) {
	r.Post("/hooks/{trigger}", handle(t.log, t.hook))
	r.Post("/hooks/{ws}/{trigger}", handle(t.log, t.hook))
	r.Get("/hooks/{trigger}", handle(t.log, t.hook))
	r.Get("/hooks/{ws}/{trigger}", handle(t.log, t.hook))
	r.Get("/hooks/{trigger}/jobs/{job}", handle(t.log, t.hookJob))
	r.Get("/api/workspaces/{ws}/triggers", handle(t.log, t.list))
	r.Get("/api/workspaces/{ws}/triggers/{trigger}", handle(t.log, t.get))
}

// JobFinished wakes the sync webhooks waiting for the job. Call it for
// every job that ends on this server (actors.Events).
func (t *Triggers) JobFinished(jobID string, _ stroem.JobStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for ch := range t.waiters[jobID] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Close answers every waiting sync webhook at once (202, job still running),
// so a shutting-down server does not wait for them. Safe to call twice.
func (t *Triggers) Close() { t.once.Do(func() { close(t.closed) }) }

// subscribe registers a waiter for jobID; the returned func removes it.
func (t *Triggers) subscribe(jobID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	t.mu.Lock()
	if t.waiters[jobID] == nil {
		t.waiters[jobID] = map[chan struct{}]struct{}{}
	}
	t.waiters[jobID][ch] = struct{}{}
	t.mu.Unlock()
	return ch, func() {
		t.mu.Lock()
		delete(t.waiters[jobID], ch)
		if len(t.waiters[jobID]) == 0 {
			delete(t.waiters, jobID)
		}
		t.mu.Unlock()
	}
}

// hook is POST /hooks/{trigger} and /hooks/{ws}/{trigger}.
func (t *Triggers) hook(w http.ResponseWriter, r *http.Request) error {
	ws, trig, err := t.authedHook(w, r, pathParam(r, "ws"))
	if err != nil {
		return err
	}
	if !trig.Enabled {
		return stroem.Errorf(stroem.CodeNotFound, "webhook %q of workspace %q is disabled", trig.Name, ws.Name)
	}
	body, raw, err := t.readHookBody(w, r)
	if err != nil {
		return err
	}
	id, err := t.orch.JobCreate(r.Context(), actors.JobRequest{
		Workspace: ws.Name, Task: trig.Task, Input: hookTopLevel(trig.Input, body, ws.Tasks[trig.Task]),
		SourceType: stroem.SourceWebhook, SourceID: stroem.TriggerSourceID(ws.Name, trig.Name),
		Webhook: hookContext(r, t.headers), WebhookInput: hookInput(r, raw, t.headers),
	})
	if err != nil {
		return err
	}
	if trig.Mode != workspace.WebhookSync {
		writeJSON(w, http.StatusAccepted, map[string]string{"job_id": id, "trigger": hookName(trig), "task": trig.Task})
		return nil
	}
	timeout := time.Duration(trig.TimeoutSecs) * time.Second
	if timeout <= 0 {
		timeout = workspace.DefaultWebhookTimeoutSecs * time.Second
	}
	j, err := t.wait(r.Context(), id, timeout)
	if err != nil {
		return err
	}
	if !j.Status.Terminal() {
		writeJSON(w, http.StatusAccepted, map[string]any{"job_id": id, "trigger": hookName(trig), "task": trig.Task, "status": j.Status})
		return nil
	}
	out := j.Output
	if out == nil {
		out = map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"job_id": id, "trigger": hookName(trig), "task": trig.Task, "status": j.Status, "output": out})
	return nil
}

// lookupHook finds the webhook trigger. Without a workspace, the name must
// be a webhook in exactly one workspace.
func (t *Triggers) lookupHook(wsName, name string) (*workspace.Workspace, *workspace.Trigger, error) {
	if wsName != "" {
		ws := t.ws.Get(wsName)
		if ws == nil {
			return nil, nil, stroem.Errorf(stroem.CodeNotFound, "workspace %q not found", wsName)
		}
		trig := ws.Webhook(name)
		if trig == nil {
			if other := ws.Triggers[name]; other != nil && other.Type != workspace.TriggerWebhook {
				return nil, nil, stroem.Errorf(stroem.CodeNotFound, "trigger %q of workspace %q is a %s trigger, not a webhook", name, wsName, other.Type)
			}
			return nil, nil, stroem.Errorf(stroem.CodeNotFound, "no webhook %q in workspace %q", name, wsName)
		}
		return ws, trig, nil
	}
	var (
		found []string
		ws    *workspace.Workspace
		trig  *workspace.Trigger
	)
	for _, w := range t.ws.List() {
		if tr := w.Webhook(name); tr != nil {
			found = append(found, w.Name)
			ws, trig = w, tr
		}
	}
	switch len(found) {
	case 0:
		return nil, nil, stroem.Errorf(stroem.CodeNotFound, "no webhook %q", name)
	case 1:
		return ws, trig, nil
	}
	sort.Strings(found)
	return nil, nil, stroem.Errorf(stroem.CodeConflict,
		"webhook %q exists in several workspaces (%s); post to /hooks/{workspace}/%s, e.g. /hooks/%s/%s",
		name, strings.Join(found, ", "), name, found[0], name)
}

// authedHook finds the webhook of the URL (in workspace wsName, or in
// any with "") and checks the request's secret; a missing or wrong one
// is 401 with a challenge.
func (t *Triggers) authedHook(w http.ResponseWriter, r *http.Request, wsName string) (*workspace.Workspace, *workspace.Trigger, error) {
	ws, trig, err := t.lookupHook(wsName, pathParam(r, "trigger"))
	if err != nil {
		return nil, nil, err
	}
	if err := t.checkSecret(r, ws, trig); err != nil {
		if errors.Is(err, stroem.ErrUnauthorized) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="stroem-webhook"`)
		}
		return nil, nil, err
	}
	return ws, trig, nil
}

// checkHookSecret admits the request when the webhook has no secret, or
// when `Authorization: Bearer …` or `?secret=` carries it. The comparison
// is constant-time (of hashes, so not even the length leaks).
func (t *Triggers) checkSecret(r *http.Request, ws *workspace.Workspace, trig *workspace.Trigger) error {
	if trig.Secret == "" {
		return nil
	}
	resolved, err := workspace.ResolveSecrets(map[string]any{"secret": trig.Secret})
	want, _ := resolved["secret"].(string)
	if err != nil || want == "" {
		// The server's configuration is wrong, not the request: say so
		// without naming the variable or file to the caller.
		if err == nil {
			err = errors.New("it resolves to an empty value")
		}
		t.log.Error("webhook secret cannot be resolved", "workspace", ws.Name, "trigger", trig.Name, "err", err)
		return stroem.Errorf(stroem.CodeUnavailable, "webhook %q of workspace %q is not available: its secret does not resolve on the server (its log and `stroem validate` say which reference)", trig.Name, ws.Name)
	}
	got := r.URL.Query().Get("secret")
	if h := r.Header.Get("Authorization"); len(h) > len("Bearer ") && strings.EqualFold(h[:len("Bearer ")], "Bearer ") {
		got = strings.TrimSpace(h[len("Bearer "):])
	}
	if got == "" {
		return stroem.Errorf(stroem.CodeUnauthorized, "webhook %q needs its secret: send Authorization: Bearer <secret> or ?secret=<secret>", trig.Name)
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return stroem.Errorf(stroem.CodeUnauthorized, "wrong secret for webhook %q", trig.Name)
	}
	return nil
}

// readBody reads the JSON object a webhook was posted with: an empty body
// (or null) is {}, anything but an object is a 400, a body over the limit
// a 413.
func (t *Triggers) readBody(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	limit := t.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, stroem.Errorf(stroem.CodeTooLarge, "webhook body is larger than %d bytes", limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, stroem.Errorf(stroem.CodeTooLarge, "webhook body is larger than %d bytes", mbe.Limit)
		}
		return nil, stroem.Errorf(stroem.CodeInvalid, "read webhook body: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]any{}, nil
	}
	if err := checkJSONText(b); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, stroem.Invalid("webhook body: " + describeJSONError(err))
	}
	if dec.More() {
		return nil, stroem.Invalid("webhook body: malformed JSON: unexpected data after the JSON value")
	}
	n, err := normalizeValue(v)
	if err != nil {
		return nil, stroem.Invalid("webhook body: " + stroem.ErrorMessage(err))
	}
	switch m := n.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return m, nil
	default:
		return nil, stroem.Invalid("webhook body must be a JSON object (its keys are the task's input), not " + jsonKind(m))
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	}
	return "a number"
}

// hookContext is what templates see as `webhook`: the request's headers
// that the allowlist names (names lower-cased, '-' turned into '_',
// repeated values joined with ", ") and query parameters (as sent;
// repeated values joined with ","), without credentials: no header off the
// allowlist, never Authorization, Proxy-Authorization or Cookie, and no
// `secret` parameter.
func hookContext(r *http.Request, allow map[string]bool) map[string]any {
	headers := map[string]any{}
	for k, vs := range r.Header {
		name := HookHeaderName(k)
		if !allow[name] || hookCredentialHeaders[name] {
			continue
		}
		headers[name] = strings.Join(vs, ", ")
	}
	query := map[string]any{}
	for k, vs := range r.URL.Query() {
		if k == "secret" {
			continue
		}
		query[k] = strings.Join(vs, ",")
	}
	return map[string]any{"headers": headers, "query": query}
}

// HookHeaderName is how a request header is named under webhook.headers:
// "X-GitHub-Event" is x_github_event.
func HookHeaderName(h string) string {
	return strings.ReplaceAll(strings.ToLower(h), "-", "_")
}

// wait waits up to timeout for the job to finish, woken by JobFinished (no
// polling; the server wiring calls it for jobs other servers finish too,
// from their NOTIFY). The job is read once after subscribing, so a job that
// finished before the subscription is seen, and once more at the timeout,
// in case a notification was lost.
func (t *Triggers) wait(ctx context.Context, jobID string, timeout time.Duration) (*stroem.Job, error) {
	woken, unsubscribe := t.subscribe(jobID)
	defer unsubscribe()
	j, err := t.store.JobGet(ctx, jobID)
	if err != nil || j.Status.Terminal() {
		return j, err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-woken:
	case <-timer.C:
	case <-t.closed:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return t.store.JobGet(ctx, jobID)
}

// MaxHookWaitSecs bounds ?timeout= of the webhook job status route.
const maxHookWaitSecs = 300

// hookJob is GET /hooks/{trigger}/jobs/{job}: the status of a job this
// webhook started, with the webhook's own authentication (its secret, if
// any). ?wait=true blocks until the job ends or ?timeout= seconds (default
// 30, at most 300) pass; still running then is 202. A job another webhook
// or anything else started is 404, so the route reveals no other job.
func (t *Triggers) hookJob(w http.ResponseWriter, r *http.Request) error {
	ws, trig, err := t.authedHook(w, r, "")
	if err != nil {
		return err
	}
	id, err := parseJobID(pathParam(r, "job"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	wait := false
	switch v := q.Get("wait"); v {
	case "", "false", "0":
	case "true", "1":
		wait = true
	default:
		return stroem.Invalid(fmt.Sprintf("wait must be true or false, not %q", v))
	}
	timeout := workspace.DefaultWebhookTimeoutSecs
	if v := q.Get("timeout"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxHookWaitSecs {
			return stroem.Invalid(fmt.Sprintf("timeout must be a whole number of seconds between 1 and %d, not %q", maxHookWaitSecs, v))
		}
		timeout = n
	}
	notFound := stroem.Errorf(stroem.CodeNotFound, "webhook %q started no job %s", hookName(trig), id)
	j, err := t.store.JobGet(r.Context(), id)
	if err != nil {
		if errors.Is(err, stroem.ErrNotFound) {
			err = notFound
		}
		return err
	}
	if j.Workspace != ws.Name || j.SourceType != stroem.SourceWebhook || j.SourceID != stroem.TriggerSourceID(ws.Name, trig.Name) {
		return notFound
	}
	if wait && !j.Status.Terminal() {
		if j, err = t.wait(r.Context(), id, time.Duration(timeout)*time.Second); err != nil {
			return err
		}
	}
	code := http.StatusOK
	if wait && !j.Status.Terminal() {
		code = http.StatusAccepted
	}
	var out any
	if j.Status == stroem.JobCompleted {
		out = j.Output
	}
	writeJSON(w, code, map[string]any{
		"job_id": j.ID, "trigger": hookName(trig), "task": j.TaskName, "status": j.Status,
		"output": out, "created_at": j.CreatedAt, "completed_at": j.CompletedAt,
	})
	return nil
}
