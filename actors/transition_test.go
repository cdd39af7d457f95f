package actors

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

const testWorkflow = `
actions:
  emit:
    type: shell
    cmd: "echo {{ input.value }} {{ secret.token }}"
    env:
      COUNT: "{{ input.value }}"
    input:
      value: { type: string, required: true }
  deploy:
    type: shell
    script: "deploy.sh --env {{ input.value | shell_quote }}"
    input:
      value: { type: string, required: true }
  count:
    type: shell
    cmd: "seq {{ input.n }}"
    input:
      n: { type: integer, required: true }
secrets:
  token: "s3cret-value"
tasks:
  chain:
    input:
      start: { type: string, default: "a" }
    flow:
      first: { action: emit, input: { value: "{{ input.start }}" } }
      second: { action: emit, depends_on: [first], input: { value: "{{ first.output.v }}" } }
      third: { action: emit, depends_on: [second], input: { value: "{{ second.output.v }}" } }
      solo: { action: emit, input: { value: solo } }
  ship:
    flow:
      go: { action: deploy, input: { value: "prod east" } }
  retrying:
    flow:
      flaky:
        action: emit
        input: { value: x }
        retry: { max_attempts: 3, backoff: 2s }
      after: { action: emit, depends_on: [flaky], input: { value: y } }
  tolerant:
    flow:
      flaky: { action: emit, continue_on_failure: true, input: { value: x } }
      after: { action: emit, depends_on: [flaky], input: { value: "{{ flaky.output.v | default('none') }}" } }
  broken:
    flow:
      root: { action: emit, input: { value: "{{ input.missing }}" } }
      child: { action: emit, depends_on: [root], input: { value: c } }
      other: { action: count, input: { n: 3 } }
`

func setupTransitions(t *testing.T) *transitionBundle {
	t.Helper()
	return newBundle(t, testWorkflow, map[string]string{"deploy.sh": "#!/bin/sh\necho deploying \"$@\"\n"})
}

func TestAdvanceNewJobRendersRoots(t *testing.T) {
	t.Parallel()
	_, s := setupTransitions(t).newJob(t, "chain", map[string]any{"start": "go"})
	require.Equal(t, stroem.StepReady, s.Find("first").Status)
	require.Equal(t, map[string]any{"value": "go"}, s.Find("first").Input)
	require.Equal(t, stroem.StepReady, s.Find("solo").Status)
	require.Equal(t, stroem.StepPending, s.Find("second").Status)
	require.Equal(t, stroem.JobPending, s.Job.Status)
}

func TestAdvanceRenderFailureFailsStepAndSkipsDependents(t *testing.T) {
	t.Parallel()
	_, s := setupTransitions(t).newJob(t, "broken", nil)
	require.Equal(t, stroem.StepFailed, s.Find("root").Status)
	require.Contains(t, s.Find("root").ErrorMessage, "missing", "the error names the undefined variable")
	require.Equal(t, stroem.StepSkipped, s.Find("child").Status)
	require.Contains(t, s.Find("child").ErrorMessage, `"root" failed`)
	require.Equal(t, stroem.StepReady, s.Find("other").Status)
	require.Equal(t, map[string]any{"n": int64(3)}, normalizeInts(s.Find("other").Input))
}

func normalizeInts(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		switch n := v.(type) {
		case int:
			out[k] = int64(n)
		case float64:
			out[k] = int64(n)
		default:
			out[k] = v
		}
	}
	return out
}

func TestCompletePromotesWithOutputs(t *testing.T) {
	t.Parallel()
	p, s := setupTransitions(t).newJob(t, "chain", nil)
	claim(s, "first", "w1")
	ev := evComplete{step: "first", c: stroem.Completion{WorkerID: "w1", Attempt: 1, Output: map[string]any{"v": "out1"}}}
	require.NoError(t, ev.apply(p, s))
	advance(p, s)
	require.Equal(t, stroem.StepCompleted, s.Find("first").Status)
	require.Equal(t, stroem.AttemptCompleted, s.Find("first").AttemptStatus)
	require.Equal(t, stroem.StepReady, s.Find("second").Status)
	require.Equal(t, map[string]any{"value": "out1"}, s.Find("second").Input)

	require.ErrorIs(t, ev.apply(p, s), errDuplicate, "the same report again")
	differs := evComplete{step: "first", c: stroem.Completion{WorkerID: "w1", Attempt: 1, ExitCode: 3}}
	require.ErrorIs(t, differs.apply(p, s), stroem.ErrConflict, "another outcome for the ended attempt")
	require.Equal(t, stroem.StepCompleted, s.Find("first").Status, "changes nothing")
	stale := evComplete{step: "first", c: stroem.Completion{WorkerID: "w1", Attempt: 2}}
	require.ErrorIs(t, stale.apply(p, s), stroem.ErrConflict)
	other := evComplete{step: "first", c: stroem.Completion{WorkerID: "w2", Attempt: 1}}
	require.ErrorIs(t, other.apply(p, s), stroem.ErrConflict)
	unknown := evComplete{step: "nope", c: stroem.Completion{WorkerID: "w1", Attempt: 1}}
	require.ErrorIs(t, unknown.apply(p, s), stroem.ErrNotFound)
	notClaimed := evComplete{step: "second", c: stroem.Completion{WorkerID: "w1", Attempt: 0}}
	require.ErrorIs(t, notClaimed.apply(p, s), stroem.ErrConflict, "a step nobody claimed")
}

func TestJobEndsWithLeafOutputs(t *testing.T) {
	t.Parallel()
	p, s := setupTransitions(t).newJob(t, "chain", nil)
	for _, step := range []string{"first", "solo", "second", "third"} {
		report(t, p, s, step, stroem.Completion{Output: map[string]any{"v": step}})
	}
	require.Equal(t, stroem.JobCompleted, s.Job.Status)
	require.Equal(t, map[string]any{"third": map[string]any{"v": "third"}, "solo": map[string]any{"v": "solo"}}, s.Job.Output)
}

func TestRetryThenFail(t *testing.T) {
	t.Parallel()
	p, s := setupTransitions(t).newJob(t, "retrying", nil)
	for attempt := 1; attempt <= 3; attempt++ {
		require.Equal(t, stroem.StepReady, s.Find("flaky").Status, "attempt %d", attempt)
		claim(s, "flaky", "w")
		require.NoError(t, evComplete{step: "flaky", c: stroem.Completion{WorkerID: "w", Attempt: attempt, ExitCode: 2, Error: "exit code 2"}}.apply(p, s))
		advance(p, s)
		st := s.Find("flaky")
		require.Equal(t, stroem.AttemptFailed, st.AttemptStatus)
		if attempt < 3 {
			require.Equal(t, stroem.StepReady, st.Status)
			require.Equal(t, s.Now.Add(2*time.Second), *st.ReadyAt, "fixed backoff")
			require.Equal(t, stroem.JobRunning, s.Job.Status)
		}
	}
	require.Equal(t, stroem.StepFailed, s.Find("flaky").Status)
	require.Equal(t, stroem.StepSkipped, s.Find("after").Status)
	require.Equal(t, stroem.JobFailed, s.Job.Status)
}

func TestCancelledJobNeverRetries(t *testing.T) {
	t.Parallel()
	p, s := setupTransitions(t).newJob(t, "retrying", nil)
	claim(s, "flaky", "w")
	require.NoError(t, evCancel{}.apply(p, s))
	require.True(t, s.Find("flaky").CancelRequested)
	require.Equal(t, stroem.StepCancelled, s.Find("after").Status)
	require.NoError(t, evComplete{step: "flaky", c: stroem.Completion{WorkerID: "w", Attempt: 1, ExitCode: 143, Error: "cancelled"}}.apply(p, s))
	advance(p, s)
	require.Equal(t, stroem.StepCancelled, s.Find("flaky").Status)
	require.Equal(t, stroem.JobCancelled, s.Job.Status)
	require.ErrorIs(t, evCancel{}.apply(p, s), stroem.ErrConflict, "a finished job cannot be cancelled")
}

func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	p, s := setupTransitions(t).newJob(t, "retrying", nil)
	st := claim(s, "flaky", "w")

	require.NoError(t, evLeaseExpired{step: "flaky", attempt: 1}.apply(p, s))
	require.Equal(t, stroem.StepRunning, st.Status, "the lease has not run out yet")

	s.Now = st.LeaseExpiresAt.Add(time.Millisecond)
	require.NoError(t, evLeaseExpired{step: "flaky", attempt: 1}.apply(p, s))
	advance(p, s)
	require.Equal(t, stroem.StepReady, st.Status, "retried per policy")
	require.Equal(t, stroem.AttemptLost, st.AttemptStatus)
	require.Contains(t, st.ErrorMessage, "worker lost")

	late := evComplete{step: "flaky", c: stroem.Completion{WorkerID: "w", Attempt: 1}}
	require.ErrorIs(t, late.apply(p, s), stroem.ErrConflict, "a report for a lost attempt is refused")

	require.NoError(t, evLeaseExpired{step: "flaky", attempt: 1}.apply(p, s), "a stale timer changes nothing")
	require.Equal(t, stroem.StepReady, st.Status)
}

func TestContinueOnFailure(t *testing.T) {
	t.Parallel()
	p, s := setupTransitions(t).newJob(t, "tolerant", nil)
	report(t, p, s, "flaky", stroem.Completion{ExitCode: 1})
	require.Equal(t, stroem.StepFailed, s.Find("flaky").Status)
	require.Equal(t, "exit code 1", s.Find("flaky").ErrorMessage)
	require.Equal(t, stroem.StepReady, s.Find("after").Status)
	require.Equal(t, map[string]any{"value": "none"}, s.Find("after").Input)
	report(t, p, s, "after", stroem.Completion{})
	require.Equal(t, stroem.JobCompleted, s.Job.Status)
}

func TestRenderSpecUsesStepInputAndSecrets(t *testing.T) {
	t.Parallel()
	p, s := setupTransitions(t).newJob(t, "chain", map[string]any{"start": "hi"})
	spec, err := renderSpec(p, persistence.ClaimedStep{JobID: s.Job.ID, StepName: "first", Input: s.Find("first").Input})
	require.NoError(t, err)
	require.Equal(t, "echo hi s3cret-value", spec.Cmd)
	require.Equal(t, map[string]string{"COUNT": "hi"}, spec.Env)
	require.Equal(t, "*** done", p.masker.Mask("s3cret-value done"))
}

func TestRenderSpecScriptArguments(t *testing.T) {
	t.Parallel()
	p, s := setupTransitions(t).newJob(t, "ship", nil)
	spec, err := renderSpec(p, persistence.ClaimedStep{JobID: s.Job.ID, StepName: "go", Input: s.Find("go").Input})
	require.NoError(t, err)
	require.Equal(t, "deploy.sh", spec.Script)
	require.Equal(t, "--env 'prod east'", spec.Args)
	require.Empty(t, spec.Cmd)
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	half := func() float64 { return 0.5 }
	fixed := &workspace.RetryPolicy{MaxAttempts: 5, Backoff: stroem.Duration(time.Second)}
	require.Equal(t, time.Second, retryDelay(fixed, 1, half))
	require.Equal(t, time.Second, retryDelay(fixed, 4, half))
	exp := &workspace.RetryPolicy{MaxAttempts: 5, Backoff: stroem.Duration(time.Second), BackoffStrategy: workspace.BackoffExponential, MaxBackoff: stroem.Duration(5 * time.Second)}
	require.Equal(t, time.Second, retryDelay(exp, 1, half))
	require.Equal(t, 2*time.Second, retryDelay(exp, 2, half))
	require.Equal(t, 4*time.Second, retryDelay(exp, 3, half))
	require.Equal(t, 5*time.Second, retryDelay(exp, 4, half), "capped by max_backoff")
	jit := &workspace.RetryPolicy{MaxAttempts: 2, Backoff: stroem.Duration(time.Second), Jitter: 0.2}
	require.Equal(t, 800*time.Millisecond, retryDelay(jit, 1, func() float64 { return 0 }))
	require.Equal(t, 1200*time.Millisecond, retryDelay(jit, 1, func() float64 { return 1 }))
	require.Equal(t, time.Duration(0), retryDelay(nil, 1, half))
}

// A render error caused by an undefined secret names the secrets that did
// not resolve; any other render error is left as it is. The cause is read
// from the template error's structure, not from its text.
func TestRenderErrorNamesUnresolvedSecrets(t *testing.T) {
	t.Parallel()
	p := &plan{secretErrs: map[string]error{"token": errors.New("env var TOKEN is not set")}}
	render := func(src string) error {
		tpl, err := workspace.CompileTemplate(src)
		require.NoError(t, err)
		_, err = tpl.Render(map[string]any{"secret": map[string]any{}, "input": map[string]any{}})
		require.Error(t, err)
		return err
	}
	err := p.renderError("cmd", render("echo {{ secret.token }}"))
	require.Contains(t, err.Error(), `secret "token" did not resolve: env var TOKEN is not set`)

	err = p.renderError("cmd", render("echo {{ input.secret_word }}"))
	require.NotContains(t, err.Error(), "did not resolve", "an undefined input named like a secret is not a secret")
}
