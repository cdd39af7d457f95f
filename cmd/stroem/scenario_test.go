package main

// In-process scenarios (STYLE.md, second layer): the real server wiring on
// 127.0.0.1:0 and a fresh database, driven through the worker API by a fake
// worker that is only an HTTP client, so each test decides exactly when a
// step reports what.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/stroemtest"
	"github.com/stroem/stroem/tracing"
)

const testToken = "test-token"

type scenario struct {
	t      testing.TB
	tracer *tracing.Tracer
	cfg    serverConfig
	app    *serverApp
	url    string
	client *http.Client
}

type scenarioOpts struct {
	lease  time.Duration
	tracer *tracing.Tracer
}

// newScenario starts a server on a fresh database with a workspace made of
// the given workflow file.
func newScenario(t testing.TB, workflow string, opts scenarioOpts) *scenario {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "test.yaml"), []byte(workflow), 0o644))
	cfg := testServerConfig(t)
	cfg.Workspaces = map[string]workspaceConfig{"default": {Type: "folder", Path: dir}}
	if opts.lease > 0 {
		cfg.Lease = opts.lease
	}
	return startScenario(t, cfg, opts.tracer)
}

// testServerConfig is the configuration of a test server on a fresh
// database, with the test's worker token and no workspace yet.
func testServerConfig(t testing.TB) serverConfig {
	t.Helper()
	cfg := defaultServerConfig()
	cfg.DB.URL = dbtest.URL(t)
	cfg.LogStorage.LocalDir = t.TempDir()
	cfg.WorkerToken = testToken
	cfg.ShutdownGrace = 5 * time.Second
	return cfg
}

// startScenario starts a server with cfg (tracer nil: the tracing
// section's); the test's end stops it.
func startScenario(t testing.TB, cfg serverConfig, tracer *tracing.Tracer) *scenario {
	t.Helper()
	s := &scenario{t: t, cfg: cfg, tracer: tracer, client: &http.Client{Timeout: 60 * time.Second}}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *scenario) start() {
	s.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(s.t, err)
	log := slog.New(slog.NewTextHandler(testWriter{s.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	app, err := startServer(context.Background(), s.cfg, serverOptions{listener: ln, tracer: s.tracer}, log)
	require.NoError(s.t, err)
	s.app, s.url = app, app.URL()
	// Its LISTEN connection's first wake-up has every waiting claim query
	// again; a test that counts on a long poll waiting idle would find it
	// mid-query if the wake-up came late (it did under load).
	require.Eventually(s.t, app.listening.Load, 30*time.Second, time.Millisecond, "the server listens for ready steps")
}

func (s *scenario) stop() {
	if s.app != nil {
		require.NoError(s.t, s.app.Stop(context.Background()))
		s.app = nil
	}
}

// restart stops the server and starts a new one on the same database and log
// directory, like a redeploy.
func (s *scenario) restart() {
	s.stop()
	s.start()
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// do sends a JSON request and returns the status and body.
func (s *scenario) do(method, path string, body any, token string) (int, []byte) {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		require.NoError(s.t, err)
		r = bytes.NewReader(enc)
	}
	return stroemtest.Request(s.t, s.client, method, s.url+path, r, token)
}

func (s *scenario) execute(task string, input map[string]any) string {
	s.t.Helper()
	code, body := s.do("POST", "/api/workspaces/default/tasks/"+task+"/execute", map[string]any{"input": input}, "")
	require.Equal(s.t, http.StatusCreated, code, string(body))
	var out struct {
		JobID string `json:"job_id"`
	}
	require.NoError(s.t, json.Unmarshal(body, &out))
	return out.JobID
}

func (s *scenario) job(id string) stroem.Job {
	s.t.Helper()
	code, body := s.do("GET", "/api/jobs/"+id, nil, "")
	require.Equal(s.t, http.StatusOK, code, string(body))
	var j stroem.Job
	require.NoError(s.t, json.Unmarshal(body, &j))
	return j
}

func (s *scenario) stepStatuses(id string) map[string]stroem.StepStatus {
	m := map[string]stroem.StepStatus{}
	for _, st := range s.job(id).Steps {
		m[st.StepName] = st.Status
	}
	return m
}

// waitJob waits until the job reaches status.
func (s *scenario) waitJob(id string, status stroem.JobStatus) stroem.Job {
	s.t.Helper()
	var j stroem.Job
	require.Eventually(s.t, func() bool {
		j = s.job(id)
		return j.Status == status
	}, 20*time.Second, 20*time.Millisecond, "job %s never became %s", id, status)
	return j
}

// fakeWorker drives the worker API by hand.
type fakeWorker struct {
	s    *scenario
	id   string
	cred string // its own credential: every route but register wants it
}

func (s *scenario) worker() *fakeWorker {
	s.t.Helper()
	code, body := s.do("POST", "/worker/register", stroem.WorkerRegistration{Name: "fake", Capabilities: []string{"shell"}}, testToken)
	require.Equal(s.t, http.StatusOK, code, string(body))
	var reg stroem.WorkerRegistered
	require.NoError(s.t, json.Unmarshal(body, &reg))
	require.NotEmpty(s.t, reg.Credential)
	return &fakeWorker{s: s, id: reg.WorkerID, cred: reg.Credential}
}

// claim long-polls for one step; nil when none came within wait.
// claim long-polls for a step and, as a real worker does before it runs
// anything, acknowledges it with its start report.
func (w *fakeWorker) claim(wait time.Duration) *stroem.Assignment {
	w.s.t.Helper()
	a := w.claimNoStart(wait)
	if a != nil {
		require.Equal(w.s.t, http.StatusOK, w.start(a), "acknowledge %s", a.StepName)
	}
	return a
}

// start sends the start report of a claimed step and returns the status.
func (w *fakeWorker) start(a *stroem.Assignment) int {
	w.s.t.Helper()
	code, _ := w.s.do("POST", fmt.Sprintf("/worker/jobs/%s/steps/%s/start", a.JobID, a.StepName),
		stroem.StepStart{WorkerID: w.id, Attempt: a.Attempt}, w.cred)
	return code
}

// claimNoStart long-polls for a step without acknowledging it: a worker that
// froze right after the step was handed to it.
func (w *fakeWorker) claimNoStart(wait time.Duration) *stroem.Assignment {
	w.s.t.Helper()
	code, body := w.s.do("POST", "/worker/jobs/claim", stroem.ClaimRequest{
		WorkerID: w.id, Capabilities: []string{"shell"}, WaitMS: int(wait.Milliseconds()),
	}, w.cred)
	if code == http.StatusNoContent {
		return nil
	}
	require.Equal(w.s.t, http.StatusOK, code, string(body))
	var a stroem.Assignment
	require.NoError(w.s.t, json.Unmarshal(body, &a))
	return &a
}

func (w *fakeWorker) mustClaim(step string) *stroem.Assignment {
	w.s.t.Helper()
	a := w.claim(10 * time.Second)
	require.NotNil(w.s.t, a, "expected step %s to be handed out", step)
	require.Equal(w.s.t, step, a.StepName)
	return a
}

// longPoll starts a claim that waits for a step and returns once it is
// waiting in the Dispatcher (so a completion made next hands its dependent
// step to it); the channel receives what the claim got.
func (w *fakeWorker) longPoll() <-chan *stroem.Assignment {
	w.s.t.Helper()
	got := make(chan *stroem.Assignment, 1)
	go func() { got <- w.claim(10 * time.Second) }()
	require.Eventually(w.s.t, func() bool { return w.s.app.orch.WaitingClaims() == 1 }, 5*time.Second, 100*time.Microsecond,
		"the claim reaches the Dispatcher")
	return got
}

func (w *fakeWorker) complete(a *stroem.Assignment, exit int, output map[string]any, errMsg string) int {
	w.s.t.Helper()
	code, body := w.s.do("POST", fmt.Sprintf("/worker/jobs/%s/steps/%s/complete", a.JobID, a.StepName), stroem.Completion{
		WorkerID: w.id, Attempt: a.Attempt, ExitCode: exit, Output: output, Error: errMsg,
	}, w.cred)
	if code != http.StatusOK {
		w.s.t.Logf("complete %s: %d %s", a.StepName, code, body)
	}
	return code
}

func (w *fakeWorker) heartbeat(running ...*stroem.Assignment) stroem.HeartbeatResponse {
	w.s.t.Helper()
	hb := stroem.Heartbeat{WorkerID: w.id, Running: []stroem.StepRef{}}
	for _, a := range running {
		hb.Running = append(hb.Running, stroem.StepRef{JobID: a.JobID, Step: a.StepName, Attempt: a.Attempt})
	}
	code, body := w.s.do("POST", "/worker/heartbeat", hb, w.cred)
	require.Equal(w.s.t, http.StatusOK, code, string(body))
	var resp stroem.HeartbeatResponse
	require.NoError(w.s.t, json.Unmarshal(body, &resp))
	return resp
}

func (w *fakeWorker) pushLogs(a *stroem.Assignment, offset int64, lines ...string) (int, stroem.LogPushResponse) {
	w.s.t.Helper()
	p := stroem.LogPush{WorkerID: w.id, Attempt: a.Attempt, Offset: offset}
	for _, l := range lines {
		p.Lines = append(p.Lines, stroem.PushLine{TS: time.Now(), Stream: stroem.Stdout, Text: l})
	}
	code, body := w.s.do("POST", fmt.Sprintf("/worker/jobs/%s/steps/%s/logs", a.JobID, a.StepName), p, w.cred)
	var resp stroem.LogPushResponse
	if code == http.StatusOK {
		require.NoError(w.s.t, json.Unmarshal(body, &resp))
	}
	return code, resp
}

const chainWorkflow = `
actions:
  emit:
    type: shell
    cmd: "echo {{ input.value }}"
    input:
      value: { type: string, required: true }
tasks:
  chain:
    input:
      start: { type: string, default: "a" }
    flow:
      first:
        action: emit
        input: { value: "{{ input.start }}" }
      second:
        action: emit
        depends_on: [first]
        input: { value: "{{ first.output.v }}-2" }
      third:
        action: emit
        depends_on: [second]
        input: { value: "{{ second.output.v }}-3" }
  diamond:
    flow:
      top: { action: emit, input: { value: top } }
      left: { action: emit, depends_on: [top], input: { value: left } }
      right: { action: emit, depends_on: [top], input: { value: right } }
      bottom: { action: emit, depends_on: [left, right], input: { value: "{{ left.output.v }}+{{ right.output.v }}" } }
  branches:
    flow:
      a: { action: emit, input: { value: a } }
      b: { action: emit, depends_on: [a], input: { value: b } }
      c: { action: emit, depends_on: [b], input: { value: c } }
      solo: { action: emit, input: { value: solo } }
  tolerant:
    flow:
      flaky: { action: emit, continue_on_failure: true, input: { value: flaky } }
      after: { action: emit, depends_on: [flaky], input: { value: after } }
`

func TestScenarioLinearChain(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{})
	w := s.worker()
	id := s.execute("chain", map[string]any{"start": "go"})

	a := w.mustClaim("first")
	require.Equal(t, "echo go", a.Spec.Cmd)
	require.Equal(t, 1, a.Attempt)
	require.Equal(t, http.StatusOK, w.complete(a, 0, map[string]any{"v": "go"}, ""))

	b := w.mustClaim("second")
	require.Equal(t, "go-2", b.Input["value"], "upstream output flows into the next step's input")
	require.Equal(t, http.StatusOK, w.complete(b, 0, map[string]any{"v": "go-2"}, ""))

	c := w.mustClaim("third")
	require.Equal(t, "echo go-2-3", c.Spec.Cmd)
	require.Equal(t, http.StatusOK, w.complete(c, 0, map[string]any{"v": "done"}, ""))

	j := s.waitJob(id, stroem.JobCompleted)
	require.Equal(t, map[string]any{"third": map[string]any{"v": "done"}}, j.Output, "job output is the leaf step's output")
	require.NotNil(t, j.StartedAt)
	require.NotNil(t, j.CompletedAt)
	for _, st := range j.Steps {
		require.Equal(t, stroem.StepCompleted, st.Status, st.StepName)
	}
}

func TestScenarioDiamond(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{})
	w := s.worker()
	id := s.execute("diamond", nil)
	top := w.mustClaim("top")
	require.Nil(t, w.claim(50*time.Millisecond), "nothing else is ready while top runs")
	require.Equal(t, http.StatusOK, w.complete(top, 0, nil, ""))

	first, second := w.claim(5*time.Second), w.claim(5*time.Second)
	require.NotNil(t, first)
	require.NotNil(t, second)
	require.ElementsMatch(t, []string{"left", "right"}, []string{first.StepName, second.StepName})
	require.Equal(t, http.StatusOK, w.complete(first, 0, map[string]any{"v": first.StepName}, ""))
	require.Nil(t, w.claim(50*time.Millisecond), "bottom waits for both branches")
	require.Equal(t, http.StatusOK, w.complete(second, 0, map[string]any{"v": second.StepName}, ""))

	bottom := w.mustClaim("bottom")
	require.Equal(t, "left+right", bottom.Input["value"])
	require.Equal(t, http.StatusOK, w.complete(bottom, 0, nil, ""))
	s.waitJob(id, stroem.JobCompleted)
}

func TestScenarioFailureSkipsDependentsOnly(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{})
	w := s.worker()
	id := s.execute("branches", nil)
	got := map[string]*stroem.Assignment{}
	for range 2 {
		a := w.claim(5 * time.Second)
		require.NotNil(t, a)
		got[a.StepName] = a
	}
	require.Contains(t, got, "a")
	require.Contains(t, got, "solo")
	require.Equal(t, http.StatusOK, w.complete(got["a"], 3, nil, "exit code 3: boom"))

	st := s.stepStatuses(id)
	require.Equal(t, stroem.StepFailed, st["a"])
	require.Equal(t, stroem.StepSkipped, st["b"])
	require.Equal(t, stroem.StepSkipped, st["c"], "skipping is transitive")
	require.Equal(t, stroem.StepRunning, st["solo"], "an independent branch keeps running")
	require.Equal(t, stroem.JobRunning, s.job(id).Status, "the job ends only when every step is terminal")

	require.Equal(t, http.StatusOK, w.complete(got["solo"], 0, nil, ""))
	j := s.waitJob(id, stroem.JobFailed)
	for _, step := range j.Steps {
		if step.StepName == "a" {
			require.Equal(t, "exit code 3: boom", step.ErrorMessage)
		}
	}
}

func TestScenarioContinueOnFailure(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{})
	w := s.worker()
	id := s.execute("tolerant", nil)
	flaky := w.mustClaim("flaky")
	require.Equal(t, http.StatusOK, w.complete(flaky, 1, nil, "exit code 1"))
	after := w.mustClaim("after")
	require.Equal(t, http.StatusOK, w.complete(after, 0, nil, ""))
	j := s.waitJob(id, stroem.JobCompleted)
	require.Equal(t, stroem.StepFailed, j.Steps[0].Status)
}

func TestScenarioFencingAndDuplicates(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{})
	w := s.worker()
	other := s.worker()
	s.execute("chain", nil)
	a := w.mustClaim("first")

	stale := *a
	stale.Attempt = 7
	require.Equal(t, http.StatusConflict, w.complete(&stale, 0, nil, ""), "wrong attempt")
	require.Equal(t, http.StatusConflict, other.complete(a, 0, nil, ""), "wrong worker")
	code, _ := other.pushLogs(a, 0, "not mine")
	require.Equal(t, http.StatusConflict, code, "log pushes are fenced too")

	require.Equal(t, http.StatusOK, w.complete(a, 0, map[string]any{"v": "x"}, ""))
	require.Equal(t, http.StatusOK, w.complete(a, 0, map[string]any{"v": "x"}, ""), "the same report again is accepted as a no-op")
	b := w.mustClaim("second")
	require.Equal(t, "x-2", b.Input["value"])
}

func TestScenarioCancel(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{})
	w := s.worker()
	id := s.execute("chain", nil)
	a := w.mustClaim("first")

	code, body := s.do("POST", "/api/jobs/"+id+"/cancel", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	st := s.stepStatuses(id)
	require.Equal(t, stroem.StepCancelled, st["second"])
	require.Equal(t, stroem.StepCancelled, st["third"])
	require.Equal(t, stroem.StepRunning, st["first"], "the running step waits for its worker")

	resp := w.heartbeat(a)
	require.Equal(t, []stroem.StepRef{{JobID: id, Step: "first", Attempt: 1}}, resp.Cancel, "the worker is told to stop it")
	_, push := w.pushLogs(a, 0, "still going")
	require.True(t, push.Cancel, "a log push answer carries the cancel too")

	require.Equal(t, http.StatusOK, w.complete(a, 143, nil, "cancelled"))
	j := s.waitJob(id, stroem.JobCancelled)
	require.Equal(t, stroem.StepCancelled, j.Steps[0].Status)
	require.Nil(t, w.claim(50*time.Millisecond), "nothing of a cancelled job is handed out")

	code, body = s.do("POST", "/api/jobs/"+id+"/cancel", nil, "")
	require.Equal(t, http.StatusConflict, code, "cancelling a finished job: %s", body)
}

func TestScenarioLeaseExpiry(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{lease: time.Second})
	w := s.worker()
	id := s.execute("chain", nil)
	a := w.mustClaim("first")
	// No heartbeat: the worker is dead as far as the server can tell.
	j := s.waitJob(id, stroem.JobFailed)
	require.Equal(t, stroem.StepFailed, j.Steps[0].Status)
	require.Contains(t, j.Steps[0].ErrorMessage, "worker lost")
	require.Equal(t, stroem.StepSkipped, j.Steps[1].Status)
	require.Equal(t, http.StatusConflict, w.complete(a, 0, nil, ""), "a report after the lease expired is refused")
	require.Equal(t, []stroem.StepRef{{JobID: id, Step: "first", Attempt: 1}}, w.heartbeat(a).Cancel,
		"a worker that comes back is told to stop the step")
}

// A step handed to a worker that never acknowledges it is ready again after
// the start timeout (half the 1 s lease here), its attempt not used, for the
// next worker; the first worker's late reports are refused.
func TestScenarioUnacknowledgedClaimIsGivenBack(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{lease: time.Second})
	frozen, other := s.worker(), s.worker()
	id := s.execute("chain", nil)
	a := frozen.claimNoStart(10 * time.Second)
	require.NotNil(t, a)
	require.Equal(t, 1, a.Attempt)
	handed := time.Now()
	b := other.mustClaim("first")
	require.Less(t, time.Since(handed), 5*time.Second)
	require.Equal(t, 1, b.Attempt, "the unacknowledged attempt was not used")
	require.Equal(t, http.StatusConflict, frozen.start(a), "a late acknowledgement is refused")
	require.Equal(t, http.StatusConflict, frozen.complete(a, 0, nil, ""))
	require.Equal(t, http.StatusOK, other.complete(b, 0, map[string]any{"v": "x"}, ""))
	j := s.job(id)
	require.Len(t, j.Steps[0].Attempts, 1)
	require.Equal(t, other.id, j.Steps[0].Attempts[0].WorkerID)
}

func TestScenarioHeartbeatKeepsSlowStepAlive(t *testing.T) {
	t.Parallel()
	// A lease of 2 s, heartbeats every 200 ms: ten chances per lease, so a
	// busy machine that delays a few heartbeats does not lose the step.
	const lease = 2 * time.Second
	s := newScenario(t, chainWorkflow, scenarioOpts{lease: lease})
	w := s.worker()
	id := s.execute("chain", nil)
	a := w.mustClaim("first")
	deadline := time.Now().Add(3 * lease) // three leases
	for time.Now().Before(deadline) {
		require.Empty(t, w.heartbeat(a).Cancel)
		time.Sleep(200 * time.Millisecond)
	}
	require.Equal(t, stroem.StepRunning, s.stepStatuses(id)["first"])
	require.Equal(t, http.StatusOK, w.complete(a, 0, map[string]any{"v": "slow"}, ""))
	require.Equal(t, "slow-2", w.mustClaim("second").Input["value"])
}

func TestScenarioServerRestartMidJob(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{})
	w := s.worker()
	id := s.execute("chain", nil)
	a := w.mustClaim("first")
	code, _ := w.pushLogs(a, 0, "before restart")
	require.Equal(t, http.StatusOK, code)

	s.restart()

	code, _ = w.pushLogs(a, 0, "before restart", "after restart")
	require.Equal(t, http.StatusOK, code, "the worker keeps its lease across a server restart")
	require.Equal(t, http.StatusOK, w.complete(a, 0, map[string]any{"v": "r"}, ""))
	b := w.mustClaim("second")
	require.Equal(t, http.StatusOK, w.complete(b, 0, map[string]any{"v": "r2"}, ""))
	c := w.mustClaim("third")
	require.Equal(t, http.StatusOK, w.complete(c, 0, nil, ""))
	s.waitJob(id, stroem.JobCompleted)

	code, body := s.do("GET", "/api/jobs/"+id+"/logs", nil, "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"logs":"before restart\nafter restart\n"}`, string(body), "the retried push stored nothing twice")
}

func TestScenarioConcurrentWorkersEachStepOnce(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{})
	const jobs = 20
	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = s.execute("diamond", nil)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	// The workers stop when every step was handed out (a claim that finds
	// nothing for a while proves nothing on a busy machine), or at a
	// generous deadline; every step handed out twice is counted.
	allSeen := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= jobs*4
	}
	deadline := time.Now().Add(2 * time.Minute)
	var wg sync.WaitGroup
	for range 4 {
		w := s.worker()
		wg.Go(func() {
			for !allSeen() && time.Now().Before(deadline) {
				a := w.claim(300 * time.Millisecond)
				if a == nil {
					continue
				}
				mu.Lock()
				seen[a.JobID+"/"+a.StepName]++
				mu.Unlock()
				if w.complete(a, 0, map[string]any{"v": a.StepName}, "") != http.StatusOK {
					return
				}
			}
		})
	}
	wg.Wait()
	require.Len(t, seen, jobs*4)
	for k, n := range seen {
		require.Equal(t, 1, n, "step %s handed out %d times", k, n)
	}
	for _, id := range ids {
		s.waitJob(id, stroem.JobCompleted)
	}
}

func TestScenarioBadRequestsAreClientErrors(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{})
	w := s.worker()
	jobID := s.execute("chain", nil)
	huge := `{"input": {"x": "` + strings.Repeat("a", 11<<20) + `"}}`
	type req struct {
		method, path string
		body         any
		token        string
	}
	reqs := []req{
		{"POST", "/api/workspaces/default/tasks/chain/execute", "{", ""},
		{"POST", "/api/workspaces/default/tasks/chain/execute", `{"input": 3}`, ""},
		{"POST", "/api/workspaces/default/tasks/chain/execute", `{"input": {"start": 5}}`, ""},
		{"POST", "/api/workspaces/default/tasks/chain/execute", `{"input": {"nope": 1}}`, ""},
		{"POST", "/api/workspaces/default/tasks/chain/execute", `{"input": {}} trailing`, ""},
		{"POST", "/api/workspaces/default/tasks/chain/execute", huge, ""},
		{"POST", "/api/workspaces/default/tasks/missing/execute", `{}`, ""},
		{"POST", "/api/workspaces/missing/tasks/chain/execute", `{}`, ""},
		{"GET", "/api/jobs/not-a-uuid", nil, ""},
		{"GET", "/api/jobs/00000000-0000-0000-0000-000000000000", nil, ""},
		{"POST", "/api/jobs/not-a-uuid/cancel", nil, ""},
		{"GET", "/api/jobs/00000000-0000-0000-0000-000000000000/logs", nil, ""},
		{"GET", "/api/jobs/00000000-0000-0000-0000-000000000000/logs/stream", nil, ""},
		{"GET", "/api/jobs?limit=abc", nil, ""},
		{"GET", "/api/jobs?status=bogus", nil, ""},
		{"GET", "/api/jobs?offset=-1", nil, ""},
		{"GET", "/api/jobs/" + jobID + "/logs?format=xml", nil, ""},
		{"GET", "/api/jobs?since=yesterday", nil, ""},
		{"GET", "/api/jobs?until=2026-13-01T00:00:00Z", nil, ""},
		{"GET", "/api/jobs?task=a&task_name=b", nil, ""},
		{"GET", "/api/jobs?id_prefix=xyz", nil, ""},
		{"GET", "/api/jobs?id_prefix=0b7e2c1e5", nil, ""},
		{"GET", "/api/jobs/" + jobID + "/steps/nope/logs", nil, ""},
		{"GET", "/api/jobs/not-a-uuid/steps/first/logs", nil, ""},
		{"GET", "/api/workspaces/default/tasks/chain/stats?limit=0", nil, ""},
		{"GET", "/api/workspaces/default/tasks/chain/stats?limit=501", nil, ""},
		{"GET", "/api/workspaces/default/tasks/missing/stats", nil, ""},
		{"GET", "/api/workers?limit=0", nil, ""},
		{"GET", "/api/workers?offset=x", nil, ""},
		{"GET", "/api/nothing", nil, ""},
		{"DELETE", "/api/jobs", nil, ""},
		{"POST", "/worker/register", `{"name":"x","capabilities":["shell"]}`, ""},
		{"POST", "/worker/register", `{"name":"x","capabilities":["shell"]}`, "wrong"},
		{"POST", "/worker/register", `{"name":"x"}`, testToken},
		{"POST", "/worker/register", `[]`, testToken},
		{"POST", "/worker/heartbeat", `{"worker_id":"nope"}`, w.cred},
		{"POST", "/worker/heartbeat", `{"worker_id":"00000000-0000-0000-0000-000000000000","running":[]}`, w.cred},
		{"POST", "/worker/jobs/claim", `{"worker_id":"` + w.id + `","capabilities":["shell"],"wait_ms":"soon"}`, w.cred},
		{"POST", "/worker/jobs/claim", `{"worker_id":"` + w.id + `","capabilities":[],"wait_ms":0}`, w.cred},
		{"POST", "/worker/jobs/claim", `{"worker_id":"` + w.id + `","capabilities":["shell"],"wait_ms":-5}`, w.cred},
		{"POST", "/worker/jobs/" + jobID + "/steps/first/complete", `{"worker_id":"` + w.id + `","attempt":"one"}`, w.cred},
		{"POST", "/worker/jobs/" + jobID + "/steps/nope/complete", `{"worker_id":"` + w.id + `","attempt":1}`, w.cred},
		{"POST", "/worker/jobs/bad/steps/first/complete", `{"worker_id":"` + w.id + `","attempt":1}`, w.cred},
		{"POST", "/worker/jobs/00000000-0000-0000-0000-000000000000/steps/first/complete", `{"worker_id":"` + w.id + `","attempt":1}`, w.cred},
		{"POST", "/worker/jobs/" + jobID + "/steps/first/logs", `{"worker_id":"` + w.id + `","attempt":1,"lines":[{"stream":"stdin","text":"x"}]}`, w.cred},
		{"POST", "/worker/jobs/" + jobID + "/steps/first/logs", `{"worker_id":"` + w.id + `","attempt":1,"offset":-1,"lines":[]}`, w.cred},
		{"GET", "/worker/workspaces/default/../../etc/passwd", nil, w.cred},
		{"GET", "/worker/workspaces/default/zzzz.tar.gz", nil, w.cred},
		{"GET", "/worker/workspaces/default/" + strings.Repeat("ab", 32) + ".tar.gz", nil, w.cred},
	}
	// Repeat the set to make 400+ requests; the server must stay healthy.
	n := 0
	for n < 400 {
		for _, r := range reqs {
			code, body := s.do(r.method, r.path, r.body, r.token)
			require.GreaterOrEqual(t, code, 400, "%s %s: %s", r.method, r.path, body)
			require.Less(t, code, 500, "%s %s: %s", r.method, r.path, body)
			var e errorJSON
			require.NoError(t, json.Unmarshal(body, &e), "%s %s: body %q is not JSON", r.method, r.path, body)
			require.NotEmpty(t, e.Error, "%s %s", r.method, r.path)
			n++
		}
	}
	code, _ := s.do("GET", "/readyz", nil, "")
	require.Equal(t, http.StatusOK, code)
	// The job those requests poked at is untouched.
	require.Equal(t, stroem.StepReady, s.stepStatuses(jobID)["first"])
}

type errorJSON struct {
	Error string `json:"error"`
}

// BenchmarkClaimHandoff measures the hand-off of a dependent step: from the
// moment a worker reports a step complete to the moment a worker waiting in
// a long-poll claim receives the next step (complete transaction, promotion,
// Dispatcher wake-up, claim transaction, HTTP answer).
func BenchmarkClaimHandoff(b *testing.B) {
	s := newScenario(b, chainWorkflow, scenarioOpts{})
	w := s.worker()
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s.execute("tolerant", nil)
		a := w.mustClaim("flaky")
		got := w.longPoll()
		b.StartTimer()
		start := time.Now()
		if code := w.complete(a, 0, map[string]any{"v": "x"}, ""); code != http.StatusOK {
			b.Fatalf("complete: %d", code)
		}
		next := <-got
		total += time.Since(start)
		b.StopTimer()
		if next == nil || next.StepName != "after" {
			b.Fatalf("expected the dependent step, got %+v", next)
		}
		if code := w.complete(next, 0, nil, ""); code != http.StatusOK {
			b.Fatalf("complete: %d", code)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/handoff")
}

// A worker already waiting in a long poll gets the dependent step from the
// transaction that completes its dependency (the hand-off), with the same
// fencing and lease as a claim.
func TestScenarioHandoffToWaitingWorker(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{})
	w := s.worker()
	id := s.execute("chain", map[string]any{"start": "h"})
	first := w.mustClaim("first")
	waiting := w.longPoll()
	require.Equal(t, http.StatusOK, w.complete(first, 0, map[string]any{"v": "h1"}, ""))
	second := <-waiting
	require.NotNil(t, second)
	require.Equal(t, "second", second.StepName)
	require.Equal(t, 1, second.Attempt)
	require.Equal(t, "h1-2", second.Input["value"])
	require.Equal(t, "echo h1-2", second.Spec.Cmd)
	j := s.job(id)
	require.Equal(t, stroem.StepRunning, j.Steps[1].Status)
	require.Equal(t, w.id, *j.Steps[1].WorkerID)
	require.Len(t, j.Steps[1].Attempts, 1)
	require.Empty(t, w.heartbeat(second).Cancel, "the hand-off holds a lease like a claim")
	require.Equal(t, http.StatusOK, w.complete(second, 0, map[string]any{"v": "h2"}, ""))
	third := w.mustClaim("third")
	require.Equal(t, http.StatusOK, w.complete(third, 0, nil, ""))
	s.waitJob(id, stroem.JobCompleted)
}

// A worker may send its id in another form of the same UUID (upper case):
// the server recognises it in claims, hand-offs, heartbeats, pushes and
// reports.
func TestScenarioWorkerIDInAnotherForm(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{})
	w := s.worker()
	upper := &fakeWorker{s: s, id: strings.ToUpper(w.id), cred: w.cred}
	id := s.execute("chain", nil)
	a := upper.mustClaim("first")
	require.Empty(t, upper.heartbeat(a).Cancel)
	code, _ := upper.pushLogs(a, 0, "hello")
	require.Equal(t, http.StatusOK, code)
	waiting := upper.longPoll()
	require.Equal(t, http.StatusOK, upper.complete(a, 0, map[string]any{"v": "x"}, ""))
	b := <-waiting // handed off
	require.NotNil(t, b)
	require.Empty(t, upper.heartbeat(b).Cancel, "the hand-off's holder is the canonical id")
	require.Equal(t, http.StatusOK, upper.complete(b, 0, map[string]any{"v": "y"}, ""))
	c := upper.mustClaim("third")
	require.Equal(t, http.StatusOK, upper.complete(c, 0, nil, ""))
	s.waitJob(id, stroem.JobCompleted)
}

// The list envelopes, task ids, step logs and task stats of the API a
// client of the Rust Strøm (and the web UI) relies on.
func TestScenarioAPIShapes(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{})
	w := s.worker()
	before := time.Now().UTC().Add(-time.Second)
	ids := []string{s.execute("chain", map[string]any{"start": "a"}), s.execute("chain", map[string]any{"start": "b"})}
	for range 6 { // three steps of each job, in whatever order they come
		a := w.claim(5 * time.Second)
		require.NotNil(t, a)
		if a.StepName == "first" {
			code, _ := w.pushLogs(a, 0, "hello from "+a.JobID)
			require.Equal(t, http.StatusOK, code)
		}
		require.Equal(t, http.StatusOK, w.complete(a, 0, map[string]any{"v": "x"}, ""))
	}
	for _, id := range ids {
		s.waitJob(id, stroem.JobCompleted)
	}

	var page struct {
		Items []stroem.Job `json:"items"`
		Total int          `json:"total"`
	}
	get := func(path string, out any) {
		t.Helper()
		code, body := s.do("GET", path, nil, "")
		require.Equal(t, http.StatusOK, code, "%s: %s", path, body)
		require.NoError(t, json.Unmarshal(body, out), string(body))
	}
	get("/api/jobs?limit=1", &page)
	require.Len(t, page.Items, 1)
	require.Equal(t, 2, page.Total, "a full page counts the rest")
	require.Equal(t, ids[1], page.Items[0].ID)
	get("/api/jobs?limit=1&offset=1&task_name=chain&workspace=default", &page)
	require.Equal(t, []string{ids[0]}, []string{page.Items[0].ID})
	require.Equal(t, 2, page.Total)
	get("/api/jobs?offset=5", &page)
	require.Empty(t, page.Items)
	require.Equal(t, 2, page.Total, "past the end still says how many")
	get("/api/jobs?since="+before.Format(time.RFC3339), &page)
	require.Equal(t, 2, page.Total)
	get("/api/jobs?until="+before.Format(time.RFC3339), &page)
	require.Equal(t, 0, page.Total)
	require.NotNil(t, page.Items)

	var workers struct {
		Items []stroem.Worker `json:"items"`
		Total int             `json:"total"`
	}
	get("/api/workers?limit=1", &workers)
	require.Equal(t, 1, workers.Total)
	require.Equal(t, w.id, workers.Items[0].ID)

	var tasks []struct {
		ID, Name, Workspace string
		HasTriggers         bool `json:"has_triggers"`
	}
	get("/api/workspaces/default/tasks", &tasks)
	require.NotEmpty(t, tasks)
	for _, task := range tasks {
		require.Equal(t, task.Name, task.ID)
		require.Equal(t, "default", task.Workspace)
		require.False(t, task.HasTriggers, "no triggers in this workspace")
	}

	var logs struct{ Logs string }
	get("/api/jobs/"+ids[0]+"/steps/first/logs", &logs)
	require.Equal(t, "hello from "+ids[0]+"\n", logs.Logs)
	get("/api/jobs/"+ids[0]+"/steps/second/logs", &logs)
	require.Empty(t, logs.Logs, "a step without lines")

	var stats struct {
		Window int `json:"window"`
		Task   struct {
			SampleSize int      `json:"sample_size"`
			P50        *float64 `json:"p50_ms"`
			Min, Max   *float64
			Recent     []struct {
				JobID string `json:"job_id"`
			} `json:"recent"`
		} `json:"task"`
		Steps []struct {
			StepName   string   `json:"step_name"`
			SampleSize int      `json:"sample_size"`
			P95        *float64 `json:"p95_ms"`
		} `json:"steps"`
	}
	get("/api/workspaces/default/tasks/chain/stats?limit=10", &stats)
	require.Equal(t, 10, stats.Window)
	require.Equal(t, 2, stats.Task.SampleSize)
	require.NotNil(t, stats.Task.P50)
	require.Len(t, stats.Task.Recent, 2)
	require.Equal(t, ids[1], stats.Task.Recent[0].JobID, "newest first")
	require.Equal(t, []string{"first", "second", "third"},
		[]string{stats.Steps[0].StepName, stats.Steps[1].StepName, stats.Steps[2].StepName}, "flow order")
	require.Equal(t, 2, stats.Steps[0].SampleSize)
	require.NotNil(t, stats.Steps[0].P95)
}
