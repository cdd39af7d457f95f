package actors

// Helpers shared by the package's tests: a workspace from YAML, a job's
// state driven by hand (transitions without a store), and an orchestrator
// on a real, fresh PostgreSQL database (pgEngine).

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
	"github.com/stroem/stroem/workspace"
)

// loadWorkspace loads workspace "default" from a fresh directory holding
// yaml as its one workflow file and, when given, the files of extra (path
// below the directory → content). It must load without problems.
func loadWorkspace(t testing.TB, yaml string, extra ...map[string]string) *workspace.Workspace {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{filepath.Join(".workflows", "t.yaml"): yaml}
	for _, m := range extra {
		for name, content := range m {
			files[name] = content
		}
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o755))
	}
	ws, err := workspace.Load(dir)
	require.NoError(t, err)
	require.Empty(t, ws.Problems)
	ws.Name = "default"
	return ws
}

// transitionBundle is a workspace whose jobs the tests drive by hand.
type transitionBundle struct {
	ws *workspace.Workspace
}

func newBundle(t testing.TB, yaml string, extra ...map[string]string) *transitionBundle {
	t.Helper()
	return &transitionBundle{ws: loadWorkspace(t, yaml, extra...)}
}

// newJob builds the state JobCreate would insert.
func (b *transitionBundle) newJob(t testing.TB, task string, input map[string]any) (*plan, *persistence.JobState) {
	t.Helper()
	tk := b.ws.Tasks[task]
	require.NotNil(t, tk)
	in, problems := workspace.CheckInput(tk.Input, input)
	require.Empty(t, problems)
	p, s := jobState(t, b.ws, task, "job-1", in)
	advance(p, s)
	return p, s
}

// jobState builds a new job's plan and its state before the first advance:
// every step pending.
func jobState(t testing.TB, ws *workspace.Workspace, task, id string, input map[string]any) (*plan, *persistence.JobState) {
	t.Helper()
	p := testPlan(t, ws, task)
	s := &persistence.JobState{
		Job: stroem.Job{ID: id, Workspace: "default", TaskName: task, Input: input, Status: stroem.JobPending},
		Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i, name := range p.dag.Order() {
		ps := p.steps[name]
		s.Append(&persistence.StepState{
			Name: name, Position: i, ActionName: ps.action.Name, ActionType: ps.action.Type,
			DependsOn: ps.flow.DependsOn, ContinueOnFailure: ps.flow.ContinueOnFailure,
			MaxAttempts: ps.maxAttempts(), Status: stroem.StepPending,
		})
	}
	return p, s
}

// testPlan compiles a snapshot of task, as a new job of it would.
func testPlan(t testing.TB, ws *workspace.Workspace, task string) *plan {
	t.Helper()
	id, body, err := newSnapshot(ws, ws.Tasks[task])
	require.NoError(t, err)
	p, err := compilePlan(id, body)
	require.NoError(t, err)
	return p
}

// claim does what the store's claim does to a ready step.
func claim(s *persistence.JobState, step, worker string) *persistence.StepState {
	st := s.Mut(step)
	st.Status = stroem.StepRunning
	st.Attempt++
	st.WorkerID = worker
	st.AttemptStatus = stroem.AttemptRunning
	lease := s.Now.Add(10 * time.Second)
	st.LeaseExpiresAt = &lease
	s.Job.Status = stroem.JobRunning
	return st
}

// report claims step for worker "w", applies c as that worker's report of
// the attempt (WorkerID and Attempt filled in) and advances the job.
func report(t *testing.T, p *plan, s *persistence.JobState, step string, c stroem.Completion) {
	t.Helper()
	st := claim(s, step, "w")
	c.WorkerID, c.Attempt = "w", st.Attempt
	require.NoError(t, evComplete{step: step, c: c}.apply(p, s))
	advance(p, s)
}

// run claims and completes a ready step with output (ok: exit code 0,
// otherwise 1).
func run(t *testing.T, p *plan, s *persistence.JobState, step string, ok bool, out map[string]any) {
	t.Helper()
	require.Equal(t, stroem.StepReady, s.Mut(step).Status, step)
	c := stroem.Completion{Output: out}
	if !ok {
		c.ExitCode = 1
	}
	report(t, p, s, step, c)
}

// unclaimLog records, for a fake store, the claims it was asked to give
// back.
type unclaimLog struct {
	mu  sync.Mutex
	got []string
}

func (l *unclaimLog) record(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, s)
}

func (l *unclaimLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

// startOrchestrator starts an orchestrator on store serving ws as
// workspace "default"; the test stops it.
func startOrchestrator(t *testing.T, cfg Config, store Store, ws *workspace.Workspace) (*Orchestrator, *oneWorkspace) {
	t.Helper()
	wss := &oneWorkspace{}
	wss.ws.Store(ws)
	o := New(cfg, store, wss, nil, nil)
	require.NoError(t, o.Start(context.Background()))
	t.Cleanup(o.Stop)
	return o, wss
}

// pgEngine is an orchestrator on a real, fresh PostgreSQL database.
type pgEngine struct {
	o     *Orchestrator
	store *postgres.Store
}

// newPGEngine starts an orchestrator serving workflow on a fresh database;
// wrap, when given, stands between the orchestrator and the store.
func newPGEngine(t *testing.T, workflow string, cfg Config, wrap func(*postgres.Store) Store) *pgEngine {
	t.Helper()
	ps, err := postgres.Open(context.Background(), dbtest.URL(t), nil)
	require.NoError(t, err)
	t.Cleanup(ps.Close)
	var st Store = ps
	if wrap != nil {
		st = wrap(ps)
	}
	o, _ := startOrchestrator(t, cfg, st, loadWorkspace(t, workflow))
	return &pgEngine{o: o, store: ps}
}

// secondOrchestrator is another server's orchestrator on e's database.
func secondOrchestrator(t *testing.T, e *pgEngine, workflow string) *Orchestrator {
	t.Helper()
	o, _ := startOrchestrator(t, Config{}, e.store, loadWorkspace(t, workflow))
	return o
}

// create creates a job of task in workspace "default".
func (e *pgEngine) create(t *testing.T, task string, input map[string]any) string {
	t.Helper()
	id, err := e.o.JobCreate(context.Background(), JobRequest{Workspace: "default", Task: task, Input: input})
	require.NoError(t, err)
	return id
}

func (e *pgEngine) claim(t *testing.T, worker string, wait time.Duration) *stroem.Assignment {
	t.Helper()
	a, err := e.o.Claim(context.Background(), stroem.ClaimRequest{
		WorkerID: worker, Capabilities: []string{"shell"}, WaitMS: int(wait.Milliseconds()),
	})
	require.NoError(t, err)
	return a
}

// claimed is a claim that must hand out a step within 5 s.
func (e *pgEngine) claimed(t *testing.T, worker string) *stroem.Assignment {
	t.Helper()
	a := e.claim(t, worker, 5*time.Second)
	require.NotNil(t, a)
	return a
}

// complete reports a's attempt ended as c says (WorkerID and Attempt
// filled in from a and worker).
func (e *pgEngine) complete(t *testing.T, a *stroem.Assignment, worker string, c stroem.Completion) {
	t.Helper()
	c.WorkerID, c.Attempt = worker, a.Attempt
	require.NoError(t, e.o.StepComplete(context.Background(), a.JobID, a.StepName, c))
}

func (e *pgEngine) job(t *testing.T, id string) *stroem.Job {
	t.Helper()
	j, err := e.store.JobGet(context.Background(), id)
	require.NoError(t, err)
	return j
}

func (e *pgEngine) state(t *testing.T, id string) *persistence.JobState {
	t.Helper()
	s, err := e.store.JobState(context.Background(), id)
	require.NoError(t, err)
	return s
}

// waitStatus waits up to 10 s for job id to reach status.
func (e *pgEngine) waitStatus(t *testing.T, id string, status stroem.JobStatus, msgAndArgs ...any) {
	t.Helper()
	require.Eventually(t, func() bool { return e.job(t, id).Status == status }, 10*time.Second, 20*time.Millisecond, msgAndArgs...)
}

// outMap is a step's output as an object (an approval gate's always is);
// nil when it is not one.
func outMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
