package actors

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
)

const limitsWorkflow = `
actions:
  work:
    type: shell
    cmd: "true"
  sub:
    type: task
    task: retried
tasks:
  bounded:
    timeout: 1s
    flow:
      first: { action: work }
      second: { action: work, depends_on: [first] }
  unbounded:
    flow:
      only: { action: work }
  chain:
    flow:
      first: { action: work }
      second: { action: work, depends_on: [first] }
  long:
    timeout: 1h
    flow:
      only: { action: work }
  retried:
    retry:
      max_attempts: 2
      delay: 0s
    flow:
      only: { action: work }
  parent:
    flow:
      call: { action: sub }
`

func stepNamed(j *stroem.Job, name string) stroem.Step {
	for _, st := range j.Steps {
		if st.StepName == name {
			return st
		}
	}
	return stroem.Step{}
}

// A task's timeout cancels the job when it passes, as upstream: the
// running step is stopped on its worker (here: its lease runs out, the
// worker never answers), the steps not started are cancelled and say why.
func TestTaskTimeoutCancelsTheJob(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, limitsWorkflow, Config{Lease: time.Second}, nil)
	id := e.create(t, "bounded", nil)
	require.Equal(t, "1s", e.state(t, id).Context[ctxTimeout])
	e.claimed(t, uuid.NewString())
	e.waitStatus(t, id, stroem.JobCancelled)
	j := e.job(t, id)
	require.Equal(t, stroem.StepCancelled, stepNamed(j, "first").Status)
	second := stepNamed(j, "second")
	require.Equal(t, stroem.StepCancelled, second.Status)
	require.Equal(t, "cancelled: the job timed out (task timeout 1s)", second.ErrorMessage)
}

// default_job_timeout bounds a task without a timeout of its own; a task's
// own timeout wins.
func TestDefaultJobTimeout(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, limitsWorkflow, Config{DefaultJobTimeout: 500 * time.Millisecond}, nil)
	long := e.create(t, "long", nil)
	id := e.create(t, "unbounded", nil)
	require.Equal(t, "500ms", e.state(t, id).Context[ctxTimeout])
	require.Equal(t, "1h0m0s", e.state(t, long).Context[ctxTimeout])
	e.waitStatus(t, id, stroem.JobCancelled)
	require.Equal(t, "cancelled: the job timed out (task timeout 500ms)", e.job(t, id).Steps[0].ErrorMessage)
	require.Equal(t, stroem.JobPending, e.job(t, long).Status, "the task's own 1h timeout applies")
}

// A task's retry runs the task again as a new job when the job fails,
// linked to the failed job, until max_attempts jobs have run.
func TestTaskRetryCreatesANewJob(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, limitsWorkflow, Config{}, nil)
	ctx := context.Background()
	first := e.create(t, "retried", map[string]any{})
	w := uuid.NewString()
	fail := func(jobID string) {
		t.Helper()
		a := e.claimed(t, w)
		require.Equal(t, jobID, a.JobID)
		e.complete(t, a, w, stroem.Completion{ExitCode: 1})
	}
	fail(first)
	var second string
	require.Eventually(t, func() bool {
		jobs, err := e.store.JobList(ctx, persistence.JobFilter{Task: "retried"})
		require.NoError(t, err)
		for _, j := range jobs {
			if j.ID != first {
				second = j.ID
			}
		}
		return second != ""
	}, 10*time.Second, 20*time.Millisecond, "no retry job")
	require.Equal(t, stroem.JobFailed, e.job(t, first).Status)
	s := e.state(t, second)
	require.Equal(t, first, s.Context[ctxRetryOf])
	require.EqualValues(t, 2, s.Context[ctxTaskAttempt])
	// The API shows the link (retry_of_job_id), also on another server.
	for _, o := range []*Orchestrator{e.o, secondOrchestrator(t, e, limitsWorkflow)} {
		j := e.job(t, second)
		require.NoError(t, o.RedactJob(ctx, j))
		require.Equal(t, first, j.RetryOfJobID)
		j = e.job(t, first)
		require.NoError(t, o.RedactJob(ctx, j))
		require.Empty(t, j.RetryOfJobID)
	}
	fail(second)
	e.waitStatus(t, second, stroem.JobFailed)
	require.Nil(t, e.claim(t, w, time.Second), "max_attempts 2: no third job")
	jobs, err := e.store.JobList(ctx, persistence.JobFilter{Task: "retried"})
	require.NoError(t, err)
	require.Len(t, jobs, 2)
}

// A step no active worker can run fails after the grace with a clear
// error, and its dependents are skipped; with a capable worker registered
// it waits (the worker is only busy).
func TestStepNoWorkerCanRunFailsAfterGrace(t *testing.T) {
	t.Parallel()
	grace := 300 * time.Millisecond
	e := newPGEngine(t, limitsWorkflow, Config{UnmatchedStepTimeout: grace}, nil)
	ctx := context.Background()
	// A task without a timeout: "bounded"'s 1 s timeout raced the grace and,
	// on a busy machine, cancelled the job before the check failed the step.
	id := e.create(t, "chain", nil)
	e.waitStatus(t, id, stroem.JobFailed)
	j := e.job(t, id)
	require.Equal(t, stroem.StepFailed, stepNamed(j, "first").Status)
	require.Equal(t, `no worker can run this step: no active worker has the "shell" capability (waited 300ms)`, stepNamed(j, "first").ErrorMessage)
	require.Equal(t, stroem.StepSkipped, stepNamed(j, "second").Status)

	_, err := e.store.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "w", Capabilities: []string{"shell"}})
	require.NoError(t, err)
	id = e.create(t, "long", nil)
	time.Sleep(4 * grace) // nothing to wait for: the step must stay ready
	require.Equal(t, stroem.StepReady, e.job(t, id).Steps[0].Status, e.job(t, id).Steps[0].ErrorMessage)
}

// As upstream, a task's on_error hooks fire once, when the last job of a
// task-level retry chain fails: not for a failed job that a retry job
// follows.
func TestTaskRetryFiresOnErrorOnceForTheChain(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, `
actions:
  work:
    type: script
    script: "false"
  alert:
    type: script
    script: "true"
tasks:
  retried:
    retry: { max_attempts: 2, delay: 0s }
    flow:
      only: { action: work }
    on_error:
      - action: alert
`, Config{}, nil)
	ctx := context.Background()
	first := e.create(t, "retried", nil)
	w := uuid.NewString()
	a := e.claimed(t, w)
	require.Equal(t, first, a.JobID)
	e.complete(t, a, w, stroem.Completion{ExitCode: 1})
	// The next claim is the retry job's step, not a hook of the first job.
	a = e.claimed(t, w)
	second := a.JobID
	require.NotEqual(t, first, second)
	require.Equal(t, first, e.state(t, second).Context[ctxRetryOf])
	e.complete(t, a, w, stroem.Completion{ExitCode: 1})
	e.waitStatus(t, second, stroem.JobFailed)

	hook := e.claimed(t, w)
	require.Equal(t, HookJobID(second, "on_error", 0, ""), hook.JobID, "the last job of the chain fires on_error")
	e.complete(t, hook, w, stroem.Completion{})
	_, err := e.store.JobGet(ctx, HookJobID(first, "on_error", 0, ""))
	require.ErrorIs(t, err, stroem.ErrNotFound, "a failed job that is retried fires no hook")
	require.Nil(t, e.claim(t, w, 500*time.Millisecond), "nothing else runs")
}

// A retry job that cannot be created when its delay is over (here: its
// task was removed meanwhile) leaves the failed job the chain's last: its
// on_error hooks fire then, never lost.
func TestTaskRetryNotMadeFiresOnError(t *testing.T) {
	t.Parallel()
	const hookAction = `
  alert:
    type: script
    script: "true"
`
	ps, err := postgres.Open(context.Background(), dbtest.URL(t), nil)
	require.NoError(t, err)
	t.Cleanup(ps.Close)
	o, wss := startOrchestrator(t, Config{}, ps, loadWorkspace(t, `
actions:
  work:
    type: script
    script: "false"`+hookAction+`
tasks:
  retried:
    retry: { max_attempts: 2, delay: 300ms }
    flow:
      only: { action: work }
    on_error:
      - action: alert
`))
	e := &pgEngine{o: o, store: ps}
	first := e.create(t, "retried", nil)
	w := uuid.NewString()
	a := e.claimed(t, w)
	require.Equal(t, first, a.JobID)
	// The task goes before the retry's delay is over (the hook action stays).
	wss.ws.Store(loadWorkspace(t, "actions:"+hookAction))
	e.complete(t, a, w, stroem.Completion{ExitCode: 1})
	e.waitStatus(t, first, stroem.JobFailed)

	hook := e.claimed(t, w)
	require.Equal(t, HookJobID(first, "on_error", 0, ""), hook.JobID, "no retry job: the failed job's on_error fires")
	e.complete(t, hook, w, stroem.Completion{})
	require.Nil(t, e.claim(t, w, 500*time.Millisecond), "nothing else runs")
}
