package actors

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

const redactWorkflow = `
actions:
  use:
    type: shell
    cmd: "true"
    input:
      t: { type: string }
tasks:
  deploy:
    input:
      token: { type: string, secret: true }
      pin: { type: string, secret: true }
      env: { type: string }
    flow:
      go:
        action: use
        input:
          t: "{{ input.token }}"
`

// The values a job is given for secret: true inputs are never served in
// clear (upstream guides/secrets.md, API redaction): the fields themselves
// whatever their length, and the values wherever else they appear (a
// step's input, output and error, the log). The step itself gets them.
func TestSecretInputsAreRedacted(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, redactWorkflow, Config{}, nil)
	ctx := context.Background()
	const token = "tok-3f9a-very-secret"
	id, err := e.o.JobCreate(ctx, JobRequest{Workspace: "default", Task: "deploy",
		Input: map[string]any{"token": token, "pin": "12", "env": "prod"}})
	require.NoError(t, err)
	w := uuid.NewString()
	a := e.claim(t, w, 5*time.Second)
	require.NotNil(t, a)
	require.Equal(t, token, a.Input["t"], "the step gets the secret")
	require.NoError(t, e.o.StepComplete(ctx, id, a.StepName, stroem.Completion{
		WorkerID: w, Attempt: a.Attempt, ExitCode: 1,
		Output: map[string]any{"echo": "got " + token}, Error: "failed with " + token,
	}))
	require.Eventually(t, func() bool { return e.job(t, id).Status == stroem.JobFailed }, 10*time.Second, 20*time.Millisecond)

	m, err := e.o.Masker(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "token ***", m.Mask("token "+token), "log lines are masked")

	// A fresh orchestrator (nothing cached) redacts the same way.
	for _, o := range []*Orchestrator{e.o, secondOrchestrator(t, e, redactWorkflow)} {
		j := e.job(t, id)
		require.NoError(t, o.RedactJob(ctx, j))
		require.Equal(t, map[string]any{"token": "***", "pin": "***", "env": "prod"}, j.Input)
		st := j.Steps[0]
		require.Equal(t, map[string]any{"t": "***"}, st.Input)
		require.Equal(t, map[string]any{"echo": "got ***"}, st.Output)
		require.NotContains(t, st.ErrorMessage, token)
	}
}

// secondOrchestrator is another server's orchestrator on e's database.
func secondOrchestrator(t *testing.T, e *pgEngine, workflow string) *Orchestrator {
	t.Helper()
	wss := &oneWorkspace{}
	wss.ws.Store(loadWorkspace(t, workflow))
	o := New(Config{}, e.store, wss, nil, nil)
	require.NoError(t, o.Start(context.Background()))
	t.Cleanup(o.Stop)
	return o
}
