package actors

import (
	"context"
	"testing"

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
  sub:
    type: task
    task: inner
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
  inner:
    input:
      t: { type: string }
    flow:
      go:
        action: use
        input:
          t: "{{ input.t }}"
  deploy-child:
    input:
      token: { type: string, secret: true }
    flow:
      call:
        action: sub
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
	id := e.create(t, "deploy", map[string]any{"token": token, "pin": "12", "env": "prod"})
	w := uuid.NewString()
	a := e.claimed(t, w)
	require.Equal(t, token, a.Input["t"], "the step gets the secret")
	e.complete(t, a, w, stroem.Completion{
		ExitCode: 1, Output: map[string]any{"echo": "got " + token}, Error: "failed with " + token,
	})
	e.waitStatus(t, id, stroem.JobFailed)

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

// A secret: true input handed to a child job (a type: task step) stays
// masked there: in the child's input, its step's input and output, and its
// log, though the child's task does not mark the field secret.
func TestSecretInputsAreRedactedInChildJobs(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, redactWorkflow, Config{}, nil)
	ctx := context.Background()
	const token = "tok-77c1-child-secret"
	id := e.create(t, "deploy-child", map[string]any{"token": token})
	w := uuid.NewString()
	a := e.claimed(t, w)
	childID := ChildJobID(id, "call")
	require.Equal(t, childID, a.JobID)
	require.Equal(t, token, a.Input["t"], "the child's step gets the secret")
	e.complete(t, a, w, stroem.Completion{Output: map[string]any{"echo": "got " + token}})
	e.waitStatus(t, id, stroem.JobCompleted)

	for _, o := range []*Orchestrator{e.o, secondOrchestrator(t, e, redactWorkflow)} {
		m, err := o.Masker(ctx, childID)
		require.NoError(t, err)
		require.Equal(t, "token ***", m.Mask("token "+token), "the child's log lines are masked")
		j := e.job(t, childID)
		require.NoError(t, o.RedactJob(ctx, j))
		require.Equal(t, map[string]any{"t": "***"}, j.Input)
		require.Equal(t, map[string]any{"t": "***"}, j.Steps[0].Input)
		require.Equal(t, map[string]any{"echo": "got ***"}, j.Steps[0].Output)
		p := e.job(t, id)
		require.NoError(t, o.RedactJob(ctx, p))
		require.Equal(t, map[string]any{"go": map[string]any{"echo": "got ***"}}, p.Steps[0].Output)
	}
}
